"""Classical side of the ``sparse_qgd`` kind: dense SGD → global magnitude pruning → sparse SGD on the digits,
with the Hessian spectrum of the training loss, restricted to the unpruned coordinates, at every checkpoint.

Liu et al., Nat. Commun. 2024, with an offline substitute for their training loop:

* **Models** (TF, float64, parameters as ONE flat vector θ so that gradients, Hessians and HVPs are over θ):
  ``mlp``: 64 → hidden (tanh) → 10; ``small_cnn``: 8×8×1 → conv 3×3 (``channels``, same padding) → tanh →
  flatten (row-major H, W, C, as Keras) → dense 10. The convolution is written as a matmul of fixed 3×3
  image patches (im2col, zero-padded) with the (9, C) kernel: mathematically the same ``conv2d`` (a test checks
  it against ``tf.nn.conv2d``), and it vectorises cleanly under ``pfor`` for the Hessian. The default activation
  is **tanh** for both models, also for the CNN whose spec help text says ReLU: ReLU makes the loss piecewise
  quadratic in the first-layer weights (its second derivative is 0 almost everywhere, a Dirac at the kink) and
  the Hessian jumps when units switch; ``activation="relu"`` is available. Loss: mean softmax cross-entropy
  (nats). Kernels Glorot-uniform, biases zero.
* **Schedule**: plain SGD (step η, reshuffled batches) for ``dense_epochs``; then global magnitude pruning of
  all *kernels* except the last layer's (the MLP's W1, the CNN's conv kernel); biases are never pruned, and
  the last layer (W2/b2 or the dense head) is kept whole, as the authors' ``pruner.py``. Exactly
  ``round(prune_ratio × n_prunable)`` weights are REMOVED (0.9 = 90 % zeros of the prunable
  kernels; ties broken by flat index). Then sparse SGD for ``sparse_epochs``, the mask re-applied after every
  step (pruned weights stay exactly 0.0).
* **Hessian per checkpoint** (``checkpoints_per_epoch`` per epoch, plus the initial weights at epoch 0 and the
  point right after pruning, phase ``"pruned"``) of the loss on a FIXED evaluation batch: ``hessian_batch``
  (default 1024) training examples drawn once from the seed (all of them when the training set is smaller),
  so that spectra at different checkpoints are of the same function. The Hessian is taken w.r.t. the
  unpruned coordinates only (frozen zeros would add fake zero eigenvalues): θ = scatter(z) with the
  pruned entries fixed at 0, and H = ∂²L/∂z². ``exact`` (symmetrised jacobian of the gradient, stacked HVPs,
  ``eigh``) when n_active ≤ ``exact_max`` (spec ``EXACT_HESSIAN_MAX``), else ``lanczos``: ``lanczos_steps``
  (80) steps with full re-orthogonalisation from a seeded Gaussian start vector; Ritz values θⱼ with weights
  τⱼ = (first component of the j-th eigenvector of T)², i.e. stochastic Lanczos quadrature (Papyan 2018;
  Ghorbani et al. 2019).
* **Spectral density**: Σⱼ wⱼ·N(λ; λⱼ, σ²) on a uniform grid, wⱼ = 1/n (exact) or τⱼ/n_probes (Lanczos),
  σ = ``sigma_rel`` × (λ_max − λ_min). Quantiles, the negative fraction and the negative mass of a Lanczos
  spectrum are those of the discrete Ritz measure (coarse: 80 nodes); exact ones use all eigenvalues.
  "Negative" means λ < −tol with tol = 1e-9·max|λ| (the softmax's exact flat directions give ±1e-17 noise).
  negative_mass = Σ_{λ<−tol}|λ| / Σ|λ| (share of the spectral ℓ₁ mass).
* **s_row** (non-zeros per row of the restricted Hessian, needed for block-encoding): exact: max over rows of
  #{|H_ij| > 1e-12·max|H|}; Lanczos: the same count on ``s_row_probes`` (16) seeded random rows H·e_i, so a
  lower bound labelled ``"sampled_rows"``. Dense layers make the Hessian generically dense, s_row ≈ n_active.
"""

from __future__ import annotations

import functools
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from qmlapp.kinds.sparse_qgd.spec import EXACT_HESSIAN_MAX, MODELS

N_CLASSES = 10
N_FEATURES = 64
IMAGE_SIDE = 8
KERNEL_SIDE = 3
ACTIVATIONS = ("tanh", "relu")
PHASES = ("dense", "pruned", "sparse")
DEFAULT_HESSIAN_BATCH = 1024
DEFAULT_LANCZOS_STEPS = 80
DEFAULT_GRID_POINTS = 512
DEFAULT_SIGMA_REL = 0.005
NEG_TOL_REL = 1e-9  # |λ| below this × max|λ| is "zero", not negative
NNZ_TOL_REL = 1e-12  # |H_ij| below this × max|H| counts as a zero entry for s_row
MAX_STORED_EIGENVALUES = 3000
QUANTILES = (0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99)
HVP_CHUNK_BUDGET = 2**21  # HVPs vectorised at once × batch × hidden width ≤ this (measured: 64 for mlp-32, 8 CNN-4)

