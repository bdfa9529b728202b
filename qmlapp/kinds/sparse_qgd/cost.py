"""Cost model of one quantum window of sparse GD (upload → T Carleman/Euler steps by a QLSA → download) against
the same T steps done classically. Every output is **estimated** (a formula, not a measurement); every constant is
a keyword argument with a documented default.

Per window (module constants are the defaults):

* qubits: parameter register ⌈log₂n⌉ (informational: it is the first block of the Carleman register), Carleman
  register ⌈log₂D_c⌉ (D_c = Σ_{k≤N_c} nᵏ), time register ⌈log₂(T+P+1)⌉, 1 dilation qubit, clock
  ⌈log₂(κ/ε)⌉ unless given, 1 rotation ancilla. Total = Carleman + time + dilation + clock + ancilla.
* queries ≈ c_Q·κ^p·s_row·log(1/ε), p = 2 (textbook HHL) or 1 (optimal-κ solvers), times the amplitude-amplification
  factor ‖Y‖/‖y_final‖ ≈ √((T+P+1)/(P+1)) (equal block norms assumed, P = T idle copies by default).
* upload: c_up·s·log₂n gates (sparse state preparation, no QRAM).
* download: c_sh·s·log₂s/δ_d² shots of amplitude tomography, plus c_norm/δ_d² shots for the norm ‖θ‖ that the
  normalised state drops. Every shot re-runs the circuit.
* quantum time = (queries + upload)·t_gate·(1 + shots): one circuit execution = (queries + upload) gate times
  (t_gate is the time per logical gate / query step, the spec's ``gate_time_s``).
* classical time = T·c_flops·n_classical·batch / flops_per_second (one SGD step ≈ 6 FLOPs per parameter per
  sample: forward 2, backward 4); n_classical defaults to n (dense kernels; pass s for an ideal sparse kernel).
* speedup = classical / quantum, favourable = speedup > 1.
"""

from __future__ import annotations

import math
from typing import Any

C_QUERY = 1.0  # c_Q: queries per κ^p·s_row·log(1/ε)
C_UPLOAD = 1.0  # gates per non-zero per log₂ n
C_SHOTS = 1.0  # shots per s·log₂ s/δ_d²
C_NORM = 1.0  # shots per 1/δ_d² for the norm
C_FLOPS = 6.0  # FLOPs per parameter per sample for one SGD step (forward + backward)
FLOPS_PER_SECOND = 1e12  # sustained classical throughput (one accelerator at ~10 % of peak)
BATCH = 128


def _log2c(x: float) -> int:
    return max(0, math.ceil(math.log2(x))) if x > 1 else 0


def carleman_dim(n: float, order: int) -> float:
    """D_c = Σ_{k≤N_c} nᵏ as a float (n may be ~1e12)."""
    return float(sum(float(n) ** k for k in range(1, int(order) + 1)))


def qubit_counts(n: float, order: int, T: int, idle: int | None = None, kappa: float = 1.0, epsilon: float = 1e-3,
                 clock_qubits: int | None = None) -> dict[str, int]:
    """Keys: parameter, carleman, time, dilation, clock, ancilla, total (parameter is part of carleman)."""
    P = int(T) if idle is None else int(idle)
    carleman = _log2c(carleman_dim(n, order))
    clock = _log2c(kappa / epsilon) if clock_qubits is None else int(clock_qubits)
    time_reg = _log2c(T + P + 1)
    out = {"parameter": _log2c(n), "carleman": carleman, "time": time_reg, "dilation": 1, "clock": clock,
           "ancilla": 1}
    out["total"] = carleman + time_reg + 1 + clock + 1
    return out


def qlsa_queries(kappa: float, s_row: float, epsilon: float, qlsa: str = "optimal", c_query: float = C_QUERY) -> float:
    """c_Q·κ^p·s_row·log(1/ε), p = 2 for "hhl", 1 for "optimal"."""
    if qlsa not in ("hhl", "optimal"):
        raise ValueError("qlsa must be 'hhl' or 'optimal'")
    p = 2 if qlsa == "hhl" else 1
    return c_query * float(kappa) ** p * float(s_row) * math.log(1.0 / epsilon)


