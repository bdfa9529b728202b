"""HHL (Harrow, Hassidim & Lloyd 2009) simulated for real on qsim for small Hermitian positive-definite A.

What the cost model of :mod:`.linalg` abstracts away, shown on N = 2…16: the post-selection succeeds with
probability ∝ (C/λ)² ~ 1/κ², and the solution is only as good as the clock register's eigenvalue grid.

Registers (Cirq ``LineQubit``, big-endian, as qsim): ancilla q0, clock q1…q_c, system q_{c+1}…q_{c+n},
n = log₂N. Circuit, from |0⟩_a|0…0⟩_clock|b⟩ (|b⟩ loaded as qsim's initial state vector: exact state
preparation, which a device would have to pay for):

1. QPE: H on the clock; clock qubit j (MSB first) controls U^{2^{c−1−j}}, U = e^{iAt} built with SciPy's
   ``expm`` as a ``cirq.MatrixGate`` (fine at ≤ 4 system qubits); inverse QFT. An eigenvalue λ lands on
   clock value m ≈ 2^c·λt/(2π).
2. Eigenvalue inversion: for every clock value m ≥ 1, RY(2·arcsin(min(1, C/λ̃_m))) on the ancilla,
   controlled by clock = m (a uniformly controlled rotation, 2^c − 1 multi-controlled gates);
   m = 0 (λ̃ = 0) is not rotated, so it is discarded by the post-selection.
3. Uncompute: QFT, the inverse controlled powers in reverse order, H on the clock.
4. Post-select ancilla = 1 and clock = 0: the system amplitudes are ≈ C·A⁻¹b.

Choices (ours; the paper leaves them open):

* **t = 2π(2^c − 1)/(2^c·λ_max)**: λ_max lands exactly on the top clock value 2^c − 1, so the whole
  positive spectrum uses the full grid (no negative eigenvalues to reserve half of it for) and nothing wraps
  around past 2^c. The grid is λ̃_m = m·λ_max/(2^c − 1); eigenvalues on it are resolved exactly.
* **C = λ_min** (i.e. 1/κ for λ_max = 1), the usual HHL choice C = O(1/κ) with κ assumed known: the
  largest constant with C/λ ≤ 1 on the whole spectrum, hence the largest success probability; leakage of
  QPE below λ_min is clipped at a full rotation.
* λ_max and λ_min come from ``eigvalsh`` (a device would use bounds, e.g. from the block encoding).
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from qmlapp.simulators import Simulators

if TYPE_CHECKING:
    import cirq

MAX_SYSTEM_QUBITS = 4  # controlled e^{iAt} is a (n+1)-qubit matrix gate; qsim takes ≤ 6-qubit matrices
MAX_CLOCK_QUBITS = 10


@dataclass
class HhlResult:
    """One HHL run: the post-selected solution against the classical one."""

    solution: np.ndarray  # normalised post-selected system state (complex)
    classical: np.ndarray  # normalised np.linalg.solve(A, b)
    raw: np.ndarray  # un-normalised post-selected amplitudes, ≈ C·A⁻¹b
    fidelity: float  # |⟨x_classical|x_HHL⟩|²
    success_probability: float  # P(ancilla = 1, clock = 0)
    qubits: dict[str, int]  # system, clock, ancilla, total
    t: float  # evolution time of U = e^{iAt}
    c_constant: float  # C of the rotation
    seconds: float  # qsim simulation time (circuit building excluded)
    circuit: cirq.Circuit = field(repr=False)

    def row(self) -> dict[str, Any]:
        """The JSON-able summary (no arrays, no circuit)."""
        return {"fidelity": self.fidelity, "success_probability": self.success_probability,
                "qubits": self.qubits["total"], "system_qubits": self.qubits["system"],
                "clock_qubits": self.qubits["clock"], "t": self.t, "c_constant": self.c_constant,
                "seconds": self.seconds}


def hessian_like_matrix(N: int, kappa: float, seed: int) -> np.ndarray:
    """Random real symmetric positive-definite N×N matrix with condition number κ: a random orthogonal
    eigenbasis (QR of a Gaussian matrix, signs fixed so it is Haar) and eigenvalues log-spaced in [1/κ, 1]
    (λ_max = 1). The basis depends only on ``seed``, so a κ sweep changes the spectrum alone."""
    if N < 1:
        raise ValueError("N must be ≥ 1")
    if kappa < 1:
        raise ValueError("kappa must be ≥ 1")
    rng = np.random.default_rng(seed)
    q, r = np.linalg.qr(rng.standard_normal((N, N)))
    q = q * np.sign(np.diag(r))
    evals = np.logspace(0.0, -math.log10(kappa), N) if N > 1 else np.ones(1)
    A = (q * evals) @ q.T
    return (A + A.T) / 2.0


def _validate(A: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray, int, np.ndarray]:
    A = np.asarray(A)
    b = np.asarray(b)
    N = A.shape[0]
    if A.shape != (N, N) or b.shape != (N,):
        raise ValueError(f"A must be N×N and b of length N, got {A.shape} and {b.shape}")
    n = round(math.log2(N)) if N >= 1 else -1
    if N < 2 or 2**n != N or n > MAX_SYSTEM_QUBITS:
        raise ValueError(f"N must be 2, 4, 8 or 16, got {N}")
    if not np.allclose(A, A.conj().T, atol=1e-10 * max(1.0, float(np.abs(A).max()))):
        raise ValueError("A must be Hermitian")
    evals = np.linalg.eigvalsh(A)
    if evals[0] <= 0:
        raise ValueError("A must be positive definite (this HHL inverts positive eigenvalues only)")
    norm = float(np.linalg.norm(b))
    if norm == 0:
        raise ValueError("b must be non-zero")
    return A, b / norm, n, evals


def hhl_circuit(A: np.ndarray, clock_qubits: int, t: float, c_constant: float) -> cirq.Circuit:
    """The HHL circuit without state preparation (|b⟩ is the simulator's initial state); see the module
    docstring for the register layout."""
    import cirq
    import scipy.linalg

    A = np.asarray(A)
    N = A.shape[0]
    n = round(math.log2(N))
    c = int(clock_qubits)
    anc = cirq.LineQubit(0)
    clock = cirq.LineQubit.range(1, c + 1)
    system = cirq.LineQubit.range(c + 1, c + 1 + n)

    def controlled_powers(sign: float) -> list[cirq.Operation]:
        ops = []
        for j, q in enumerate(clock):
            u = scipy.linalg.expm(sign * 1j * A * t * 2 ** (c - 1 - j))
            ops.append(cirq.MatrixGate(u, unitary_check=False).controlled().on(q, *system))
        return ops

    scale = 2 * math.pi / (2**c * t)  # clock value m ↦ λ̃_m = m·scale
    rotations = []
    for m in range(1, 2**c):
        ratio = min(1.0, c_constant / (m * scale))
        bits = tuple((m >> (c - 1 - j)) & 1 for j in range(c))
        rotations.append(cirq.ry(2.0 * math.asin(ratio)).controlled(num_controls=c, control_values=bits)
                         .on(*clock, anc))
    forward = controlled_powers(+1.0)
    return cirq.Circuit(
        cirq.H.on_each(*clock),
        forward,
        cirq.qft(*clock, inverse=True),
        rotations,
        cirq.qft(*clock),
        controlled_powers(-1.0)[::-1],
        cirq.H.on_each(*clock),
    )


def hhl_solve(A: np.ndarray, b: np.ndarray, clock_qubits: int, *, t: float | None = None,
              c_constant: float | None = None, simulators: Simulators | None = None) -> HhlResult:
    """Run HHL for A x = b on qsimcirq (state vector, complex64) and post-select ancilla = 1, clock = 0.

    ``t`` defaults to 2π(2^c − 1)/(2^c·λ_max) and ``c_constant`` to λ_min (module docstring). Fidelity is
    |⟨x|x̃⟩|² with x the normalised ``np.linalg.solve(A, b)``; it is 0 if the post-selection never succeeds.
    ``simulators`` builds the qsim simulator (None: the process default).
    """
    A, b, n, evals = _validate(A, b)
    c = int(clock_qubits)
    if not 1 <= c <= MAX_CLOCK_QUBITS:
        raise ValueError(f"clock_qubits must be in 1…{MAX_CLOCK_QUBITS}")
    N = 2**n
    lam_max, lam_min = float(evals[-1]), float(evals[0])
    if t is None:
        t = 2 * math.pi * (2**c - 1) / (2**c * lam_max)
    if c_constant is None:
        c_constant = lam_min
    circuit = hhl_circuit(A, c, t, c_constant)
    qubits: Sequence[cirq.Qid] = sorted(circuit.all_qubits())
    total = 1 + c + n
    if len(qubits) != total:  # an idle register (e.g. never controlled) would drop out of all_qubits
        import cirq

        qubits = cirq.LineQubit.range(total)
    initial = np.zeros(2**total, dtype=np.complex64)
    initial[:N] = b  # ancilla 0, clock 0, system |b⟩ (big-endian: system = least significant bits)
    sim = (simulators or Simulators.from_env()).qsim()
    t0 = time.perf_counter()
    psi = sim.simulate(circuit, qubit_order=qubits, initial_state=initial).final_state_vector
    seconds = time.perf_counter() - t0
    raw = np.asarray(psi, dtype=np.complex128).reshape(2, 2**c, N)[1, 0, :]
    p = float(np.vdot(raw, raw).real)
    x = np.linalg.solve(A, b)
    x = x / np.linalg.norm(x)
    solution = raw / math.sqrt(p) if p > 0 else np.zeros(N, dtype=complex)
    fidelity = float(abs(np.vdot(x, solution)) ** 2)
    return HhlResult(solution=solution, classical=x.astype(complex), raw=raw, fidelity=min(fidelity, 1.0),
                     success_probability=p, qubits={"system": n, "clock": c, "ancilla": 1, "total": total},
                     t=float(t), c_constant=float(c_constant), seconds=seconds, circuit=circuit)


def hhl_sweep(N: int, kappas: Iterable[float], clock_qubits_list: Sequence[int], seed: int, *,
              simulators: Simulators | None = None) -> list[dict[str, Any]]:
    """HHL on :func:`hessian_like_matrix` (N, κ, seed) for every κ and clock size, with one random unit |b⟩
    (from ``seed``) throughout. Rows: kappa, clock_qubits, fidelity, success_probability, qubits, plus N,
    system_qubits, t, c_constant and seconds (the qsim time of that run)."""
    b = np.random.default_rng([seed, 1]).standard_normal(N)
    rows = []
    for kappa in kappas:
        A = hessian_like_matrix(N, float(kappa), seed)
        for c in clock_qubits_list:
            res = hhl_solve(A, b, int(c), simulators=simulators)
            rows.append({"kappa": float(kappa), "N": int(N), **res.row()})
    return rows
