"""Hessian preparation, condition numbers, the QLSA cost model and the quantum/classical scheduler.

NumPy/SciPy only, so the UI and the runner can import it cheaply. Conventions:

* **Prune, then regularise**: the authors' two code paths disagree; pruning first means the
  λI shift is never pruned away, so κ ≤ 1 + N/ε_norm holds for PSD H. :func:`prepare` records the order.
* **Symmetric pruning**: row-wise top-k alone breaks symmetry (no longer Hermitian, as a QLSA
  needs); the mask is symmetrised (M ∨ Mᵀ) and always keeps the diagonal. ``keep_ratio`` is the fraction
  KEPT (the authors' docstring says the opposite).
* **κ** is σ_max/σ_min from singular values; the Merikoski et al. (1997) bound is computed in log space
  with the correct formula (the authors' code has a typo and returns NaN).
* **Query cost** reproduces the authors' ``compute_expected_query_cost`` including its outer α.
* **Scheduler** is our implementation of the paper's description; the repository has none.
* **Times**: the classical time is measured here (``np.linalg.solve``) and never compared with the authors'
  accelerator timings; the quantum time is a formula.
"""

from __future__ import annotations

import functools
import math
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np

ORDER = "prune→regularise"
DEFAULT_DELTA = 1e-6  # the authors' additive constant inside λ (layer-wise path)
FLOPS_PROBE_N = 512
Choice = Literal["quantum", "classical"]


# --------------------------------------------------------------------------------------------- preparation
def regularise(H: np.ndarray, epsilon_norm: float, delta: float = DEFAULT_DELTA) -> tuple[np.ndarray, float]:
    """H̃ = H + λI with λ = ε_norm·(max|H_ij| + δ). Scaling λ with the largest entry makes ε_norm
    scale-free: for PSD H, κ(H̃) ≤ 1 + λ_max/λ ≤ 1 + N/ε_norm (λ_max ≤ N·max|H_ij|)."""
    H = np.asarray(H, dtype=float)
    if H.ndim != 2 or H.shape[0] != H.shape[1]:
        raise ValueError(f"H must be square, got shape {H.shape}")
    if epsilon_norm < 0:
        raise ValueError("epsilon_norm must be ≥ 0")
    lam = float(epsilon_norm) * ((float(np.max(np.abs(H))) if H.size else 0.0) + delta)
    out = H.copy()
    out[np.diag_indices_from(out)] += lam
    return out, lam


def keep_count(n: int, keep_ratio: float) -> int:
    """k = max(1, ⌊r·N⌋) entries kept per row. A 1e-9 slack absorbs float products such as 0.29·100 =
    28.999…, which the authors' ``floor``/``int`` would round down by one."""
    if not 0.0 < keep_ratio <= 1.0:
        raise ValueError(f"keep_ratio must be in (0, 1], got {keep_ratio}")
    return max(1, min(n, math.floor(keep_ratio * n + 1e-9)))


def prune_symmetric(H: np.ndarray, keep_ratio: float) -> tuple[np.ndarray, np.ndarray]:
    """Row-wise top-k by magnitude (k = :func:`keep_count`), mask symmetrised M ∨ Mᵀ, diagonal kept.

    Returns ``(H_pruned, mask)``. Symmetric H stays symmetric, and every row keeps its own top-k entries.
    Row i also keeps the entries (i, j) that row j selected, so d ≤ k + 1 + (how many rows selected column
    i): the usual "d ≤ 2k" is typical but NOT guaranteed (an arrow matrix, whose first column is every
    row's top-1, gives d = N at k = 1), hence d is measured, never assumed. r = 1 returns an unchanged copy
    and an all-True mask.
    """
    H = np.asarray(H, dtype=float)
    if H.ndim != 2 or H.shape[0] != H.shape[1]:
        raise ValueError(f"H must be square, got shape {H.shape}")
    n = H.shape[0]
    k = keep_count(n, keep_ratio)
    if k >= n:
        return H.copy(), np.ones((n, n), dtype=bool)
    top = np.argpartition(-np.abs(H), k - 1, axis=1)[:, :k]  # each row's k largest |H_ij| (ties: any)
    mask = np.zeros((n, n), dtype=bool)
    mask[np.arange(n)[:, None], top] = True
    mask |= mask.T
    mask[np.diag_indices(n)] = True
    return np.where(mask, H, 0.0), mask


