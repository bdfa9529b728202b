"""Quantum-hypernetwork problems: layouts' encode/decode, data, the fast cost enumeration vs the direct
per-network reference, and the landscape analysis (Walsh transform, local minima, optimal sets).

No TensorFlow here: the shipped 4×4 MNIST features are checked against the NumPy point-sample identity
that ``tf.image.resize`` (bilinear, half-pixel centres) reduces to for 28 → 4.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from qmlapp.kinds.hypernet import landscape as L
from qmlapp.kinds.hypernet import problems as P
from qmlapp.kinds.hypernet.layouts import BitField, BitLayout, all_bits, bits_to_index, index_to_bits, make_layout

CUSTOM: dict[str, dict[str, Any]] = {
    "g_h1": dict(dataset="gaussian2d", hidden=1),
    "g_h2": dict(dataset="gaussian2d", hidden=2),
    "g_h0": dict(dataset="gaussian2d", hidden=0),
    "g_h0_enc2": dict(dataset="gaussian2d", hidden=0, encoding_bits=2),
    "moons_h2_act_width": dict(dataset="moons", hidden=2, activation_bit=True, width_bit=True),
    "blobs_h3_enc1_width": dict(dataset="blobs", hidden=3, encoding_bits=1, width_bit=True),
    "g_h2_act_enc2_width": dict(dataset="gaussian2d", hidden=2, activation_bit=True, encoding_bits=2,
                                width_bit=True),
    "g_h4_width": dict(dataset="gaussian2d", hidden=4, width_bit=True),
    "mnist01_h0_enc1": dict(dataset="mnist01", hidden=0, encoding_bits=1),
    "mnist37_h1_act": dict(dataset="mnist37", hidden=1, activation_bit=True),
}
SHARED_MNIST = Path("/work/shared/data/mnist.npz")


def custom(name: str) -> BitLayout:
    return make_layout("custom", **CUSTOM[name])


def data_for(layout: BitLayout, n_points: int = 400, max_rows: int | None = None) -> P.ProblemData:
    data = P.load_problem_data(layout, n_points=n_points, seed=3)
    return data if max_rows is None else data.subset(slice(0, max_rows))


def random_indices(layout: BitLayout, count: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 2**layout.n_bits, size=count)


def assert_matches_reference(layout: BitLayout, data: P.ProblemData, costs: np.ndarray, count: int = 50) -> None:
    assert costs.shape == (2**layout.n_bits,) and costs.dtype == np.float64
    idx = np.unique(np.concatenate([random_indices(layout, count), [0, 2**layout.n_bits - 1, costs.argmin()]]))
    ref = np.array([P.network_cost(layout, data, int(i)) for i in idx])
    np.testing.assert_allclose(costs[idx], ref, rtol=0, atol=1e-9)


# --- layouts ------------------------------------------------------------------------------------------


ALL_LAYOUTS = [make_layout(p) for p in ("gaussian2d", "mnist01", "mnist37_encoding")] + [custom(k) for k in CUSTOM]


@pytest.mark.parametrize("layout", ALL_LAYOUTS, ids=lambda lay: f"{lay.problem}-{lay.dataset}-{lay.n_bits}")
def test_encode_decode_round_trip(layout: BitLayout) -> None:
    rng = np.random.default_rng(1)
    for _ in range(40):
        bits = rng.integers(0, 2, size=layout.n_bits).astype(np.uint8)
        net = layout.decode(bits)
        np.testing.assert_array_equal(layout.encode(net), bits)
        assert json.dumps(P.describe_network(layout, data_for(layout, max_rows=50), bits))


def test_encode_rules_and_errors() -> None:
    lay = make_layout("mnist37_encoding")  # 16 weights, bias, 2 encoding bits
    net = lay.decode("0" * 16 + "1" + "10")  # e = 2: every weight −2, bias +1
    assert net["encoding"] == 2 and set(net["w"].tolist()) == {-2.0} and net["b"] == 1.0
    assert lay.encode(net).tolist() == [0] * 16 + [1, 1, 0]
    zero = lay.decode("1" * 8 + "0" * 8 + "0" + "00")  # e = 0: bit 0 is a zero weight
    assert zero["w"].tolist() == [1.0] * 8 + [0.0] * 8
    with pytest.raises(ValueError, match="not encodable"):
        lay.encode({**net, "encoding": 3})  # −2 is not −3
    with pytest.raises(ValueError, match="encoding"):
        lay.encode({**net, "encoding": None})
    g = make_layout("gaussian2d")
    gnet = g.decode(12345)
    with pytest.raises(ValueError, match="not encodable"):
        g.encode({**gnet, "W2": np.array([1.0, 0.5, -1.0, 1.0])})
    with pytest.raises(ValueError, match="shape"):
        g.encode({**gnet, "b1": np.ones(3)})
    with pytest.raises(ValueError, match="activation"):
        g.encode({**gnet, "activation": "tanh"})
    w = custom("g_h4_width")
    wnet = w.decode("0" * w.n_bits)
    assert wnet["active_hidden"] == 2
    with pytest.raises(ValueError, match="active_hidden"):
        w.encode({**wnet, "active_hidden": 3})


# --- data ---------------------------------------------------------------------------------------------


def test_gaussian_mixture_statistics_and_seeding() -> None:
    lay = make_layout("gaussian2d")
    d = P.load_problem_data(lay, n_points=10_000, seed=0)
    assert d.X.shape == (10_000, 2) and d.X.dtype == np.float64 and set(np.unique(d.y)) == {0.0, 1.0}
    assert abs(d.y.mean() - 0.5) < 0.02
    x0, x1 = d.X[d.y == 0], d.X[d.y == 1]
    np.testing.assert_allclose(x0.mean(axis=0), [-1.0, -2.0], atol=0.02)
    np.testing.assert_allclose(x0.std(axis=0), [np.sqrt(0.1)] * 2, rtol=0.05)
    np.testing.assert_allclose(x1.mean(axis=0), [1 / 3, 0.0], atol=0.06)  # mean of the three components
    near = [np.mean(np.linalg.norm(x1 - m, axis=1) < 1.0) for m in P.GAUSS_MEANS1]
    np.testing.assert_allclose(near, [1 / 3] * 3, atol=0.03)
    again = P.load_problem_data(lay, n_points=10_000, seed=0)
    np.testing.assert_array_equal(again.X, d.X)
    assert not np.array_equal(P.load_problem_data(lay, n_points=10_000, seed=1).X, d.X)
    with pytest.raises(ValueError, match="synthetic"):
        P.load_problem_data(lay, split="test")


@pytest.mark.parametrize("dataset", ["moons", "blobs"])
def test_sklearn_toy_data(dataset: str) -> None:
    d = P.load_problem_data(make_layout("custom", dataset=dataset, hidden=1), n_points=300, seed=2)
    assert d.X.shape == (300, 2) and d.y.dtype == np.float64 and set(np.unique(d.y)) == {0.0, 1.0}


def test_mnist4x4_file_and_splits() -> None:
    raw = np.load(P.MNIST4X4)
    assert raw["x_train"].shape == (60_000, 16) and raw["x_test"].shape == (10_000, 16)
    assert raw["x_train"].dtype == np.float32 and raw["y_train"].dtype == np.uint8
    assert raw["x_train"].min() == 0.0 and raw["x_train"].max() == 1.0
    assert "tf.image.resize" in " ".join(raw["meta"].tolist())
    # features are k/255 point samples (see the identity test below)
    np.testing.assert_array_equal(np.round(raw["x_test"] * 255) / np.float32(255), raw["x_test"])
    counts = {("mnist01", "train"): 12_665, ("mnist01", "test"): 2_115,
              ("mnist37", "train"): 12_396, ("mnist37", "test"): 2_038}
    for (ds, split), n in counts.items():
        d = P.load_problem_data(make_layout("custom", dataset=ds, hidden=0), split=split)
        assert d.X.shape == (n, 16) and d.X.dtype == np.float64 and d.split == split
    d37 = P.load_mnist_test(make_layout("mnist37_encoding"))
    assert int(d37.y.sum()) == 1_028  # label 1 = digit 7 (1,028 test sevens)


@pytest.mark.skipif(not SHARED_MNIST.exists(), reason="shared MNIST source not available")
def test_mnist4x4_equals_documented_point_sample() -> None:
    """For 28 → 4, TF's half-pixel bilinear resize samples pixel centres (3, 10, 17, 24) exactly."""
    raw = np.load(P.MNIST4X4)
    with np.load(SHARED_MNIST) as src:
        imgs = src["x_test"][:500]
    expected = (imgs[:, 3::7, 3::7].astype(np.float32) / np.float32(255)).reshape(-1, 16)
    np.testing.assert_array_equal(raw["x_test"][:500], expected)


