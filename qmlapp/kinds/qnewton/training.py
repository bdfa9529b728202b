"""Training engine of the ``qnewton`` kind: a one-hidden-layer MLP on the digits trained by SGD, Adam or
layer-wise (block-diagonal) Newton steps whose linear solves are delegated to an injected solver.

Why the solver is injected: regularisation, pruning, κ, the cost model and the quantum/classical scheduler
live in :mod:`qmlapp.kinds.qnewton.linalg`; this module only produces the per-tensor gradient ``g`` and Hessian
block ``H`` of each step, applies ``θ ← θ − β·clip(H̃⁻¹g, ±100)`` (plain SGD on the Newton direction, as the
authors' full-Hessian path) and measures the classical wall times (they are
this machine's times, never comparable with the authors' accelerator timings).

Blocks: one per parameter tensor W1 (inputs×H), b1 (H), W2 (H×10), b2 (10), as the authors'
code takes ``jax.hessian`` per layer. ``exact``: the jacobian of that tensor's gradient w.r.t. itself
(nested ``tf.GradientTape``, vectorised with pfor, compiled once per model shape); ``fisher``: the
empirical Fisher (1/B)·Σᵢ gᵢgᵢᵀ from per-sample gradients, whose rank is ≤ B. Everything is
float64 so that κ up to ~10¹² is still meaningful.
"""

from __future__ import annotations

import functools
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

LAYERS = ("W1", "b1", "W2", "b2")
N_CLASSES = 10
DATASETS = ("digits", "digits_4x4")
OPTIMIZERS = ("sgd", "adam", "newton", "qnewton")
HESSIANS = ("exact", "fisher")
DELTA_CLIP = 100.0  # element-wise clip of the Newton direction (authors' real-hessian code)
REG_DELTA = 1e-6  # λ = ε_norm·(max|H_ij| + δ) (authors' layer-wise code)
DEFAULT_EPSILON_NORM = 5e-3
EXACT_ROWS_BUDGET = 16384  # Hessian rows × hidden units vectorised at once (memory, see _Compiled)
ADAM_BETA_1, ADAM_BETA_2, ADAM_EPSILON = 0.9, 0.999, 1e-7  # tf-keras defaults

# Independent random streams derived from ``seed`` (the split uses ``seed`` directly).
_STREAM_INIT, _STREAM_SHUFFLE = 0, 1

Solver = Callable[[str, int, np.ndarray, np.ndarray], tuple[np.ndarray, dict[str, Any]]]
Params = dict[str, np.ndarray]


def _rng(seed: int, stream: int) -> np.random.Generator:
    return np.random.default_rng([seed, stream])


# --- data ---------------------------------------------------------------------------------------