@dataclass(frozen=True)
class Prepared:
    """A Hessian block ready for a solver: H̃ = prune(H) + λI."""

    matrix: np.ndarray  # H̃
    lam: float  # λ
    mask: np.ndarray  # kept entries (bool, symmetric, diagonal True)
    d: int  # sparsity: max non-zeros in a row of H̃
    k: int  # entries kept per row before symmetrisation
    keep_ratio: float
    epsilon_norm: float
    order: str = ORDER


def row_sparsity(A: np.ndarray) -> int:
    """d = the largest number of non-zeros in any row (what a sparse-access oracle must enumerate)."""
    A = np.asarray(A)
    return int(np.count_nonzero(A, axis=1).max()) if A.size else 0


def prepare(H: np.ndarray, epsilon_norm: float, keep_ratio: float, delta: float = DEFAULT_DELTA) -> Prepared:
    """Prune THEN regularise (so the λI shift survives pruning). λ uses max|H_ij| of the pruned
    matrix, which equals that of H because every row keeps its own largest entry."""
    pruned, mask = prune_symmetric(H, keep_ratio)
    matrix, lam = regularise(pruned, epsilon_norm, delta)
    return Prepared(matrix=matrix, lam=lam, mask=mask, d=row_sparsity(matrix), k=keep_count(len(matrix), keep_ratio),
                    keep_ratio=float(keep_ratio), epsilon_norm=float(epsilon_norm))


# ------------------------------------------------------------------------------------------- condition number
def _kappa_from_singular_values(s: np.ndarray) -> float:
    if s.size == 0:
        return 1.0
    if not np.all(np.isfinite(s)):
        return math.nan
    smax, smin = float(s.max()), float(s.min())
    if smin <= 0.0:
        return math.inf
    return smax / smin


def kappa_exact(A: np.ndarray) -> float:
    """κ₂ = σ_max/σ_min from singular values (valid for non-symmetric matrices too); inf if singular."""
    return _kappa_from_singular_values(np.linalg.svd(np.asarray(A), compute_uv=False))


def kappa_bound_log10(A: np.ndarray) -> float:
    """log₁₀ of the Merikoski et al. bound (:func:`kappa_bound`): finite for every non-singular A, even where
    the bound itself exceeds the float range (common beyond N ≈ 500), so it can still be plotted."""
    A = np.asarray(A)
    n = A.shape[0]
    if n == 0:
        return 0.0
    scale = float(np.max(np.abs(A)))
    if not math.isfinite(scale):
        return math.nan
    if scale == 0.0:
        return math.inf
    A = A / scale  # t is scale-invariant; this keeps ‖A‖_F finite for entries near the float limits
    fro = float(np.linalg.norm(A, "fro"))
    sign, logabsdet = np.linalg.slogdet(A)
    if sign == 0 or not np.isfinite(logabsdet):
        return math.inf
    log_t = n * (math.log(n) - 2.0 * math.log(fro)) + 2.0 * float(logabsdet)
    log_t = min(log_t, 0.0)  # t ≤ 1 in exact arithmetic; rounding can push it a hair above
    x = math.sqrt(-math.expm1(log_t))
    return (math.log1p(x) - 0.5 * log_t) / math.log(10.0)


