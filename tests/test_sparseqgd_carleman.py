"""Carleman linearisation, history system, HHL embedding, tiny HHL solve and cost model of the sparse_qgd kind."""

from __future__ import annotations

import itertools
import math
from typing import Any

import numpy as np
import pytest

from qmlapp.kinds.sparse_qgd import carleman as cm
from qmlapp.kinds.sparse_qgd import cost


def test_from_hessian_and_carleman_blocks() -> None:
    H = np.array([[2.0, 0.5], [0.5, 1.0]])
    g = np.array([0.1, -0.2])
    ode = cm.QuadraticODE.from_hessian(g, H, beta=0.3)
    u = np.array([0.2, -0.1])
    # gradient of gᵀu + ½uᵀHu + (β/3)Σu³ is g + Hu + βu²
    np.testing.assert_allclose(ode.rhs(u), -(g + H @ u + 0.3 * u**2))
    A, b = cm.carleman_matrix(ode, 3)
    assert A.shape == (cm.carleman_dim(2, 3),) * 2 == (14, 14)
    np.testing.assert_allclose(b[:2], -g)
    assert not b[2:].any()
    # exact for the first block: (A y + b)[:n] = du/dt
    y = cm.carleman_vector(u, 3)
    np.testing.assert_allclose((A @ y + b)[:2], ode.rhs(u))
    # second block: d(u⊗u)/dt = f⊗u + u⊗f up to the truncated cubic term (none at order 3)
    f = ode.rhs(u)
    np.testing.assert_allclose((A @ y + b)[2:6], np.kron(f, u) + np.kron(u, f), atol=1e-12)


def test_truncation_error_decreases_with_order() -> None:
    ode = cm.toy_problem(2, (0.5, 2.0), beta=0.8, seed=0)
    u0 = np.array([0.3, -0.2])
    h = 0.05
    assert cm.step_guard(h, 4, 2.0)["ok"]
    err = cm.truncation_error(ode, u0, h, 30, [1, 2, 3, 4])
    values = [err[k] for k in (1, 2, 3, 4)]
    assert all(a > b for a, b in itertools.pairwise(values)), values
    assert values[0] > 10 * values[-1]
    # order 1 with β = 0 and g = 0 is exact (linear GD)
    lin = cm.toy_problem(2, (0.5, 2.0), beta=0.0, seed=0)
    assert cm.truncation_error(lin, u0, h, 30, [1])[1] < 1e-12


def test_history_kappa_bounded_for_contraction_and_linear_for_marginal() -> None:
    contracting = cm.kappa_vs_T(0.8 * np.eye(3), [10, 40, 80])
    ks = [r["kappa"] for r in contracting]
    assert ks[-1] < 10.0  # ‖L‖ ≤ 1.8, ‖L⁻¹‖ ≤ Σ 0.8^k = 5
    assert ks[-1] / ks[0] < 1.5
    rng = np.random.default_rng(1)
    q, _ = np.linalg.qr(rng.standard_normal((4, 4)))
    M = 0.7 * q @ np.diag([1.0, 0.9, 0.5, 0.2])  # non-symmetric contraction, ‖M‖ = 0.7
    assert cm.history_kappa(M, 80) < (1 + 0.7) / (1 - 0.7) + 1e-9
    marginal = cm.kappa_vs_T(np.diag([1.0, 0.5]), [10, 80])
    k10, k80 = marginal[0]["kappa"], marginal[1]["kappa"]
    assert k80 > 5 * k10
    assert 4 < k80 / k10 < 12  # roughly linear: 8× the steps
    # idle (copy) rows behave like the marginal case
    assert cm.history_kappa(0.5 * np.eye(2), 5, idle=40) > 3 * cm.history_kappa(0.5 * np.eye(2), 5, idle=0)


def test_history_system_reproduces_carleman_euler() -> None:
    ode = cm.toy_problem(2, (0.5, 2.0), beta=0.5, seed=3, grad_scale=0.1)
    u0 = np.array([0.2, 0.1])
    h, T, P, order = 0.1, 5, 2, 2
    A, b = cm.carleman_matrix(ode, order)
    L = cm.history_matrix(cm.euler_map(A, h), T, P)
    rhs = cm.history_rhs(cm.carleman_vector(u0, order), h * b, T, P)
    Y = np.linalg.solve(L.toarray(), rhs).reshape(T + P + 1, -1)
    traj = cm.carleman_euler(ode, u0, h, T, order)
    np.testing.assert_allclose(Y[: T + 1, :2], traj, atol=1e-12)
    np.testing.assert_allclose(Y[T + 1 :], np.repeat(Y[T : T + 1], P, axis=0), atol=1e-12)


def test_history_kappa_sparse_path_matches_dense() -> None:
    M = 0.9 * np.eye(5)
    L = cm.history_matrix(M, 140)  # 705 > DENSE_SVD_MAX → svds / shift-invert
    assert L.shape[0] > cm.DENSE_SVD_MAX
    dense = np.linalg.cond(L.toarray())
    assert cm.kappa(L) == pytest.approx(dense, rel=1e-6)


