"""The two-party protocol on qsimcirq, shot-noise estimates and the communication they cost.

Alice prepares |ψ(x)⟩ and applies A₁ with her own qsim simulator; the register (its state vector) is then
handed to Bob's simulator, which applies B₁, and so on, until Bob holds |ψ_L⟩ and measures O. Every hand-over
is logged as a :class:`Transfer` of n qubits, so the communication is counted from what the simulation did,
not from a formula: R = 2L − 1 transfers per copy (Bob measures), q_copy = R·n qubits.

Shots. Each copy ends in one measurement of O with outcome ±1 and P(+1) = (1 + ℒ)/2 at the final state. K
copies give K independent ±1 outcomes, so the number of +1 outcomes is Binomial(K, (1+ℒ)/2): drawing it once
from the exact ℒ has exactly the distribution of running the protocol K times and measuring each copy, and
costs one state-vector simulation instead of K. The communication is still counted for all K copies.

No TensorFlow here (qsimcirq + NumPy), so the UI and the runner can import this module cheaply.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, NamedTuple

import numpy as np

from qmlapp.kinds.qnetwork.model import SplitModel
from qmlapp.simulators import Simulators

if TYPE_CHECKING:
    import qsimcirq

MEASURER = "bob"
# Seed stream of the great-circle directions in :func:`fourier_degree`.
FOURIER_STREAM = 11
# Up to this register size the batched NumPy engine computes shifted expectations faster than qsim.
NUMPY_GRADIENT_MAX_QUBITS = 14
# Up to this register size the NumPy engine evaluates a batch of inputs faster than one qsim call per input.
NUMPY_BATCH_MAX_QUBITS = 12


class Transfer(NamedTuple):
    """One crossing of the Alice|Bob cut: ``n_qubits`` sent from ``sender`` to ``receiver``."""

    sender: str
    receiver: str
    n_qubits: int


@dataclass(frozen=True)
class ProtocolRun:
    """One copy of the protocol on one input.

    ``final_state`` is Bob's |ψ_L⟩ (complex64, qsim's precision); ``expectation`` is ℒ = ⟨ψ_L|O|ψ_L⟩
    computed from it in float64; ``transfers[r]`` is round r + 1; ``unitary_s`` the wall time of each
    unitary's simulation (A₁, B₁, …)."""

    final_state: np.ndarray
    transfers: list[Transfer]
    rounds: int
    qubits_per_copy: int
    expectation: float
    n_qubits: int
    wall_s: float
    unitary_s: list[float]


def qsim_simulator(simulators: Simulators | None = None, seed: int | None = None) -> qsimcirq.QSimSimulator:
    """A qsimcirq simulator with 2-qubit fusion from ``simulators`` (None: the process default)."""
    return (simulators or Simulators.from_env()).qsim(seed=seed, max_fused_gate_size=2)


def _state_expectation(model: SplitModel, state: np.ndarray) -> float:
    amps = np.asarray(state)
    probs = amps.real.astype(np.float64) ** 2 + amps.imag.astype(np.float64) ** 2
    return float(probs @ model.observable_diagonal() / probs.sum())


def run_protocol(model: SplitModel, params: np.ndarray, x: np.ndarray, *,
                 simulators: Simulators | None = None) -> ProtocolRun:
    """Alice and Bob, each with a qsim simulator, apply their unitaries in turn and hand the register over."""
    start = time.perf_counter()
    x_hat = model.amplitude_encode(np.asarray(x).reshape(-1))
    qubits = model.qubits
    n = model.n_qubits
    parties = {"alice": qsim_simulator(simulators), "bob": qsim_simulator(simulators)}
    holder = "alice"  # she prepares |ψ(x)⟩
    state = x_hat.astype(np.complex64)
    transfers: list[Transfer] = []
    unitary_s = []
    for owner, circuit in model.unitaries(params, x_hat):
        if owner != holder:
            transfers.append(Transfer(holder, owner, n))
            holder = owner
        t0 = time.perf_counter()
        _, state, _ = parties[owner].simulate_into_1d_array(circuit, qubit_order=qubits, initial_state=state)
        unitary_s.append(time.perf_counter() - t0)
    if holder != MEASURER:
        transfers.append(Transfer(holder, MEASURER, n))
    return ProtocolRun(final_state=state, transfers=transfers, rounds=len(transfers),
                       qubits_per_copy=sum(t.n_qubits for t in transfers),
                       expectation=_state_expectation(model, state), n_qubits=n,
                       wall_s=time.perf_counter() - start, unitary_s=unitary_s)


def single_party_state(model: SplitModel, params: np.ndarray, x: np.ndarray, *,
                       simulators: Simulators | None = None) -> np.ndarray:
    """|ψ_L⟩ from one qsim call on the concatenated circuit B_L A_L ⋯ B₁ A₁ (complex64)."""
    x_hat = model.amplitude_encode(np.asarray(x).reshape(-1))
    _, state, _ = qsim_simulator(simulators).simulate_into_1d_array(
        model.circuit(params, x_hat), qubit_order=model.qubits, initial_state=x_hat.astype(np.complex64))
    return state