def kappa_bound(A: np.ndarray) -> float:
    """Merikoski, Urpala, Virtanen, Tam & Uhlig (1997): κ₂ ≤ √((1+x)/(1−x)), x = √(1 − t),
    t = (N/‖A‖_F²)^N·|det A|² ≤ 1 (AM–GM on the σᵢ²). Exact for 2×2; very loose as N grows.

    Why log space: (N/‖A‖_F²)^N and det A over/underflow long before N = 500, but
    log t = N·(log N − 2·log‖A‖_F) + 2·log|det A| (``slogdet``) is harmless. Since (1−x)(1+x) = t, the
    bound is (1+x)/√t, evaluated as exp(log1p(x) − ½·log t): no 1 − x cancellation when t → 0 (the bound
    is then ≈ 2/√t, returned as inf when it exceeds the float range; :func:`kappa_bound_log10` keeps it) and
    x = √(−expm1(log t)) stays accurate when t → 1 (κ → 1). A is first divided by max|A_ij| (t is
    scale-invariant). Singular matrices give inf.

    The authors' ``compute_condition_number_upper_bound`` computes (1 − N/‖A‖_F)^N instead of
    (N/‖A‖_F²)^N; the term under the root then goes negative and it returns NaN, also on its own
    docstring example [[1, 2], [3, 4]] (which claims 2.5; the true κ₂ is 14.93, and this bound gives it).
    See :func:`kappa_bound_authors`.
    """
    lg = kappa_bound_log10(A)
    if math.isnan(lg):
        return math.nan
    return 10.0**lg if lg < 308.0 else math.inf


def kappa_bound_authors(A: np.ndarray) -> float:
    """The authors' formula verbatim, typo included: √((1+x)/(1−x)), x = √(1 − (1 − N/‖A‖_F)^N·det(A)²).
    Kept only to show the authors' typo (NaN where the term under the root is negative); do not use it."""
    A = np.asarray(A, dtype=float)
    n = A.shape[0]
    with np.errstate(all="ignore"):
        fro = np.linalg.norm(A, "fro")
        x = np.sqrt(1.0 - (1.0 - n / fro) ** n * np.linalg.det(A) ** 2)
        return float(np.sqrt((1.0 + x) / (1.0 - x)))


# ----------------------------------------------------------------------------------------------- cost model
def qlsa_queries(kappa: Any, epsilon: Any, alpha: Any) -> Any:
    """Expected block-encoding queries of the explicit-constant QLSA (Jennings et al. 2023), as the authors'
    ``compute_expected_query_cost`` computes it (natural logs):

    Q* = (1741·α·e/500)·√(κ²+1)·[(133/125 + 4/(25·κ^{1/3}))·π·ln(2κ+3) + 1]
         + (351/50)·ln²(2κ+3)·[ln(451·ln²(2κ+3)/ε) + 1] + α·κ·ln(32/ε),   Q = α·Q*/(0.39 − 0.204·ε).

    α (the block-encoding normalisation) appears twice, inside Q* and as an outer factor, so Q
    grows like α² at large κ. We reproduce the authors' function unchanged and say so in the UI; α stays an
    explicit argument so that its effect is visible. Vectorised over κ, ε and α; κ = inf gives inf.

    Q grows with κ and α everywhere, but with 1/ε only for ε ≲ 3e-3: above that the factor
    1/(0.39 − 0.204·ε) wins, so Q has a shallow minimum at ε ≈ 0.003–0.1 (depending on κ, α) and is 5 % higher
    at ε = 0.1 and ~33 % at ε = 0.5 than at that minimum. The ε-dependence is weak (logarithmic) throughout.
    """
    eps = np.asarray(epsilon, dtype=float)
    if not np.all((eps > 0.0) & (eps < 1.0)):
        raise ValueError(f"epsilon must be in (0, 1), got {epsilon}")
    k = np.asarray(kappa, dtype=float)
    a = np.asarray(alpha, dtype=float)
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        lg = np.log(2.0 * k + 3.0)
        q_star = ((1741.0 * a * math.e / 500.0) * np.sqrt(k**2 + 1.0)
                  * ((133.0 / 125.0 + 4.0 / (25.0 * np.cbrt(k))) * math.pi * lg + 1.0)
                  + (351.0 / 50.0) * lg**2 * (np.log(451.0 * lg**2 / eps) + 1.0)
                  + a * k * np.log(32.0 / eps))
        q = a * q_star / (0.39 - 0.204 * eps)
    return float(q) if q.ndim == 0 else q


