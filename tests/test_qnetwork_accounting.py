"""Communication accounting, data loaders and plot infos of the ``qnetwork`` kind (fast, no TF/cirq)."""

from __future__ import annotations

import itertools
import json
import math

import numpy as np
import plotly.graph_objects as go
import pytest

from qmlapp.kinds.qnetwork import accounting as acc
from qmlapp.kinds.qnetwork import plots as qp
from qmlapp.kinds.qnetwork.data import QnetData, load_qnet_data, pad_features, random_inputs

K_005 = math.ceil(2 * math.log(2 / 0.05) / 0.05**2)


# ------------------------------------------------------------------------------------------- counters


def test_register_and_hoeffding() -> None:
    assert [acc.register_qubits(N) for N in (1, 2, 3, 4, 5, 1024, 1025, 2**40)] == [1, 1, 2, 2, 3, 10, 11, 40]
    assert acc.hoeffding_copies(0.05, 0.05) == K_005 == 2952
    assert acc.hoeffding_copies(0.1, 0.01) == math.ceil(200 * math.log(200))
    with pytest.raises(ValueError):
        acc.hoeffding_copies(0.0, 0.05)
    with pytest.raises(ValueError):
        acc.hoeffding_copies(0.1, 1.0)


def test_spec_copies_agree() -> None:
    from qmlapp.kinds.qnetwork.spec import QnetworkSpec

    for eps, delta in ((0.05, 0.05), (0.013, 0.2), (0.3, 0.001)):
        spec = QnetworkSpec(epsilon=eps, delta=delta)
        assert spec.copies == acc.hoeffding_copies(eps, delta)
        assert spec.n_qubits == acc.register_qubits(spec.n_features)


def test_inference_and_parameter_shift_counts() -> None:
    assert acc.rounds(2) == 3 and acc.rounds(2, bob_measures=False) == 4 and acc.rounds(1) == 1
    assert acc.quantum_inference_qubits(1024, 2, 100) == 100 * 3 * 10
    assert acc.quantum_inference_qubits(1024, 2, 100, bob_measures=False) == 100 * 4 * 10
    assert acc.quantum_inference_qubits(1000, 3, 7) == 7 * 5 * 10  # padded to 1024
    assert acc.parameter_shift_qubits(1024, 2, 20, 100) == 2 * (2 * 2 * 20) * 100 * 3 * 10
    assert acc.parameter_shift_qubits(16, 1, 1, 1) == 4 * 1 * 4


def test_shadow_bound_monotone_and_formula() -> None:
    assert acc.shadow_gradient_qubits(1024, 2, 20, 0.1, 3.0) == pytest.approx(
        3.0 * 4 * math.log2(80) ** 2 * 100 / 0.1**4)
    in_p = [acc.shadow_gradient_qubits(1024, 2, p, 0.05) for p in (1, 2, 10, 100, 10_000)]
    in_eps = [acc.shadow_gradient_qubits(1024, 2, 20, e) for e in (0.5, 0.1, 0.05, 0.01)]
    assert all(a < b for a, b in itertools.pairwise(in_p))
    assert all(a < b for a, b in itertools.pairwise(in_eps))
    # 1/ε⁴: halving ε costs 16×
    assert acc.shadow_gradient_qubits(64, 1, 5, 0.05) / acc.shadow_gradient_qubits(64, 1, 5, 0.1) == pytest.approx(16)


@pytest.mark.parametrize(("N", "L", "eps", "C"), [(1024, 2, 0.05, 1.0), (2**20, 4, 0.1, 10.0), (16, 1, 0.2, 0.5)])
def test_crossover(N: int, L: int, eps: float, C: float) -> None:
    K = acc.hoeffding_copies(eps, 0.05)
    p_star = acc.shadow_crossover_params(N, L, eps, delta=0.05, C=C)
    assert p_star > 1
    above, below = math.ceil(p_star * 1.001), max(1, math.floor(p_star * 0.999))
    assert acc.shadow_gradient_qubits(N, L, above, eps, C) < acc.parameter_shift_qubits(N, L, above, K)
    assert acc.shadow_gradient_qubits(N, L, below, eps, C) > acc.parameter_shift_qubits(N, L, below, K)
    for p in (p_star * 10, p_star * 1000):  # stays cheaper beyond
        assert acc.shadow_gradient_qubits(N, L, round(p), eps, C) < acc.parameter_shift_qubits(N, L, round(p), K)


