"""HHL on a tiny Carleman history system, simulated on qsim ("simulated") and emulated exactly ("emulated").

The history matrix 𝓛 (:func:`.carleman.history_matrix`) is not Hermitian, so it is embedded in its Hermitian
dilation D = [[0, 𝓛], [𝓛ᵀ, 0]] (eigenvalues ±σᵢ(𝓛), κ(D) = κ(𝓛)), padded to a power of two with an
identity block of value √(σ_min·σ_max) (κ unchanged). 𝓛x = r becomes D z = b' with b' = (r, 0) and
z = (0, x).

Two ways to cope with the signed spectrum ±σ (``method``):

* ``"signed"`` (default): textbook HHL on D with a **two's-complement clock**: clock value m < 2^{c−1} reads
  λ̃ = m·Δ, m ≥ 2^{c−1} reads λ̃ = (m − 2^c)·Δ, Δ = 2π/(2^c·t). t = 2π(2^{c−1} − 1)/(2^c·σ_max) puts +σ_max
  on m = 2^{c−1} − 1 and −σ_max on m = 2^{c−1} + 1 (no wrap-around). The ancilla rotation is
  RY(2·arcsin(C/λ̃)) with the sign of λ̃ (so the negative half of the spectrum is inverted with its sign),
  C = σ_min. Half of the clock grid is spent on the sign.
* ``"squared"``: HHL for positive-definite matrices (:func:`qmlapp.kinds.qnewton.hhl.hhl_solve`) on D² (eigenvalues
  σ², κ(D²) = κ(𝓛)²) applied to D·b', since D⁻²·D·b' = D⁻¹b'. Because D² = diag(𝓛𝓛ᵀ, 𝓛ᵀ𝓛) and D·b' = (0, 𝓛ᵀr)
  this is HHL on the normal equations 𝓛ᵀ𝓛x = 𝓛ᵀr; the price is the squared condition number.

Register layout, QPE and uncompute are as in :mod:`qmlapp.kinds.qnewton.hhl` (ancilla q0, clock q1…q_c MSB first,
system after; |b'⟩ is loaded as qsim's initial state: exact state preparation). Post-selection: ancilla = 1,
clock = 0.

Emulation: for eigenpair (λ_j, u_j) the QPE puts weight |α_{m|j}|² (the Fejér kernel of φ_j − m/2^c,
φ_j = λ_j t/2π) on clock value m; after rotation and uncompute the post-selected amplitude is
Σ_j ⟨u_j|b'⟩ u_j Σ_m |α_{m|j}|²·r_m, r_m = clip(C/λ̃_m, −1, 1). That is exactly what the circuit computes,
so simulated and emulated agree to single precision; the emulation scales to large clocks.
"""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np
import scipy.sparse as sp

from qmlapp.kinds.sparse_qgd.carleman import (
    carleman_matrix,
    carleman_vector,
    dilate,
    euler_map,
    history_matrix,
    history_rhs,
    pad_pow2,
    singular_range,
    toy_problem,
)
from qmlapp.simulators import Simulators

MAX_SYSTEM_QUBITS = 4  # controlled e^{iDt} is an (n+1)-qubit MatrixGate; keep D at ≤ 16×16
MAX_TOTAL_QUBITS = 16


