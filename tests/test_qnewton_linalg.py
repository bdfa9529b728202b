"""Q-Newton linear algebra, cost model, scheduler (``linalg``) and HHL on qsim (``hhl``) of ``qmlapp.kinds.qnewton``."""

from __future__ import annotations

import itertools
import json
import math
from dataclasses import asdict
from typing import Any

import numpy as np
import pytest

from qmlapp.context import json_safe
from qmlapp.kinds.qnewton import linalg as la
from qmlapp.kinds.qnewton.hhl import hessian_like_matrix, hhl_solve, hhl_sweep

COMMON: dict[str, Any] = {"qlsa_epsilon": 1e-2, "gates_per_query": 0, "kappa_threshold": 1e4,
                          "count_readout": False}


def _orthogonal_spd(n: int, evals: np.ndarray) -> np.ndarray:
    """Dense SPD matrix with the given eigenvalues (orthonormal DCT-II basis: dense and cheap at N = 1024)."""
    import scipy.fft

    q = scipy.fft.dct(np.eye(n), norm="ortho", axis=0)
    A = (q * evals) @ q.T
    return (A + A.T) / 2


def _random_psd(n: int, rank: int, seed: int) -> np.ndarray:
    x = np.random.default_rng(seed).standard_normal((rank, n))
    return x.T @ x / rank


# ------------------------------------------------------------------------------------------------ κ bound
def test_kappa_bound_exact_on_2x2() -> None:
    rng = np.random.default_rng(0)
    for _ in range(300):
        A = rng.standard_normal((2, 2)) * 10 ** rng.uniform(-8, 8)
        assert la.kappa_bound(A) == pytest.approx(la.kappa_exact(A), rel=1e-9)
    s = rng.standard_normal((2, 2))
    sym = s + s.T
    assert la.kappa_bound(sym) == pytest.approx(la.kappa_exact(sym), rel=1e-9)


def test_kappa_bound_fixes_authors_typo() -> None:
    # The authors' docstring example: their formula gives NaN (docstring claims 2.5); κ₂ = 14.933…
    A = np.array([[1.0, 2.0], [3.0, 4.0]])
    assert math.isnan(la.kappa_bound_authors(A))
    assert la.kappa_bound(A) == pytest.approx(14.933034373659268, rel=1e-9)
    assert la.kappa_bound(A) == pytest.approx(la.kappa_exact(A), rel=1e-9)
    rng = np.random.default_rng(1)
    nan_count = 0
    for n in (3, 5, 8):
        for _ in range(10):
            A = rng.standard_normal((n, n))
            nan_count += math.isnan(la.kappa_bound_authors(A))
            assert math.isfinite(la.kappa_bound(A))
    assert nan_count > 0


def test_kappa_bound_is_an_upper_bound() -> None:
    rng = np.random.default_rng(2)
    for n in (3, 4, 6, 10, 20, 40):
        for _ in range(5):
            for A in (rng.standard_normal((n, n)), _random_psd(n, 2 * n, int(rng.integers(1 << 30)))):
                assert la.kappa_bound(A) >= la.kappa_exact(A) * (1 - 1e-9)


def test_kappa_bound_log_space_large_n() -> None:
    A = hessian_like_matrix(500, 10.0, seed=0)
    with np.errstate(all="raise"):  # no overflow, underflow to NaN or invalid operation anywhere
        base = la.kappa_bound(A)
        big = la.kappa_bound(A * 1e200)  # det and ‖A‖_F overflow if computed directly
        small = la.kappa_bound(A * 1e-200)
    assert math.isfinite(base) and base >= la.kappa_exact(A)
    assert big == pytest.approx(base, rel=1e-6) and small == pytest.approx(base, rel=1e-6)
    near_identity = np.eye(500) + 1e-3 * A
    assert 1.0 <= la.kappa_exact(near_identity) <= la.kappa_bound(near_identity) < 1.1
    assert la.kappa_bound(np.eye(500)) == pytest.approx(1.0)
    # very ill-conditioned: the bound exceeds the float range; it is inf, never NaN, and its log is finite
    ill = _orthogonal_spd(500, np.logspace(0, -12, 500))
    assert la.kappa_bound(ill) == math.inf
    assert 308 < la.kappa_bound_log10(ill) < math.inf
    assert la.kappa_bound_log10(A) == pytest.approx(math.log10(base), rel=1e-12)