def test_crossover_when_shadow_always_cheaper() -> None:
    assert acc.shadow_crossover_params(1024, 2, 0.05, C=1e-9) == 1.0


def test_classical_baselines() -> None:
    assert acc.ship_data_bits(1024, 32) == 32768
    assert acc.ship_model_bits(2, 20, 64) == 2560
    assert acc.ship_gradient_bits(1024, 2, 20, 32) == 32768 + 2 * 2 * 20 * 32
    assert acc.linear_sketch_samples(0.1) == 100
    assert acc.linear_sketch_bits(1024, 32, 0.1) == 100 * (10 + 32)
    assert acc.linear_sketch_bits(1024, 32, 0.1, c=2.5) == 250 * 42
    assert acc.quantum_linear_qubits(1024, 0.1, 0.05) == acc.hoeffding_copies(0.1, 0.05) * 11


def test_holevo() -> None:
    assert acc.holevo_bound_bits(100, 3, 10) == 3000
    assert acc.holevo_bound_bits(100, 3, 10, entanglement=True) == 6000


def test_advantage_ratio_uses_cheapest_classical() -> None:
    assert acc.advantage_ratio([1000, 300, 5000], 100) == 3.0
    assert acc.advantage_ratio({"data": 50, "model": 80}, 100) == 0.5
    assert acc.advantage_ratio(200, 100) == 2.0
    with pytest.raises(ValueError):
        acc.advantage_ratio([], 1)


@pytest.mark.parametrize("b", [16, 32, 64])
def test_linear_case_ratio_is_order_one(b: int) -> None:
    gamma, delta = 0.1, 0.05
    c = 2 * math.log(2 / delta)
    for n in (8, 12, 20, 30, 40):
        N = 2**n
        quantum = acc.quantum_linear_qubits(N, gamma, delta)
        ratio = acc.advantage_ratio([acc.ship_data_bits(N, b), acc.linear_sketch_bits(N, b, gamma, c)], quantum)
        assert ratio <= 10
        if n >= 12:  # ship-x is no longer the cheaper protocol; ratio ≈ (n + b)/(n + 1)
            assert ratio == pytest.approx((n + b) / (n + 1), rel=0.01)


def test_deep_case_advantage_grows_with_N() -> None:
    K = acc.hoeffding_copies(0.05, 0.05)
    fixed = acc.scaling_curves(2, 20, 0.05, 0.05, K, 32, 0.1, 1.0, n_max=40)
    dense = acc.scaling_curves(2, 20, 0.05, 0.05, K, 32, 0.1, 1.0, n_max=40, params_growth="dense")
    vs_data = fixed["ratios"]["deep_vs_data"]["values"]
    deep_dense = dense["ratios"]["deep"]["values"]
    assert all(a < b for a, b in itertools.pairwise(vs_data[1:]))  # N = 2 and 4 tie
    assert all(a < b for a, b in itertools.pairwise(deep_dense[1:]))
    assert deep_dense[-1] > 1e6 and deep_dense[0] < 1  # exponential gap at large N, none at small N
    # linear ratio stays O(1) where the deep one explodes
    assert max(dense["ratios"]["linear"]["values"]) <= 10
    # with P fixed, shipping Bob's weights caps the advantage (flat classical cost, growing quantum cost)
    capped = fixed["ratios"]["deep"]["values"]
    assert capped[-1] == pytest.approx(fixed["series"]["ship_model"]["values"][-1]
                                       / fixed["series"]["quantum_inference"]["values"][-1])


def test_scaling_curves_format_and_provenance() -> None:
    K = 500
    c = acc.scaling_curves(3, 10, 0.1, 0.05, K, 32, 0.2, 2.0, n_max=30, simulated_max_n=16)
    json.dumps(c)
    assert c["N"] == [2**n for n in range(1, 31)] and c["n_qubits"] == list(range(1, 31))
    for s in [*c["series"].values(), *c["ratios"].values()]:
        assert len(s["values"]) == len(s["provenance"]) == 30
        assert set(s["provenance"]) <= {"computed", "estimated"}
    q = c["series"]["quantum_inference"]
    assert q["values"][9] == acc.quantum_inference_qubits(1024, 3, K)
    assert q["provenance"][15] == "computed" and q["provenance"][16] == "estimated"
    assert set(c["series"]["shadow_gradient"]["provenance"]) == {"estimated"}
    assert set(c["series"]["ship_data"]["provenance"]) == {"computed"}
    nothing = acc.scaling_curves(3, 10, 0.1, 0.05, K, 32, 0.2, 2.0, n_max=5)
    assert set(nothing["series"]["quantum_inference"]["provenance"]) == {"estimated"}
    with pytest.raises(ValueError):
        acc.scaling_curves(3, 10, 0.1, 0.05, K, 32, 0.2, 2.0, params_growth="cubic")