# --- enumeration vs the per-network reference --------------------------------------------------------


def test_gaussian2d_enumeration_matches_reference_and_symmetry() -> None:
    lay = make_layout("gaussian2d")
    data = P.load_problem_data(lay, n_points=500, seed=0)
    seen: list[float] = []
    costs = P.enumerate_costs(lay, data, progress=seen.append)
    assert_matches_reference(lay, data, costs, count=60)
    assert seen and seen[-1] == 1.0 and all(0 <= f <= 1 for f in seen)
    # permuting hidden units gives bit-identical costs (degenerate optima stay exactly degenerate)
    perm = [2, 0, 3, 1]
    for i in random_indices(lay, 20, seed=5):
        net = lay.decode(int(i))
        swapped = {**net, "W1": net["W1"][:, perm], "W2": net["W2"][perm], "b1": net["b1"][perm]}
        j = bits_to_index(lay.encode(swapped))
        assert costs[j] == costs[i]
    best = int(costs.argmin())
    assert P.network_accuracy(lay, data, best) > 0.95


def test_mnist01_full_data() -> None:
    lay = make_layout("mnist01")
    data = P.load_problem_data(lay)
    costs = P.enumerate_costs(lay, data)
    assert_matches_reference(lay, data, costs, count=50)
    # ±1 weights and bias on point-sampled 4×4 images: ~0.80 (majority class 0.53)
    assert P.network_accuracy(lay, data, int(costs.argmin())) > 0.75