def single_party_expectation(model: SplitModel, params: np.ndarray, x: np.ndarray, *,
                             simulators: Simulators | None = None) -> float:
    """ℒ(x) from one qsim expectation call on the concatenated circuit (no parties, no transfers)."""
    x_hat = model.amplitude_encode(np.asarray(x).reshape(-1))
    values = qsim_simulator(simulators).simulate_expectation_values(
        model.circuit(params, x_hat), [model.observable()], qubit_order=model.qubits,
        initial_state=x_hat.astype(np.complex64))
    return float(np.real(values[0]))


def sample_mean(expectation: float | np.ndarray, copies: int,
                rng: np.random.Generator) -> float | np.ndarray:
    """Mean of ``copies`` ±1 outcomes of O at a state with ⟨O⟩ = ``expectation`` (see the module docstring)."""
    p_plus = np.clip((1.0 + np.asarray(expectation, dtype=np.float64)) / 2.0, 0.0, 1.0)
    plus = rng.binomial(int(copies), p_plus)
    return (2.0 * plus - copies) / copies


def standard_error(mean: float, copies: int) -> float:
    """Standard error of a mean of ±1 outcomes: √(s²/K) with the unbiased s² = K(1 − m²)/(K − 1).
    One copy says nothing about the spread: 1.0, the largest standard deviation of a ±1 variable."""
    if copies < 2:
        return 1.0
    return math.sqrt(max(1.0 - mean * mean, 0.0) / (copies - 1))


def estimate(model: SplitModel, params: np.ndarray, x: np.ndarray, copies: int,
             rng: np.random.Generator, *, simulators: Simulators | None = None) -> tuple[float, float, int]:
    """(estimate of ℒ(x) from K copies, its standard error, qubits communicated = K·R·n)."""
    if copies < 1:
        raise ValueError(f"copies must be ≥ 1, got {copies}")
    run = run_protocol(model, params, x, simulators=simulators)
    mean = float(sample_mean(run.expectation, copies, rng))
    return mean, standard_error(mean, copies), int(copies) * run.qubits_per_copy


def shifted_expectations(model: SplitModel, params: np.ndarray, x: np.ndarray, *,
                         engine: str = "auto", simulators: Simulators | None = None) -> np.ndarray:
    """Exact [ℒ(φ_k + π/2), ℒ(φ_k − π/2)] for every parameter, shape (2LP, 2).

    The protocol's final state is the single-party state (tested), so the shifted circuits need not be
    run party by party. ``engine``: ``"numpy"``, the model's batched float64 engine (faster up to n ≈ 14);
    ``"qsim"``: qsimcirq (complex64), each shifted circuit started from the unshifted prefix state before
    its unitary (fastest for large n); ``"protocol"``: one full :func:`run_protocol` per shifted circuit
    (slow, the literal check); ``"auto"``: numpy up to ``NUMPY_GRADIENT_MAX_QUBITS`` qubits, else qsim."""
    if engine == "auto":
        engine = "numpy" if model.n_qubits <= NUMPY_GRADIENT_MAX_QUBITS else "qsim"
    if engine == "numpy":
        return model.shifted_expectations(params, x)
    if engine not in ("qsim", "protocol"):
        raise ValueError(f"engine must be 'auto', 'numpy', 'qsim' or 'protocol', got {engine!r}")
    params = np.asarray(params, dtype=np.float64)
    out = np.empty((model.n_params, 2))
    shifts = (math.pi / 2, -math.pi / 2)
    if engine == "protocol":
        for k in range(model.n_params):
            for j, shift in enumerate(shifts):
                p = params.copy()
                p[k] += shift
                out[k, j] = run_protocol(model, p, x, simulators=simulators).expectation
        return out
    x_hat = model.amplitude_encode(np.asarray(x).reshape(-1))
    qubits, sim = model.qubits, qsim_simulator(simulators)
    circuits = [c for _, c in model.unitaries(params, x_hat)]
    prefix = x_hat.astype(np.complex64)
    for ui, u in enumerate(model.layout):
        for k in range(u.params.start, u.params.stop):
            for j, shift in enumerate(shifts):
                p = params.copy()
                p[k] += shift
                state = prefix
                for circuit in [model.unitary_circuit(ui, p, x_hat), *circuits[ui + 1:]]:
                    _, state, _ = sim.simulate_into_1d_array(circuit, qubit_order=qubits, initial_state=state)
                out[k, j] = _state_expectation(model, state)
        _, prefix, _ = sim.simulate_into_1d_array(circuits[ui], qubit_order=qubits, initial_state=prefix)
    return out