def block_encoding_alpha(H_tilde: np.ndarray, d: int, *, sigma_max: float | None = None) -> float:
    """α ≈ d·max|A_ij| for d-sparse access, with A = H̃/σ_max(H̃) (so α ∈ [1, d]).

    Why normalise: the QLSA cost (Jennings et al.) is stated for ‖A‖₂ = 1, the solver runs on a block
    encoding of A/α, and κ is scale-free; without it Q would change with the loss scale (Q ∝ α²). Pass
    ``sigma_max=1.0`` to get the raw d·max|H̃_ij| of the paper. ``sigma_max`` defaults to ‖H̃‖₂.
    """
    A = np.asarray(H_tilde)
    if A.size == 0:
        return 1.0
    if sigma_max is None:
        sigma_max = float(np.linalg.norm(A, 2))
    m = float(np.max(np.abs(A)))
    if sigma_max <= 0.0 or m == 0.0:
        return float(max(d, 1))
    return float(d) * m / float(sigma_max)


def default_gates_per_query(d: int, n: int) -> float:
    """g_q ≈ d·⌈log₂N⌉: a sparse oracle addresses d entries, each with a ⌈log₂N⌉-bit index (≥ 1 gate)."""
    return float(max(d, 1) * max(1, math.ceil(math.log2(max(n, 1)))))


def readout_shots(n: int, epsilon: float) -> float:
    """ℓ₂ tomography of an N-dimensional solution to precision ε: ≈ N·log₂N/ε² shots (0 for N = 1)."""
    return float(n * math.log2(n) / epsilon**2) if n > 1 else 0.0


def quantum_time(Q: float, gates_per_query: float, gate_time_s: float, *, readout: bool = False,
                 N: int | None = None, epsilon: float | None = None) -> float:
    """Estimated QLSA wall time T_Q = Q·g_q·t_gate; with ``readout`` add the tomography of Δ:
    shots·Q·g_q·t_gate (every shot re-runs the whole solve), shots = N·log₂N/ε². An estimate, never measured."""
    t = float(Q) * float(gates_per_query) * float(gate_time_s)
    if readout:
        if N is None or epsilon is None:
            raise ValueError("readout needs N and epsilon")
        t += readout_shots(N, epsilon) * t
    return t


def classical_time_measured(H_tilde: np.ndarray, g: np.ndarray, repeats: int = 3,
                            budget_s: float = 0.25) -> tuple[np.ndarray, float]:
    """Solve H̃Δ = g with ``np.linalg.solve`` and time it: the median of up to ``repeats`` runs (at least
    one; further runs stop once ``budget_s`` is spent, since one run of a large solve is already precise).
    Returns (Δ, seconds); Δ = H̃⁻¹g, the Newton gradient (the update is θ − β·clip(Δ)). A singular H̃
    falls back to least squares (timed the same way)."""
    A = np.asarray(H_tilde, dtype=float)
    b = np.asarray(g, dtype=float)

    def solve() -> np.ndarray:
        try:
            return np.linalg.solve(A, b)
        except np.linalg.LinAlgError:
            return np.linalg.lstsq(A, b, rcond=None)[0]

    times: list[float] = []
    spent = 0.0
    delta = b
    for _ in range(max(1, int(repeats))):
        t0 = time.perf_counter()
        delta = solve()
        dt = time.perf_counter() - t0
        times.append(dt)
        spent += dt
        if spent >= budget_s:
            break
    return delta, float(np.median(times))


@functools.lru_cache(maxsize=1)
def measure_flops(n: int = FLOPS_PROBE_N) -> float:
    """This machine's dense LU speed in flop/s: (2/3)n³ over the best of three LU factorisations of an
    n×n matrix (after a warm-up). Measured once per process and cached."""
    import scipy.linalg

    rng = np.random.default_rng(0)
    A = rng.standard_normal((n, n)) + n * np.eye(n)
    scipy.linalg.lu_factor(A)
    best = math.inf
    for _ in range(3):
        t0 = time.perf_counter()
        scipy.linalg.lu_factor(A)
        best = min(best, time.perf_counter() - t0)
    return (2.0 / 3.0) * n**3 / max(best, 1e-9)