def test_mnist37_encoding_matches_reference() -> None:
    lay = make_layout("mnist37_encoding")
    data = P.load_problem_data(lay).subset(slice(0, 3000))
    assert_matches_reference(lay, data, P.enumerate_costs(lay, data), count=60)


@pytest.mark.parametrize("name", list(CUSTOM))
def test_custom_layouts_fast_equals_direct_and_reference(name: str) -> None:
    lay = custom(name)
    data = data_for(lay, n_points=300, max_rows=400 if lay.dataset.startswith("mnist") else None)
    fast = P.enumerate_costs(lay, data, method="fast")
    assert_matches_reference(lay, data, fast, count=50)
    if lay.n_bits <= 13:
        np.testing.assert_allclose(fast, P.enumerate_costs(lay, data, method="direct"), rtol=0, atol=1e-12)


def test_additive_fallback_and_bce_on_dense_data(monkeypatch: pytest.MonkeyPatch) -> None:
    """The stable additive path (used when e^(−u) products could overflow) and bce on 2-D data."""
    monkeypatch.setattr(P, "_EXP_SAFE", -1.0)
    lay = custom("g_h2_act_enc2_width")
    data = data_for(lay, n_points=200)
    assert_matches_reference(lay, data, P.enumerate_costs(lay, data), count=50)
    bce = replace(custom("g_h2"), loss="bce")
    assert_matches_reference(bce, data, P.enumerate_costs(bce, data), count=50)


