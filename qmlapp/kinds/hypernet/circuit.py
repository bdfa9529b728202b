"""The hypernetwork circuit (authors' ``variationalcircuit``) with a fast exact adjoint gradient in NumPy.

Circuit, for code sub-layer d = 1…D on n qubits from |0…0⟩: CX(j, j+1) on the line for odd j when d is odd
and even j when d is even, then Ry(θ_{d,j}) and Rz(φ_{d,j}) on every qubit ("product": no CX at all).
Parameters are ordered [θ_{1,·}, φ_{1,·}, θ_{2,·}, φ_{2,·}, …] (2·D·n). Cirq conventions throughout:
``cirq.ry(θ) = exp(−iθY/2)``, ``cirq.rz(φ) = exp(−iφZ/2)``, ``LineQubit(0…n−1)``, big-endian state index.

Why NumPy and not qsim/TFQ for training: L-BFGS needs the exact loss and an exact float64 gradient of
L = f(|ψ|²) hundreds of times per restart; qsim is single precision without gradients, and TFQ's adjoint is
complex64 and 7–10× a forward pass. What makes this fast is the circuit's structure:

* **Product segment.** Sub-layer 1 acts on |0…0⟩ (its CXs do nothing) and sub-layer 2 couples only the
  pairs (0,1), (2,3), …, so after two sub-layers the state is a Kronecker product of 2-qubit blocks: one
  outer product. Its gradient comes from each block's environment (λ contracted with all other blocks, by
  divide and conquer: two GEMVs over 2ⁿ) and a tiny per-block adjoint. "product" is only this segment.
* **Split at an odd bond** (default for D ≥ 3). CX = |0⟩⟨0| ⊗ I + |1⟩⟨1| ⊗ X has operator Schmidt rank 2.
  Cutting the line between qubits j and j+1 with j odd, only the CXs of odd sub-layers d ≥ 3 cross the cut
  (k = ⌊(D−1)/2⌋ of them; d = 1's act on |0…0⟩). So ψ = Σ_α L_α ⊗ R_α exactly, over the 2^k branches α of
  those CXs: L_α is the left half's circuit with the projector |β⟩⟨β| on qubit j, R_α the right half's with
  X^β on qubit j+1 (β = the branch's bit for that sub-layer). The halves have ~n/2 qubits each, so the
  whole 2ⁿ work is ONE GEMM ψ = Lᵀ·R with inner dimension 2^k (2 at D = 4). Backward, the halves' costates
  are two more GEMMs, Λ_L = conj(R)·λᵀ and Λ_R = conj(L)·λ, then tiny adjoints on the halves.
* **Dense engine** (the halves, and the whole circuit when 2^k is too large). The gates of one sub-layer
  act on disjoint groups of ≤ 3 consecutive qubits (each CX pair inside one group). Each group's unitary
  G = (⊗Rz)(⊗Ry)·CX is applied with ONE GEMM that also rotates the qubit axes, ``out (M × 2^g) =
  X (2^g × M)ᵀ · Gᵀ``, so the next group is again the leading axes and no transposed copy is ever made.
  Backward, λ goes through Gᴴ with the reverse rotation. G†∂G/∂θ_j = (−i/2)·C Y_j C is a real signed
  permutation of the group's rows, so dL/dθ_j is a few real dot products of contiguous rows; dL/dφ_j =
  Im⟨λ|Z_j|ψ⟩ at the sub-layer output is one elementwise product and its Z-marginals (0 for the last one).

Noise and sampling use Cirq circuits on qsimcirq (Monte-Carlo trajectories), see :meth:`noisy_trajectories`.
"""

from __future__ import annotations

import contextlib
import math
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from qmlapp.simulators import Simulators

if TYPE_CHECKING:
    import cirq

ANSATZES = ("brickwork", "product")
ENGINES = ("auto", "split", "dense")
P1_PER_NOISE = 0.001  # 1-qubit depolarising probability per unit of the noise knob p (authors' code)
P2_PER_NOISE = 0.00375  # 2-qubit depolarising probability after each CX, per unit of p
MAX_QUBITS = 24  # beyond this a dense state vector is not sensible on this class of machine
BORN_CHUNK = 1 << 15  # entries per chunk of |ψ|²
SPLIT_MIN_QUBITS = 11  # below this the dense engine has less Python overhead than two split halves
SMALL_STATE = 1 << 16  # float64 entries of λ below which the θ dots are one batched Gram matrix
MAX_WORKSPACE_BYTES = 1 << 30  # dense engine: above this, backward recomputes states (one more GEMM per group)

_PAULI = np.array([np.eye(2), [[0, 1], [1, 0]], [[0, -1j], [1j, 0]], [[1, 0], [0, -1]]], dtype=np.complex128)
ValueFn = Callable[[np.ndarray], tuple[float, np.ndarray]]
Alloc = Callable[[int, tuple[int, ...]], np.ndarray]


# ----------------------------------------------------------------------------------------------- small pieces