def exact_gradient(model: SplitModel, params: np.ndarray, x: np.ndarray, *, engine: str = "auto",
                   simulators: Simulators | None = None) -> np.ndarray:
    """∂ℒ(x)/∂φ for all 2LP parameters by the parameter-shift rule with exact expectations (float64 with the
    default engine up to 14 qubits; see :func:`shifted_expectations`)."""
    shifted = shifted_expectations(model, params, x, engine=engine, simulators=simulators)
    return (shifted[:, 0] - shifted[:, 1]) / 2.0


def shift_gradient(model: SplitModel, params: np.ndarray, x: np.ndarray, copies: int, rng: np.random.Generator,
                   *, engine: str = "auto", simulators: Simulators | None = None) -> tuple[np.ndarray, int, int]:
    """Parameter-shift gradient with every shifted expectation estimated from K copies of the protocol.

    Returns (gradient (2LP,), qubits communicated = circuits_run·K·R·n, circuits_run = 2·2LP distinct
    shifted circuits; each is run on K copies)."""
    if copies < 1:
        raise ValueError(f"copies must be ≥ 1, got {copies}")
    shifted = shifted_expectations(model, params, x, engine=engine, simulators=simulators)
    means = np.asarray(sample_mean(shifted, copies, rng))  # one mean per shifted circuit: an array here
    circuits = 2 * model.n_params
    return (means[:, 0] - means[:, 1]) / 2.0, circuits * int(copies) * model.rounds * model.n_qubits, circuits


def expectations(model: SplitModel, params: np.ndarray, x: np.ndarray, *, engine: str = "auto",
                 simulators: Simulators | None = None) -> np.ndarray:
    """Exact ℒ for rows of inputs (M,): ``"numpy"`` batched float64 engine, ``"qsim"`` one single-party qsim
    call per row (complex64), ``"auto"`` numpy up to ``NUMPY_BATCH_MAX_QUBITS`` qubits, else qsim."""
    if engine == "auto":
        engine = "numpy" if model.n_qubits <= NUMPY_BATCH_MAX_QUBITS else "qsim"
    if engine == "numpy":
        return model.expectations(params, x)
    if engine != "qsim":
        raise ValueError(f"engine must be 'auto', 'numpy' or 'qsim', got {engine!r}")
    rows = np.atleast_2d(np.asarray(x, dtype=np.float64))
    return np.array([_state_expectation(model, single_party_state(model, params, row, simulators=simulators))
                     for row in rows])


def great_circle(model: SplitModel, points: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(t, X): inputs x̂(t) = cos t·u + sin t·v, t = 2πk/points, for random orthonormal u, v ∈ ℝᴺ."""
    u = rng.standard_normal(model.n_features)
    u /= np.linalg.norm(u)
    v = rng.standard_normal(model.n_features)
    v -= (v @ u) * u
    v /= np.linalg.norm(v)
    t = 2 * math.pi * np.arange(points) / points
    return t, np.cos(t)[:, None] * u + np.sin(t)[:, None] * v


def fourier_degree(model: SplitModel, params: np.ndarray, *, points: int = 256, seed: int = 0,
                   rng: np.random.Generator | None = None, tol: float = 1e-6,
                   engine: str = "auto", simulators: Simulators | None = None) -> dict[str, object]:
    """Expressivity along a great circle: the Fourier spectrum of t ↦ ℒ(x̂(t)).

    Why: without data layers ℒ = x̂ᵀMx̂ is quadratic in (cos t, sin t), so only frequencies 0 and 2 appear
    at every depth; data re-uploading adds frequencies that grow with L. ``magnitudes[k]`` is the amplitude
    of frequency k (|c₀|, 2|c_k|); ``degree`` is the highest k with magnitude > tol·max(magnitudes). A
    degree at ``nyquist`` means the spectrum is aliased: use more points. Values are exact (see
    :func:`expectations` for ``engine``; qsim's float32 rounding sits near 1e-7 relative, below the default tol).
    """
    if points < 8:
        raise ValueError("points must be ≥ 8")
    rng = rng if rng is not None else np.random.default_rng([seed, FOURIER_STREAM])
    t, x = great_circle(model, points, rng)
    values = expectations(model, params, x, engine=engine, simulators=simulators)
    coeffs = np.fft.rfft(values) / points
    magnitudes = np.abs(coeffs)
    magnitudes[1:] *= 2.0
    if points % 2 == 0:
        magnitudes[-1] /= 2.0  # the Nyquist term has no mirror image
    peak = float(magnitudes.max())
    relative = magnitudes / peak if peak > 0 else np.zeros_like(magnitudes)
    above = np.nonzero(relative > tol)[0]
    return {"t": t, "values": values, "frequencies": np.arange(len(magnitudes)), "magnitudes": magnitudes,
            "relative": relative, "degree": int(above.max()) if len(above) else 0, "tol": float(tol),
            "points": int(points), "nyquist": points // 2}