def test_kappa_singular() -> None:
    A = np.array([[1.0, 2.0], [2.0, 4.0]])
    assert la.kappa_exact(A) > 1e15  # σ_min is rounding noise, not exactly 0
    assert la.kappa_bound(A) == math.inf  # slogdet reports det = 0 exactly
    assert la.kappa_exact(np.diag([1.0, 0.0])) == math.inf
    assert la.kappa_bound(np.zeros((3, 3))) == math.inf


# ------------------------------------------------------------------------------------------------- queries
def test_query_cost_monotone() -> None:
    kappas = np.logspace(0, 8, 40)
    q = la.qlsa_queries(kappas, 1e-2, 2.0)
    assert np.all(np.diff(q) > 0)
    eps = np.logspace(-3, -12, 40)  # decreasing ε = increasing 1/ε
    for kappa in (1.0, 10.0, 100.0, 1e4, 1e8):
        for alpha in (1.0, 10.0, 100.0):
            assert np.all(np.diff(la.qlsa_queries(kappa, eps, alpha)) > 0)
    # Above ε ≈ 3e-3 the outer 1/(0.39 − 0.204ε) wins: a shallow minimum, then Q grows again with ε.
    assert la.qlsa_queries(1e4, 0.3, 1.0) > la.qlsa_queries(1e4, 0.03, 1.0) > la.qlsa_queries(1e4, 0.006, 1.0)
    # α enters twice: between linear and quadratic growth
    ratio = la.qlsa_queries(1e4, 1e-2, 4.0) / la.qlsa_queries(1e4, 1e-2, 2.0)
    assert 2.0 < ratio <= 4.0 + 1e-12
    assert la.qlsa_queries(math.inf, 1e-2, 1.0) == math.inf


def test_query_cost_matches_authors_formula() -> None:
    from math import e, log, pi, sqrt

    alpha, kappa, eps = 3.0, 250.0, 0.05
    q_star = (1741 * alpha * e / 500) * sqrt(kappa**2 + 1) * (
        (133 / 125 + 4 / (25 * kappa ** (1 / 3))) * pi * log(2 * kappa + 3) + 1) + (351 / 50) * log(
        2 * kappa + 3) ** 2 * (log(451 * log(2 * kappa + 3) ** 2 / eps) + 1) + alpha * kappa * log(32 / eps)
    assert la.qlsa_queries(kappa, eps, alpha) == pytest.approx(alpha * q_star / (0.39 - 0.204 * eps), rel=1e-12)


def test_times_and_alpha() -> None:
    assert la.default_gates_per_query(5, 1024) == 50
    assert la.default_gates_per_query(1, 1) == 1
    base = la.quantum_time(1e6, 10, 1e-9)
    assert base == pytest.approx(1e-2)
    shots = 64 * 6 / 1e-4
    assert la.quantum_time(1e6, 10, 1e-9, readout=True, N=64, epsilon=1e-2) == pytest.approx(base * (1 + shots))
    with pytest.raises(ValueError):
        la.quantum_time(1.0, 1.0, 1.0, readout=True)
    H = _random_psd(30, 60, 3) + np.eye(30)
    alpha = la.block_encoding_alpha(H, 30)
    assert 1.0 <= alpha <= 30.0
    assert la.block_encoding_alpha(7.0 * H, 30) == pytest.approx(alpha)  # scale-free
    assert la.block_encoding_alpha(H, 30, sigma_max=1.0) == pytest.approx(30 * np.abs(H).max())
    assert la.classical_time_model(100, flops=1e9) == pytest.approx((2 / 3) * 1e6 / 1e9)
    assert la.measure_flops() > 1e6 and la.measure_flops() == la.measure_flops()  # cached
    delta, secs = la.classical_time_measured(H, np.arange(30.0), repeats=3)
    np.testing.assert_allclose(H @ delta, np.arange(30.0), atol=1e-9)
    assert secs > 0