def load_data(dataset: str, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(X_train, y_train, X_test, y_test): pixels scaled to [0, 1] (÷16), labels 0..9, stratified 80/20.

    ``digits_4x4`` averages 2×2 pixel blocks of the 8×8 images (16 features) so that the first kernel's
    Hessian block is 16·H instead of 64·H wide.
    """
    from sklearn.model_selection import train_test_split

    from qmlapp.datasets import load_dataset

    if dataset not in DATASETS:
        raise ValueError(f"unknown dataset {dataset!r}; known: {', '.join(DATASETS)}")
    data = load_dataset("digits")
    X = data.X / 16.0
    if dataset == "digits_4x4":
        X = X.reshape(-1, 4, 2, 4, 2).mean(axis=(2, 4)).reshape(-1, 16)
    y = data.y.astype(np.int64)
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.2, stratify=y, random_state=seed)
    return (np.ascontiguousarray(X_train, np.float64), y_train, np.ascontiguousarray(X_test, np.float64), y_test)


# --- model --------------------------------------------------------------------------------------


def param_shapes(n_inputs: int, hidden_units: int) -> dict[str, tuple[int, ...]]:
    return {"W1": (n_inputs, hidden_units), "b1": (hidden_units,), "W2": (hidden_units, N_CLASSES),
            "b2": (N_CLASSES,)}


def glorot_init(n_inputs: int, hidden_units: int, seed: int) -> Params:
    """Glorot-uniform kernels (U[±√(6/(fan_in+fan_out))]) and zero biases, as Keras/Flax defaults."""
    rng = _rng(seed, _STREAM_INIT)
    out: Params = {}
    for name, shape in param_shapes(n_inputs, hidden_units).items():
        if len(shape) == 2:
            limit = math.sqrt(6.0 / (shape[0] + shape[1]))
            out[name] = rng.uniform(-limit, limit, shape)
        else:
            out[name] = np.zeros(shape)
    return out


def _as_params(params: Mapping[str, np.ndarray] | Sequence[np.ndarray], n_inputs: int, hidden_units: int) -> Params:
    """Copy ``params`` (dict by name or sequence in ``LAYERS`` order) into float64 arrays, checking shapes."""
    values = [params[k] for k in LAYERS] if isinstance(params, Mapping) else list(params)
    if len(values) != len(LAYERS):
        raise ValueError(f"expected {len(LAYERS)} parameter tensors {LAYERS}, got {len(values)}")
    out: Params = {}
    for name, shape, value in zip(LAYERS, param_shapes(n_inputs, hidden_units).values(), values, strict=True):
        arr = np.array(value, dtype=np.float64)
        if arr.shape != shape:
            raise ValueError(f"{name}: expected shape {shape}, got {arr.shape}")
        out[name] = arr
    return out


class _Compiled:
    """The model's graph functions for one (inputs, hidden) shape; traced once, any batch size."""

    def __init__(self, n_inputs: int, hidden_units: int) -> None:
        import tensorflow as tf

        shapes = list(param_shapes(n_inputs, hidden_units).values())
        sig = [[tf.TensorSpec(s, tf.float64) for s in shapes], tf.TensorSpec([None, n_inputs], tf.float64),
               tf.TensorSpec([None], tf.int32)]

        def logits_of(p: list[tf.Tensor], x: tf.Tensor) -> tf.Tensor:
            return tf.tanh(x @ p[0] + p[1]) @ p[2] + p[3]

        def sample_losses(p: list[tf.Tensor], x: tf.Tensor, y: tf.Tensor) -> tf.Tensor:
            return tf.nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=logits_of(p, x))

        @tf.function(input_signature=sig)
        def loss_and_grad(p: list[tf.Tensor], x: tf.Tensor, y: tf.Tensor) -> tuple[tf.Tensor, list[tf.Tensor]]:
            with tf.GradientTape() as tape:
                tape.watch(p)
                loss = tf.reduce_mean(sample_losses(p, x, y))
            return loss, tape.gradient(loss, p)

        # pfor materialises ~4 float64 (batch × hidden) intermediates per Hessian row at once: 13 GB for a
        # 2048-row block at batch 1437 and 128 hidden units. Rows go in chunks to keep that under ~1 GB
        # (batch ≤ 1437 on the digits); one chunk (no loop) for the 1024-row block of 64 inputs × 16 units.
        rows_per_chunk = max(32, EXACT_ROWS_BUDGET // hidden_units)

        @tf.function(input_signature=sig)
        def exact_blocks(p: list[tf.Tensor], x: tf.Tensor, y: tf.Tensor) -> list[tf.Tensor]:
            # Only the diagonal blocks ∂²L/∂θ_k²: jacobian of g_k w.r.t. θ_k, one pfor-vectorised HVP batch each.
            with tf.GradientTape(persistent=True) as outer:
                outer.watch(p)
                with tf.GradientTape() as inner:
                    inner.watch(p)
                    loss = tf.reduce_mean(sample_losses(p, x, y))
                flat = [tf.reshape(g, [-1]) for g in inner.gradient(loss, p)]
            blocks = []
            for k, theta in enumerate(p):
                n = flat[k].shape[0]
                chunk = None if n <= rows_per_chunk else rows_per_chunk
                jac = outer.jacobian(flat[k], theta, experimental_use_pfor=True, parallel_iterations=chunk)
                jac = tf.reshape(jac, [n, n])
                blocks.append(0.5 * (jac + tf.transpose(jac)))  # symmetric up to rounding; make it exact
            return blocks

        @tf.function(input_signature=sig)
        def fisher_blocks(p: list[tf.Tensor], x: tf.Tensor, y: tf.Tensor) -> list[tf.Tensor]:
            # Per-sample gradients by vectorized_map over one-row losses: a jacobian of the batch's loss vector
            # would also vectorise the batch matmul's B×B×hidden cotangents (5 GB at B = 1437, 128 units).
            def one(row: tuple[tf.Tensor, tf.Tensor]) -> list[tf.Tensor]:
                with tf.GradientTape() as tape:
                    tape.watch(p)
                    loss = tf.reduce_sum(sample_losses(p, row[0][None, :], row[1][None]))
                return [tf.reshape(g, [-1]) for g in tape.gradient(loss, p)]

            per_sample = tf.vectorized_map(one, (x, y))  # (B, N_k) each
            b = tf.cast(tf.shape(x)[0], tf.float64)
            return [tf.matmul(g, g, transpose_a=True) / b for g in per_sample]

        @tf.function(input_signature=sig)
        def scores(p: list[tf.Tensor], x: tf.Tensor, y: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
            logits = logits_of(p, x)
            loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=logits))
            hits = tf.cast(tf.equal(tf.argmax(logits, axis=1, output_type=tf.int32), y), tf.float64)
            return loss, tf.reduce_mean(hits)

        # First-order steps are one graph call each (gradient + update), functional so that a warm-up call
        # (tracing) changes nothing; eager Keras updates cost ~5 ms a step here, 2-3× the step itself.
        scalar = tf.TensorSpec([], tf.float64)
        params_sig = sig[0]

        @tf.function(input_signature=[*sig, scalar])
        def sgd_step(p: list[tf.Tensor], x: tf.Tensor, y: tf.Tensor, lr: tf.Tensor) -> tuple[tf.Tensor, list]:
            loss, grads = loss_and_grad(p, x, y)
            return loss, [w - lr * g for w, g in zip(p, grads, strict=True)]

        @tf.function(input_signature=[*sig, params_sig, params_sig, scalar, scalar])
        def adam_step(p: list[tf.Tensor], x: tf.Tensor, y: tf.Tensor, m: list[tf.Tensor], v: list[tf.Tensor],
                      t: tf.Tensor, lr: tf.Tensor) -> tuple[tf.Tensor, list, list, list]:
            # tf-keras Adam (β₁ 0.9, β₂ 0.999, ε 1e-7), written out: α = lr·√(1−β₂ᵗ)/(1−β₁ᵗ).
            loss, grads = loss_and_grad(p, x, y)
            alpha = lr * tf.sqrt(1.0 - ADAM_BETA_2**t) / (1.0 - ADAM_BETA_1**t)
            m = [mi + (g - mi) * (1.0 - ADAM_BETA_1) for mi, g in zip(m, grads, strict=True)]
            v = [vi + (g * g - vi) * (1.0 - ADAM_BETA_2) for vi, g in zip(v, grads, strict=True)]
            p = [w - alpha * mi / (tf.sqrt(vi) + ADAM_EPSILON) for w, mi, vi in zip(p, m, v, strict=True)]
            return loss, p, m, v

        self.loss_and_grad = loss_and_grad
        self.exact_blocks = exact_blocks
        self.fisher_blocks = fisher_blocks
        self.scores = scores
        self.sgd_step = sgd_step
        self.adam_step = adam_step