def test_dissipativity_classes() -> None:
    d = cm.dissipativity([0.5, 1.0, 2.0], eta=0.5)
    assert d["class"] == "dissipative"
    assert d["delta"] == pytest.approx(0.25)  # ηλ ∈ {0.25, 0.5, 1}: max|1 − ηλ| = 0.75
    d = cm.dissipativity([0.5, 1.0, 2.0], eta=0.4)
    assert d["delta"] == pytest.approx(1 - 0.8)
    spectrum = np.r_[np.linspace(0.1, 1.0, 99), -0.01]
    d = cm.dissipativity(spectrum, eta=0.5)
    assert d["class"] == "almost dissipative"
    assert d["negative_fraction"] == pytest.approx(0.01)
    assert d["negative_mass"] < 0.01
    assert d["lambda_min"] == -0.01 and d["lambda_max"] == 1.0
    assert cm.dissipativity(np.r_[np.ones(10), -np.ones(2)], 0.5)["class"] == "non-dissipative"
    assert cm.dissipativity([0.5, 5.0], eta=0.5)["class"] == "non-dissipative"  # ηλ = 2.5 ≥ 2
    assert cm.dissipativity([0.0, 1.0], eta=0.5)["class"] == "almost dissipative"  # marginal direction


def test_r_number_by_hand_and_step_guard() -> None:
    ode = cm.QuadraticODE.from_hessian(np.array([0.1, 0.0]), np.diag([1.0, 3.0]), beta=0.5)
    u0 = np.array([0.3, 0.4])  # ‖u0‖ = 0.5
    r = cm.r_number(ode, u0)
    # λ₁ = −1; ‖F₂‖ = 0.5 (two disjoint entries −β); ‖F₀‖ = 0.1 → R = (0.5·0.5 + 0.1/0.5)/1 = 0.45
    assert r["defined"] and r["re_lambda1"] == pytest.approx(-1.0)
    assert r["norm_F2"] == pytest.approx(0.5)
    assert r["R"] == pytest.approx(0.45)
    bad = cm.r_number(cm.QuadraticODE.from_hessian(np.zeros(2), np.diag([-0.1, 1.0])), u0)
    assert not bad["defined"] and math.isinf(bad["R"])
    assert cm.r_number(ode, np.zeros(2))["R"] == math.inf
    assert cm.step_guard(0.1, 2, 3.0)["ok"] and not cm.step_guard(0.2, 2, 3.0)["ok"]
    assert cm.step_guard(0.1, 2, 3.0)["h_max"] == pytest.approx(1 / 6)


def test_dilation_and_padding() -> None:
    rng = np.random.default_rng(0)
    L = rng.standard_normal((3, 3)) + 3 * np.eye(3)
    D = cm.dilate(L)
    np.testing.assert_allclose(D, D.T)
    s = np.linalg.svd(L, compute_uv=False)
    np.testing.assert_allclose(np.sort(np.linalg.eigvalsh(D)), np.sort(np.r_[s, -s]), atol=1e-12)
    P = cm.pad_pow2(D)
    assert P.shape == (8, 8)
    assert np.linalg.cond(P) == pytest.approx(np.linalg.cond(L))
    Ds = cm.dilate(cm.history_matrix(0.5 * np.eye(3), 1))  # sparse in, sparse out
    assert (Ds != Ds.T).nnz == 0
    assert cm.pad_pow2(Ds).shape == (16, 16)


def test_small_solve_simulated_and_emulated() -> None:
    from qmlapp.kinds.sparse_qgd.small_solve import solve_history_hhl, tiny_history_system

    L, rhs = tiny_history_system(n=1, order=2, T=2)  # 6×6 → dilation 12 → padded 16 (4 system qubits)
    res = solve_history_hhl(L, rhs, clock_qubits=6, method="signed")
    assert res["label"] == "simulated" and res["emulated"]["label"] == "emulated"
    assert res["dim_hhl"] == 16 and res["qubits"]["total"] == 11
    assert res["fidelity"] > 0.99  # measured 0.9999
    assert res["emulated"]["fidelity"] > 0.99
    assert res["sim_vs_emulated"] > 0.9999
    assert res["success_probability"] == pytest.approx(res["emulated"]["success_probability"], rel=1e-3)
    sq = solve_history_hhl(L, rhs, clock_qubits=5, method="squared")
    assert sq["kappa_hhl"] == pytest.approx(sq["kappa_L"] ** 2)
    assert sq["fidelity"] > 0.9 and sq["sim_vs_emulated"] > 0.9999
    assert sq["success_probability"] < res["success_probability"]  # κ² costs success probability


def test_cost_model_monotone() -> None:
    base: dict[str, Any] = {"carleman_order": 2, "T": 20, "s_row": 10, "epsilon": 1e-3, "download_precision": 1e-2}
    lo = cost.window_cost(1e6, 1e5, kappa=10, qlsa="optimal", **base)
    hi = cost.window_cost(1e6, 1e5, kappa=100, qlsa="optimal", **base)
    hhl = cost.window_cost(1e6, 1e5, kappa=10, qlsa="hhl", **base)
    assert hi["queries"] > lo["queries"]
    assert hhl["queries"] >= lo["queries"]
    assert hhl["queries_raw"] == pytest.approx(10 * lo["queries_raw"])
    fine = cost.window_cost(1e6, 1e5, kappa=10, **{**base, "download_precision": 1e-3})
    assert fine["shots"]["total"] > lo["shots"]["total"]
    assert fine["shots"]["norm"] == pytest.approx(100 * lo["shots"]["norm"])
    assert lo["label"] == "estimated" and isinstance(lo["favourable"], bool)
    assert lo["qubits"]["carleman"] == math.ceil(math.log2(1e6 + 1e12))
    ps = cost.paper_scale(7e6, 0.9, kappa=10, s_row=50, T=20)
    assert ps["s"] == pytest.approx(7e5) and ps["label"] == "estimated"
    rows = cost.scaling_with_n([1e4, 1e6, 1e8], 0.9, 10, 50, 20)
    assert [r["qubits"]["total"] for r in rows] == sorted(r["qubits"]["total"] for r in rows)