# ------------------------------------------------------------------------------------ pruning, regularising
@pytest.mark.parametrize("ratio", [0.05, 0.1, 0.25, 0.5, 0.9])
def test_prune_symmetric(ratio: float) -> None:
    n = 40
    rng = np.random.default_rng(4)
    x = rng.standard_normal((n, n))
    H = x + x.T
    H[np.diag_indices(n)] = 1e-6  # tiny diagonal: never in a row's top-k, kept anyway
    P, mask = la.prune_symmetric(H, ratio)
    k = la.keep_count(n, ratio)
    assert k == max(1, math.floor(ratio * n + 1e-9))
    np.testing.assert_array_equal(P, P.T)
    np.testing.assert_array_equal(mask, mask.T)
    assert np.all(np.diag(mask)) and np.all(np.diag(P) == np.diag(H))
    np.testing.assert_array_equal(P[mask], H[mask])
    assert np.all(P[~mask] == 0)
    top = np.argsort(-np.abs(H), axis=1)[:, :k]
    for i in range(n):
        assert np.all(mask[i, top[i]])  # each row's own top-k survive
    row_top = np.zeros((n, n), dtype=bool)
    row_top[np.arange(n)[:, None], top] = True
    d = la.row_sparsity(P)
    assert d == int(mask.sum(axis=1).max())
    assert d <= k + 1 + int(row_top.sum(axis=0).max())


def test_prune_sparsity_2k_and_counterexample() -> None:
    # Entries decaying away from the diagonal (a typical Hessian-like pattern): top-k sets are
    # neighbourhoods, so the symmetrised mask has d ≤ 2k.
    n = 64
    i, j = np.indices((n, n))
    rng = np.random.default_rng(5)
    noise = rng.uniform(0.9, 1.1, (n, n))
    H = np.exp(-np.abs(i - j)) * (noise + noise.T) / 2
    for ratio in (0.05, 0.1, 0.2):
        k = la.keep_count(n, ratio)
        P, _ = la.prune_symmetric(H, ratio)
        assert la.row_sparsity(P) <= 2 * k
    # Arrow matrix: every row's top-1 is its column-0 entry, so row 0 keeps everything (d = N at k = 1).
    A = np.eye(n) * 0.1
    A[0, 1:] = A[1:, 0] = 1.0
    A[0, 0] = 2.0
    P, _ = la.prune_symmetric(A, 1 / n)
    assert la.keep_count(n, 1 / n) == 1 and la.row_sparsity(P) == n


def test_prune_dense_is_identity() -> None:
    H = _random_psd(12, 5, 6)
    P, mask = la.prune_symmetric(H, 1.0)
    np.testing.assert_array_equal(P, H)
    assert mask.all()
    with pytest.raises(ValueError):
        la.prune_symmetric(H, 0.0)


def test_prepare_prunes_then_regularises() -> None:
    H = _random_psd(30, 10, 7)
    prep = la.prepare(H, 5e-3, 0.2)
    assert prep.order == "prune→regularise"
    assert prep.lam == pytest.approx(5e-3 * (np.abs(H).max() + 1e-6))
    pruned, mask = la.prune_symmetric(H, 0.2)
    np.testing.assert_allclose(prep.matrix, pruned + prep.lam * np.eye(30))
    np.testing.assert_array_equal(prep.mask, mask)
    assert np.all(np.diag(prep.matrix) == np.diag(H) + prep.lam)  # the shift survives
    assert prep.d == la.row_sparsity(prep.matrix) and prep.k == la.keep_count(30, 0.2)


@pytest.mark.parametrize("eps", [1e-3, 1e-2, 0.1, 1.0, 10.0])
def test_regularised_kappa_bound(eps: float) -> None:
    for seed, (n, rank) in enumerate([(40, 5), (40, 80), (100, 3)]):
        H = _random_psd(n, rank, seed)
        Ht, _ = la.regularise(H, eps)
        assert la.kappa_exact(Ht) <= 1 + n / eps