# Independent random streams derived from ``seed`` (the split uses ``seed`` directly).
_STREAM_INIT, _STREAM_SHUFFLE, _STREAM_HBATCH, _STREAM_LANCZOS, _STREAM_SROW = 0, 1, 2, 3, 4


def _rng(seed: int, *stream: int) -> np.random.Generator:
    return np.random.default_rng([seed, *stream])


# --- data ---------------------------------------------------------------------------------------


def load_digits_split(seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(X_train, y_train, X_test, y_test): scikit-learn digits, pixels ÷ 16 (in [0, 1]), 64 features,
    labels 0..9 (int32), stratified 80/20 split with ``random_state=seed`` (1437 / 360 rows)."""
    from sklearn.model_selection import train_test_split

    from qmlapp.datasets import load_dataset

    data = load_dataset("digits")
    X = np.asarray(data.X, np.float64) / 16.0
    y = np.asarray(data.y, np.int32)
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.2, stratify=y, random_state=seed)
    return (np.ascontiguousarray(X_train), y_train.astype(np.int32), np.ascontiguousarray(X_test),
            y_test.astype(np.int32))


def image_patches(X: np.ndarray) -> np.ndarray:
    """(N, 64) images → (N, 64, 9) zero-padded 3×3 patches, patch entries in (kh, kw) row-major order, so that
    ``patches @ K.reshape(9, C)`` equals ``conv2d(x, K, padding="SAME")`` reshaped to (N, 64, C)."""
    X = np.asarray(X, np.float64).reshape(-1, IMAGE_SIDE, IMAGE_SIDE)
    pad = KERNEL_SIDE // 2
    P = np.pad(X, ((0, 0), (pad, pad), (pad, pad)))
    cols = [P[:, i:i + IMAGE_SIDE, j:j + IMAGE_SIDE] for i in range(KERNEL_SIDE) for j in range(KERNEL_SIDE)]
    return np.ascontiguousarray(np.stack(cols, axis=-1).reshape(len(X), IMAGE_SIDE * IMAGE_SIDE, -1))


# --- architecture -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Architecture:
    """Tensors of the flat parameter vector, in order: ``layers`` = ((name, shape), ...).

    ``prunable``: names of the kernels that global magnitude pruning may zero (all kernels but the last
    layer's; never biases). ``slices``: name → slice of the flat vector (row-major flatten of the tensor).
    """

    model: str
    hidden_units: int
    channels: int
    activation: str
    layers: tuple[tuple[str, tuple[int, ...]], ...]
    prunable: tuple[str, ...]

    @property
    def n_params(self) -> int:
        return sum(math.prod(s) for _, s in self.layers)

    @property
    def slices(self) -> dict[str, slice]:
        out, start = {}, 0
        for name, shape in self.layers:
            size = math.prod(shape)
            out[name] = slice(start, start + size)
            start += size
        return out

    @property
    def prunable_index(self) -> np.ndarray:
        """Flat indices of the prunable weights (ascending)."""
        sl = self.slices
        return np.concatenate([np.arange(sl[k].start, sl[k].stop) for k in self.prunable])

    @property
    def n_prunable(self) -> int:
        return int(self.prunable_index.size)

    def unflatten(self, theta: np.ndarray) -> dict[str, np.ndarray]:
        theta = np.asarray(theta, np.float64)
        return {name: theta[self.slices[name]].reshape(shape) for name, shape in self.layers}

    def flatten(self, params: dict[str, np.ndarray]) -> np.ndarray:
        return np.concatenate([np.asarray(params[name], np.float64).reshape(-1) for name, _ in self.layers])


def architecture(model: str = "mlp", hidden_units: int = 32, channels: int = 4,
                 activation: str = "tanh") -> Architecture:
    """The parameter layout of ``model`` (only ``hidden_units`` matters for the MLP, ``channels`` for the CNN).

    mlp: W1 (64, H), b1 (H), W2 (H, 10), b2 (10) → n = 75·H + 10.
    small_cnn: K (3, 3, 1, C), bK (C), W (64·C, 10), b (10) → n = 650·C + 10.
    """
    if model not in MODELS:
        raise ValueError(f"unknown model {model!r}; known: {', '.join(MODELS)}")
    if activation not in ACTIVATIONS:
        raise ValueError(f"unknown activation {activation!r}; known: {', '.join(ACTIVATIONS)}")
    if model == "mlp":
        h = int(hidden_units)
        if h < 1:
            raise ValueError("hidden_units must be ≥ 1")
        layers: tuple[tuple[str, tuple[int, ...]], ...] = (
            ("W1", (N_FEATURES, h)), ("b1", (h,)), ("W2", (h, N_CLASSES)), ("b2", (N_CLASSES,)))
        return Architecture(model, h, 0, activation, layers, ("W1",))
    c = int(channels)
    if c < 1:
        raise ValueError("channels must be ≥ 1")
    layers = (("K", (KERNEL_SIDE, KERNEL_SIDE, 1, c)), ("bK", (c,)),
              ("W", (IMAGE_SIDE * IMAGE_SIDE * c, N_CLASSES)), ("b", (N_CLASSES,)))
    return Architecture(model, 0, c, activation, layers, ("K",))


def n_params_formula(model: str, hidden_units: int = 32, channels: int = 4) -> int:
    """Closed form of the parameter count (tests check it against :func:`architecture`)."""
    if model == "mlp":
        return (N_FEATURES + 1) * hidden_units + (hidden_units + 1) * N_CLASSES
    return (KERNEL_SIDE * KERNEL_SIDE + 1) * channels + (IMAGE_SIDE * IMAGE_SIDE * channels + 1) * N_CLASSES


def init_params(arch: Architecture, seed: int) -> np.ndarray:
    """Glorot-uniform kernels (conv: fan_in = 9·1, fan_out = 9·C, as Keras) and zero biases, flat."""
    rng = _rng(seed, _STREAM_INIT)
    parts = []
    for _, shape in arch.layers:
        if len(shape) == 1:
            parts.append(np.zeros(shape[0]))
            continue
        if len(shape) == 4:
            receptive = shape[0] * shape[1]
            fan_in, fan_out = receptive * shape[2], receptive * shape[3]
        else:
            fan_in, fan_out = shape
        limit = math.sqrt(6.0 / (fan_in + fan_out))
        parts.append(rng.uniform(-limit, limit, math.prod(shape)))
    return np.concatenate(parts)


def model_inputs(arch: Architecture, X: np.ndarray) -> np.ndarray:
    """What the compiled functions take as x: (N, 64) features (mlp) or (N, 64, 9) patches (small_cnn)."""
    X = np.asarray(X, np.float64)
    if arch.model == "mlp":
        return np.ascontiguousarray(X.reshape(len(X), N_FEATURES))
    if X.ndim == 3 and X.shape[-1] == KERNEL_SIDE * KERNEL_SIDE:
        return X
    return image_patches(X)


# --- pruning ------------------------------------------------------------------------------------


def prune_mask(arch: Architecture, theta: np.ndarray, ratio: float) -> np.ndarray:
    """Boolean keep-mask over θ: the ``round(ratio × n_prunable)`` prunable weights of smallest |θ| are False
    (global over all prunable kernels; ties → lower flat index removed first); everything else True."""
    if not 0.0 <= ratio < 1.0:
        raise ValueError("prune_ratio must be in [0, 1)")
    theta = np.asarray(theta, np.float64)
    idx = arch.prunable_index
    n_remove = round(ratio * idx.size)
    mask = np.ones(arch.n_params, dtype=bool)
    if n_remove:
        order = np.argsort(np.abs(theta[idx]), kind="stable")
        mask[idx[order[:n_remove]]] = False
    return mask


# --- compiled functions -------------------------------------------------------------------------


class _Net:
    """Graph functions of one architecture; traced once, any batch size and any mask."""

    def __init__(self, arch: Architecture) -> None:
        import tensorflow as tf

        self.arch = arch
        n = arch.n_params
        layers = arch.layers
        act = tf.tanh if arch.activation == "tanh" else tf.nn.relu
        cnn = arch.model == "small_cnn"
        x_spec = tf.TensorSpec([None, N_FEATURES, KERNEL_SIDE * KERNEL_SIDE] if cnn else [None, N_FEATURES],
                               tf.float64)
        th_spec = tf.TensorSpec([n], tf.float64)
        y_spec = tf.TensorSpec([None], tf.int32)
        idx_spec = tf.TensorSpec([None], tf.int32)
        scalar = tf.TensorSpec([], tf.float64)

        def unflatten(theta: tf.Tensor) -> list[tf.Tensor]:
            out, start = [], 0
            for _, shape in layers:
                size = math.prod(shape)
                out.append(tf.reshape(theta[start:start + size], shape))
                start += size
            return out

        def logits_of(theta: tf.Tensor, x: tf.Tensor) -> tf.Tensor:
            p = unflatten(theta)
            if cnn:
                kernel = tf.reshape(p[0], [KERNEL_SIDE * KERNEL_SIDE, arch.channels])
                h = act(tf.einsum("npk,kc->npc", x, kernel) + p[1])  # (N, 64, C) = conv2d SAME, NHWC order
                h = tf.reshape(h, [-1, IMAGE_SIDE * IMAGE_SIDE * arch.channels])
                return h @ p[2] + p[3]
            return act(x @ p[0] + p[1]) @ p[2] + p[3]

        def loss_of(theta: tf.Tensor, x: tf.Tensor, y: tf.Tensor) -> tf.Tensor:
            return tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=logits_of(theta, x)))

        def embed(theta: tf.Tensor, idx: tf.Tensor, z: tf.Tensor) -> tf.Tensor:
            return tf.tensor_scatter_nd_update(theta, idx[:, None], z)

        def grad_z(theta: tf.Tensor, idx: tf.Tensor, z: tf.Tensor, x: tf.Tensor, y: tf.Tensor) -> tf.Tensor:
            with tf.GradientTape() as tape:
                tape.watch(z)
                loss = loss_of(embed(theta, idx, z), x, y)
            return tape.gradient(loss, z)

        def hvp_z(theta: tf.Tensor, idx: tf.Tensor, x: tf.Tensor, y: tf.Tensor, v: tf.Tensor) -> tf.Tensor:
            z = tf.gather(theta, idx)
            with tf.GradientTape() as outer:
                outer.watch(z)
                g = grad_z(theta, idx, z, x, y)
                gv = tf.reduce_sum(g * v)
            return outer.gradient(gv, z)

        @tf.function(input_signature=[th_spec, x_spec, y_spec])
        def loss_and_grad(theta: tf.Tensor, x: tf.Tensor, y: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
            with tf.GradientTape() as tape:
                tape.watch(theta)
                loss = loss_of(theta, x, y)
            return loss, tape.gradient(loss, theta)

        @tf.function(input_signature=[th_spec, th_spec, x_spec, y_spec, scalar])
        def sgd_step(theta: tf.Tensor, keep: tf.Tensor, x: tf.Tensor, y: tf.Tensor,
                     lr: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
            loss, g = loss_and_grad(theta, x, y)
            new = theta - lr * g
            return loss, tf.where(keep > 0.5, new, tf.zeros_like(new))  # exact zeros (not −0.0) off the mask

        @tf.function(input_signature=[th_spec, x_spec, y_spec])
        def scores(theta: tf.Tensor, x: tf.Tensor, y: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
            logits = logits_of(theta, x)
            loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=logits))
            hits = tf.cast(tf.equal(tf.argmax(logits, axis=1, output_type=tf.int32), y), tf.float64)
            return loss, tf.reduce_mean(hits)

        @tf.function(input_signature=[th_spec, idx_spec, x_spec, y_spec, tf.TensorSpec([None], tf.float64)])
        def hvp(theta: tf.Tensor, idx: tf.Tensor, x: tf.Tensor, y: tf.Tensor, v: tf.Tensor) -> tf.Tensor:
            return hvp_z(theta, idx, x, y, v)

        @tf.function(input_signature=[th_spec, idx_spec, x_spec, y_spec, tf.TensorSpec([None, None], tf.float64)])
        def hvp_batch(theta: tf.Tensor, idx: tf.Tensor, x: tf.Tensor, y: tf.Tensor, V: tf.Tensor) -> tf.Tensor:
            return tf.vectorized_map(lambda v: hvp_z(theta, idx, x, y, v), V)

        self.loss_and_grad = loss_and_grad
        self.sgd_step = sgd_step
        self.scores = scores
        self.hvp = hvp
        self.hvp_batch = hvp_batch
        self.logits = tf.function(logits_of, input_signature=[th_spec, x_spec])


@functools.lru_cache(maxsize=8)
def _net(arch: Architecture) -> _Net:
    return _Net(arch)


def _active_index(arch: Architecture, mask: np.ndarray | None) -> np.ndarray:
    if mask is None:
        return np.arange(arch.n_params, dtype=np.int32)
    mask = np.asarray(mask, bool)
    if mask.shape != (arch.n_params,):
        raise ValueError(f"mask must have shape ({arch.n_params},), got {mask.shape}")
    return np.flatnonzero(mask).astype(np.int32)


def _tf(theta: np.ndarray, x: np.ndarray, y: np.ndarray) -> tuple[Any, Any, Any]:
    import tensorflow as tf

    return tf.constant(np.asarray(theta, np.float64)), tf.constant(x), tf.constant(np.asarray(y, np.int32))


def loss_and_gradient(arch: Architecture, theta: np.ndarray, X: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
    """Mean cross-entropy (nats) on (X, y) and its gradient w.r.t. the whole flat θ."""
    loss, g = _net(arch).loss_and_grad(*_tf(theta, model_inputs(arch, X), y))
    return float(loss), g.numpy()


def evaluate(arch: Architecture, theta: np.ndarray, X: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """(mean cross-entropy in nats, accuracy) on all of (X, y)."""
    loss, acc = _net(arch).scores(*_tf(theta, model_inputs(arch, X), y))
    return float(loss), float(acc)


def hvp_fn(arch: Architecture, theta: np.ndarray, mask: np.ndarray | None, X: np.ndarray,
           y: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
    """v ↦ H·v for the restricted Hessian H = ∂²L/∂z² (z = θ on the True entries of ``mask``; all of θ when
    ``mask`` is None), L the mean loss on (X, y); v and H·v have length n_active. Double backprop in TF."""
    import tensorflow as tf

    net = _net(arch)
    theta_t, x_t, y_t = _tf(theta, model_inputs(arch, X), y)
    idx_t = tf.constant(_active_index(arch, mask))

    def matvec(v: np.ndarray) -> np.ndarray:
        return net.hvp(theta_t, idx_t, x_t, y_t, tf.constant(np.asarray(v, np.float64))).numpy()

    return matvec


def restricted_hessian(arch: Architecture, theta: np.ndarray, mask: np.ndarray | None, X: np.ndarray,
                       y: np.ndarray, *, chunk: int | None = None) -> np.ndarray:
    """The exact n_active × n_active Hessian of the mean loss on (X, y) w.r.t. the unpruned coordinates
    (in ascending flat-index order), from HVPs with unit vectors stacked ``chunk`` at a time (pfor), then
    symmetrised (H + Hᵀ)/2. ``chunk`` default: 2²¹ / (batch × hidden width) clipped to [8, 64] (on 2 cores
    larger pfor batches were slower, the intermediates leaving the cache)."""
    import tensorflow as tf

    if chunk is None:
        width = arch.hidden_units if arch.model == "mlp" else IMAGE_SIDE * IMAGE_SIDE * arch.channels
        chunk = int(np.clip(HVP_CHUNK_BUDGET // max(1, len(y) * width), 8, 64))
    net = _net(arch)
    theta_t, x_t, y_t = _tf(theta, model_inputs(arch, X), y)
    idx = _active_index(arch, mask)
    idx_t = tf.constant(idx)
    m = idx.size
    H = np.empty((m, m))
    for start in range(0, m, chunk):
        stop = min(m, start + chunk)
        E = np.zeros((stop - start, m))
        E[np.arange(stop - start), np.arange(start, stop)] = 1.0
        H[start:stop] = net.hvp_batch(theta_t, idx_t, x_t, y_t, tf.constant(E)).numpy()
    return 0.5 * (H + H.T)


# --- spectra ------------------------------------------------------------------------------------


def lanczos(matvec: Callable[[np.ndarray], np.ndarray], n: int, steps: int = DEFAULT_LANCZOS_STEPS, *,
            seed: int = 0, n_probes: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Stochastic Lanczos quadrature: (Ritz values, weights) over ``n_probes`` seeded Gaussian start vectors,
    ``min(steps, n)`` Lanczos steps each, full re-orthogonalisation (twice, classical Gram–Schmidt).

    Weights are τⱼ/n_probes with τⱼ = (first component of T's j-th eigenvector)²; they sum to 1, and
    Σⱼ wⱼ·θⱼᵐ = mean over probes of qᵀHᵐq (q the unit start vector) exactly for m ≤ 2·steps − 1. A run stops
    early at an invariant subspace (β < 1e-12·‖T‖), as it must when steps ≥ n.
    """
    from scipy.linalg import eigh_tridiagonal

    steps = max(1, min(int(steps), int(n)))
    rng = _rng(seed, _STREAM_LANCZOS)
    values, weights = [], []
    for _ in range(max(1, int(n_probes))):
        q = rng.standard_normal(n)
        q /= np.linalg.norm(q)
        Q = np.zeros((steps, n))
        alpha: list[float] = []
        beta: list[float] = []
        scale = 0.0
        for j in range(steps):
            Q[j] = q
            w = np.asarray(matvec(q), np.float64)
            a = float(q @ w)
            alpha.append(a)
            scale = max(scale, abs(a), beta[-1] if beta else 0.0)
            for _ in range(2):
                w -= Q[: j + 1].T @ (Q[: j + 1] @ w)
            b = float(np.linalg.norm(w))
            if j == steps - 1 or b <= 1e-12 * max(scale, 1e-300):
                break
            beta.append(b)
            q = w / b
        if len(alpha) == 1:
            theta_j, tau = np.array(alpha), np.ones(1)
        else:
            theta_j, S = eigh_tridiagonal(np.array(alpha), np.array(beta[: len(alpha) - 1]))
            tau = S[0] ** 2
        values.append(theta_j)
        weights.append(tau / tau.sum())
    w_all = np.concatenate(weights) / len(weights)
    v_all = np.concatenate(values)
    order = np.argsort(v_all, kind="stable")
    return v_all[order], w_all[order]


def spectral_density(values: np.ndarray, weights: np.ndarray, *, grid_points: int = DEFAULT_GRID_POINTS,
                     sigma_rel: float = DEFAULT_SIGMA_REL) -> tuple[np.ndarray, np.ndarray, float]:
    """Gaussian-smoothed density Σⱼ wⱼ·N(λ; λⱼ, σ²) on ``grid_points`` uniform points over
    [λ_min − 5σ, λ_max + 5σ]; σ = sigma_rel·(λ_max − λ_min) (1e-3·max(|λ|, 1e-12) for a point spectrum).
    Returns (grid, density, σ); the density integrates to ≈ Σw = 1."""
    values = np.asarray(values, np.float64)
    weights = np.asarray(weights, np.float64)
    lo, hi = float(values.min()), float(values.max())
    sigma = sigma_rel * (hi - lo)
    if sigma <= 0.0:
        sigma = 1e-3 * max(abs(hi), 1e-12)
    grid = np.linspace(lo - 5 * sigma, hi + 5 * sigma, int(grid_points))
    dens = np.zeros_like(grid)
    norm = 1.0 / (sigma * math.sqrt(2 * math.pi))
    for start in range(0, values.size, 512):  # bounded memory: grid × 512 at a time
        v, w = values[start:start + 512], weights[start:start + 512]
        dens += (w[None, :] * np.exp(-0.5 * ((grid[:, None] - v[None, :]) / sigma) ** 2)).sum(axis=1) * norm
    return grid, dens, sigma


def _weighted_quantile(values: np.ndarray, weights: np.ndarray, q: float) -> float:
    cdf = np.cumsum(weights) / weights.sum()
    return float(values[min(int(np.searchsorted(cdf, q - 1e-12)), values.size - 1)])


def spectrum_summary(values: np.ndarray, weights: np.ndarray | None = None) -> dict[str, Any]:
    """λ_min, λ_max, weighted quantiles (keys ``q01`` … ``q99``), fraction of negative eigenvalues (λ < −tol,
    tol = 1e-9·max|λ|), negative mass Σ_{λ<−tol}|λ|/Σ|λ|, mean (= tr H / n), and tol."""
    values = np.asarray(values, np.float64)
    weights = np.full(values.size, 1.0 / values.size) if weights is None else np.asarray(weights, np.float64)
    order = np.argsort(values, kind="stable")
    values, weights = values[order], weights[order]
    tol = NEG_TOL_REL * float(np.max(np.abs(values))) if values.size else 0.0
    neg = values < -tol
    abs_mass = float(weights @ np.abs(values))
    out: dict[str, Any] = {"lambda_min": float(values[0]), "lambda_max": float(values[-1])}
    for q in QUANTILES:
        out[f"q{round(q * 100):02d}"] = _weighted_quantile(values, weights, q)
    out.update({
        "fraction_negative": float(weights[neg].sum()),
        "negative_mass": float(weights[neg] @ np.abs(values[neg]) / abs_mass) if abs_mass > 0 else 0.0,
        "mean": float(weights @ values),
        "negative_tol": tol,
    })
    return out


def hessian_spectrum(arch: Architecture, theta: np.ndarray, mask: np.ndarray | None, X: np.ndarray,
                     y: np.ndarray, *, exact_max: int = EXACT_HESSIAN_MAX,
                     lanczos_steps: int = DEFAULT_LANCZOS_STEPS, n_probes: int = 1, seed: int = 0,
                     grid_points: int = DEFAULT_GRID_POINTS, sigma_rel: float = DEFAULT_SIGMA_REL,
                     s_row_probes: int = 16, method: str | None = None) -> dict[str, Any]:
    """Spectrum of the restricted Hessian on (X, y): exact when n_active ≤ ``exact_max`` (or ``method="exact"``),
    else Lanczos. Keys: method, n_active, summary keys (see :func:`spectrum_summary`), eigenvalues (all when
    exact and ≤ 3000, else the Ritz values), ritz_weights (Lanczos only), density_grid, density, density_sigma,
    s_row, s_row_method ("exact" | "sampled_rows"), t_hessian_s."""
    t0 = time.perf_counter()
    idx = _active_index(arch, mask)
    m = idx.size
    method = method or ("exact" if m <= exact_max else "lanczos")
    if method not in ("exact", "lanczos"):
        raise ValueError(f"unknown Hessian method {method!r}")
    out: dict[str, Any] = {"method": method, "n_active": int(m)}
    if method == "exact":
        H = restricted_hessian(arch, theta, mask, X, y)
        values = np.linalg.eigvalsh(H)
        weights = np.full(m, 1.0 / m)
        hmax = float(np.max(np.abs(H))) if m else 0.0
        out["s_row"] = int((np.abs(H) > NNZ_TOL_REL * hmax).sum(axis=1).max()) if m else 0
        out["s_row_method"] = "exact"
        out["eigenvalues"] = values.tolist() if m <= MAX_STORED_EIGENVALUES else None
    else:
        mv = hvp_fn(arch, theta, mask, X, y)
        values, weights = lanczos(mv, m, lanczos_steps, seed=seed, n_probes=n_probes)
        rows = _rng(seed, _STREAM_SROW).choice(m, size=min(s_row_probes, m), replace=False)
        counts = []
        for i in rows:
            e = np.zeros(m)
            e[i] = 1.0
            h = mv(e)
            counts.append(int((np.abs(h) > NNZ_TOL_REL * max(float(np.max(np.abs(h))), 1e-300)).sum()))
        out["s_row"] = max(counts)
        out["s_row_method"] = "sampled_rows"
        out["eigenvalues"] = values.tolist()
        out["ritz_weights"] = weights.tolist()
    out.update(spectrum_summary(values, weights))
    grid, dens, sigma = spectral_density(values, weights, grid_points=grid_points, sigma_rel=sigma_rel)
    out.update({"density_grid": grid.tolist(), "density": dens.tolist(), "density_sigma": sigma,
                "t_hessian_s": time.perf_counter() - t0})
    return out


# --- schedule -----------------------------------------------------------------------------------


@dataclass
class Outcome:
    """Result of :func:`train_schedule`.

    ``records``: one dict per checkpoint (see :func:`train_schedule`). ``epoch_metrics``: epoch 0 (initial) and
    one per epoch end (keys: epoch, phase, step, train_loss, train_accuracy, test_loss, test_accuracy,
    n_active, sparsity, weight_norm, t_train_s). ``params``: final flat θ; ``mask``: keep-mask (bool, all True
    if never pruned); ``dense_params``: θ just before pruning; ``timing``: totals in seconds.
    """

    arch: Architecture
    n_params: int
    n_prunable: int
    n_pruned: int
    params: np.ndarray
    mask: np.ndarray
    dense_params: np.ndarray | None = None
    hessian_batch_size: int = 0
    records: list[dict[str, Any]] = field(default_factory=list)
    epoch_metrics: list[dict[str, Any]] = field(default_factory=list)
    timing: dict[str, float] = field(default_factory=dict)


def checkpoint_steps(steps_per_epoch: int, checkpoints_per_epoch: int) -> list[int]:
    """Steps (1-based, within an epoch) after which a checkpoint is taken: round(j·S/c), j = 1..c, deduplicated."""
    c = max(1, int(checkpoints_per_epoch))
    return sorted({max(1, round(j * steps_per_epoch / c)) for j in range(1, c + 1)})


def n_checkpoints(dense_epochs: int, sparse_epochs: int, checkpoints_per_epoch: int, steps_per_epoch: int) -> int:
    """Number of records: initial + dense + "pruned" + sparse checkpoints."""
    per = len(checkpoint_steps(steps_per_epoch, checkpoints_per_epoch))
    return 2 + (dense_epochs + sparse_epochs) * per


def train_schedule(
    *,
    model: str = "mlp",
    hidden_units: int = 32,
    channels: int = 4,
    dense_epochs: int = 10,
    prune_ratio: float = 0.9,
    sparse_epochs: int = 10,
    learning_rate: float = 0.05,
    batch_size: int = 128,
    checkpoints_per_epoch: int = 1,
    seed: int = 0,
    activation: str = "tanh",
    exact_max: int = EXACT_HESSIAN_MAX,
    lanczos_steps: int = DEFAULT_LANCZOS_STEPS,
    n_probes: int = 1,
    hessian_batch: int = DEFAULT_HESSIAN_BATCH,
    grid_points: int = DEFAULT_GRID_POINTS,
    sigma_rel: float = DEFAULT_SIGMA_REL,
    data: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None = None,
    on_checkpoint: Callable[[dict[str, Any]], None] | None = None,
    on_epoch: Callable[[dict[str, Any]], None] | None = None,
    check_cancelled: Callable[[], None] | None = None,
) -> Outcome:
    """Dense SGD → prune → sparse SGD with a restricted-Hessian spectrum per checkpoint (module docstring).

    From a spec: :func:`train_from_spec`.
    ``data``: (X_train, y_train, X_test, y_test) with 64 features; default :func:`load_digits_split` (seed).
    ``check_cancelled`` (may raise) is called before every step and every checkpoint.

    Checkpoint record keys: index, epoch (fractional; sparse epochs continue after ``dense_epochs``), step,
    phase ("dense" | "pruned" | "sparse"), n_params, n_active, sparsity (non-zero weights s in θ),
    sparsity_fraction (s/n), weight_norm (‖θ‖₂), loss and grad_norm (on the Hessian batch; gradient w.r.t. the
    active coordinates), train_loss, train_accuracy, test_loss, test_accuracy (full sets), learning_rate,
    eta_lambda_max (η·λ_max), contraction (max|1 − ηλ| over λ_min, λ_max: ‖I − ηH‖), plus everything from
    :func:`hessian_spectrum` (method, lambda_min, lambda_max, q01 … q99, fraction_negative, negative_mass,
    mean, negative_tol, eigenvalues, ritz_weights (Lanczos), density_grid, density, density_sigma, s_row,
    s_row_method, t_hessian_s).
    """
    import tensorflow as tf

    if not 0.0 <= prune_ratio < 1.0:
        raise ValueError("prune_ratio must be in [0, 1)")
    if dense_epochs < 0 or sparse_epochs < 0 or batch_size < 1 or checkpoints_per_epoch < 1:
        raise ValueError("epochs ≥ 0, batch_size ≥ 1 and checkpoints_per_epoch ≥ 1 required")
    t_start = time.perf_counter()
    arch = architecture(model, hidden_units, channels, activation)
    net = _net(arch)
    X_train, y_train, X_test, y_test = data if data is not None else load_digits_split(seed)
    xin_train, xin_test = model_inputs(arch, X_train), model_inputs(arch, X_test)
    y_train = np.asarray(y_train, np.int32)
    y_test = np.asarray(y_test, np.int32)
    n_train = len(y_train)
    hb = min(int(hessian_batch), n_train)
    h_rows = np.sort(_rng(seed, _STREAM_HBATCH).choice(n_train, size=hb, replace=False))
    xh, yh = xin_train[h_rows], y_train[h_rows]
    x_tr, y_tr = tf.constant(xin_train), tf.constant(y_train)
    x_te, y_te = tf.constant(xin_test), tf.constant(y_test)
    xh_t, yh_t = tf.constant(xh), tf.constant(yh)
    lr_t = tf.constant(float(learning_rate), tf.float64)

    theta = tf.constant(init_params(arch, seed))
    mask = np.ones(arch.n_params, dtype=bool)
    keep = tf.constant(mask.astype(np.float64))
    out = Outcome(arch=arch, n_params=arch.n_params, n_prunable=arch.n_prunable, n_pruned=0, params=np.empty(0),
                  mask=mask, hessian_batch_size=hb)
    timing = {"t_train_s": 0.0, "t_hessian_s": 0.0, "t_eval_s": 0.0, "t_prune_s": 0.0}
    steps_per_epoch = max(1, math.ceil(n_train / batch_size))
    ck_steps = set(checkpoint_steps(steps_per_epoch, checkpoints_per_epoch))
    shuffle = _rng(seed, _STREAM_SHUFFLE)

    def cancelled() -> None:
        if check_cancelled is not None:
            check_cancelled()

    def scores() -> dict[str, float]:
        t0 = time.perf_counter()
        tr_loss, tr_acc = net.scores(theta, x_tr, y_tr)
        te_loss, te_acc = net.scores(theta, x_te, y_te)
        timing["t_eval_s"] += time.perf_counter() - t0
        return {"train_loss": float(tr_loss), "train_accuracy": float(tr_acc), "test_loss": float(te_loss),
                "test_accuracy": float(te_acc)}

    def weights_info() -> dict[str, Any]:
        th = theta.numpy()
        return {"n_active": int(mask.sum()), "sparsity": int(np.count_nonzero(th)),
                "sparsity_fraction": float(np.count_nonzero(th)) / arch.n_params,
                "weight_norm": float(np.linalg.norm(th))}

    def checkpoint(epoch: float, step: int, phase: str) -> None:
        cancelled()
        th = theta.numpy()
        loss, g = net.loss_and_grad(theta, xh_t, yh_t)
        spec = hessian_spectrum(arch, th, mask, xh, yh, exact_max=exact_max, lanczos_steps=lanczos_steps,
                                n_probes=n_probes, seed=seed * 1_000_003 + len(out.records),
                                grid_points=grid_points, sigma_rel=sigma_rel)
        timing["t_hessian_s"] += spec["t_hessian_s"]
        eta = float(learning_rate)
        rec: dict[str, Any] = {
            "index": len(out.records), "epoch": float(epoch), "step": int(step), "phase": phase,
            "n_params": arch.n_params, **weights_info(), "loss": float(loss),
            "grad_norm": float(np.linalg.norm(g.numpy()[mask])), **scores(), "learning_rate": eta,
            "eta_lambda_max": eta * spec["lambda_max"],
            "contraction": max(abs(1 - eta * spec["lambda_min"]), abs(1 - eta * spec["lambda_max"])),
            **spec,
        }
        out.records.append(rec)
        if on_checkpoint is not None:
            on_checkpoint(rec)

    def epoch_end(epoch: int, step: int, phase: str) -> None:
        row = {"epoch": float(epoch), "phase": phase, "step": step, **scores(), **weights_info(),
               "t_train_s": timing["t_train_s"]}
        out.epoch_metrics.append(row)
        if on_epoch is not None:
            on_epoch(row)

    def run_epochs(n_epochs: int, first_epoch: int, step: int, phase: str) -> int:
        nonlocal theta
        for e in range(first_epoch, first_epoch + n_epochs):
            batches = np.array_split(shuffle.permutation(n_train), steps_per_epoch)
            for s, idx in enumerate(batches, start=1):
                cancelled()
                t0 = time.perf_counter()
                _, theta = net.sgd_step(theta, keep, tf.constant(xin_train[idx]), tf.constant(y_train[idx]), lr_t)
                timing["t_train_s"] += time.perf_counter() - t0
                step += 1
                if s in ck_steps:
                    checkpoint(e - 1 + s / steps_per_epoch, step, phase)
            epoch_end(e, step, phase)
        return step

    epoch_end(0, 0, "dense")
    checkpoint(0.0, 0, "dense")
    step = run_epochs(dense_epochs, 1, 0, "dense")

    t0 = time.perf_counter()
    out.dense_params = theta.numpy().copy()
    mask = prune_mask(arch, out.dense_params, prune_ratio)
    keep = tf.constant(mask.astype(np.float64))
    theta = tf.constant(np.where(mask, out.dense_params, 0.0))
    out.mask = mask
    out.n_pruned = int((~mask).sum())
    timing["t_prune_s"] = time.perf_counter() - t0
    checkpoint(float(dense_epochs), step, "pruned")
    run_epochs(sparse_epochs, dense_epochs + 1, step, "sparse")

    out.params = theta.numpy().copy()
    timing["t_total_s"] = time.perf_counter() - t_start
    timing["n_checkpoints"] = float(len(out.records))
    timing["t_hessian_per_checkpoint_s"] = timing["t_hessian_s"] / max(1, len(out.records))
    out.timing = timing
    return out


def train_from_spec(spec: Any, **kwargs: Any) -> Outcome:
    """:func:`train_schedule` with the schedule fields of a :class:`~qmlapp.kinds.sparse_qgd.spec.SparseQgdSpec`."""
    fields = ("model", "hidden_units", "channels", "dense_epochs", "prune_ratio", "sparse_epochs", "learning_rate",
              "batch_size", "checkpoints_per_epoch", "seed")
    return train_schedule(**{k: getattr(spec, k) for k in fields}, **kwargs)