@functools.lru_cache(maxsize=8)
def _compiled(n_inputs: int, hidden_units: int) -> _Compiled:
    return _Compiled(n_inputs, hidden_units)


def _tf_inputs(params: Params, x: np.ndarray, y: np.ndarray) -> tuple[list[Any], Any, Any]:
    import tensorflow as tf

    return ([tf.constant(params[k], tf.float64) for k in LAYERS], tf.constant(x, tf.float64),
            tf.constant(np.asarray(y), tf.int32))


def _shape_of(params: Mapping[str, np.ndarray]) -> tuple[int, int]:
    n_inputs, hidden = np.shape(params["W1"])
    return int(n_inputs), int(hidden)


def loss_and_gradients(params: Mapping[str, np.ndarray], x: np.ndarray, y: np.ndarray) -> tuple[float, Params]:
    """Mean cross-entropy (nats) on (x, y) and its gradient per tensor (same shapes as ``params``)."""
    fn = _compiled(*_shape_of(params))
    loss, grads = fn.loss_and_grad(*_tf_inputs(dict(params), x, y))
    return float(loss), {k: g.numpy() for k, g in zip(LAYERS, grads, strict=True)}


def hessian_blocks(params: Mapping[str, np.ndarray], x: np.ndarray, y: np.ndarray,
                   kind: str = "exact") -> Params:
    """Per-tensor blocks {name: N×N} of the mean loss on (x, y), rows/columns in row-major flatten order.

    ``exact`` is symmetrised (H+Hᵀ)/2; ``fisher`` is (1/B)·Σᵢ gᵢgᵢᵀ (PSD, rank ≤ B).
    """
    if kind not in HESSIANS:
        raise ValueError(f"unknown Hessian kind {kind!r}; known: {', '.join(HESSIANS)}")
    fn = _compiled(*_shape_of(params))
    blocks = (fn.exact_blocks if kind == "exact" else fn.fisher_blocks)(*_tf_inputs(dict(params), x, y))
    return {k: b.numpy() for k, b in zip(LAYERS, blocks, strict=True)}