def test_reordered_fields_and_zero_rows() -> None:
    """Positions come from the fields, not a fixed order; exact-zero inputs form their own support group."""
    base = custom("moons_h2_act_width")
    order = ["width", "b2", "W2", "activation", "W1", "b1"]
    fields, pos = [], 0
    for name in order:
        f = base.field(name)
        assert f is not None
        fields.append(BitField(f.name, pos, f.length, f.role, f.shape, f.description))
        pos += f.length
    lay = replace(base, fields=tuple(fields))
    data = data_for(lay, n_points=200)
    X = data.X.copy()
    X[:20, 0] = 0.0
    X[20:25] = 0.0
    data = P.ProblemData(data.name, X, data.y, "with zeros")
    costs = P.enumerate_costs(lay, data, method="fast")
    assert_matches_reference(lay, data, costs, count=50)
    np.testing.assert_allclose(costs, P.enumerate_costs(lay, data, method="direct"), rtol=0, atol=1e-12)


def test_unrecognised_layout_uses_direct_path() -> None:
    base = custom("g_h1")
    odd = replace(base, fields=(*base.fields, BitField("spare", base.n_bits, 1, "weight", (1,), "unused")))
    data = data_for(odd, n_points=100)
    with pytest.raises(ValueError, match="fast path"):
        P.enumerate_costs(odd, data, method="fast")
    assert_matches_reference(odd, data, P.enumerate_costs(odd, data), count=50)


def test_views_of_one_network() -> None:
    lay = make_layout("gaussian2d")
    data = P.load_problem_data(lay, n_points=3000)
    view = P.decision_boundary(lay, 54321, data, grid=30)
    assert len(view["x"]) == len(view["y"]) == 30 and len(view["z"]) == 30 and len(view["z"][0]) == 30
    assert view["n_shown"] == len(view["points"]) == 2000 and {p[2] for p in view["points"]} == {0, 1}
    i, j = 7, 19  # z[i][j] is P(label 1) at (x[j], y[i])
    assert view["z"][i][j] == pytest.approx(P.predict_proba(lay, 54321, [[view["x"][j], view["y"][i]]])[0])
    assert min(view["x"]) < data.X[:, 0].min() and max(view["y"]) > data.X[:, 1].max()
    json.dumps(view)
    p = P.predict_proba(lay, 54321, data.X[:5])
    assert p.shape == (5,) and np.all((p > 0) & (p < 1))
    m = make_layout("mnist01")
    img = P.weight_image(m, "1" * 16 + "0")
    assert img.shape == (4, 4) and np.all(img == 1)
    h = custom("mnist37_h1_act")
    assert P.weight_image(h, index_to_bits(0, h.n_bits)).shape == (4, 4)
    with pytest.raises(ValueError):
        P.weight_image(lay, 0)
    d = P.describe_network(lay, data, 54321)
    assert d["index"] == 54321 and d["bitstring"] == format(54321, "018b")
    assert abs(d["loss"] - P.network_cost(lay, data, 54321)) < 1e-15 and 0 <= d["accuracy"] <= 1
    assert np.asarray(d["W1"]).shape == (2, 4)
    w = custom("g_h4_width")
    assert P.describe_network(w, data, "0" * w.n_bits)["width"] == "first 2"
    assert P.describe_network(m, P.load_problem_data(m).subset(slice(0, 50)), 0)["activation"] == "none"


# --- landscape ----------------------------------------------------------------------------------------


def brute_walsh(costs: np.ndarray, n: int) -> np.ndarray:
    s = 2.0 * all_bits(n) - 1.0
    subsets = all_bits(n).astype(bool)
    return np.array([np.mean(costs * np.prod(np.where(S, s, 1.0), axis=1)) for S in subsets])


