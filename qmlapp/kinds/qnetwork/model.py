"""The split model |ψ_L⟩ = B_L A_L ⋯ B₁ A₁ |ψ(x)⟩: one gate list, four simulators.

Conventions (shared with :mod:`.protocol` and :mod:`.train`):

* **Register.** n = ⌈log₂N⌉ qubits ``cirq.LineQubit.range(n)``; basis index big-endian (qubit 0 is the most
  significant bit), Cirq's and qsim's convention.
* **Encoding.** |ψ(x)⟩ = Σᵢ x̂ᵢ|i⟩ with x zero-padded to 2ⁿ and x̂ = x/‖x‖ (the norm is lost).
* **Rotations.** Every trainable gate is exp(−iφ G/2) with a Pauli string G (RY, RZ or Z⊗Z), so the
  two-term parameter-shift rule ∂ℒ/∂φ = [ℒ(φ+π/2) − ℒ(φ−π/2)]/2 is exact.
* **Parameters.** One vector of 2·L·P numbers laid out [A₁ (P), B₁ (P), A₂, B₂, …]; see
  :meth:`SplitModel.param_slices`, :meth:`SplitModel.alice_params`, :meth:`SplitModel.bob_params`.
* **Ansätze.** ``hardware_efficient``: rotations cycle RY on qubits 0..n−1, then RZ on qubits 0..n−1
  (a round of 2n), a CZ ladder CZ(j, j+1) after every completed round and once more at the end of the
  unitary if its last round is partial. ``zz_two_local``: rounds of RY on every qubit, then ZZ(φ) on the
  pairs (j, j+1) (2n−1 rotations); at n = 1 it is RY/RZ. Both truncated to P rotations per unitary.
* **Data re-uploading** (``data_layers``): each A_ℓ starts with D(x) = ⊗ⱼ RZ(c·zⱼ(x)), z = R x̂ with a fixed
  projection R ∈ ℝ^{n×2ⁿ} of i.i.d. N(0, 1) entries drawn from ``seed``. Because ‖x̂‖ = 1, every zⱼ is then
  N(0, 1) over the draw of R whatever N is, so c = ``data_scale`` is the angle scale in radians at every
  register size. The same R serves every layer and every split. Alice holds x, so D costs no
  communication; without it ℒ(x) = x̂ᵀ(U†OU)x̂ is a quadratic form at every depth.
* **Observable.** Z₀, Z₀Z₁ or the parity Z^{⊗n}; all diagonal, so Bob's ±1 outcome has P(+1) = (1+ℒ)/2.

The TFQ form (:meth:`SplitModel.symbolic_circuit`) starts from |0…0⟩, so it prepends the amplitude
encoding as a uniformly controlled RY tree: level k rotates qubit k by 2^k RY gates, each controlled on
qubits 0..k−1 with one control-value pattern. Inner angles come from the norms of the binary tree of
amplitudes; the last level uses atan2 of the signed amplitude pair, which carries the signs exactly
(2ⁿ − 1 data symbols). TFQ 0.7.6 serialises every gate used here (controlled RY with control values,
ZZPowGate with global shift −½, Rz, CZ) and its adjoint differentiator handles the controlled gates.

The exact NumPy engine (:meth:`SplitModel.final_states`, :meth:`SplitModel.expectations`,
:meth:`SplitModel.shifted_expectations`) runs the same gate list in float64 on a batch of states (one
row per input or per shifted parameter vector); qsimcirq runs the protocol itself (see :mod:`.protocol`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import cirq
import numpy as np
import sympy

ANSATZES = ("hardware_efficient", "zz_two_local")
OBSERVABLES = ("z0", "zz01", "parity")
OWNERS = ("alice", "bob")
# Seed stream of the data projection R (independent of other streams derived from the same seed).
PROJECTION_STREAM = 7
# The NumPy engine processes rows in chunks of at most this many amplitudes (64 MiB of complex128).
ENGINE_AMPLITUDES = 2**22


@dataclass(frozen=True)
class Gate:
    """One gate of a unitary. ``index`` is the parameter index (ry/rz/zz), the data-angle index (data:
    RZ(c·z_index) on ``qubits``), or −1 for the fixed CZ."""

    kind: str  # "ry" | "rz" | "zz" | "cz" | "data"
    qubits: tuple[int, ...]
    index: int = -1


@dataclass(frozen=True)
class Unitary:
    """A_ℓ (owner "alice") or B_ℓ (owner "bob") with its slice of the parameter vector."""

    owner: str
    layer: int  # ℓ, 1-based
    gates: tuple[Gate, ...]
    params: slice

    @property
    def name(self) -> str:
        return f"{'A' if self.owner == 'alice' else 'B'}{self.layer}"


def _bits(n: int) -> np.ndarray:
    """(2ⁿ, n) big-endian bits of every basis index (column q = qubit q)."""
    idx = np.arange(2**n, dtype=np.int64)
    return ((idx[:, None] >> np.arange(n - 1, -1, -1, dtype=np.int64)) & 1).astype(np.int8)


@dataclass(frozen=True)
class SplitModel:
    """Architecture of the two-party model (no parameter values: those are plain float arrays).

    ``observable_name`` is the spec's ``observable`` field (renamed so that :meth:`observable` can return
    the operator); ``seed`` draws the data projection R.
    """

    n_features: int
    layers: int
    params_per_unitary: int
    ansatz: str = "hardware_efficient"
    data_layers: bool = True
    data_scale: float = 3.0
    observable_name: str = "z0"
    seed: int = 0

    def __post_init__(self) -> None:
        if self.n_features < 1:
            raise ValueError(f"n_features must be ≥ 1, got {self.n_features}")
        if self.layers < 1 or self.params_per_unitary < 1:
            raise ValueError("layers and params_per_unitary must be ≥ 1")
        if self.ansatz not in ANSATZES:
            raise ValueError(f"ansatz must be one of {ANSATZES}, got {self.ansatz!r}")
        if self.observable_name not in OBSERVABLES:
            raise ValueError(f"observable must be one of {OBSERVABLES}, got {self.observable_name!r}")
        if self.observable_name != "z0" and self.n_qubits < 2:
            raise ValueError(f"observable {self.observable_name!r} needs at least 2 qubits")

    @classmethod
    def from_spec(cls, spec: Any) -> SplitModel:
        """The model of a :class:`~qmlapp.kinds.qnetwork.spec.QnetworkSpec` (projection seeded by spec.seed)."""
        return cls(n_features=int(spec.n_features), layers=int(spec.layers),
                   params_per_unitary=int(spec.params_per_unitary), ansatz=str(spec.ansatz),
                   data_layers=bool(spec.data_layers), data_scale=float(spec.data_scale),
                   observable_name=str(spec.observable), seed=int(spec.seed))

    # --- sizes and layout ---------------------------------------------------------------------------

    @property
    def n_qubits(self) -> int:
        return max(1, (self.n_features - 1).bit_length())

    @property
    def dim(self) -> int:
        return 2**self.n_qubits

    @property
    def n_params(self) -> int:
        return 2 * self.layers * self.params_per_unitary

    @property
    def n_unitaries(self) -> int:
        return 2 * self.layers

    @property
    def rounds(self) -> int:
        """R: transfers of the register per copy (Bob applies B_L and measures)."""
        return 2 * self.layers - 1

    @property
    def qubits(self) -> list[cirq.LineQubit]:
        return cirq.LineQubit.range(self.n_qubits)

    @cached_property
    def layout(self) -> tuple[Unitary, ...]:
        """A₁, B₁, A₂, B₂, …: the gate list every simulator runs."""
        out: list[Unitary] = []
        p = self.params_per_unitary
        for ell in range(1, self.layers + 1):
            for owner in OWNERS:
                start = len(out) * p
                data = owner == "alice" and self.data_layers
                out.append(Unitary(owner, ell, self._unitary_gates(start, data), slice(start, start + p)))
        return tuple(out)

    def _unitary_gates(self, first: int, data: bool) -> tuple[Gate, ...]:
        n, p = self.n_qubits, self.params_per_unitary
        gates = [Gate("data", (j,), j) for j in range(n)] if data else []
        ladder = [Gate("cz", (j, j + 1)) for j in range(n - 1)]
        if self.ansatz == "hardware_efficient" or n == 1:
            round_len = 2 * n
            for k in range(p):
                pos = k % round_len
                gates.append(Gate("ry" if pos < n else "rz", (pos % n,), first + k))
                if pos == round_len - 1:
                    gates.extend(ladder)
            if p % round_len:
                gates.extend(ladder)
        else:  # zz_two_local
            round_len = 2 * n - 1
            for k in range(p):
                pos = k % round_len
                if pos < n:
                    gates.append(Gate("ry", (pos,), first + k))
                else:
                    j = pos - n
                    gates.append(Gate("zz", (j, j + 1), first + k))
        return tuple(gates)

    def param_slices(self) -> list[tuple[str, str, slice]]:
        """(name, owner, slice) of every unitary, in circuit order: ("A1", "alice", slice(0, P)), …"""
        return [(u.name, u.owner, u.params) for u in self.layout]

    def owner_mask(self, owner: str) -> np.ndarray:
        """Boolean mask over the parameter vector: the entries ``owner`` holds."""
        mask = np.zeros(self.n_params, dtype=bool)
        for u in self.layout:
            if u.owner == owner:
                mask[u.params] = True
        return mask

    def alice_params(self, params: np.ndarray) -> np.ndarray:
        """Alice's parameters [A₁, A₂, …] (L·P numbers)."""
        return np.asarray(params)[..., self.owner_mask("alice")]

    def bob_params(self, params: np.ndarray) -> np.ndarray:
        """Bob's parameters [B₁, B₂, …] (L·P numbers)."""
        return np.asarray(params)[..., self.owner_mask("bob")]

    def init_params(self, rng: np.random.Generator) -> np.ndarray:
        """U[0, 2π) for every rotation (float64)."""
        return rng.uniform(0.0, 2 * math.pi, self.n_params)

    def _check_params(self, params: np.ndarray) -> np.ndarray:
        params = np.asarray(params, dtype=np.float64)
        if params.shape[-1] != self.n_params:
            raise ValueError(f"expected {self.n_params} parameters, got {params.shape[-1]}")
        return params

    # --- data ---------------------------------------------------------------------------------------

    @cached_property
    def _projection(self) -> np.ndarray:
        rng = np.random.default_rng([self.seed, PROJECTION_STREAM])
        r = rng.standard_normal((self.n_qubits, self.dim))
        r.setflags(write=False)
        return r

    def projection(self) -> np.ndarray:
        """R (n × 2ⁿ, read-only, cached): zⱼ = (R x̂)ⱼ ~ N(0, 1) for any unit x̂ over the draw of R."""
        return self._projection

    def amplitude_encode(self, x: np.ndarray) -> np.ndarray:
        """x̂ = x/‖x‖ zero-padded to 2ⁿ (float64), for one vector or a batch of rows; a zero row is refused."""
        x = np.asarray(x, dtype=np.float64)
        if x.shape[-1] > self.dim:
            raise ValueError(f"input has {x.shape[-1]} features, more than 2^{self.n_qubits} = {self.dim}")
        pad = [(0, 0)] * (x.ndim - 1) + [(0, self.dim - x.shape[-1])]
        x = np.pad(x, pad)
        norm = np.linalg.norm(x, axis=-1, keepdims=True)
        if np.any(norm == 0) or not np.all(np.isfinite(norm)):
            raise ValueError("amplitude encoding needs non-zero, finite inputs (‖x‖ > 0)")
        return x / norm

    def data_angles(self, x_hat: np.ndarray) -> np.ndarray:
        """c·R x̂ per row, shape (…, n): the RZ angles of the data layers D(x) (empty without data layers)."""
        x_hat = np.asarray(x_hat, dtype=np.float64)
        if not self.data_layers:
            return np.zeros((*x_hat.shape[:-1], 0))
        return self.data_scale * (x_hat @ self._projection.T)

    def encoding_angles(self, x_hat: np.ndarray) -> np.ndarray:
        """RY angles of the state-preparation tree, (M, 2ⁿ − 1): level k (qubit k), pattern b = the values
        of qubits 0..k−1 read big-endian. Inner levels: 2·atan2(‖right subtree‖, ‖left subtree‖); last
        level: 2·atan2(a_{b1}, a_{b0}) on the signed amplitudes, so RY(θ)|0⟩ = (a_{b0}|0⟩ + a_{b1}|1⟩)/r."""
        a = np.atleast_2d(np.asarray(x_hat, dtype=np.float64))
        m, n = a.shape[0], self.n_qubits
        sq = a * a
        level_sq = [sq]  # level_sq[j]: squared norms of the 2^(n−j) blocks of size 2^j
        for _ in range(n - 1):
            level_sq.append(level_sq[-1].reshape(m, -1, 2).sum(axis=-1))
        parts = []
        for k in range(n):
            if k == n - 1:
                child = a.reshape(m, 2**k, 2)
            else:
                child = np.sqrt(level_sq[n - 1 - k].reshape(m, 2**k, 2))
            parts.append(2.0 * np.arctan2(child[..., 1], child[..., 0]))
        return np.concatenate(parts, axis=1)

    def data_symbol_values(self, x: np.ndarray) -> np.ndarray:
        """Values of :meth:`symbolic_circuit`'s data symbols for raw inputs (M, ≤2ⁿ): the 2ⁿ − 1 tree angles
        then the n data-layer angles (float64; cast to float32 for TFQ)."""
        x_hat = self.amplitude_encode(np.atleast_2d(x))
        return np.concatenate([self.encoding_angles(x_hat), self.data_angles(x_hat)], axis=1)

    # --- Cirq forms ---------------------------------------------------------------------------------

    def _op(self, gate: Gate, angle: Any) -> cirq.Operation:
        q = [cirq.LineQubit(i) for i in gate.qubits]
        if gate.kind == "ry":
            return cirq.ry(angle).on(q[0])
        if gate.kind in ("rz", "data"):
            return cirq.rz(angle).on(q[0])
        if gate.kind == "zz":  # exp(−iφ Z⊗Z/2)
            return cirq.ZZPowGate(exponent=angle / math.pi, global_shift=-0.5).on(q[0], q[1])
        if gate.kind == "cz":
            return cirq.CZ(q[0], q[1])
        raise ValueError(f"unknown gate kind {gate.kind!r}")

    def _unitary_ops(self, u: Unitary, params: Any, data: Any) -> list[cirq.Operation]:
        ops = []
        for g in u.gates:
            if g.kind == "cz":
                ops.append(self._op(g, None))
            elif g.kind == "data":
                ops.append(self._op(g, data[g.index]))
            else:
                ops.append(self._op(g, params[g.index]))
        return ops

    def unitaries(self, params: np.ndarray, x_hat: np.ndarray) -> list[tuple[str, cirq.Circuit]]:
        """(owner, resolved circuit) for A₁, B₁, …, B_L on ``self.qubits`` (x̂ feeds the data layers)."""
        params = self._check_params(params)
        data = self.data_angles(np.asarray(x_hat, dtype=np.float64))
        values = [float(v) for v in params]
        return [(u.owner, cirq.Circuit(self._unitary_ops(u, values, data))) for u in self.layout]

    def unitary_circuit(self, index: int, params: np.ndarray, x_hat: np.ndarray) -> cirq.Circuit:
        """The resolved circuit of unitary ``index`` alone (0 = A₁, 1 = B₁, …)."""
        params = self._check_params(params)
        data = self.data_angles(np.asarray(x_hat, dtype=np.float64))
        return cirq.Circuit(self._unitary_ops(self.layout[index], [float(v) for v in params], data))

    def circuit(self, params: np.ndarray, x_hat: np.ndarray) -> cirq.Circuit:
        """B_L A_L ⋯ B₁ A₁ as one resolved circuit (the single-party simulation); starts from |ψ(x)⟩."""
        out = cirq.Circuit()
        for _, c in self.unitaries(params, x_hat):
            out += c
        return out

    def observable(self) -> cirq.PauliSum:
        q = self.qubits
        string: cirq.PauliString[cirq.LineQubit]
        if self.observable_name == "z0":
            string = cirq.PauliString({q[0]: cirq.Z})
        elif self.observable_name == "zz01":
            string = cirq.PauliString({q[0]: cirq.Z, q[1]: cirq.Z})
        else:
            string = cirq.PauliString(dict.fromkeys(q, cirq.Z))
        return cirq.PauliSum.wrap(string)

    @cached_property
    def _diagonal(self) -> np.ndarray:
        signs = 1 - 2 * _bits(self.n_qubits).astype(np.float64)
        cols = {"z0": [0], "zz01": [0, 1], "parity": list(range(self.n_qubits))}[self.observable_name]
        diag = np.prod(signs[:, cols], axis=1)
        diag.setflags(write=False)
        return diag

    def observable_diagonal(self) -> np.ndarray:
        """O's eigenvalue (±1) on every basis state, (2ⁿ,) float64 (read-only)."""
        return self._diagonal

    def symbolic_circuit(self) -> tuple[cirq.Circuit, list[sympy.Symbol], list[sympy.Symbol]]:
        """(circuit from |0…0⟩, data symbols, model symbols) for TFQ: the amplitude-encoding tree
        (symbols ``enc_k_b``), then the model with data-layer symbols ``z_j`` (shared by every A_ℓ) and
        model symbols ``a{ℓ}_{k}``/``b{ℓ}_{k}`` in parameter-vector order. Feed
        :meth:`data_symbol_values` for the data symbols."""
        encoding, enc = self.encoding_circuit()
        zsym = [sympy.Symbol(f"z_{j}") for j in range(self.n_qubits)] if self.data_layers else []
        model = [sympy.Symbol(f"{u.name.lower()}_{k}") for u in self.layout for k in range(self.params_per_unitary)]
        ops = list(encoding.all_operations())
        for u in self.layout:
            ops.extend(self._unitary_ops(u, model, zsym))
        return cirq.Circuit(ops), enc + zsym, model

    def encoding_circuit(self) -> tuple[cirq.Circuit, list[sympy.Symbol]]:
        """The amplitude-encoding tree alone: |0…0⟩ → |ψ(x)⟩ for the first 2ⁿ − 1 columns of
        :meth:`data_symbol_values` (symbols ``enc_k_b``: level k, control pattern b read big-endian)."""
        n, q = self.n_qubits, self.qubits
        enc = [sympy.Symbol(f"enc_{k}_{b}") for k in range(n) for b in range(2**k)]
        ops: list[cirq.Operation] = []
        for k in range(n):
            for b in range(2**k):
                gate = cirq.ry(enc[2**k - 1 + b]).on(q[k])
                if k:
                    values = [(b >> (k - 1 - j)) & 1 for j in range(k)]
                    gate = gate.controlled_by(*q[:k], control_values=values)
                ops.append(gate)
        return cirq.Circuit(ops), enc

    def resolver(self, data_values: np.ndarray, params: np.ndarray) -> cirq.ParamResolver:
        """Resolver of :meth:`symbolic_circuit` for one row of data-symbol values and a parameter vector."""
        _, data_symbols, model_symbols = self.symbolic_circuit()
        values = dict(zip([s.name for s in data_symbols], map(float, data_values), strict=True))
        values.update(zip([s.name for s in model_symbols], map(float, self._check_params(params)), strict=True))
        return cirq.ParamResolver(values)

    # --- exact NumPy engine -------------------------------------------------------------------------

    def _chunk_rows(self) -> int:
        return max(1, ENGINE_AMPLITUDES // self.dim)

    def _run(self, states: np.ndarray, params: np.ndarray, data: np.ndarray, start: int = 0,
             stop: int | None = None) -> np.ndarray:
        """Apply unitaries ``start:stop`` in place to rows of ``states`` (B, 2ⁿ) complex128. ``params`` is
        one vector (shared) or (B, n_params) (per row); ``data`` is (B, n) data-layer angles."""
        per_row = params.ndim == 2
        for u in self.layout[start:stop]:
            for g in u.gates:
                if g.kind == "cz":
                    _cz(states, self.n_qubits, g.qubits[0])
                    continue
                angle = data[:, g.index] if g.kind == "data" else (params[:, g.index] if per_row else
                                                                   float(params[g.index]))
                if g.kind == "ry":
                    _ry(states, self.n_qubits, g.qubits[0], angle)
                elif g.kind == "zz":
                    _zz(states, self.n_qubits, g.qubits[0], angle)
                else:
                    _rz(states, self.n_qubits, g.qubits[0], angle)
        return states

    def final_states(self, params: np.ndarray, x: np.ndarray) -> np.ndarray:
        """|ψ_L(x)⟩ for rows of raw inputs (M, ≤2ⁿ), exact (complex128, M × 2ⁿ)."""
        params = self._check_params(params)
        x_hat = self.amplitude_encode(np.atleast_2d(x))
        data = self.data_angles(x_hat)
        return self._run(x_hat.astype(np.complex128), params, data)

    def _expect(self, states: np.ndarray) -> np.ndarray:
        probs = states.real**2 + states.imag**2
        return probs @ self._diagonal

    def expectations(self, params: np.ndarray, x: np.ndarray) -> np.ndarray:
        """ℒ(x) = ⟨ψ_L|O|ψ_L⟩ for rows of raw inputs, exact (float64, shape (M,)); chunked over rows."""
        params = self._check_params(params)
        x_hat = self.amplitude_encode(np.atleast_2d(x))
        data = self.data_angles(x_hat)
        out = np.empty(len(x_hat))
        step = self._chunk_rows()
        for s in range(0, len(x_hat), step):
            states = self._run(x_hat[s:s + step].astype(np.complex128), params, data[s:s + step])
            out[s:s + step] = self._expect(states)
        return out

    def shifted_expectations(self, params: np.ndarray, x: np.ndarray) -> np.ndarray:
        """Exact ℒ with each parameter shifted by ±π/2, shape (n_params, 2) = [ℒ(φ_k + π/2), ℒ(φ_k − π/2)].

        Why batched: the shifted circuits share the prefix before the shifted unitary, so the prefix state
        is computed once per unitary and the 2P shifted rows then run the rest of the circuit together."""
        params = self._check_params(params)
        x_hat = self.amplitude_encode(np.asarray(x)[None, :])
        data = self.data_angles(x_hat)
        state = x_hat.astype(np.complex128)
        out = np.empty((self.n_params, 2))
        chunk = max(1, self._chunk_rows() // 2)
        for ui, u in enumerate(self.layout):
            indices = np.arange(u.params.start, u.params.stop)
            for s in range(0, len(indices), chunk):
                ks = indices[s:s + chunk]
                rows = 2 * len(ks)
                shifted = np.tile(params, (rows, 1))
                shifted[2 * np.arange(len(ks)), ks] += math.pi / 2
                shifted[2 * np.arange(len(ks)) + 1, ks] -= math.pi / 2
                states = np.repeat(state, rows, axis=0)
                self._run(states, shifted, np.broadcast_to(data, (rows, data.shape[1])), start=ui)
                vals = self._expect(states)
                out[ks, 0], out[ks, 1] = vals[0::2], vals[1::2]
            self._run(state, params, data, start=ui, stop=ui + 1)
        return out


# --- in-place gate kernels (states: (B, 2ⁿ) C-contiguous complex128; angle: float or (B,)) -----------


def _col(angle: float | np.ndarray) -> Any:
    return angle[:, None, None] if isinstance(angle, np.ndarray) else angle


def _ry(states: np.ndarray, n: int, q: int, angle: float | np.ndarray) -> None:
    v = states.reshape(states.shape[0], 2**q, 2, 2 ** (n - q - 1))
    c, s = _col(np.cos(np.multiply(angle, 0.5))), _col(np.sin(np.multiply(angle, 0.5)))
    a0 = v[:, :, 0, :].copy()
    a1 = v[:, :, 1, :]
    v[:, :, 0, :] *= c
    v[:, :, 0, :] -= s * a1
    a1 *= c
    a1 += s * a0


def _rz(states: np.ndarray, n: int, q: int, angle: float | np.ndarray) -> None:
    v = states.reshape(states.shape[0], 2**q, 2, 2 ** (n - q - 1))
    phase = np.exp(-0.5j * np.asarray(angle))
    v[:, :, 0, :] *= _col(phase) if phase.ndim else complex(phase)
    v[:, :, 1, :] *= _col(phase.conj()) if phase.ndim else complex(phase.conj())


def _zz(states: np.ndarray, n: int, q: int, angle: float | np.ndarray) -> None:
    v = states.reshape(states.shape[0], 2**q, 2, 2, 2 ** (n - q - 2))
    phase = np.exp(-0.5j * np.asarray(angle))
    same = _col(phase) if phase.ndim else complex(phase)
    diff = _col(phase.conj()) if phase.ndim else complex(phase.conj())
    v[:, :, 0, 0, :] *= same
    v[:, :, 1, 1, :] *= same
    v[:, :, 0, 1, :] *= diff
    v[:, :, 1, 0, :] *= diff


def _cz(states: np.ndarray, n: int, q: int) -> None:
    v = states.reshape(states.shape[0], 2**q, 2, 2, 2 ** (n - q - 2))
    v[:, :, 1, 1, :] *= -1
