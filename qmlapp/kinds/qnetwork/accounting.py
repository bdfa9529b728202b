"""Communication accounting for distributed inference and learning over a quantum channel.

Gilboa, Michaeli, Soudry & McClean (NeurIPS 2024). Alice holds x (amplitude-encoded on n = ⌈log₂N⌉ qubits)
and the unitaries A_ℓ; Bob holds B_ℓ. Every count here is for the protocol *as defined* by Gilboa et al.
so that the simulator can check it by counting, and so that the
plots can extend it to sizes that were never simulated. Pure Python/NumPy/SciPy: no TF or cirq.

Provenance words used throughout (house rule):

* ``computed``: exact arithmetic/counting of a defined protocol at a size that was simulated (or that needs
  no simulation, like the N·b bits of shipping x);
* ``estimated``: a formula or asymptotic bound at a scale that was not run (the shadow-tomography cost is
  *always* estimated: its constant is unknown).

No classical *lower bound* is implemented on purpose: the paper's exponents and constants for one are not
reproduced here. The classical numbers below are costs of concrete classical protocols (upper bounds on the
classical optimum), so a ratio "classical / quantum" is the advantage over the *cheapest known* protocol,
not over every classical protocol.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

COMPUTED = "computed"
ESTIMATED = "estimated"
PARAMS_GROWTH = ("fixed", "dense")


# ---------------------------------------------------------------------------------------------- basics


def register_qubits(N: int) -> int:
    """n = ⌈log₂N⌉ (at least 1): the amplitude-encoding register; exact integer arithmetic, no float log."""
    if N < 1:
        raise ValueError(f"N must be ≥ 1, got {N}")
    return max(1, (int(N) - 1).bit_length())


def hoeffding_copies(epsilon: float, delta: float) -> int:
    """K = ⌈2·ln(2/δ)/ε²⌉ copies estimate a ±1-valued expectation to ±ε with probability ≥ 1−δ.

    Same expression as ``QnetworkSpec.copies`` so that UI numbers and counts agree bit for bit.
    """
    if not 0 < epsilon <= 2:
        raise ValueError(f"epsilon must be in (0, 2], got {epsilon}")
    if not 0 < delta < 1:
        raise ValueError(f"delta must be in (0, 1), got {delta}")
    return math.ceil(2 * math.log(2 / delta) / epsilon**2)


def rounds(L: int, bob_measures: bool = True) -> int:
    """R: transfers of the register across the cut per copy: A₁→B₁→A₂→…→B_L is 2L−1; 2L if Alice measures."""
    if L < 1:
        raise ValueError(f"L must be ≥ 1, got {L}")
    return 2 * L - 1 if bob_measures else 2 * L


# ----------------------------------------------------------------------------------------- quantum costs


def quantum_inference_qubits(N: int, L: int, K: int, bob_measures: bool = True) -> int:
    """Q_inf = K·R·n: every copy makes R transfers of n qubits; K copies for one estimate of ℒ(x)."""
    return int(K) * rounds(L, bob_measures) * register_qubits(N)


def parameter_shift_qubits(N: int, L: int, P: int, K: int, bob_measures: bool = True) -> int:
    """Q_ps = 2·(2LP)·K·R·n: two shifted circuits per parameter, 2LP parameters (Alice's and Bob's), K copies each.

    Linear in P: this is the baseline the shadow-tomography route beats at large P.
    """
    if P < 1:
        raise ValueError(f"P must be ≥ 1, got {P}")
    return 2 * (2 * L * int(P)) * quantum_inference_qubits(N, L, K, bob_measures)


def _shadow(N: int, L: int, P: float, epsilon: float, C: float) -> float:
    n = register_qubits(N)
    return C * L**2 * math.log2(2 * L * P) ** 2 * n**2 / epsilon**4


def shadow_gradient_qubits(N: int, L: int, P: int, epsilon: float, C: float = 1.0) -> float:
    """C·L²·log₂²(P_total)·log₂²N/ε⁴ qubits per gradient: **estimated**, asymptotic scaling only.

    Bădescu–O'Donnell-type shadow tomography / threshold search: per layer about log²M·log N/ε⁴ copies for
    M gradient components, each copy O(L·log N) qubits. The constant C is unknown (a labelled parameter)
    and the failure probability δ only enters through it. Choices: P_total = 2·L·P (all of Alice's
    and Bob's parameters; keeps the log positive at P = 1; the spec's help text writes log²P, which differs
    by a log factor only), and log₂N is taken as n = ⌈log₂N⌉, the register actually sent.
    """
    if P < 1:
        raise ValueError(f"P must be ≥ 1, got {P}")
    if epsilon <= 0 or C <= 0:
        raise ValueError("epsilon and C must be > 0")
    return _shadow(N, L, float(P), epsilon, C)


def shadow_crossover_params(N: int, L: int, epsilon: float, *, delta: float = 0.05, C: float = 1.0,
                            K: int | None = None, bob_measures: bool = True) -> float:
    """P* (parameters per unitary, real-valued) above which the shadow bound is cheaper than parameter shift.

    Parameter shift grows like P, the shadow bound like log²(2LP), so the ratio shadow/shift is decreasing once
    2LP ≥ e² and the crossing there is unique; below that the ratio increases, so if the shadow bound is already
    cheaper at max(1, e²/2L) it is cheaper for every P ≥ 1 and we return 1.0. K defaults to the Hoeffding
    copies at (ε, δ), i.e. both routes are compared at the same ε and δ.
    """
    from scipy.optimize import brentq

    K = hoeffding_copies(epsilon, delta) if K is None else int(K)
    ps_per_param = 4 * L * quantum_inference_qubits(N, L, K, bob_measures)

    def gap(p: float) -> float:  # log(shadow) − log(parameter shift)
        return math.log(_shadow(N, L, p, epsilon, C)) - math.log(ps_per_param * p)

    lo = max(1.0, math.e**2 / (2 * L))
    if gap(lo) <= 0:
        return 1.0
    hi = 2 * lo
    while gap(hi) > 0:
        lo, hi = hi, 2 * hi
    return float(brentq(gap, lo, hi, xtol=1e-9, rtol=1e-12))


def quantum_linear_qubits(N: int, gamma: float, delta: float) -> int:
    """Qubits for a linear classifier sign(w·x) with margin γ: ⌈2·ln(2/δ)/γ²⌉ copies of n + 1 qubits, one way.

    Bob cannot read the sign from |⟨w|x⟩|² alone, so Alice sends |φ⟩ = (|0⟩|x̂⟩ + |1⟩|0…0⟩)/√2 (one ancilla
    qubit). Bob applies a unitary mapping (|0,ŵ⟩ ± |1,0…0⟩)/√2 to two basis states and projects: outcome ±1
    on those, 0 otherwise. Then E[outcome] = ŵ·x̂ exactly, outcomes lie in [−1, 1], and Hoeffding gives the
    same constant as for inference. Cost O(log N/γ²): the paper's "advantage vanishes for linear classifiers".
    """
    return hoeffding_copies(gamma, delta) * (register_qubits(N) + 1)


def holevo_bound_bits(K: int, R: int, n: int, entanglement: bool = False) -> int:
    """Classical bits either party can learn from the exchanged states: ≤ K·R·n (2× with pre-shared entanglement).

    Holevo: n qubits carry at most n bits; with entanglement, superdense coding doubles it. The bound is on the
    whole exchange (both directions), so it is conservative for either party's data.
    """
    return int(K) * int(R) * int(n) * (2 if entanglement else 1)


# --------------------------------------------------------------------------------------- classical costs


def ship_data_bits(N: int, b: int) -> int:
    """Alice sends x: N numbers of b bits; Bob then evaluates the model himself (exact, no ε)."""
    return int(N) * int(b)


def ship_model_bits(L: int, P: int, b: int) -> int:
    """Bob sends his L·P parameters of b bits; Alice then evaluates locally (classical simulation cost aside)."""
    return int(L) * int(P) * int(b)


def ship_gradient_bits(N: int, L: int, P: int, b: int) -> int:
    """Classical gradient: Alice sends x and her L·P parameters, Bob returns her L·P gradient entries.

    N·b + 2·L·P·b bits; exponential classical simulation time is not counted (communication only).
    """
    return int(N) * int(b) + 2 * int(L) * int(P) * int(b)


def linear_sketch_samples(gamma: float, c: float = 1.0) -> int:
    """ℓ₂-samples needed by the linear sketch: ⌈c/γ²⌉ (Var Z ≤ 1, so O(1/γ²); c is a labelled constant)."""
    if gamma <= 0 or c <= 0:
        raise ValueError("gamma and c must be > 0")
    return math.ceil(c / gamma**2)


def linear_sketch_bits(N: int, b: int, gamma: float, c: float = 1.0) -> int:
    """≈ c·(⌈log₂N⌉ + b)/γ² bits: ⌈c/γ²⌉ samples, each an index (n bits) and a value xᵢ (b bits).

    ℓ₂-sampling: Alice samples i with probability x̂ᵢ², Bob averages Z = ŵᵢ/x̂ᵢ (E Z = ŵ·x̂,
    E Z² = Σŵᵢ² ≤ 1). Chebyshev gives a rigorous c = 1/δ, median-of-means O(ln 1/δ); comparisons in this
    module use c = 2·ln(2/δ), the quantum side's Hoeffding constant, so constants cancel in the ratio.
    """
    return linear_sketch_samples(gamma, c) * (register_qubits(N) + int(b))


def simulate_linear_sketch(x: np.ndarray, w: np.ndarray, samples: int, rng: np.random.Generator,
                           b: int = 32) -> dict[str, Any]:
    """Run the ℓ₂-sampling protocol for real on vectors x (Alice) and w (Bob); both are normalised first.

    Alice's values are rounded to b-bit floats (16/32/64) before "sending", so the bit count is honest.
    Returns the estimate of ŵ·x̂ with its standard error, the exact value and the bits actually sent.
    """
    x = np.asarray(x, dtype=np.float64).ravel()
    w = np.asarray(w, dtype=np.float64).ravel()
    if x.shape != w.shape:
        raise ValueError(f"x and w must have the same length, got {x.size} and {w.size}")
    if samples < 1:
        raise ValueError(f"samples must be ≥ 1, got {samples}")
    nx, nw = np.linalg.norm(x), np.linalg.norm(w)
    if nx == 0 or nw == 0:
        raise ValueError("x and w must be non-zero")
    xh, wh = x / nx, w / nw
    dtype = {16: np.float16, 32: np.float32, 64: np.float64}.get(int(b))
    if dtype is None:
        raise ValueError(f"b must be 16, 32 or 64, got {b}")
    prob = xh**2
    cdf = np.cumsum(prob)
    idx = np.minimum(np.searchsorted(cdf, rng.random(samples) * cdf[-1], side="right"), x.size - 1)
    sent = xh[idx].astype(dtype).astype(np.float64)  # what Bob receives
    z = wh[idx] / sent
    index_bits = register_qubits(x.size)
    se = float(np.std(z, ddof=1) / math.sqrt(samples)) if samples > 1 else float("nan")
    return {
        "estimate": float(np.mean(z)),
        "se": se,
        "exact": float(wh @ xh),
        "samples": int(samples),
        "index_bits": index_bits,
        "value_bits": int(b),
        "bits_sent": int(samples) * (index_bits + int(b)),
    }


# --------------------------------------------------------------------------------------------- ratios


def advantage_ratio(classical_bits: float | Iterable[float] | Mapping[str, float], quantum_qubits: float) -> float:
    """min(classical baselines) / quantum qubits, at the same ε and δ.

    The cheaper classical protocol is the fair opponent: the quantum protocol must beat *every* classical one
    we know. These are protocol costs, not lower bounds, so the ratio is an upper bound on the true advantage.
    """
    if isinstance(classical_bits, Mapping):
        values = [float(v) for v in classical_bits.values()]
    elif isinstance(classical_bits, Iterable):
        values = [float(v) for v in classical_bits]
    else:
        values = [float(classical_bits)]
    if not values:
        raise ValueError("need at least one classical baseline")
    if quantum_qubits <= 0:
        raise ValueError("quantum_qubits must be > 0")
    return min(values) / float(quantum_qubits)


# --------------------------------------------------------------------------------------------- curves


def _tag(n: int, simulated_max_n: int | None) -> str:
    return COMPUTED if simulated_max_n is not None and n <= simulated_max_n else ESTIMATED


def _series(label: str, unit: str, values: list[float], provenance: list[str]) -> dict[str, Any]:
    return {"label": label, "unit": unit, "values": values, "provenance": provenance}


def scaling_curves(L: int, P: int, epsilon: float, delta: float, K: int, b: int, gamma: float, C: float,
                   n_max: int = 40, *, n_min: int = 1, simulated_max_n: int | None = None,
                   bob_measures: bool = True, params_growth: str = "fixed",
                   sketch_constant: float | None = None) -> dict[str, Any]:
    """Every cost against N = 2^n_min … 2^n_max, as plain lists (JSON-ready; values are floats).

    Provenance per point: quantum counts and the linear sketch are ``computed`` for n ≤ ``simulated_max_n``
    (sizes the protocol was run at) and ``estimated`` beyond (the same formula, unverified there; None: nothing
    simulated). Shipping x or the weights is exact arithmetic at any N (``computed``); the shadow bound is always
    ``estimated``.

    ``params_growth``: "fixed" keeps P per unitary constant (then shipping Bob's L·P·b bits is flat in N and caps
    any advantage: the paper's exponential gap needs models whose parameter count grows with N); "dense" sets
    P(N) = N (one trainable parameter per input dimension per unitary, e.g. a diagonal phase layer).
    ``sketch_constant`` defaults to 2·ln(2/δ) (same constant as the quantum side).
    """
    if params_growth not in PARAMS_GROWTH:
        raise ValueError(f"params_growth must be one of {PARAMS_GROWTH}, got {params_growth!r}")
    if not 1 <= n_min <= n_max:
        raise ValueError(f"need 1 ≤ n_min ≤ n_max, got {n_min}, {n_max}")
    c_sketch = 2 * math.log(2 / delta) if sketch_constant is None else float(sketch_constant)
    ns = list(range(n_min, n_max + 1))
    Ns = [2**n for n in ns]
    Ps = [int(P) if params_growth == "fixed" else N for N in Ns]
    tags = [_tag(n, simulated_max_n) for n in ns]
    exact = [COMPUTED] * len(ns)

    q_inf = [float(quantum_inference_qubits(N, L, K, bob_measures)) for N in Ns]
    q_ps = [float(parameter_shift_qubits(N, L, p, K, bob_measures)) for N, p in zip(Ns, Ps, strict=True)]
    q_sh = [shadow_gradient_qubits(N, L, p, epsilon, C) for N, p in zip(Ns, Ps, strict=True)]
    c_data = [float(ship_data_bits(N, b)) for N in Ns]
    c_model = [float(ship_model_bits(L, p, b)) for p in Ps]
    c_sketch_bits = [float(linear_sketch_bits(N, b, gamma, c_sketch)) for N in Ns]
    q_lin = [float(quantum_linear_qubits(N, gamma, delta)) for N in Ns]

    deep = [min(d, m) / q for d, m, q in zip(c_data, c_model, q_inf, strict=True)]
    deep_data = [d / q for d, q in zip(c_data, q_inf, strict=True)]
    linear = [min(d, s) / q for d, s, q in zip(c_data, c_sketch_bits, q_lin, strict=True)]
    return {
        "N": Ns,
        "n_qubits": ns,
        "params_per_unitary": Ps,
        "series": {
            "quantum_inference": _series("quantum inference K·R·n", "qubits", q_inf, tags),
            "parameter_shift": _series("parameter-shift gradient 4LP·K·R·n", "qubits", q_ps, tags),
            "shadow_gradient": _series("shadow-tomography gradient C·L²·log²(2LP)·n²/ε⁴ (asymptotic)", "qubits",
                                       q_sh, [ESTIMATED] * len(ns)),
            "ship_data": _series("classical: ship x, N·b", "bits", c_data, exact),
            "ship_model": _series("classical: ship Bob's weights, L·P·b", "bits", c_model, exact),
            "linear_sketch": _series("classical linear: ℓ₂-sampling sketch", "bits", c_sketch_bits, tags),
            "quantum_linear": _series("quantum linear: overlap test, K·(n+1)", "qubits", q_lin, tags),
        },
        "ratios": {
            "deep": _series("deep model: min(ship x, ship weights) ÷ quantum inference", "ratio", deep, tags),
            "deep_vs_data": _series("deep model: ship x ÷ quantum inference", "ratio", deep_data, tags),
            "linear": _series("linear classifier: min(ship x, sketch) ÷ quantum linear", "ratio", linear, tags),
        },
        "settings": {"L": L, "P": P, "epsilon": epsilon, "delta": delta, "K": K, "b": b, "gamma": gamma, "C": C,
                     "sketch_constant": c_sketch, "params_growth": params_growth, "bob_measures": bob_measures,
                     "simulated_max_n": simulated_max_n},
    }


def depth_curves(N: int, L_max: int, P: int, K: int, b: int, *, epsilon: float, C: float = 1.0,
                 simulated_max_n: int | None = None, simulated_max_layers: int | None = None,
                 bob_measures: bool = True) -> dict[str, Any]:
    """Costs against depth L = 1 … L_max at fixed N (same format as :func:`scaling_curves`, keyed by "L").

    A quantum point is ``computed`` when n ≤ ``simulated_max_n`` and L ≤ ``simulated_max_layers`` (None for the
    layers means every L shown was run); otherwise ``estimated``.
    """
    if L_max < 1:
        raise ValueError(f"L_max must be ≥ 1, got {L_max}")
    n = register_qubits(N)
    Ls = list(range(1, L_max + 1))
    max_l = L_max if simulated_max_layers is None else simulated_max_layers
    tags = [COMPUTED if _tag(n, simulated_max_n) == COMPUTED and L <= max_l else ESTIMATED for L in Ls]
    exact = [COMPUTED] * len(Ls)
    return {
        "L": Ls,
        "N": int(N),
        "n_qubits": n,
        "series": {
            "quantum_inference": _series("quantum inference K·R·n", "qubits",
                                         [float(quantum_inference_qubits(N, L, K, bob_measures)) for L in Ls], tags),
            "parameter_shift": _series("parameter-shift gradient 4LP·K·R·n", "qubits",
                                       [float(parameter_shift_qubits(N, L, P, K, bob_measures)) for L in Ls], tags),
            "shadow_gradient": _series("shadow-tomography gradient (asymptotic)", "qubits",
                                       [shadow_gradient_qubits(N, L, P, epsilon, C) for L in Ls],
                                       [ESTIMATED] * len(Ls)),
            "ship_data": _series("classical: ship x, N·b", "bits", [float(ship_data_bits(N, b))] * len(Ls), exact),
            "ship_model": _series("classical: ship Bob's weights, L·P·b", "bits",
                                  [float(ship_model_bits(L, P, b)) for L in Ls], exact),
        },
        "settings": {"P": P, "K": K, "b": b, "epsilon": epsilon, "C": C, "bob_measures": bob_measures,
                     "simulated_max_n": simulated_max_n, "simulated_max_layers": simulated_max_layers},
    }