def _single_qubit(theta: np.ndarray, phi: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """U = Rz(φ)·Ry(θ) and its derivatives, shape (..., 2, 2), vectorised over any parameter shape."""
    c, s = np.cos(theta / 2), np.sin(theta / 2)
    em = np.exp(-0.5j * phi)
    ep = em.conj()
    u = np.empty((*np.shape(theta), 2, 2), dtype=np.complex128)
    u[..., 0, 0], u[..., 0, 1] = em * c, -em * s
    u[..., 1, 0], u[..., 1, 1] = ep * s, ep * c
    du_t = np.empty_like(u)
    du_t[..., 0, 0], du_t[..., 0, 1] = -0.5 * em * s, -0.5 * em * c
    du_t[..., 1, 0], du_t[..., 1, 1] = 0.5 * ep * c, -0.5 * ep * s
    du_p = u * np.array([[-0.5j], [0.5j]])  # ∂Rz/∂φ = diag(−i/2, i/2)·Rz
    return u, du_t, du_p


def _kron_all(vectors: Sequence[np.ndarray]) -> np.ndarray:
    """v₀ ⊗ v₁ ⊗ …, balanced so that only the last outer product touches 2ⁿ entries."""
    if len(vectors) == 1:
        return vectors[0]
    h = len(vectors) // 2
    return np.multiply.outer(_kron_all(vectors[:h]), _kron_all(vectors[h:])).ravel()


def _environments(lam: np.ndarray, vectors: Sequence[np.ndarray]) -> list[np.ndarray]:
    """E_k[s] = Σ_rest λ[…s…]·Π_{l≠k} conj(v_l): the costate of product factor k (divide and conquer)."""
    if len(vectors) == 1:
        return [lam]
    h = len(vectors) // 2
    left, right = vectors[:h], vectors[h:]
    t = lam.reshape(math.prod(len(v) for v in left), -1)
    to_left = t @ _kron_all(right).conj()
    to_right = _kron_all(left).conj() @ t
    return _environments(to_left, left) + _environments(to_right, right)


def _z_marginals(q: np.ndarray, n: int) -> np.ndarray:
    """m_j = Σ_σ z_j(σ) q(σ) for every qubit j (z = +1 for bit 0, big-endian), in ~2 passes over q."""
    if n == 0:
        return np.zeros(0)
    if n == 1:
        return np.array([q[0] - q[1]])
    h = n // 2
    t = q.reshape(2**h, -1)
    return np.concatenate([_z_marginals(t.sum(axis=1), h), _z_marginals(t.sum(axis=0), n - h)])


def _cx_pairs(n: int, layer: int) -> list[tuple[int, int]]:
    """CX pairs of 0-based sub-layer ``layer`` (code d = layer + 1): odd j when d is odd, even j when even."""
    return [(j, j + 1) for j in range(1 if layer % 2 == 0 else 0, n - 1, 2)]


def _fresh(_slot: int, shape: tuple[int, ...]) -> np.ndarray:
    return np.empty(shape, dtype=np.complex128)


def _cols(a: np.ndarray | None, qubits: slice) -> np.ndarray | None:
    return None if a is None else a[:, qubits]


@dataclass(frozen=True)
class _Group:
    """≤ 3 consecutive qubits of one dense sub-layer; every CX pair of the sub-layer lies inside one group."""

    start: int
    size: int
    perm: np.ndarray  # (K·C)[:, j] = K[:, perm[j]] for the CX permutation C of the group's pairs
    # per local qubit j: rows r, partner rows r', coefficients c with dL/dθ_j = Σ c·Re⟨λ_r|x_r'⟩
    theta_terms: tuple[tuple[np.ndarray, np.ndarray, np.ndarray], ...]

    def matrix(self, u: np.ndarray) -> np.ndarray:
        """Dense (2^g × 2^g) unitary (⊗_q U_q)·C of the group; ``u`` holds the layer's (n, 2, 2) 1-qubit gates."""
        k = u[self.start]
        for q in range(self.start + 1, self.start + self.size):
            k = (k[:, None, :, None] * u[q][None, :, None, :]).reshape(2 * k.shape[0], 2 * k.shape[1])
        return k[:, self.perm]


def _make_group(start: int, size: int, pairs: Sequence[tuple[int, int]]) -> _Group:
    dim = 2**size
    perm = np.arange(dim)
    for c, t in pairs:  # local indices; the bit of local qubit q is (index >> (size-1-q)) & 1
        cb, tb = 1 << (size - 1 - c), 1 << (size - 1 - t)
        perm = np.where(perm & cb, perm ^ tb, perm)
    cmat = np.zeros((dim, dim))
    cmat[perm, np.arange(dim)] = 1.0
    y = np.array([[0, -1j], [1j, 0]])
    terms = []
    for j in range(size):
        yj = np.kron(np.kron(np.eye(2**j), y), np.eye(2 ** (size - 1 - j)))
        a = 2 * (-0.5j) * (cmat.T @ yj @ cmat)  # 2·G†∂G/∂θ_j
        rows, cols = np.nonzero(np.abs(a) > 0.5)
        coef = a[rows, cols]
        if len(rows) != dim or np.abs(coef.imag).max() > 1e-12:  # C·Y·C has exactly one Y: real ±1 entries
            raise AssertionError("unexpected structure of C·Y·C")
        terms.append((rows, cols, coef.real.copy()))
    return _Group(start, size, perm, tuple(terms))


def _make_groups(n: int, layer: int) -> tuple[_Group, ...]:
    """Greedy: units are CX pairs and unpaired qubits in line order, merged into groups of at most 3 qubits.

    Group size 2–3 is the sweet spot of OpenBLAS's skinny ZGEMM here (g = 1 is as slow as g = 2; g = 4 costs
    as much as two g = 2 passes), and a CX pair must never straddle two groups.
    """
    partner = dict(_cx_pairs(n, layer))
    units: list[list[int]] = []
    q = 0
    while q < n:
        units.append([q, partner[q]] if q in partner else [q])
        q += len(units[-1])
    groups: list[_Group] = []
    cur: list[list[int]] = []
    for unit in [*units, []]:
        if cur and (not unit or sum(map(len, cur)) + len(unit) > 3):
            qubits = [x for u_ in cur for x in u_]
            local = [(u_[0] - qubits[0], u_[1] - qubits[0]) for u_ in cur if len(u_) == 2]
            groups.append(_make_group(qubits[0], len(qubits), local))
            cur = []
        if unit:
            cur.append(unit)
    return tuple(groups)


def _row_dot(lf: np.ndarray, xf: np.ndarray, r: int, q: int) -> float:
    """Σ_{b,m} lf[b, r, m]·xf[b, q, m] for float views (B, 2^g, 2M); xf may have batch 1 (broadcast)."""
    if lf.shape[0] == 1:
        return float(np.dot(lf[0, r], xf[0, q]))
    return float(np.einsum("bm,bm->", lf[:, r], xf[:, q]))


# ----------------------------------------------------------------------------------------------- engine


@dataclass
class _Tape:
    """What the backward pass of one :class:`_Engine` needs from its forward pass."""

    u: np.ndarray  # (D, n, 2, 2) 1-qubit gates Rz·Ry (of this engine's qubits)
    du_t: np.ndarray | None  # ∂U/∂θ (None: forward only)
    du_p: np.ndarray | None  # ∂U/∂φ
    blocks: list[np.ndarray]  # product-segment factors, in qubit order
    psi: np.ndarray = field(default_factory=lambda: np.zeros(0))  # final (B, 2ⁿ) state
    gates: list[list[np.ndarray]] = field(default_factory=list)  # per dense sub-layer, the group unitaries
    layer_inputs: list[np.ndarray] = field(default_factory=list)  # (B, 2ⁿ) state entering each dense sub-layer
    group_inputs: list[np.ndarray] = field(default_factory=list)  # (B, 2^g, M) state entering each group
    stored: bool = False  # whether layer_inputs/group_inputs are valid (else recompute backwards)


class _Engine:
    """Exact state and adjoint gradient of the circuit on ``n`` qubits, optionally one half of a split.

    ``boundary = (qubit, kind)``: before the gates of every crossing sub-layer (0-based even layers ≥ 2,
    i.e. odd code sub-layers ≥ 3), branch α applies |β⟩⟨β| ("P", the cut CX's control side) or X^β ("X",
    its target side) to ``qubit``, β being bit i of α for the i-th crossing sub-layer (most significant
    first). States then carry a leading batch axis of 2^k branches; without a boundary it has length 1.
    """

    def __init__(self, n: int, depth: int, ansatz: str, boundary: tuple[int, str] | None = None) -> None:
        self.n, self.depth, self.ansatz, self.boundary = n, depth, ansatz, boundary
        if ansatz == "product":
            self.seg_layers, self.pairs = depth, np.zeros(0, dtype=int)
        elif depth == 1:
            self.seg_layers, self.pairs = 1, np.zeros(0, dtype=int)
        else:
            self.seg_layers, self.pairs = 2, np.arange(0, n - 1, 2)
        paired = {int(q) for a in self.pairs for q in (a, a + 1)}
        self.singles = np.array([q for q in range(n) if q not in paired], dtype=int)
        self.groups = {parity: _make_groups(n, parity) for parity in (0, 1)} if ansatz == "brickwork" else {}
        self.dense_layers = list(range(self.seg_layers, depth))
        self.crossing = [layer for layer in self.dense_layers if layer % 2 == 0] if boundary else []
        self.batch = 2 ** len(self.crossing)
        self.n_groups = sum(len(self.groups[layer % 2]) for layer in self.dense_layers)

    # ---- forward ------------------------------------------------------------------------------------------

    def segment_blocks(self, u: np.ndarray) -> list[np.ndarray]:
        """Factors of the state after the product segment, in qubit order (pairs, then a lone last qubit)."""
        blocks: list[np.ndarray] = []
        if len(self.pairs):
            a, b = self.pairs, self.pairs + 1
            w = u[0, a, :, 0][:, :, None] * u[0, b, :, 0][:, None, :]  # sub-layer 1 on |00⟩ (its CX is idle)
            w[:, 1, :] = w[:, 1, ::-1].copy()  # CX(a, b) of sub-layer 2
            v = np.einsum("bis,bjt,bst->bij", u[1, a], u[1, b], w)
            blocks.extend(v.reshape(-1, 4))
        if len(self.singles):
            w = u[0, self.singles, :, 0]
            for layer in range(1, self.seg_layers):
                w = np.einsum("bij,bj->bi", u[layer, self.singles], w)
            blocks.extend(w)
        return blocks

    def _branch(self, x: np.ndarray, i: int) -> np.ndarray:
        """Boundary ops of crossing sub-layer i on (1 or B, 2ⁿ) states → (B, 2ⁿ); self-adjoint, so also λ's step."""
        assert self.boundary is not None
        q, kind = self.boundary
        b = self.batch
        bits = (np.arange(b) >> (len(self.crossing) - 1 - i)) & 1
        xb = np.broadcast_to(x, (b, x.shape[1])).reshape(b, 2**q, 2, -1)
        if kind == "P":
            out = np.zeros(xb.shape, dtype=xb.dtype)
            for beta in (0, 1):
                out[bits == beta, :, beta] = xb[bits == beta, :, beta]
        else:
            out = np.array(xb, order="C")
            out[bits == 1] = xb[bits == 1][:, :, ::-1]
        return out.reshape(b, -1)

    def forward(self, u: np.ndarray, du_t: np.ndarray | None, du_p: np.ndarray | None, alloc: Alloc,
                store: bool) -> _Tape:
        """Run this engine's circuit; ``store`` keeps every intermediate state for :meth:`backward`.

        ``alloc(slot, shape)`` gives the output buffer of forward slot ``slot`` (a warm workspace row for the
        full-size engine); slots are 0, 1, 2, … when storing and alternate 0/1 otherwise.
        """
        tape = _Tape(u, du_t, du_p, self.segment_blocks(u), stored=store)
        blocks, size = tape.blocks, 2**self.n
        x = alloc(0, (1, size))
        if len(blocks) == 1:
            x[0] = blocks[0]
        else:
            h = len(blocks) // 2
            left, right = _kron_all(blocks[:h]), _kron_all(blocks[h:])
            np.multiply.outer(left, right, out=x.reshape(left.size, right.size))
        slot = 0
        for layer in self.dense_layers:
            tape.layer_inputs.append(x)
            if layer in self.crossing:
                x = self._branch(x, self.crossing.index(layer))
            gates = []
            for grp in self.groups[layer % 2]:
                g = grp.matrix(u[layer])
                gates.append(g)
                xin = x.reshape(x.shape[0], g.shape[0], -1)
                tape.group_inputs.append(xin)
                slot = slot + 1 if store else 1 - slot
                out = alloc(slot, x.shape)
                np.matmul(xin.transpose(0, 2, 1), g.T, out=out.reshape(x.shape[0], -1, g.shape[0]))
                x = out  # the group now sits on the trailing axes
            tape.gates.append(gates)
        tape.psi = x
        return tape

    # ---- backward -----------------------------------------------------------------------------------------

    def backward(self, tape: _Tape, lam: np.ndarray, alloc: Alloc, gt: np.ndarray, gp: np.ndarray) -> None:
        """Fill dL/dθ (``gt``) and dL/dφ (``gp``), each (D, n), from λ = dL/dψ* (B, 2ⁿ) at the output.

        Slots used from ``alloc``: λ ping-pongs between ``lam_slot`` and ``lam_slot + 1`` (see
        :meth:`lam_slot`), the φ scratch is ``lam_slot + 2``; when not stored, states are recomputed
        backwards through Gᴴ in forward slots 0/1 (no boundary then: projectors are not invertible).
        """
        d = self.depth
        lam_slot = self.lam_slot(tape.stored)
        li = 0
        x = tape.psi
        xs = self.n_groups % 2  # the forward slot holding x when states are recomputed (ping-pong)
        k = len(tape.group_inputs)
        for i in reversed(range(len(self.dense_layers))):
            layer = self.dense_layers[i]
            if layer < d - 1:  # φ of the last sub-layer never changes |ψ|²: its gradient is exactly 0
                x_out = tape.layer_inputs[i + 1] if tape.stored else x
                if lam.shape[0] == 1 == x_out.shape[0]:
                    w = alloc(lam_slot + 2, lam.shape)
                    np.conjugate(lam, out=w)
                    np.multiply(w, x_out, out=w)
                    q = w.imag[0]
                else:
                    q = (np.conjugate(lam) * x_out).imag.sum(axis=0)
                gp[layer] = _z_marginals(q, self.n)  # dL/dφ_j = Im⟨λ|Z_j|ψ⟩ at the sub-layer output
            for grp, g in zip(reversed(self.groups[layer % 2]), reversed(tape.gates[i]), strict=True):
                dim = g.shape[0]
                gh = g.conj().T
                li = 1 - li
                b = lam.shape[0]
                new = alloc(lam_slot + li, lam.shape).reshape(b, dim, -1)
                np.matmul(gh, lam.reshape(b, -1, dim).transpose(0, 2, 1), out=new)  # group → leading axes
                k -= 1
                if tape.stored:
                    xin = tape.group_inputs[k]
                else:
                    xin = alloc(1 - xs, x.shape).reshape(x.shape[0], dim, -1)
                    np.matmul(gh, x.reshape(x.shape[0], -1, dim).transpose(0, 2, 1), out=xin)
                    xs = 1 - xs
                    x = xin.reshape(x.shape[0], -1)
                lf, xf = new.view(np.float64), xin.view(np.float64)
                if lf.shape[0] > 1 and xf.shape[0] == 1:
                    lf = lf.sum(axis=0, keepdims=True)  # the branches share this input state
                if lf.shape[0] > 1 or lf.size <= SMALL_STATE:  # a split half: one Gram matrix beats 8–24 calls
                    gram = np.matmul(lf, xf.transpose(0, 2, 1)).sum(axis=0)  # Re⟨λ_r|x_q⟩ for all r, q
                    for j, (rows, cols, coef) in enumerate(grp.theta_terms):
                        gt[layer, grp.start + j] = coef @ gram[rows, cols]
                else:  # large: only the rows needed, straight from memory
                    for j, (rows, cols, coef) in enumerate(grp.theta_terms):
                        gt[layer, grp.start + j] = sum(
                            c * _row_dot(lf, xf, r, q) for r, q, c in zip(rows, cols, coef, strict=True))
                lam = new.reshape(b, -1)
            if layer in self.crossing:
                lam = self._branch(lam, self.crossing.index(layer))
                if tape.layer_inputs[i].shape[0] == 1:  # the branches were spawned here: their costates add up
                    lam = lam.sum(axis=0, keepdims=True)
        self.segment_backward(lam[0], tape, gt, gp)

    def lam_slot(self, stored: bool) -> int:
        """First λ slot: right after the forward slots (1 + groups when storing, else 2)."""
        return 1 + self.n_groups if stored else 2

    def segment_backward(self, lam: np.ndarray, tape: _Tape, gt: np.ndarray, gp: np.ndarray) -> None:
        """Gradient of the product segment from λ at its output (block environments + tiny adjoints)."""
        envs = _environments(lam, tape.blocks)
        u, du_t, du_p = tape.u, tape.du_t, tape.du_p
        assert du_t is not None and du_p is not None
        npairs = len(self.pairs)
        if npairs:
            a, b = self.pairs, self.pairs + 1
            e = np.stack(envs[:npairs]).reshape(-1, 2, 2).conj()  # conj(E)
            a0, b0 = u[0, a, :, 0], u[0, b, :, 0]
            w = a0[:, :, None] * b0[:, None, :]
            w[:, 1, :] = w[:, 1, ::-1].copy()
            # sub-layer 2 gates: 2 Re Σ conj(E)·(dU ⊗ U) w
            ya = np.einsum("bjt,bst->bsj", u[1, b], w)
            ma = np.einsum("bij,bsj->bis", e, ya)
            yb = np.einsum("bis,bst->bit", u[1, a], w)
            mb = np.einsum("bij,bit->bjt", e, yb)
            for q, m in ((a, ma), (b, mb)):
                gt[1, q] = 2 * np.einsum("bis,bis->b", du_t[1, q], m).real
                gp[1, q] = 2 * np.einsum("bis,bis->b", du_p[1, q], m).real
            # back through sub-layer 2's 1-qubit gates (E ← (Ua ⊗ Ub)† E) and its CX; conj kept throughout
            e1 = np.einsum("bis,bjt,bij->bst", u[1, a], u[1, b], e)  # conj of (U⊗U)†E
            e1[:, 1, :] = e1[:, 1, ::-1].copy()
            ma0 = np.einsum("bst,bt->bs", e1, b0)
            mb0 = np.einsum("bst,bs->bt", e1, a0)
            for q, m in ((a, ma0), (b, mb0)):
                gt[0, q] = 2 * np.einsum("bs,bs->b", du_t[0, q, :, 0], m).real
                gp[0, q] = 2 * np.einsum("bs,bs->b", du_p[0, q, :, 0], m).real
        if len(self.singles):
            s = self.singles
            ws = [np.zeros((len(s), 2), dtype=np.complex128)]
            ws[0][:, 0] = 1.0
            for layer in range(self.seg_layers):
                ws.append(np.einsum("bij,bj->bi", u[layer, s], ws[-1]))
            e = np.stack(envs[npairs:]).conj()
            for layer in reversed(range(self.seg_layers)):
                m = e[:, :, None] * ws[layer][:, None, :]
                gt[layer, s] = 2 * np.einsum("bij,bij->b", du_t[layer, s], m).real
                gp[layer, s] = 2 * np.einsum("bij,bij->b", du_p[layer, s], m).real
                e = np.einsum("bij,bi->bj", u[layer, s], e)  # conj(U†E) = Uᵀ conj(E)


# ----------------------------------------------------------------------------------------------- the circuit


def _crossing_layers(depth: int) -> int:
    """k: CX sub-layers that cross an odd bond, d = 3, 5, … ≤ D (d = 1's CXs act on |0…0⟩)."""
    return len(range(2, depth, 2))


class HypernetCircuit:
    """Brickwork (or product) hypernetwork circuit: exact state, probabilities, adjoint gradient, sampling, noise.

    ``engine``: "split" (ψ = Σ_α L_α ⊗ R_α over the 2^k branches of the CXs crossing a middle odd bond),
    "dense" (group GEMMs over the full state) or "auto": split when n ≥ 11 and 2^k ≤ 2^(n/2)/4 (D ≤ 16 at
    n = 18); below 11 qubits everything is Python-overhead-bound and one dense engine is cheaper. Both are
    exact to ~1e-15; "dense" exists for very deep circuits and as a cross-check.
    One instance may be shared between threads (calls are serialised: they reuse warm buffers).
    """

    def __init__(self, n_qubits: int, depth: int, ansatz: str = "brickwork", *, engine: str = "auto") -> None:
        if not 1 <= int(n_qubits) <= MAX_QUBITS:
            raise ValueError(f"n_qubits must be in [1, {MAX_QUBITS}], got {n_qubits}")
        if int(depth) < 1:
            raise ValueError(f"depth must be ≥ 1, got {depth}")
        if ansatz not in ANSATZES:
            raise ValueError(f"ansatz must be one of {ANSATZES}, got {ansatz!r}")
        if engine not in ENGINES:
            raise ValueError(f"engine must be one of {ENGINES}, got {engine!r}")
        self.n_qubits = n = int(n_qubits)
        self.depth = d = int(depth)
        self.ansatz = ansatz
        self.n_params = 2 * d * n
        k = _crossing_layers(d)
        can_split = ansatz == "brickwork" and d >= 3 and n >= 3
        if engine == "split" and not can_split:
            raise ValueError("engine='split' needs the brickwork ansatz, depth ≥ 3 and ≥ 3 qubits")
        if engine == "auto":
            engine = "split" if can_split and n >= SPLIT_MIN_QUBITS and k <= n // 2 - 2 else "dense"
        self.engine = engine
        if engine == "split":
            n_left = min(2 * max(1, round(n / 4)), n - 1)  # even, so the cut bond (n_left − 1, n_left) is odd
            self._halves = (_Engine(n_left, d, ansatz, (n_left - 1, "P")), _Engine(n - n_left, d, ansatz, (0, "X")))
        else:
            self._engine = _Engine(n, d, ansatz)
        self.max_workspace_bytes = MAX_WORKSPACE_BYTES
        self._ws: np.ndarray | None = None
        self._store = True
        self._lam_index = self._tmp_index = 0
        self._lock = threading.Lock()
        self._owner: int | None = None

    # ---- workspace --------------------------------------------------------------------------------------

    def _workspace(self) -> np.ndarray:
        """Reused (slots, 2ⁿ) complex128 buffers, allocated once per instance.

        Why: a fresh 4 MB array costs ~1 ms of page faults on this VM (as much as two GEMMs). Split: ψ, λ,
        scratch. Dense: the forward states (1 + groups when the tape is stored, else 2), λ, λ', scratch.
        """
        if self._ws is None:
            if self.engine == "split":
                rows, self._lam_index, self._tmp_index = 3, 1, 2
            else:
                eng = self._engine
                self._store = (eng.lam_slot(True) + 3) * 16 * 2**self.n_qubits <= self.max_workspace_bytes
                self._lam_index = eng.lam_slot(self._store)
                rows, self._tmp_index = self._lam_index + 3, self._lam_index + 2
            self._ws = np.zeros((rows, 2**self.n_qubits), dtype=np.complex128)  # pages faulted in here, once
        return self._ws

    @contextlib.contextmanager
    def _busy(self) -> Iterator[None]:
        """Serialise calls (they share the workspace); a call from inside ``fn`` would clobber ψ: refuse it."""
        if self._owner == threading.get_ident():
            raise RuntimeError("HypernetCircuit called re-entrantly (e.g. from the fn of value_and_grad)")
        with self._lock:
            self._owner = threading.get_ident()
            try:
                yield
            finally:
                self._owner = None

    def _alloc(self, slot: int, shape: tuple[int, ...]) -> np.ndarray:
        assert self._ws is not None
        return self._ws[slot].reshape(shape)

    def clear_workspace(self) -> None:
        """Free the reused buffers (they are reallocated on the next call)."""
        with self._busy():
            self._ws = None

    def __getstate__(self) -> dict[str, object]:
        state = self.__dict__.copy()
        state["_ws"], state["_lock"], state["_owner"] = None, None, None
        return state

    def __setstate__(self, state: dict[str, object]) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()

    # ---- parameters and Cirq -----------------------------------------------------------------------------

    def _check(self, params: np.ndarray) -> np.ndarray:
        p = np.asarray(params, dtype=np.float64).ravel()
        if p.size != self.n_params:
            raise ValueError(f"expected {self.n_params} parameters, got {p.size}")
        return p

    def _angles(self, params: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(θ, φ), each (D, n), from the flat vector [θ₁, φ₁, θ₂, φ₂, …]."""
        p = self._check(params).reshape(self.depth, 2, self.n_qubits)
        return p[:, 0], p[:, 1]

    def symbol_names(self) -> list[str]:
        """Sympy symbol names of :meth:`cirq_circuit` (params=None), in parameter-vector order."""
        return [f"{name}_{d}_{j}" for d in range(self.depth) for name in ("theta", "phi")
                for j in range(self.n_qubits)]

    def cirq_circuit(self, params: np.ndarray | None = None, *, noise: float = 0.0) -> cirq.Circuit:
        """The circuit as Cirq ops: resolved with ``params``, or symbolic (theta_d_j / phi_d_j) when None.

        noise p > 0 adds ``depolarize(0.001·p)`` after every 1-qubit gate and the TWO-qubit channel
        ``depolarize(0.00375·p, n_qubits=2)`` after every CX, including the first
        sub-layer's CXs, which do nothing noiselessly but still let noise in. p = 0 adds no channels at all.
        """
        import cirq
        import sympy

        if noise < 0:
            raise ValueError(f"noise must be ≥ 0, got {noise}")
        n = self.n_qubits
        qs = cirq.LineQubit.range(n)
        if params is None:
            names = self.symbol_names()
            values: list[object] = [sympy.Symbol(s) for s in names]
        else:
            values = [float(v) for v in self._check(params)]
        p1, p2 = P1_PER_NOISE * noise, P2_PER_NOISE * noise
        moments: list[cirq.Moment] = []
        for d in range(self.depth):
            if self.ansatz == "brickwork":
                pairs = _cx_pairs(n, d)
                if pairs:
                    moments.append(cirq.Moment(cirq.CNOT(qs[c], qs[t]) for c, t in pairs))
                    if noise > 0:
                        moments.append(cirq.Moment(cirq.depolarize(p2, n_qubits=2).on(qs[c], qs[t]) for c, t in pairs))
            base = 2 * d * n
            for k, gate in enumerate((cirq.ry, cirq.rz)):
                moments.append(cirq.Moment(gate(values[base + k * n + j]).on(qs[j]) for j in range(n)))
                if noise > 0:
                    moments.append(cirq.Moment(cirq.depolarize(p1).on(q) for q in qs))
        return cirq.Circuit(moments)

    # ---- exact simulation --------------------------------------------------------------------------------

    def _forward(self, params: np.ndarray, keep: bool) -> tuple[list[_Tape], np.ndarray]:
        """(tapes, ψ): ψ is a workspace row, valid until the next call (the caller holds the lock)."""
        theta, phi = self._angles(params)
        return self._run(*_single_qubit(theta, phi), keep)

    def _run(self, u: np.ndarray, du_t: np.ndarray | None, du_p: np.ndarray | None,
             keep: bool) -> tuple[list[_Tape], np.ndarray]:
        """The circuit with 1-qubit gates ``u`` (D, n, 2, 2), any 2×2 unitaries: Rz·Ry, or with Paulis folded in."""
        ws = self._workspace()
        if self.engine == "dense":
            tape = self._engine.forward(u, du_t, du_p, self._alloc, store=keep and self._store)
            return [tape], tape.psi[0]
        left, right = self._halves
        m = left.n
        sl = slice(None, m)
        tl = left.forward(u[:, sl], _cols(du_t, sl), _cols(du_p, sl), _fresh, store=True)
        sr = slice(m, None)
        tr = right.forward(u[:, sr], _cols(du_t, sr), _cols(du_p, sr), _fresh, store=True)
        np.matmul(tl.psi.T, tr.psi, out=ws[0].reshape(2**m, -1))  # ψ[l, r] = Σ_α L_α[l]·R_α[r]
        return [tl, tr], ws[0]

    def state(self, params: np.ndarray) -> np.ndarray:
        """Final state vector (complex128, length 2ⁿ, Cirq's big-endian order), Cirq's global phase included."""
        with self._busy():
            return self._forward(params, keep=False)[1].copy()

    def probabilities(self, params: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """Born probabilities p(σ) = |⟨σ|ψ⟩|² (float64): a fresh array, or written into ``out``.

        ``out`` lets a hot loop reuse one buffer: at n ≥ 20 a fresh array costs more in page faults
        than the whole forward pass.
        """
        with self._busy():
            return self._born(self._forward(params, keep=False)[1], out)

    def _born(self, psi: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """|ψ|² in cache-sized chunks (at n = 22 this is 1.5× faster than whole-array passes)."""
        p = np.empty(psi.size) if out is None else out
        tmp = self._alloc(self._tmp_index, (psi.size,)).view(np.float64)[:BORN_CHUNK]
        for i in range(0, psi.size, BORN_CHUNK):
            s, o = psi[i : i + BORN_CHUNK], p[i : i + BORN_CHUNK]
            np.square(s.real, out=o)
            np.add(o, np.square(s.imag, out=tmp[: s.size]), out=o)
        return p

    # ---- gradient ----------------------------------------------------------------------------------------

    def _backward(self, tapes: list[_Tape], lam: np.ndarray) -> np.ndarray:
        """dL/dparams = 2·Re⟨λ|∂ψ⟩ for λ = dL/dψ* (f'(p)⊙ψ for L = f(p)), λ in the workspace's λ row."""
        d, n = self.depth, self.n_qubits
        gt, gp = np.zeros((d, n)), np.zeros((d, n))
        if self.engine == "dense":
            self._engine.backward(tapes[0], lam[None], self._alloc, gt, gp)
        else:
            (left, right), (tl, tr) = self._halves, tapes
            m = left.n
            lam2 = lam.reshape(2**m, -1)
            lam_left = np.ascontiguousarray((lam2 @ tr.psi.conj().T).T)  # Λ_L[α] = Σ_r λ[·, r] conj(R_α[r])
            lam_right = tl.psi.conj() @ lam2  # Λ_R[α] = Σ_l conj(L_α[l]) λ[l, ·]
            left.backward(tl, lam_left, _fresh, gt[:, :m], gp[:, :m])
            right.backward(tr, lam_right, _fresh, gt[:, m:], gp[:, m:])
        return np.stack([gt, gp], axis=1).ravel()

    def value_and_grad(self, params: np.ndarray, fn: ValueFn) -> tuple[float, np.ndarray, np.ndarray]:
        """Exact value and gradient of ``fn(p)`` for p = |ψ_θ|²: one forward pass, one adjoint pass.

        ``fn(p)`` returns (value, dvalue/dp). Returns (value, dvalue/dparams, p); p is a fresh array.
        """
        with self._busy():
            tapes, psi = self._forward(params, keep=True)
            p = self._born(psi)
            value, dp = fn(p)
            dp = np.asarray(dp, dtype=np.float64)
            if dp.shape != p.shape:
                raise ValueError(f"fn must return dvalue/dp of shape {p.shape}, got {dp.shape}")
            lam = np.multiply(psi, dp, out=self._alloc(self._lam_index, psi.shape))
            return float(value), self._backward(tapes, lam), p

    def expectation_and_grad(self, params: np.ndarray, diag: np.ndarray) -> tuple[float, np.ndarray]:
        """L = Σ_σ diag(σ)|ψ(σ)|² and dL/dparams (the hypernetwork objective with cost vector ``diag``)."""
        diag = np.asarray(diag, dtype=np.float64)
        if diag.shape != (2**self.n_qubits,):
            raise ValueError(f"diag must have shape ({2**self.n_qubits},), got {diag.shape}")
        with self._busy():
            tapes, psi = self._forward(params, keep=True)
            lam = np.multiply(psi, diag, out=self._alloc(self._lam_index, psi.shape))
            return float(np.vdot(psi, lam).real), self._backward(tapes, lam)

    def expectation(self, params: np.ndarray, diag: np.ndarray) -> float:
        """L = Σ_σ diag(σ)|ψ(σ)|² without the gradient."""
        return float(np.dot(self.probabilities(params), diag))

    def parameter_shift_grad(self, params: np.ndarray, diag: np.ndarray) -> np.ndarray:
        """Reference gradient: [L(θ+π/2) − L(θ−π/2)]/2 per parameter (exact for Ry/Rz), 2·n_params forwards."""
        p0 = self._check(params)
        grad = np.empty(self.n_params)
        for k in range(self.n_params):
            plus, minus = p0.copy(), p0.copy()
            plus[k] += np.pi / 2
            minus[k] -= np.pi / 2
            grad[k] = 0.5 * (self.expectation(plus, diag) - self.expectation(minus, diag))
        return grad

    # ---- sampling and noise ------------------------------------------------------------------------------

    def sample(self, params: np.ndarray, shots: int, rng: np.random.Generator) -> np.ndarray:
        """``shots`` basis-state indices drawn from the exact Born distribution (inverse CDF, int64)."""
        cdf = np.cumsum(self.probabilities(params))
        idx = np.searchsorted(cdf, rng.random(int(shots)) * cdf[-1], side="right")
        return np.minimum(idx, cdf.size - 1).astype(np.int64)

    def sample_qsim(self, params: np.ndarray, shots: int, seed: int, *,
                    simulators: Simulators | None = None) -> np.ndarray:
        """``shots`` indices (big-endian, as the cost vectors) from a real qsimcirq measurement of the circuit."""
        import cirq

        qs = cirq.LineQubit.range(self.n_qubits)
        circuit = self.cirq_circuit(params) + cirq.Circuit(cirq.measure(*qs, key="m"))
        sim = (simulators or Simulators.from_env()).qsim(seed=int(seed))
        bits = sim.run(circuit, repetitions=int(shots)).measurements["m"].astype(np.int64)
        return bits @ (1 << np.arange(self.n_qubits - 1, -1, -1, dtype=np.int64))

    def noisy_trajectories(self, params: np.ndarray, noise: float, trajectories: int, seed: int,
                           observables: Sequence[np.ndarray], *, backend: str = "qsim",
                           simulators: Simulators | None = None) -> np.ndarray:
        """Σ_σ obs(σ)|ψ_traj(σ)|² per Monte-Carlo trajectory and observable, shape (trajectories, n_obs).

        The trajectory mean estimates Tr(ρ·obs) for the noisy density matrix ρ of ``cirq_circuit(params,
        noise=noise)``; with noise = 0 every row is the exact value. Reproducible from ``seed``.

        ``backend="qsim"``: qsimcirq. One ``simulate`` call on a circuit with channels runs ONE trajectory
        (each channel applies one of its unitaries, drawn with its probability) seeded from the simulator's
        own PRNG, so one simulator built from ``seed`` gives a reproducible sequence. States are complex64
        and come back normalised; they are renormalised in float64 anyway. The translation is memoised:
        by default qsimcirq re-translates the circuit on every call, ~150 ms at n = 18 for the ~330 channels
        (Cirq's mixture protocol per channel), 25× the ~6 ms trajectory itself.

        ``backend="numpy"``: the same noise model sampled here. Every depolarising channel is a Pauli
        mixture, so a trajectory is the noiseless circuit with Pauli gates inserted; Paulis after a CX or a
        1-qubit gate fold into the next/previous 1-qubit gates (a trajectory has the circuit's structure
        with general 2×2 gates), and the exact float64 engine runs it: ~2 ms per trajectory at n = 18.
        """
        obs = np.stack([np.asarray(o, dtype=np.float64) for o in observables])
        if obs.ndim != 2 or obs.shape[1] != 2**self.n_qubits:
            raise ValueError(f"observables must be vectors of length {2**self.n_qubits}")
        if backend not in ("qsim", "numpy"):
            raise ValueError(f"backend must be 'qsim' or 'numpy', got {backend!r}")
        out = np.empty((int(trajectories), len(obs)))
        if backend == "numpy":
            return self._pauli_trajectories(params, noise, np.random.default_rng(seed), obs, out)
        circuit = self.cirq_circuit(params, noise=noise)
        sim = (simulators or Simulators.from_env()).qsim(seed=int(seed), circuit_memoization_size=1)
        for t in range(len(out)):
            _, amps, _ = sim.simulate_into_1d_array(circuit)
            p, im = amps.real.astype(np.float64), amps.imag.astype(np.float64)
            p *= p
            im *= im
            p += im
            out[t] = obs @ p / p.sum()
        return out

    def _pauli_trajectories(self, params: np.ndarray, noise: float, rng: np.random.Generator, obs: np.ndarray,
                            out: np.ndarray) -> np.ndarray:
        d, n = self.depth, self.n_qubits
        theta, phi = self._angles(params)
        ry = _single_qubit(theta, np.zeros_like(phi))[0]
        rz = _single_qubit(np.zeros_like(theta), phi)[0]
        p1, p2 = P1_PER_NOISE * noise, P2_PER_NOISE * noise
        pairs = [(layer, c) for layer in range(d) for c, _ in _cx_pairs(n, layer)] if self.ansatz == "brickwork" else []
        pl, pc = (np.array([x for x, _ in pairs], dtype=int), np.array([y for _, y in pairs], dtype=int))
        p = np.empty(2**n)
        for t in range(len(out)):
            hit = rng.random((2, d, n)) < p1  # channels after Ry and after Rz
            one = np.where(hit, rng.integers(1, 4, (2, d, n)), 0)
            two = np.where(rng.random(len(pairs)) < p2, rng.integers(1, 16, len(pairs)), 0)
            cx = np.zeros((d, n), dtype=int)  # Pauli on each qubit right after its sub-layer's CX
            cx[pl, pc], cx[pl, pc + 1] = two // 4, two % 4
            u = _PAULI[one[1]] @ rz @ _PAULI[one[0]] @ ry @ _PAULI[cx]
            with self._busy():
                self._born(self._run(u, None, None, keep=False)[1], out=p)
            out[t] = obs @ p
        return out