def test_depth_curves() -> None:
    d = acc.depth_curves(1024, 6, 20, 100, 32, epsilon=0.1, simulated_max_n=12, simulated_max_layers=4)
    assert d["L"] == [1, 2, 3, 4, 5, 6]
    assert d["series"]["quantum_inference"]["values"] == [100 * (2 * L - 1) * 10 for L in d["L"]]
    assert d["series"]["quantum_inference"]["provenance"] == ["computed"] * 4 + ["estimated"] * 2
    assert d["series"]["ship_model"]["values"] == [L * 20 * 32 for L in d["L"]]
    assert len(set(d["series"]["ship_data"]["values"])) == 1


def test_linear_sketch_simulation_unbiased_and_bits_exact() -> None:
    rng = np.random.default_rng(1)
    N = 256
    x, w = rng.standard_normal(N), rng.standard_normal(N) + 0.3 * np.ones(N)
    exact = float(w @ x / np.linalg.norm(w) / np.linalg.norm(x))
    runs = [acc.simulate_linear_sketch(x, w, 200, np.random.default_rng(s), b=32) for s in range(200)]
    est = np.array([r["estimate"] for r in runs])
    assert all(r["exact"] == pytest.approx(exact) for r in runs)
    assert abs(est.mean() - exact) < 4 * est.std(ddof=1) / math.sqrt(len(est))
    assert np.mean([r["se"] for r in runs]) == pytest.approx(est.std(), rel=0.3)  # s.e. is honest
    assert runs[0]["bits_sent"] == 200 * (8 + 32) == 200 * (acc.register_qubits(N) + 32)
    r16 = acc.simulate_linear_sketch(x, w, 10, rng, b=16)
    assert r16["bits_sent"] == 10 * (8 + 16)
    with pytest.raises(ValueError):
        acc.simulate_linear_sketch(x, w[:-1], 10, rng)


# --------------------------------------------------------------------------------------------- data


@pytest.mark.parametrize(("name", "size", "raw"), [("digits", 64, 64), ("breast_cancer", 32, 30), ("rice", 8, 7),
                                                   ("banknote", 4, 4)])
def test_real_loaders(name: str, size: int, raw: int) -> None:
    d = load_qnet_data(name, n_features=size, train_size=200, seed=3)
    assert isinstance(d, QnetData) and d.labelled and d.n_features == size and d.n_raw_features == raw
    assert d.y_train is not None and d.y_test is not None
    assert d.X_train.shape == (200, size) and d.X_train.dtype == np.float64
    assert d.X_test.shape[1] == size and d.y_train.dtype == np.int64
    assert np.all(d.X_train[:, raw:] == 0) and np.all(d.X_test[:, raw:] == 0)
    assert set(np.unique(d.y_train)) == {0, 1} and set(np.unique(d.y_test)) == {0, 1}
    # stratified: same class balance in train and test (within a few percent)
    assert abs(d.y_train.mean() - d.y_test.mean()) < 0.05
    again = load_qnet_data(name, train_size=200, seed=3)
    assert again.y_test is not None
    assert np.array_equal(again.X_train, d.X_train) and np.array_equal(again.y_test, d.y_test)
    other = load_qnet_data(name, train_size=200, seed=4)
    assert not np.array_equal(other.X_train, d.X_train)
    train_rows = {r.tobytes() for r in d.X_train}
    overlap = sum(r.tobytes() in train_rows for r in d.X_test)
    assert overlap <= (24 if name == "banknote" else 0)  # banknote's source has 24 duplicated rows
    assert np.all(np.linalg.norm(d.X_train, axis=1) > 0)