def download_shots(s: float, download_precision: float, c_shots: float = C_SHOTS,
                   c_norm: float = C_NORM) -> dict[str, float]:
    """Tomography shots c_sh·s·log₂s/δ_d² (log₂s ≥ 1) and norm shots c_norm/δ_d². Keys: tomography, norm, total."""
    tomo = c_shots * float(s) * max(1.0, math.log2(max(float(s), 1.0))) / download_precision**2
    norm = c_norm / download_precision**2
    return {"tomography": tomo, "norm": norm, "total": tomo + norm}


def window_cost(n: float, s: float, *, carleman_order: int, T: int, kappa: float, s_row: float,
                epsilon: float = 1e-3, download_precision: float = 1e-2, qlsa: str = "optimal",
                gate_time_s: float = 1e-7, idle: int | None = None, clock_qubits: int | None = None,
                amplification: float | None = None, batch: int = BATCH, n_classical: float | None = None,
                c_query: float = C_QUERY, c_upload: float = C_UPLOAD, c_shots: float = C_SHOTS,
                c_norm: float = C_NORM, c_flops: float = C_FLOPS,
                flops_per_second: float = FLOPS_PER_SECOND) -> dict[str, Any]:
    """Cost of one quantum window (module docstring). n: parameters evolved (register size), s: non-zeros up- and
    downloaded, κ: condition number of the history system, s_row: non-zeros per row of the Carleman matrix.

    Keys: label ("estimated"), n, s, T, idle, qubits (dict), queries_raw, amplification, queries, upload_gates,
    shots (dict), circuit_time_s, quantum_time_s, classical_flops, classical_time_s, speedup, favourable."""
    P = int(T) if idle is None else int(idle)
    amp = math.sqrt((T + P + 1) / (P + 1)) if amplification is None else float(amplification)
    q_raw = qlsa_queries(kappa, s_row, epsilon, qlsa, c_query)
    queries = q_raw * amp
    upload = c_upload * float(s) * max(1.0, math.log2(max(float(n), 2.0)))
    shots = download_shots(s, download_precision, c_shots, c_norm)
    circuit_time = (queries + upload) * gate_time_s
    quantum_time = circuit_time * (1.0 + shots["total"])
    ncl = float(n) if n_classical is None else float(n_classical)
    flops = float(T) * c_flops * ncl * batch
    classical_time = flops / flops_per_second
    speedup = classical_time / quantum_time if quantum_time > 0 else math.inf
    return {"label": "estimated", "n": float(n), "s": float(s), "T": int(T), "idle": P,
            "qubits": qubit_counts(n, carleman_order, T, P, kappa, epsilon, clock_qubits),
            "queries_raw": q_raw, "amplification": amp, "queries": queries, "upload_gates": upload, "shots": shots,
            "circuit_time_s": circuit_time, "quantum_time_s": quantum_time, "classical_flops": flops,
            "classical_time_s": classical_time, "speedup": speedup, "favourable": bool(speedup > 1.0)}


def paper_scale(target_params: float, sparsity: float, kappa: float, s_row: float, T: int,
                **kwargs: Any) -> dict[str, Any]:
    """:func:`window_cost` at n = target_params with s = (1 − sparsity)·n non-zeros (sparsity = fraction of zero
    weights, e.g. the prune ratio 0.9), carrying over κ and s_row measured at toy scale. Labelled "estimated".
    Extra keyword arguments go to :func:`window_cost` (carleman_order defaults to 2)."""
    if not 0.0 <= sparsity < 1.0:
        raise ValueError("sparsity (fraction of zeros) must be in [0, 1)")
    kwargs.setdefault("carleman_order", 2)
    n = float(target_params)
    s = max(1.0, (1.0 - sparsity) * n)
    out = window_cost(n, s, T=T, kappa=kappa, s_row=s_row, **kwargs)
    out["sparsity"] = float(sparsity)
    return out


def scaling_with_n(ns: Any, sparsity: float, kappa: float, s_row: float, T: int, **kwargs: Any) -> list[dict[str, Any]]:
    """:func:`paper_scale` for every n in ``ns`` (rows for a speed-up vs n plot)."""
    return [paper_scale(float(n), sparsity, kappa, s_row, T, **kwargs) for n in ns]