# ------------------------------------------------------------------------------------------------ scheduler
def test_schedule_rules() -> None:
    assert la.schedule(1e5, 1e-9, 1.0, 1e4)[0] == "classical"
    assert la.schedule(math.inf, 0.0, 1.0, 1e4)[0] == "classical"
    assert la.schedule(10.0, 1e-3, 1.0, 1e4)[0] == "quantum"
    assert la.schedule(10.0, 2.0, 1.0, 1e4)[0] == "classical"
    assert la.schedule(10.0, 1.0, 1.0, 1e4)[0] == "classical"  # tie


def test_scheduler_dense_ill_conditioned_goes_classical() -> None:
    n = 1024
    g = np.random.default_rng(8).standard_normal(n)
    A = _orthogonal_spd(n, np.logspace(0, -6, n))  # κ = 1e6
    delta, rec = la.solve_and_schedule(A, g, layer="W1", step=3, epsilon_norm=1e-12, keep_ratio=1.0,
                                       gate_time_s=1e-18, **COMMON)
    assert rec.kappa_exact == pytest.approx(1e6, rel=1e-3)
    assert rec.choice == "classical" and "threshold" in rec.reason
    assert rec.d == n and rec.N == n and rec.kappa_bound >= rec.kappa_exact
    assert math.isfinite(rec.log10_kappa_bound) and rec.log10_kappa_bound >= 6
    np.testing.assert_allclose(A @ delta, g, rtol=0, atol=1e-6 * np.abs(g).max())
    # κ = 100 is below the threshold, but at today's gate times T_Q ≫ T_C
    A = _orthogonal_spd(n, np.logspace(0, -2, n))
    _, rec = la.solve_and_schedule(A, g, layer="W1", step=3, epsilon_norm=1e-12, keep_ratio=1.0,
                                   gate_time_s=1e-6, **COMMON)
    assert rec.kappa_exact < 1e4 and rec.choice == "classical"
    assert rec.t_quantum_s > 1e3 * rec.t_classical_s


def test_scheduler_sparse_well_conditioned_goes_quantum() -> None:
    n = 1024
    i, j = np.indices((n, n))
    H = np.where(np.abs(i - j) == 1, -0.3, 0.0) + np.where(i == j, 1.0, 0.0) + 1e-4 * np.exp(-np.abs(i - j) / 50)
    g = np.ones(n)
    delta, rec = la.solve_and_schedule(H, g, layer="W1", step=0, epsilon_norm=5e-3, keep_ratio=3 / n,
                                       gate_time_s=1e-18, **COMMON)
    assert rec.d <= 6 and rec.kappa_exact < 10
    assert rec.choice == "quantum" and rec.t_quantum_s < rec.t_classical_s
    # the update is the classical solve of H̃ whatever the choice
    prep = la.prepare(H, 5e-3, 3 / n)
    np.testing.assert_allclose(delta, np.linalg.solve(prep.matrix, g), rtol=1e-10)
    _, forced = la.solve_and_schedule(H, g, layer="W1", step=0, epsilon_norm=5e-3, keep_ratio=3 / n,
                                      gate_time_s=1e-18, force="classical", **COMMON)
    assert forced.choice == "classical" and forced.forced
    # counting the readout (N·log₂N/ε² shots) multiplies the quantum time
    _, ro = la.solve_and_schedule(H, g, layer="W1", step=0, epsilon_norm=5e-3, keep_ratio=3 / n,
                                  gate_time_s=1e-18, **{**COMMON, "count_readout": True})
    assert ro.t_quantum_s == pytest.approx(rec.t_quantum_s * (1 + n * 10 / 1e-4))