def test_loader_details() -> None:
    full = load_qnet_data("breast_cancer", train_size=10_000, seed=0)
    assert full.y_train is not None and full.y_test is not None
    assert len(full.X_train) + len(full.X_test) == 569 and len(full.X_test) == math.ceil(569 * 0.25)
    assert full.y_train.sum() + full.y_test.sum() == 212  # label 1 = malignant
    assert np.allclose(full.X_train[:, :30].mean(axis=0), 0, atol=1e-12)  # standardised with train statistics
    digits = load_qnet_data("digits", train_size=10_000, seed=0)
    assert len(digits.X_train) + len(digits.X_test) == 360 and digits.X_train.max() == 16  # raw pixels
    normed = load_qnet_data("banknote", train_size=100, seed=0, append_norm=True)
    assert normed.n_features == 8 and normed.n_raw_features == 5
    assert np.ptp(normed.X_train[:, 4]) == 0 and normed.X_train[0, 4] > 0  # a constant, so ‖x‖ survives
    with pytest.raises(ValueError):
        load_qnet_data("digits", n_features=32, train_size=10, seed=0)
    with pytest.raises(KeyError):
        load_qnet_data("mnist", train_size=10, seed=0)


def test_synthetic_and_random_inputs() -> None:
    d = load_qnet_data("synthetic", n_features=12, train_size=30, seed=5)
    assert not d.labelled and d.y_train is None and d.n_features == 16 and d.n_raw_features == 12
    assert d.X_train.shape == (30, 16) and d.X_test.shape == (10, 16)
    assert np.allclose(np.linalg.norm(d.X_train, axis=1), 1) and np.all(d.X_train[:, 12:] == 0)
    labelled = d.with_labels(np.ones(30), np.zeros(10))
    assert labelled.labelled and labelled.y_train is not None and labelled.y_train.dtype == np.int64
    with pytest.raises(ValueError):
        d.with_labels(np.ones(3), np.zeros(10))
    X = random_inputs(1024, 5, seed=2)
    assert X.shape == (5, 1024) and np.allclose(np.linalg.norm(X, axis=1), 1)
    assert np.array_equal(X, random_inputs(1024, 5, seed=2)) and not np.array_equal(X, random_inputs(1024, 5, 3))
    assert pad_features(np.ones((2, 5))).shape == (2, 8)


# -------------------------------------------------------------------------------------------- plots


def _names(fig: go.Figure) -> list[str]:
    return [t.name for t in fig.data if t.name]


def _has_provenance(name: str) -> bool:
    return any(w in name for w in ("simulated", "computed", "estimated"))


def test_communication_plot() -> None:
    curves = acc.scaling_curves(2, 20, 0.05, 0.05, K_005, 32, 0.1, 1.0, n_max=40, simulated_max_n=12)
    sims = [{"n_features": 2**n, "qubits_per_inference": acc.quantum_inference_qubits(2**n, 2, K_005),
             "loss_exact": 0.1, "loss_estimate": 0.12} for n in (2, 4, 8, 12)]
    info = qp.communication_info(curves, sims)
    assert [ln.key for ln in info.lines] == ["quantum_inference", "ship_data", "ship_model", "linear_sketch"]
    assert [p.n_features for p in info.simulated] == [4, 16, 256, 4096]
    assert info.lines[0].y[11] == info.simulated[-1].qubits  # formula line passes through the counted point
    assert len(info.ratios) == 3 and any("fixed" in n for n in info.notes)
    fig = qp.plot_communication(info)
    names = _names(fig)
    assert all(_has_provenance(n) for n in names)
    assert "quantum inference, simulated (counted)" in names
    assert "quantum inference K·R·n (computed)" in names and "quantum inference K·R·n (estimated)" in names
    assert fig.layout.xaxis.title.text == qp.X_N and "per inference" in fig.layout.yaxis.title.text
    assert fig.layout.xaxis.type == "log" and fig.layout.yaxis2.type == "log"


def test_segments_bridge() -> None:
    line = qp.Line("k", "k", [1, 2, 3, 4], [1, 2, 3, 4], ["computed", "computed", "estimated", "estimated"])
    assert qp._segments(line) == [("computed", [1, 2], [1, 2]), ("estimated", [2, 3, 4], [2, 3, 4])]