def test_walsh_transform_definition_inverse_and_parseval() -> None:
    n = 6
    costs = np.random.default_rng(0).normal(size=2**n)
    c = L.walsh_coefficients(costs)
    np.testing.assert_allclose(c, brute_walsh(costs, n), atol=1e-14)
    np.testing.assert_allclose(L.inverse_walsh(c), costs, atol=1e-13)
    w = L.walsh_weight_by_order(c, n)
    assert w.shape == (n + 1,)
    assert w.sum() == pytest.approx(np.mean(costs**2), rel=1e-12)
    assert w[0] == pytest.approx(costs.mean() ** 2, rel=1e-12)
    big = np.random.default_rng(1).random(2**16)
    np.testing.assert_allclose(L.inverse_walsh(L.walsh_coefficients(big)), big, atol=1e-12)


def test_walsh_of_linear_cost_and_sign_convention() -> None:
    n = 5
    a = np.array([0.5, -1.0, 2.0, 0.0, 3.0])
    s = 2.0 * all_bits(n) - 1.0
    c = L.walsh_coefficients(s @ a)
    w = L.walsh_weight_by_order(c, n)
    assert w[1] == pytest.approx(np.sum(a**2)) and np.allclose(np.delete(w, 1), 0.0, atol=1e-24)
    for p in range(n):  # the coefficient of s_p sits at index 2^(n−1−p) with the sign of a_p (s = 2b − 1)
        assert c[2 ** (n - 1 - p)] == pytest.approx(a[p])


def test_local_minima_hand_made() -> None:
    # 3 bits, index = b0 b1 b2 (MSB first): minima at 000 (C=0) and 111 (C=1); 011 ties its neighbour 111
    costs = np.array([0.0, 2.0, 2.0, 1.0, 2.0, 3.0, 3.0, 1.0])
    np.testing.assert_array_equal(L.local_minima(costs, 3), [0, 3, 7])
    flat = np.ones(8)
    np.testing.assert_array_equal(L.local_minima(flat, 3), np.arange(8))
    rng = np.random.default_rng(4)
    r = rng.normal(size=2**7)
    brute = [i for i in range(2**7) if all(r[i] <= r[i ^ (1 << k)] for k in range(7))]
    np.testing.assert_array_equal(L.local_minima(r, 7), brute)


def test_optimal_set_degenerate_and_summary() -> None:
    costs = np.array([0.3, 0.1, 0.5, 0.1, 0.1 + 5e-5, 0.9, 0.2, 0.1])
    np.testing.assert_array_equal(L.optimal_set(costs, 0.0), [1, 3, 7])
    np.testing.assert_array_equal(L.optimal_set(costs, 1e-4), [1, 3, 4, 7])
    summary = L.landscape_summary(costs, 3, 1e-4, bins=4, max_listed=3)
    json.dumps(summary)
    assert summary["n_optimal_bitstrings"] == 4 and summary["optimal_bitstrings"] == ["001", "011", "111"]
    assert summary["global_min_loss"] == pytest.approx(0.1) and summary["max_loss"] == pytest.approx(0.9)
    assert summary["mean_loss"] == pytest.approx(costs.mean()) and summary["tolerance"] == 1e-4
    assert summary["n_bits"] == 3 and summary["n_networks"] == 8
    assert sum(summary["histogram"]["counts"]) == 8 and len(summary["histogram"]["edges"]) == 5
    assert len(summary["walsh_weights"]) == 4 and sum(summary["walsh_weights_fraction"]) == pytest.approx(1.0)
    assert summary["local_minima_bitstrings"][0] in ("001", "011", "111") and "walsh_note" in summary
    with pytest.raises(ValueError):
        L.walsh_coefficients(np.ones(6))


def test_web_process_imports_stay_light() -> None:
    import subprocess
    import sys

    code = ("import sys, qmlapp.kinds.hypernet.problems, qmlapp.kinds.hypernet.landscape; "
            "print(sorted(m for m in ('tensorflow', 'cirq', 'streamlit') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=Path(__file__).resolve().parents[1])
    assert out.stdout.strip() == "[]"