def test_rescheduled_totals_monotone_in_gate_time() -> None:
    records = []
    rng = np.random.default_rng(9)
    for step, (n, kappa) in enumerate([(16, 3.0), (64, 30.0), (64, 1e3), (32, 1e6), (128, 10.0)]):
        A = _orthogonal_spd(n, np.logspace(0, -math.log10(kappa), n))
        _, rec = la.solve_and_schedule(A, rng.standard_normal(n), layer=f"L{step % 2}", step=step,
                                       epsilon_norm=1e-12, keep_ratio=1.0, gate_time_s=1e-9, **COMMON)
        records.append(rec)
    gate_times = np.logspace(-18, -6, 25)
    curve = la.gate_time_curve(records, gate_times)
    totals = [p["total_time_s"] for p in curve]
    n_q = [p["n_quantum"] for p in curve]
    assert np.all(np.diff(totals) >= 0) and np.all(np.diff(n_q) <= 0)
    assert n_q[0] == 4 and n_q[-1] == 0  # κ = 1e6 is never quantum
    assert curve[-1]["total_time_s"] == pytest.approx(sum(r.t_classical_s for r in records))
    # the stored (JSON) form gives the same curve; null κ (inf through json_safe) reads as inf
    stored = json.loads(json.dumps(json_safe([asdict(r) for r in records]), allow_nan=False))
    assert [p["total_time_s"] for p in la.gate_time_curve(stored, gate_times)] == pytest.approx(totals)
    # same gate time as recorded → the recorded choices
    same = la.rescheduled_total_time(records, 1e-9)
    assert same["n_quantum"] == sum(r.choice == "quantum" for r in records)
    # a fixed offset (non-solve time) shifts every point
    assert la.rescheduled_total_time(records, 1e-6, offset_s=2.0)["total_time_s"] == pytest.approx(totals[-1] + 2)


# ---------------------------------------------------------------------------------------------------- HHL
def test_hessian_like_matrix() -> None:
    A = hessian_like_matrix(8, 50.0, seed=1)
    np.testing.assert_array_equal(A, A.T)
    ev = np.linalg.eigvalsh(A)
    assert ev[-1] == pytest.approx(1.0) and ev[0] == pytest.approx(1 / 50)
    assert la.kappa_exact(A) == pytest.approx(50.0)


def test_hhl_exact_on_representable_eigenvalues() -> None:
    A = np.diag([1.0, 2.0, 4.0, 7.0])  # λ_max ↦ clock value 7 = 2³ − 1: every eigenvalue is on the grid
    b = np.array([0.5, -0.5, 0.5, 0.5])
    res = hhl_solve(A, b, clock_qubits=3)
    x = np.linalg.solve(A, b)
    assert res.c_constant == pytest.approx(1.0)
    np.testing.assert_allclose(res.raw, res.c_constant * x, atol=2e-6)
    assert res.fidelity == pytest.approx(1.0, abs=1e-6)
    assert res.success_probability == pytest.approx(float(np.sum((res.c_constant * x) ** 2)), abs=1e-6)
    assert res.qubits == {"system": 2, "clock": 3, "ancilla": 1, "total": 6}
    # the same in a rotated basis (non-diagonal A, same spectrum)
    q, _ = np.linalg.qr(np.random.default_rng(0).standard_normal((4, 4)))
    res = hhl_solve(q @ A @ q.T, q @ b, clock_qubits=3)
    assert res.fidelity == pytest.approx(1.0, abs=1e-5)


def test_hhl_fidelity_grows_with_clock_qubits() -> None:
    rows = hhl_sweep(4, [2.0], [3, 4, 5, 6], seed=0)
    fid = [r["fidelity"] for r in rows]
    assert all(b > a for a, b in itertools.pairwise(fid))
    assert fid[-1] > 0.95
    assert {"kappa", "clock_qubits", "fidelity", "success_probability", "qubits"} <= set(rows[0])
    assert [r["qubits"] for r in rows] == [6, 7, 8, 9]


def test_hhl_success_probability_falls_with_kappa() -> None:
    rows = hhl_sweep(4, [2.0, 10.0, 100.0], [5], seed=0)
    p = [r["success_probability"] for r in rows]
    assert p[0] > p[1] > p[2] > 0


def test_hhl_rejects_bad_input() -> None:
    with pytest.raises(ValueError):
        hhl_solve(np.eye(3), np.ones(3), 3)
    with pytest.raises(ValueError):
        hhl_solve(np.diag([1.0, -1.0]), np.ones(2), 3)
    with pytest.raises(ValueError):
        hhl_solve(np.array([[1.0, 0.5], [0.0, 1.0]]), np.ones(2), 3)