def test_gradient_plot() -> None:
    info = qp.gradient_info(1024, 2, 20, 0.05, 0.05, 1.0, K=K_005)
    assert info.crossover_params == pytest.approx(acc.shadow_crossover_params(1024, 2, 0.05, delta=0.05))
    assert max(info.vs_params[0].x) >= info.crossover_params
    ps, sh = info.vs_params[0], info.vs_params[1]
    assert ps.y[0] < sh.y[0] and ps.y[-1] > sh.y[-1]  # the curves do cross inside the plotted range
    assert info.crossover_epsilon is not None
    e = info.crossover_epsilon
    assert acc.shadow_gradient_qubits(1024, 2, 20, e * 1.05) < acc.parameter_shift_qubits(
        1024, 2, 20, acc.hoeffding_copies(e * 1.05, 0.05))
    fig = qp.plot_gradient(info)
    assert all(_has_provenance(n) for n in _names(fig))
    assert "1/ε⁴" in fig.layout.title.text
    assert "(log scale)" in fig.layout.xaxis.title.text and "(log scale)" in fig.layout.xaxis2.title.text
    assert fig.layout.yaxis.title.text == qp.Y_GRAD


def test_depth_plot() -> None:
    info = qp.depth_info(acc.depth_curves(256, 4, 16, 400, 32, epsilon=0.1, simulated_max_n=10))
    assert len(info.lines) == 5 and info.lines[0].x == [1, 2, 3, 4]
    fig = qp.plot_depth(info)
    assert all(_has_provenance(n) for n in _names(fig))
    assert "depth L" in fig.layout.xaxis.title.text and fig.layout.yaxis.title.text


def test_linear_vs_deep_plot() -> None:
    curves = acc.scaling_curves(2, 20, 0.05, 0.05, K_005, 32, 0.1, 1.0, params_growth="dense")
    info = qp.linear_vs_deep_info(curves)
    assert info.N == [2**4, 2**10, 2**20, 2**40]
    assert all(r <= 10 for r in info.linear_ratio)
    assert info.deep_ratio == sorted(info.deep_ratio) and info.deep_ratio[-1] > 1e3 * max(info.linear_ratio)
    fig = qp.plot_linear_vs_deep(info)
    assert all(_has_provenance(n) for n in _names(fig))
    assert fig.layout.yaxis.title.text == info.y_label


def test_shot_convergence_plot() -> None:
    rng = np.random.default_rng(0)
    exact = 0.3
    pts = []
    for k in (10, 100, 1000, 10_000):
        shots = np.where(rng.random(k) < (1 + exact) / 2, 1.0, -1.0)
        pts.append({"copies": k, "estimate": shots.mean(), "se": shots.std(ddof=1) / math.sqrt(k)})
    info = qp.shot_convergence_info(pts[::-1], exact)
    assert info.copies == [10, 100, 1000, 10_000]
    assert info.sigma_ref[0] == pytest.approx(math.sqrt(1 - 0.09) / math.sqrt(10))
    assert all(h > s for h, s in zip(info.hoeffding, info.sigma_ref, strict=True))
    fig = qp.plot_shot_convergence(info)
    assert all(_has_provenance(n) for n in _names(fig))
    assert "copies K" in fig.layout.xaxis.title.text and fig.layout.yaxis2.type == "log"


def test_expressivity_plot() -> None:
    pts = [{"layers": L, "data_layers": dl, "degree": (2 * L + 2 if dl else 2)} for L in (1, 2, 3) for dl in (1, 0)]
    acc_pts = [{"layers": L, "data_layers": True, "accuracy": 0.6 + 0.1 * L} for L in (1, 2, 3)]
    info = qp.expressivity_info(pts, acc_pts)
    assert [s[0] for s in info.degree] == ["highest frequency, with data layers (simulated)",
                                           "highest frequency, without data layers (simulated)"]
    assert info.degree[1][2] == [2.0, 2.0, 2.0] and len(info.accuracy) == 1
    fig = qp.plot_expressivity(info)
    assert all(_has_provenance(n) for n in _names(fig)) and fig.layout.yaxis2.title.text == "fraction correct"
    assert len(qp.plot_expressivity(qp.expressivity_info(pts)).data) == 2


def test_privacy_plot() -> None:
    info = qp.privacy_info(1024, 2, 20, 100, 32)
    assert info.values == [3000.0, 6000.0, 32768.0, 1280.0]
    assert qp.privacy_info(1024, 2, 20, 100, 32, inferences=10).values[0] == 30000.0
    fig = qp.plot_privacy(info)
    assert all(_has_provenance(x) for x in fig.data[0].x) and fig.layout.yaxis.type == "log"
    assert fig.layout.yaxis.title.text == "bits (log scale)"