def evaluate(params: Mapping[str, np.ndarray], x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """(mean cross-entropy in nats, accuracy) on all of (x, y), computed exactly in one pass."""
    fn = _compiled(*_shape_of(params))
    loss, acc = fn.scores(*_tf_inputs(dict(params), x, y))
    return float(loss), float(acc)


# --- solver -------------------------------------------------------------------------------------


def default_solver(epsilon_norm: float = DEFAULT_EPSILON_NORM) -> Solver:
    """A stand-in for the scheduled solver (tests, benchmarks): dense, regularised, always classical.

    λ = ε_norm·(max|H_ij| + 1e-6), Δ = (H + λI)⁻¹g by ``np.linalg.solve`` (LU), timed.
    """

    def solve(layer: str, step: int, H: np.ndarray, g: np.ndarray) -> tuple[np.ndarray, dict[str, Any]]:
        lam = epsilon_norm * (float(np.max(np.abs(H))) + REG_DELTA)
        start = time.perf_counter()
        delta = np.linalg.solve(H + lam * np.eye(len(g)), g)
        t = time.perf_counter() - start
        return delta, {"layer": layer, "step": step, "n": len(g), "lambda": lam, "choice": "classical",
                       "t_classical_s": t}

    return solve


# --- training -----------------------------------------------------------------------------------


@dataclass
class TrainOutcome:
    """Everything a caller needs to plot curves and to account time.

    ``history``: one dict per step (keys: step, epoch, batch_loss, learning_rate, t_gradient_s,
    t_hessian_s, t_solve_s, t_solver_call_s, t_update_s, t_step_s, cumulative_time_s). ``batch_loss`` is
    the mini-batch loss before the update. SGD/Adam run gradient + update as one graph call, reported as
    ``t_gradient_s``. ``t_solve_s`` sums the solver's ``t_classical_s`` (else the call's wall time);
    ``t_solver_call_s`` is the wall time of the solver calls (κ, pruning, scheduling included).
    ``epoch_metrics``: one dict per epoch end, epoch 0 = the initial weights (keys: epoch, step,
    train_loss, train_accuracy, test_loss, test_accuracy, cumulative_time_s; all numbers).
    ``records``: the solver's dicts, one per tensor per Newton step, with step/epoch/layer/n/t_call_s added.
    ``init``: the initial weights, to start other optimisers from the same point.
    """

    optimizer: str
    params: Params
    init: Params
    history: list[dict[str, Any]] = field(default_factory=list)
    epoch_metrics: list[dict[str, float]] = field(default_factory=list)
    records: list[dict[str, Any]] = field(default_factory=list)
    totals: dict[str, float] = field(default_factory=dict)


def _batches(n: int, batch_size: int, rng: np.random.Generator) -> list[np.ndarray]:
    """One epoch: a fresh permutation cut into ⌈n/B⌉ nearly equal batches (each ≤ B, no tiny remainder)."""
    return np.array_split(rng.permutation(n), max(1, math.ceil(n / batch_size)))


def _step_size(learning_rate: float, step: int, warmup_steps: int) -> float:
    """β_t: linear warm-up from β/w to β over the first ``warmup_steps`` steps, then constant."""
    if warmup_steps <= 0:
        return learning_rate
    return learning_rate * min(1.0, step / warmup_steps)


def train(
    X_train: np.ndarray,
    y_train: np.ndarray,
    X_test: np.ndarray,
    y_test: np.ndarray,
    *,
    optimizer: str,
    hidden_units: int,
    hessian: str = "exact",
    epochs: int,
    batch_size: int,
    learning_rate: float,
    seed: int,
    solver: Solver | None = None,
    on_step: Callable[[int, dict[str, Any]], None] | None = None,
    check_cancelled: Callable[[], None] | None = None,
    init: Mapping[str, np.ndarray] | Sequence[np.ndarray] | None = None,
    warmup_steps: int = 0,
    eval_every: int | None = None,
) -> TrainOutcome:
    """Train the MLP; steps are numbered 1.. and epochs 1.. (epoch 0 in ``epoch_metrics`` is the start).

    Newton/Q-Newton (identical here; they differ only in the injected ``solver``): per step and tensor k,
    ``delta, record = solver(k, step, H_k, g_k)`` and θ_k ← θ_k − β_t·clip(delta, ±100). Without a solver,
    :func:`default_solver` (ε_norm = 5e-3). SGD/Adam: one compiled gradient + update call per step.
    Batches are reshuffled every epoch from ``seed``; the whole train and test sets are scored at every
    epoch end (and every ``eval_every`` steps), outside the timed step. Graph tracing happens in an untimed
    warm-up call, so the first step is not charged for compilation. ``check_cancelled`` may raise.
    """
    if optimizer not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {optimizer!r}; known: {', '.join(OPTIMIZERS)}")
    if hessian not in HESSIANS:
        raise ValueError(f"unknown Hessian kind {hessian!r}; known: {', '.join(HESSIANS)}")
    if epochs < 1 or batch_size < 1:
        raise ValueError("epochs and batch_size must be ≥ 1")
    import tensorflow as tf

    X_train = np.asarray(X_train, np.float64)
    y_train = np.asarray(y_train, np.int32)
    n_inputs, n_train = X_train.shape[1], len(y_train)
    init_params = _as_params(init, n_inputs, hidden_units) if init is not None else glorot_init(
        n_inputs, hidden_units, seed)
    fn = _compiled(n_inputs, hidden_units)
    newton = optimizer in ("newton", "qnewton")
    if newton and solver is None:
        solver = default_solver()
    blocks_fn = fn.exact_blocks if hessian == "exact" else fn.fisher_blocks

    p = [tf.constant(init_params[k]) for k in LAYERS]
    m = [tf.zeros_like(w) for w in p]
    v = [tf.zeros_like(w) for w in p]
    lr_t = tf.constant(float(learning_rate), tf.float64)
    x_tr, y_tr = tf.constant(X_train), tf.constant(y_train)
    x_te, y_te = tf.constant(np.asarray(X_test, np.float64)), tf.constant(np.asarray(y_test, np.int32))
    wx, wy = x_tr[: min(batch_size, n_train)], y_tr[: min(batch_size, n_train)]
    warm: list[tuple[Any, tuple[Any, ...]]] = [(fn.scores, (p, x_tr, y_tr))]
    if newton:
        warm += [(fn.loss_and_grad, (p, wx, wy)), (blocks_fn, (p, wx, wy))]
    elif optimizer == "sgd":
        warm.append((fn.sgd_step, (p, wx, wy, lr_t)))
    else:
        warm.append((fn.adam_step, (p, wx, wy, m, v, lr_t, lr_t)))
    for f, args in warm:
        if f.experimental_get_tracing_count() == 0:
            f(*args)  # results discarded: every function is pure

    rng = _rng(seed, _STREAM_SHUFFLE)
    steps_per_epoch = max(1, math.ceil(n_train / batch_size))
    total_steps = epochs * steps_per_epoch
    out = TrainOutcome(optimizer=optimizer, params={}, init={k: w.copy() for k, w in init_params.items()})
    time_keys = ("t_gradient_s", "t_hessian_s", "t_solve_s", "t_solver_call_s", "t_update_s", "t_step_s")
    totals = dict.fromkeys((*time_keys, "t_eval_s"), 0.0)
    cumulative = 0.0

    def score(epoch: int, step: int) -> dict[str, float]:
        start = time.perf_counter()
        tr_loss, tr_acc = fn.scores(p, x_tr, y_tr)
        te_loss, te_acc = fn.scores(p, x_te, y_te)
        row = {"epoch": float(epoch), "step": float(step), "train_loss": float(tr_loss),
               "train_accuracy": float(tr_acc), "test_loss": float(te_loss), "test_accuracy": float(te_acc),
               "cumulative_time_s": cumulative}
        totals["t_eval_s"] += time.perf_counter() - start
        return row

    out.epoch_metrics.append(score(0, 0))
    step = 0
    for epoch in range(1, epochs + 1):
        for idx in _batches(n_train, batch_size, rng):
            step += 1
            if check_cancelled is not None:
                check_cancelled()
            xb, yb = tf.constant(X_train[idx]), tf.constant(y_train[idx])
            beta = _step_size(learning_rate, step, warmup_steps) if newton else learning_rate
            t_hessian = t_solve = t_call = t_update = 0.0
            t0 = time.perf_counter()
            if optimizer == "sgd":
                loss_t, p = fn.sgd_step(p, xb, yb, lr_t)
                batch_loss = float(loss_t)
            elif optimizer == "adam":
                loss_t, p, m, v = fn.adam_step(p, xb, yb, m, v, tf.constant(float(step), tf.float64), lr_t)
                batch_loss = float(loss_t)
            t1 = time.perf_counter()
            if newton:
                assert solver is not None  # defaulted above
                loss_t, grads_t = fn.loss_and_grad(p, xb, yb)
                grads = [g.numpy() for g in grads_t]
                batch_loss = float(loss_t)
                t1 = time.perf_counter()
                blocks = [b.numpy() for b in blocks_fn(p, xb, yb)]
                t2 = time.perf_counter()
                t_hessian = t2 - t1
                updates = []
                for name, H, g in zip(LAYERS, blocks, grads, strict=True):
                    if check_cancelled is not None:
                        check_cancelled()  # each block's solve (κ, eigenvalues) can take seconds
                    c0 = time.perf_counter()
                    delta, record = solver(name, step, H, g.reshape(-1))
                    c1 = time.perf_counter()
                    delta = np.asarray(delta, np.float64).reshape(-1)
                    if delta.shape != (g.size,):
                        raise ValueError(f"solver returned {delta.shape} for {name} with {g.size} parameters")
                    rec = {"step": step, "epoch": epoch, "layer": name, "n": g.size, **dict(record or {}),
                           "t_call_s": c1 - c0}
                    n_nan = int(np.isnan(delta).sum())
                    if n_nan:  # a failed solve must not poison the weights: those entries are not updated
                        rec["delta_nan"] = n_nan
                        delta = np.nan_to_num(delta, nan=0.0)
                    t_classical = rec.get("t_classical_s")
                    t_solve += float(t_classical) if t_classical is not None else c1 - c0
                    t_call += c1 - c0
                    out.records.append(rec)
                    updates.append(np.clip(delta, -DELTA_CLIP, DELTA_CLIP).reshape(g.shape))
                t3 = time.perf_counter()
                p = [tf.constant(w.numpy() - beta * u) for w, u in zip(p, updates, strict=True)]
                t_update = time.perf_counter() - t3
            t_step = time.perf_counter() - t0
            cumulative += t_step
            row = {"step": step, "epoch": epoch, "batch_loss": batch_loss, "learning_rate": beta,
                   "t_gradient_s": t1 - t0, "t_hessian_s": t_hessian, "t_solve_s": t_solve,
                   "t_solver_call_s": t_call, "t_update_s": t_update, "t_step_s": t_step,
                   "cumulative_time_s": cumulative}
            out.history.append(row)
            for key in time_keys:
                totals[key] += row[key]
            metrics: dict[str, Any] = {**row, "total_steps": total_steps}
            epoch_end = step == epoch * steps_per_epoch
            if epoch_end or (eval_every and step % eval_every == 0):
                ev = score(epoch, step)
                if epoch_end:
                    out.epoch_metrics.append(ev)
                metrics.update({k: ev[k] for k in ("train_loss", "train_accuracy", "test_loss", "test_accuracy")})
            if on_step is not None:
                on_step(step, metrics)

    out.params = {k: w.numpy().copy() for k, w in zip(LAYERS, p, strict=True)}
    out.totals = {**totals, "n_steps": float(step)}
    return out