def classical_time_model(N: int, flops: float | None = None) -> float:
    """T_C model = (2/3)N³/FLOPS (LU; the O(N²) triangular solves are left out). ``flops`` defaults to
    :func:`measure_flops`. Shown next to the measured time, never instead of it silently."""
    if flops is None:
        flops = measure_flops()
    return (2.0 / 3.0) * float(N) ** 3 / float(flops)


def schedule(kappa: float, T_Q: float, T_C: float, kappa_threshold: float) -> tuple[Choice, str]:
    """Our implementation of the paper's scheduler (the repository has none): κ above the
    threshold (or not finite) → classical, whatever the times; otherwise the cheaper solver (ties → classical)."""
    if not math.isfinite(kappa) or kappa > kappa_threshold:
        return "classical", f"κ = {kappa:.3g} > threshold {kappa_threshold:.3g}"
    if T_Q < T_C:
        return "quantum", f"κ = {kappa:.3g} ≤ {kappa_threshold:.3g} and T_Q = {T_Q:.3g} s < T_C = {T_C:.3g} s"
    return "classical", f"κ = {kappa:.3g} ≤ {kappa_threshold:.3g} but T_Q = {T_Q:.3g} s ≥ T_C = {T_C:.3g} s"


# -------------------------------------------------------------------------------------------- one solve task
@dataclass
class SolveRecord:
    """One Hessian-inversion task, as logged for the κ, timeline and time plots (``asdict`` → JSON; inf may
    appear in κ and become null through ``json_safe``). ``lam`` is λ (``lambda`` is a Python keyword)."""

    layer: str
    step: int
    N: int
    d: int
    lam: float
    kappa_exact: float
    kappa_bound: float  # inf beyond the float range (≈ N > 500): see log10_kappa_bound
    alpha: float
    queries: float
    gates_per_query: float
    t_quantum_s: float  # estimated (formula)
    t_classical_s: float  # measured on this machine (median of repeats)
    t_classical_model_s: float  # (2/3)N³/FLOPS with FLOPS measured here
    choice: str
    reason: str
    gate_time_s: float = 0.0
    readout_shots: float = 0.0  # 0 unless the readout was counted
    kappa_threshold: float = math.inf
    forced: bool = False
    log10_kappa_bound: float = math.nan  # finite whenever H̃ is non-singular

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def solve_and_schedule(H: np.ndarray, g: np.ndarray, *, layer: str, step: int, epsilon_norm: float,
                       keep_ratio: float, qlsa_epsilon: float, gate_time_s: float, gates_per_query: float | None,
                       kappa_threshold: float, count_readout: bool,
                       force: Choice | None = None) -> tuple[np.ndarray, SolveRecord]:
    """Prepare H̃ (prune → regularise), solve it classically (measured), cost the quantum route and choose.

    Returns (Δ = H̃⁻¹g, record). The quantum route is simulated classically: a QLSA would return the same Δ
    (up to ε), so the *update* is identical whichever solver is chosen; only the time charged differs.
    κ (exact, σ_max/σ_min) drives the queries and the threshold; the bound is logged beside it. α is for
    the σ_max-normalised matrix (see :func:`block_encoding_alpha`). ``gates_per_query`` None or ≤ 0 means
    :func:`default_gates_per_query`. ``force="classical"`` is the plain Newton baseline.
    """
    prep = prepare(H, epsilon_norm, keep_ratio)
    A = prep.matrix
    n = A.shape[0]
    delta, t_c = classical_time_measured(A, g)
    s = np.linalg.svd(A, compute_uv=False) if n else np.zeros(0)
    k_exact = _kappa_from_singular_values(s)
    log_bound = kappa_bound_log10(A)
    k_bound = 10.0**log_bound if log_bound < 308.0 else math.inf
    alpha = block_encoding_alpha(A, prep.d, sigma_max=float(s.max()) if n else None)
    queries = qlsa_queries(k_exact, qlsa_epsilon, alpha) if math.isfinite(k_exact) else math.inf
    gq = float(gates_per_query) if gates_per_query and gates_per_query > 0 else default_gates_per_query(prep.d, n)
    shots = readout_shots(n, qlsa_epsilon) if count_readout else 0.0
    t_q = quantum_time(queries, gq, gate_time_s) * (1.0 + shots)
    t_model = classical_time_model(n)
    if force is not None:
        if force != "classical":
            raise ValueError("force must be 'classical' or None (the quantum route is never executed)")
        choice: str = "classical"
        reason = "forced: classical Newton baseline"
    else:
        choice, reason = schedule(k_exact, t_q, t_c, kappa_threshold)
    record = SolveRecord(layer=str(layer), step=int(step), N=int(n), d=int(prep.d), lam=float(prep.lam),
                         kappa_exact=float(k_exact), kappa_bound=float(k_bound), alpha=float(alpha),
                         queries=float(queries), gates_per_query=gq, t_quantum_s=float(t_q), t_classical_s=t_c,
                         t_classical_model_s=float(t_model), choice=choice, reason=reason,
                         gate_time_s=float(gate_time_s), readout_shots=float(shots),
                         kappa_threshold=float(kappa_threshold), forced=force is not None,
                         log10_kappa_bound=float(log_bound))
    return delta, record


