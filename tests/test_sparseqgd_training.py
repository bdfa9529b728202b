"""sparse_qgd training engine: architecture counts, pruning semantics, restricted Hessians, HVP/Lanczos vs exact."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import scipy.integrate

from qmlapp.kinds.sparse_qgd.training import (
    architecture,
    evaluate,
    hessian_spectrum,
    hvp_fn,
    image_patches,
    init_params,
    lanczos,
    load_digits_split,
    n_params_formula,
    prune_mask,
    restricted_hessian,
    spectral_density,
    spectrum_summary,
    train_schedule,
)

SMALL: dict[str, Any] = {"hidden_units": 8, "dense_epochs": 2, "sparse_epochs": 2, "batch_size": 128,
                         "learning_rate": 0.2, "prune_ratio": 0.9, "hessian_batch": 256, "grid_points": 128}


@pytest.fixture(scope="module")
def data() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    return load_digits_split(0)


@pytest.fixture(scope="module")
def run(data: Any) -> Any:
    return train_schedule(model="mlp", seed=3, data=data, **SMALL)


def _point(arch: Any, seed: int) -> np.ndarray:
    """Glorot weights plus noise (non-zero biases), so the Hessian has no special structure."""
    return init_params(arch, seed) + 0.2 * np.random.default_rng(seed + 1).standard_normal(arch.n_params)


def test_data_split(data: Any) -> None:
    X_train, _, X_test, y_test = data
    assert X_train.shape == (1437, 64) and X_test.shape == (360, 64)
    assert 0.0 <= X_train.min() and X_train.max() <= 1.0
    assert np.bincount(y_test).min() >= 35  # stratified


@pytest.mark.parametrize(("model", "hidden", "channels"), [("mlp", 8, 1), ("mlp", 32, 1), ("small_cnn", 8, 4),
                                                           ("small_cnn", 8, 1)])
def test_n_params_matches_architecture(model: str, hidden: int, channels: int) -> None:
    arch = architecture(model, hidden, channels)
    assert arch.n_params == n_params_formula(model, hidden, channels)
    assert arch.n_params == (75 * hidden + 10 if model == "mlp" else 650 * channels + 10)
    assert init_params(arch, 0).shape == (arch.n_params,)
    assert arch.n_prunable == (64 * hidden if model == "mlp" else 9 * channels)


def test_conv_as_patches_equals_conv2d(data: Any) -> None:
    import tensorflow as tf

    arch = architecture("small_cnn", channels=3)
    theta = _point(arch, 0)
    p = arch.unflatten(theta)
    X = data[0][:20]
    conv = tf.nn.conv2d(X.reshape(-1, 8, 8, 1), p["K"], strides=1, padding="SAME").numpy() + p["bK"]
    ref = np.tanh(conv).reshape(20, -1) @ p["W"] + p["b"]
    mine = image_patches(X) @ p["K"].reshape(9, 3) + p["bK"]
    np.testing.assert_allclose(np.tanh(mine).reshape(20, -1) @ p["W"] + p["b"], ref, atol=1e-12)


def test_prune_mask_counts_and_layers() -> None:
    for model in ("mlp", "small_cnn"):
        arch = architecture(model, 8, 4)
        theta = _point(arch, 1)
        for ratio in (0.0, 0.5, 0.9, 0.97):
            mask = prune_mask(arch, theta, ratio)
            removed = np.flatnonzero(~mask)
            assert removed.size == round(ratio * arch.n_prunable)
            assert np.isin(removed, arch.prunable_index).all()  # never biases or the last layer
            if removed.size:  # the smallest magnitudes went
                kept = np.setdiff1d(arch.prunable_index, removed)
                assert np.abs(theta[removed]).max() <= np.abs(theta[kept]).min()


def test_hvp_equals_exact_hessian_times_v(data: Any) -> None:
    X, y = data[0][:200], data[1][:200]
    for model in ("mlp", "small_cnn"):
        arch = architecture(model, 6, 1)
        theta = _point(arch, 2)
        mask = prune_mask(arch, theta, 0.5)
        theta = np.where(mask, theta, 0.0)
        H = restricted_hessian(arch, theta, mask, X, y)
        assert H.shape == (mask.sum(), mask.sum())
        v = np.random.default_rng(0).standard_normal(H.shape[0])
        np.testing.assert_allclose(hvp_fn(arch, theta, mask, X, y)(v), H @ v, rtol=0, atol=1e-12 * np.abs(H).sum())


def test_restricted_hessian_is_the_submatrix_of_the_full_one(data: Any) -> None:
    X, y = data[0][:150], data[1][:150]
    arch = architecture("mlp", 4)
    theta = _point(arch, 4)
    mask = prune_mask(arch, theta, 0.9)
    theta = np.where(mask, theta, 0.0)
    H_full = restricted_hessian(arch, theta, None, X, y)
    H = restricted_hessian(arch, theta, mask, X, y)
    assert H.shape == (mask.sum(),) * 2 and H_full.shape == (arch.n_params,) * 2
    np.testing.assert_allclose(H, H_full[np.ix_(mask, mask)], atol=1e-13)
    # finite-difference check of one column of the full Hessian
    from qmlapp.kinds.sparse_qgd.training import loss_and_gradient

    e = np.zeros(arch.n_params)
    j = int(np.flatnonzero(mask)[7])
    e[j] = 1e-5
    fd = (loss_and_gradient(arch, theta + e, X, y)[1] - loss_and_gradient(arch, theta - e, X, y)[1]) / 2e-5
    np.testing.assert_allclose(fd, H_full[:, j], atol=1e-8)


def test_lanczos_matches_exact_spectrum(data: Any) -> None:
    X, y = data[0][:300], data[1][:300]
    arch = architecture("mlp", 8)
    theta = _point(arch, 5)
    mask = prune_mask(arch, theta, 0.3)
    theta = np.where(mask, theta, 0.0)
    H = restricted_hessian(arch, theta, mask, X, y)
    n = H.shape[0]
    assert n > 300  # 80 Lanczos steps is a genuine truncation
    ev = np.linalg.eigvalsh(H)
    mv = hvp_fn(arch, theta, mask, X, y)
    ritz, w = lanczos(mv, n, 80, seed=1)
    assert ritz.size == 80 and abs(w.sum() - 1) < 1e-12
    scale = np.abs(ev).max()
    assert abs(ritz[-1] - ev[-1]) <= 1e-6 * abs(ev[-1])
    assert abs(ritz[0] - ev[0]) <= 1e-6 * scale
    # Gauss quadrature: Σ wⱼθⱼᵐ = qᵀHᵐq exactly for m < 2k, with the same start vector q
    q = np.random.default_rng([1, 3]).standard_normal(n)
    q /= np.linalg.norm(q)
    Hq = q.copy()
    for m in range(1, 6):
        Hq = H @ Hq
        assert abs(w @ ritz**m - q @ Hq) <= 1e-9 * scale**m
    # stochastic density vs exact: moments tr(Hᵐ)/n within 4 standard errors of the P-probe estimator
    # (for a uniform unit probe, Var qᵀAq ≈ 2·(tr(A²)/n − (tr A/n)²)/n)
    probes = 16
    ritz8, w8 = lanczos(mv, n, 30, seed=2, n_probes=probes)
    for m in (1, 2, 3):
        exact_m = np.mean(ev**m)
        std = np.sqrt(2 * (np.mean(ev ** (2 * m)) - exact_m**2) / n / probes)
        assert abs(w8 @ ritz8**m - exact_m) <= 4 * std
    grid, dens, _ = spectral_density(ritz8, w8, grid_points=2048)
    assert abs(scipy.integrate.trapezoid(dens, grid) - 1) < 1e-3  # not np.trapezoid: absent from numpy 2.0 stubs
    # through hessian_spectrum: both methods agree on the extremes; exact stores every eigenvalue
    ex = hessian_spectrum(arch, theta, mask, X, y, method="exact")
    la = hessian_spectrum(arch, theta, mask, X, y, method="lanczos", seed=1)
    assert ex["method"] == "exact" and la["method"] == "lanczos" and ex["n_active"] == la["n_active"] == n
    assert len(ex["eigenvalues"]) == n and len(la["eigenvalues"]) == 80
    assert abs(la["lambda_max"] - ex["lambda_max"]) <= 1e-6 * ex["lambda_max"]
    assert abs(la["lambda_min"] - ex["lambda_min"]) <= 1e-6 * scale
    assert ex["s_row"] <= n and 1 <= la["s_row"] <= n and la["s_row_method"] == "sampled_rows"


def test_spectrum_summary_on_known_values() -> None:
    vals = np.array([-2.0, -1.0, 1e-20, 1.0, 2.0, 4.0])
    s = spectrum_summary(vals)
    assert s["lambda_min"] == -2 and s["lambda_max"] == 4
    assert s["fraction_negative"] == pytest.approx(2 / 6)
    assert s["negative_mass"] == pytest.approx(3 / 10)
    assert s["q50"] == pytest.approx(1e-20) and s["q99"] == 4


def test_schedule_records_and_pruning(run: Any) -> None:
    out = run
    arch = out.arch
    assert out.n_params == 75 * 8 + 10 and out.n_pruned == round(0.9 * 64 * 8)
    assert out.mask[arch.slices["W2"]].all()
    assert out.mask[arch.slices["b1"]].all() and out.mask[arch.slices["b2"]].all()
    assert np.all(out.params[~out.mask] == 0.0)  # mask respected during sparse training
    assert not np.allclose(out.params[out.mask], out.dense_params[out.mask])  # but the rest trained
    phases = [r["phase"] for r in out.records]
    assert phases == ["dense"] * 3 + ["pruned"] + ["sparse"] * 2
    assert [r["epoch"] for r in out.records] == [0.0, 1.0, 2.0, 2.0, 3.0, 4.0]
    for r in out.records:
        n_active = out.n_params if r["phase"] == "dense" else out.n_params - out.n_pruned
        assert r["n_active"] == n_active and r["method"] == "exact" and len(r["eigenvalues"]) == n_active
        assert r["sparsity"] <= n_active and len(r["density"]) == len(r["density_grid"]) == 128
        for key in ("lambda_min", "lambda_max", "q01", "q25", "q50", "q99", "fraction_negative", "negative_mass",
                    "train_loss", "test_loss", "train_accuracy", "test_accuracy", "grad_norm", "loss",
                    "weight_norm", "s_row", "contraction", "t_hessian_s"):
            assert np.isfinite(r[key]), key
        assert r["lambda_min"] <= r["q50"] <= r["lambda_max"]
    assert len(out.epoch_metrics) == 5 and out.epoch_metrics[0]["epoch"] == 0
    # dense training lowers the loss
    assert out.epoch_metrics[2]["train_loss"] < out.epoch_metrics[0]["train_loss"] - 0.3
    assert out.timing["n_checkpoints"] == 6


def test_deterministic_with_seed(run: Any, data: Any) -> None:
    again = train_schedule(model="mlp", seed=3, data=data, **SMALL)
    np.testing.assert_array_equal(again.params, run.params)
    np.testing.assert_array_equal(again.mask, run.mask)
    assert [r["lambda_max"] for r in again.records] == pytest.approx([r["lambda_max"] for r in run.records],
                                                                      rel=1e-10)


def test_cnn_schedule_lanczos_path_and_callbacks(data: Any) -> None:
    seen: list[str] = []
    epochs: list[float] = []
    out = train_schedule(model="small_cnn", channels=2, dense_epochs=1, sparse_epochs=1, prune_ratio=0.5,
                         learning_rate=0.2, batch_size=256, hessian_batch=128, exact_max=100, lanczos_steps=20,
                         grid_points=64, seed=1, data=data, on_checkpoint=lambda r: seen.append(r["method"]),
                         on_epoch=lambda r: epochs.append(r["epoch"]))
    assert out.n_params == 650 * 2 + 10 and out.n_pruned == 9
    assert seen == ["lanczos"] * 4 and epochs == [0.0, 1.0, 2.0]
    assert all(len(r["eigenvalues"]) == 20 and len(r["ritz_weights"]) == 20 for r in out.records)
    assert np.all(out.params[~out.mask] == 0.0)
    loss, _ = evaluate(out.arch, out.params, data[2], data[3])
    assert loss == pytest.approx(out.epoch_metrics[-1]["test_loss"])


def test_cancellation(data: Any) -> None:
    class Stop(Exception):
        pass

    calls = {"n": 0}

    def check() -> None:
        calls["n"] += 1
        if calls["n"] > 3:
            raise Stop

    with pytest.raises(Stop):
        train_schedule(model="mlp", hidden_units=4, dense_epochs=1, sparse_epochs=1, hessian_batch=64,
                       data=data, check_cancelled=check)