def tiny_history_system(n: int = 1, order: int = 2, T: int = 2, idle: int = 0, h: float = 0.3,
                        beta: float = 0.5, grad_scale: float = 0.05, u0_norm: float = 0.3,
                        eig_range: tuple[float, float] = (0.5, 2.0), seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(𝓛, rhs) of a small toy GD problem (:func:`.carleman.toy_problem`), dense. Defaults give 6×6 (D: 12, padded
    16)."""
    ode = toy_problem(n, eig_range, beta, seed, grad_scale=grad_scale)
    rng = np.random.default_rng([seed, 7])
    u0 = rng.standard_normal(n)
    u0 = u0_norm * u0 / np.linalg.norm(u0)
    A, b = carleman_matrix(ode, order)
    L = history_matrix(euler_map(A, h), T, idle)
    rhs = history_rhs(carleman_vector(u0, order), h * b, T, idle)
    return L.toarray(), rhs


def _embed(L: Any, rhs: np.ndarray) -> dict[str, Any]:
    L = L.toarray() if sp.issparse(L) else np.asarray(L, dtype=float)
    rhs = np.asarray(rhs, dtype=float).ravel()
    d = L.shape[0]
    if L.shape != (d, d) or rhs.shape != (d,):
        raise ValueError(f"L must be square and rhs match it, got {L.shape} and {rhs.shape}")
    smin, smax = singular_range(L)
    if smin <= 0:
        raise ValueError("L is singular")
    D = pad_pow2(dilate(L), math.sqrt(smin * smax))
    N = D.shape[0]
    b = np.zeros(N)
    b[:d] = rhs
    x = np.linalg.solve(L, rhs)
    z = np.zeros(N)
    z[d:2 * d] = x
    return {"L": L, "D": D, "b": b, "z": z, "x": x, "d": d, "N": N, "sigma_min": smin, "sigma_max": smax}


def _clock_values(c: int, t: float, signed: bool) -> np.ndarray:
    m = np.arange(2**c)
    if signed:
        m = np.where(m < 2 ** (c - 1), m, m - 2**c)
    return m * (2 * math.pi / (2**c * t))


def _ratios(lam_tilde: np.ndarray, c_constant: float) -> np.ndarray:
    r = np.zeros_like(lam_tilde)
    nz = lam_tilde != 0
    r[nz] = np.clip(c_constant / lam_tilde[nz], -1.0, 1.0)
    return r


def signed_hhl_circuit(D: np.ndarray, clock_qubits: int, t: float, c_constant: float) -> Any:
    """HHL circuit for Hermitian D with a two's-complement clock (module docstring)."""
    import cirq
    import scipy.linalg

    N = D.shape[0]
    n = round(math.log2(N))
    c = int(clock_qubits)
    anc = cirq.LineQubit(0)
    clock = cirq.LineQubit.range(1, c + 1)
    system = cirq.LineQubit.range(c + 1, c + 1 + n)

    def controlled_powers(sign: float) -> list[Any]:
        return [cirq.MatrixGate(scipy.linalg.expm(sign * 1j * D * t * 2 ** (c - 1 - j)), unitary_check=False)
                .controlled().on(q, *system) for j, q in enumerate(clock)]

    ratios = _ratios(_clock_values(c, t, signed=True), c_constant)
    rotations = []
    for m in range(1, 2**c):
        bits = tuple((m >> (c - 1 - j)) & 1 for j in range(c))
        rotations.append(cirq.ry(2.0 * math.asin(float(ratios[m]))).controlled(num_controls=c, control_values=bits)
                         .on(*clock, anc))
    return cirq.Circuit(
        cirq.H.on_each(*clock),
        controlled_powers(+1.0),
        cirq.qft(*clock, inverse=True),
        rotations,
        cirq.qft(*clock),
        controlled_powers(-1.0)[::-1],
        cirq.H.on_each(*clock),
    )


def emulate_hhl(A: np.ndarray, b: np.ndarray, clock_qubits: int, t: float, c_constant: float,
                signed: bool) -> np.ndarray:
    """Exact post-selected (ancilla 1, clock 0) amplitudes of HHL in the eigenbasis of Hermitian A (unnormalised
    b is normalised first)."""
    b = np.asarray(b, dtype=float) / np.linalg.norm(b)
    lam, U = np.linalg.eigh(A)
    c = int(clock_qubits)
    K = 2**c
    r = _ratios(_clock_values(c, t, signed), c_constant)
    phi = lam * t / (2 * math.pi)
    k = np.arange(K)
    # α_{m|j} = (1/K) Σ_k exp(2πi k (φ_j − m/K))
    alpha = np.exp(2j * math.pi * np.outer(phi, k)) @ np.exp(-2j * math.pi * np.outer(k, k) / K) / K
    gain = (np.abs(alpha) ** 2) @ r  # per eigenpair
    return U @ (gain * (U.T @ b))


def _fidelity(x: np.ndarray, y: np.ndarray) -> float:
    nx, ny = np.linalg.norm(x), np.linalg.norm(y)
    if nx == 0 or ny == 0:
        return 0.0
    return float(min(1.0, abs(np.vdot(x / nx, y / ny)) ** 2))


def solve_history_hhl(L: Any, rhs: np.ndarray, clock_qubits: int = 6, method: str = "signed",
                      simulators: Simulators | None = None) -> dict[str, Any]:
    """Solve 𝓛x = rhs with HHL on qsim (label "simulated") and by the exact eigenbasis emulation ("emulated").

    Keys: label, method, fidelity (|⟨z|z̃⟩|² of the normalised dilated solution against ``np.linalg.solve``),
    success_probability, fidelity_x_part (fidelity of the x-block of z̃ alone: leakage into the first block
    removed), qubits {system, clock, ancilla, total}, dim_L, dim_hhl (padded), kappa_L, kappa_hhl (κ of the
    matrix HHL inverts: κ(𝓛) for "signed", κ(𝓛)² for "squared"), t, c_constant, seconds, solution / classical
    (real parts of the normalised x-part, lists), emulated {label, fidelity, success_probability},
    sim_vs_emulated (fidelity of the two post-selected states). ``simulators`` builds the qsim simulator
    (None: the process default).
    """
    import cirq

    if method not in ("signed", "squared"):
        raise ValueError("method must be 'signed' or 'squared'")
    e = _embed(L, rhs)
    D, b, z, d, N = e["D"], e["b"], e["z"], e["d"], e["N"]
    n_sys = round(math.log2(N))
    c = int(clock_qubits)
    if n_sys > MAX_SYSTEM_QUBITS:
        raise ValueError(f"dilated, padded system is {N}-dimensional; at most {2**MAX_SYSTEM_QUBITS} supported")
    if c < 2 or 1 + c + n_sys > MAX_TOTAL_QUBITS:
        raise ValueError(f"clock_qubits must be ≥ 2 with ≤ {MAX_TOTAL_QUBITS} qubits in total")
    kappa_L = e["sigma_max"] / e["sigma_min"]
    bn = b / np.linalg.norm(b)
    if method == "signed":
        A, b_in, signed = D, bn, True
        t = 2 * math.pi * (2 ** (c - 1) - 1) / (2**c * e["sigma_max"])
        c_const = e["sigma_min"]
        kappa_hhl = kappa_L
    else:
        A = D @ D
        b_in = D @ bn
        b_in = b_in / np.linalg.norm(b_in)
        signed = False
        t = 2 * math.pi * (2**c - 1) / (2**c * e["sigma_max"] ** 2)
        c_const = e["sigma_min"] ** 2
        kappa_hhl = kappa_L**2
    total = 1 + c + n_sys
    if method == "signed":
        circuit = signed_hhl_circuit(A, c, t, c_const)
    else:
        from qmlapp.kinds.qnewton.hhl import hhl_circuit

        circuit = hhl_circuit(A, c, t, c_const)
    initial = np.zeros(2**total, dtype=np.complex64)
    initial[:N] = b_in
    sim = (simulators or Simulators.from_env()).qsim()
    t0 = time.perf_counter()
    psi = sim.simulate(circuit, qubit_order=cirq.LineQubit.range(total), initial_state=initial).final_state_vector
    seconds = time.perf_counter() - t0
    raw = np.asarray(psi, dtype=np.complex128).reshape(2, 2**c, N)[1, 0, :]
    p_sim = float(np.vdot(raw, raw).real)
    emu = emulate_hhl(A, b_in, c, t, c_const, signed)
    p_emu = float(np.vdot(emu, emu).real)
    xpart = raw[d:2 * d]
    sol = xpart / np.linalg.norm(xpart) if np.linalg.norm(xpart) > 0 else xpart
    xc = e["x"] / np.linalg.norm(e["x"])
    return {
        "label": "simulated", "method": method,
        "fidelity": _fidelity(z, raw), "success_probability": p_sim,
        "fidelity_x_part": _fidelity(e["x"], xpart),
        "qubits": {"system": n_sys, "clock": c, "ancilla": 1, "total": total},
        "dim_L": int(d), "dim_hhl": int(N), "kappa_L": float(kappa_L), "kappa_hhl": float(kappa_hhl),
        "t": float(t), "c_constant": float(c_const), "seconds": float(seconds),
        "solution": np.real(sol * np.exp(-1j * np.angle(np.vdot(xc, sol)))).tolist(),
        "classical": xc.tolist(),
        "emulated": {"label": "emulated", "fidelity": _fidelity(z, emu), "success_probability": p_emu},
        "sim_vs_emulated": _fidelity(emu, raw),
    }