# ------------------------------------------------------------------------------------ gate-time scenarios
def _field(r: SolveRecord | Mapping[str, Any], name: str, default: Any = None) -> Any:
    if isinstance(r, SolveRecord):
        return getattr(r, name)
    v = r.get(name, default)
    return default if v is None and default is not None else v


def rescheduled_total_time(records: Iterable[SolveRecord | Mapping[str, Any]], gate_time_s: float,
                           gates_per_query: float | None = None, offset_s: float = 0.0) -> dict[str, Any]:
    """Re-run the scheduler on stored records as if the gate time were ``gate_time_s`` (and, optionally,
    g_q were ``gates_per_query``): T_Q = Q·g_q·t_gate·(1 + readout shots), the measured T_C is reused, and
    forced (baseline) records stay classical. Returns the total solve time (+ ``offset_s``, e.g. the
    non-solve part of training) and the counts. Monotone non-decreasing in the gate time.
    Records may be :class:`SolveRecord` or their stored dicts (a null κ, from ``json_safe``, reads as inf)."""
    total_q = total_c = 0.0
    n_q = n_c = 0
    for r in records:
        t_c = float(_field(r, "t_classical_s"))
        kappa = _field(r, "kappa_exact")
        kappa = math.inf if kappa is None else float(kappa)
        queries = _field(r, "queries")
        queries = math.inf if queries is None else float(queries)
        gq = float(gates_per_query) if gates_per_query else float(_field(r, "gates_per_query"))
        shots = float(_field(r, "readout_shots", 0.0) or 0.0)
        threshold = _field(r, "kappa_threshold", math.inf)
        threshold = math.inf if threshold is None else float(threshold)
        t_q = quantum_time(queries, gq, gate_time_s) * (1.0 + shots)
        if bool(_field(r, "forced", False)):
            choice = "classical"
        else:
            choice, _ = schedule(kappa, t_q, t_c, threshold)
        if choice == "quantum":
            total_q += t_q
            n_q += 1
        else:
            total_c += t_c
            n_c += 1
    return {"gate_time_s": float(gate_time_s), "total_time_s": total_q + total_c + float(offset_s),
            "quantum_time_s": total_q, "classical_time_s": total_c, "n_quantum": n_q, "n_classical": n_c}


def gate_time_curve(records: Sequence[SolveRecord | Mapping[str, Any]], gate_times: Iterable[float],
                    gates_per_query: float | None = None, offset_s: float = 0.0) -> list[dict[str, Any]]:
    """:func:`rescheduled_total_time` at each gate time (for the scenario plot, 1e-6 s … 1e-18 s)."""
    records = list(records)
    return [rescheduled_total_time(records, t, gates_per_query, offset_s) for t in gate_times]
