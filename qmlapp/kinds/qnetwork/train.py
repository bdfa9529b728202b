"""Training the split model with TensorFlow Quantum (worker side only: imports TensorFlow when called).

Classifier: p(y=1|x) = (1 + ℒ(x))/2, clipped to [1e-7, 1 − 1e-7]; loss = mean binary cross-entropy in nats.
Gradients are exact (``tfq.layers.Expectation`` with TFQ's default adjoint differentiator), i.e. what
infinitely many copies would give; the communication that a real parameter-shift or shadow-tomography
gradient would cost is counted elsewhere (:mod:`qmlapp.kinds.qnetwork.accounting`).

TFQ habits: the symbolic circuit (amplitude-encoding tree + model) is serialised ONCE and
tiled to the batch; per-example data-symbol values are computed once per dataset and fed per batch; the
model parameters are one ``tf.Variable``; the step is a ``tf.function`` with a static batch shape. The last
partial batch of an epoch is padded with rows from the start of the permutation that carry loss weight 0,
so every example counts exactly once per epoch. Epoch metrics (train and test) are evaluated on the full
splits with the parameters at the end of the epoch, by the exact float64 NumPy engine (:func:`predict`):
at n ≤ 8 TFQ is overhead-bound (~0.5 ms per circuit here), the engine is ~10× faster and agrees to float32
precision (tests).
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from qmlapp.kinds.qnetwork.model import SplitModel
from qmlapp.simulators import Simulators

P_CLIP = 1e-7
EVAL_CHUNK = 128  # rows per forward call (TFQ gains nothing from larger batches)
# Seed streams derived from the run seed.
_STREAM_INIT, _STREAM_SHUFFLE, _STREAM_TEACHER = 0, 1, 2


@dataclass
class TrainResult:
    """Final parameters, one metrics dict per epoch (epoch, train_loss, train_accuracy, test_loss,
    test_accuracy, epoch_s) and ``initial`` (the same metrics before training, epoch 0)."""

    params: np.ndarray
    history: list[dict[str, float]]
    initial: dict[str, float]
    wall_s: float
    steps_per_epoch: int
    batch_size: int
    padded_rows_per_epoch: int
    differentiator: str = "Adjoint"
    info: dict[str, Any] = field(default_factory=dict)


def predict(model: SplitModel, params: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Exact ℒ(x) per row (float64 state vectors, no TensorFlow)."""
    return model.expectations(params, x)


def teacher_labels(model: SplitModel, x: np.ndarray, seed: int, *, reference: np.ndarray | None = None) -> np.ndarray:
    """Labels of the synthetic task: y = [ℒ_T(x) > median] for a random teacher of the same architecture with
    data layers (same projection R, parameters U[0, 2π) from ``seed``); exact values. The median is taken
    over ``reference`` inputs (default: ``x`` itself, which makes the labels balanced): pass the training
    inputs when labelling a test split, so that both splits share one threshold.
    Why a teacher: the task is then realisable by the student when it has data layers, whatever its depth."""
    teacher = dataclasses.replace(model, data_layers=True)
    params = teacher.init_params(np.random.default_rng([seed, _STREAM_TEACHER]))
    values = teacher.expectations(params, x)
    threshold = np.median(values if reference is None else teacher.expectations(params, reference))
    return (values > threshold).astype(np.int64)


def bce(expectations: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """(mean binary cross-entropy in nats, accuracy) of p = (1 + ℒ)/2 against labels in {0, 1}."""
    p = np.clip((1.0 + np.asarray(expectations, dtype=np.float64)) / 2.0, P_CLIP, 1.0 - P_CLIP)
    y = np.asarray(y)
    loss = -np.mean(np.where(y == 1, np.log(p), np.log1p(-p)))
    return float(loss), float(np.mean((p > 0.5) == (y == 1)))


class _TfqSplitModel:
    """Serialised circuit + parameter variable + compiled training step."""

    def __init__(self, model: SplitModel, params: np.ndarray, batch_size: int, learning_rate: float,
                 simulators: Simulators) -> None:
        import tensorflow as tf

        circuit, data_symbols, model_symbols = model.symbolic_circuit()
        self.compiled = simulators.tfq().compile(circuit, data_symbols + model_symbols, [model.observable()])
        self.n_data = len(data_symbols)
        self.weights = tf.Variable(np.asarray(params, dtype=np.float32), name="qnetwork_params")
        optimizer = tf.keras.optimizers.Adam(learning_rate=learning_rate)
        optimizer.build([self.weights])  # slots outside the graph
        tf_call, weights = self.compiled.tf_call, self.weights

        def step(x: tf.Tensor, y: tf.Tensor, mask: tf.Tensor) -> tf.Tensor:
            with tf.GradientTape() as tape:
                tiled = tf.tile(weights[None, :], [batch_size, 1])
                value = tf_call(tf.concat([x, tiled], axis=1))[:, 0]
                p = tf.clip_by_value((1.0 + value) / 2.0, P_CLIP, 1.0 - P_CLIP)
                nll = -(y * tf.math.log(p) + (1.0 - y) * tf.math.log(1.0 - p))
                loss = tf.reduce_sum(mask * nll) / tf.reduce_sum(mask)
            optimizer.apply_gradients([(tape.gradient(loss, weights), weights)])
            return loss

        self.step = tf.function(step, input_signature=[
            tf.TensorSpec([batch_size, self.n_data], tf.float32),
            tf.TensorSpec([batch_size], tf.float32),
            tf.TensorSpec([batch_size], tf.float32),
        ])

    def params(self) -> np.ndarray:
        return self.weights.numpy().astype(np.float64)

    def expectations(self, data_values: np.ndarray) -> np.ndarray:
        """ℒ per row of data-symbol values at the current parameters (TFQ forward, float32 → float64)."""
        w = self.weights.numpy()
        out = []
        for s in range(0, len(data_values), EVAL_CHUNK):
            x = data_values[s:s + EVAL_CHUNK]
            out.append(self.compiled(np.concatenate([x, np.broadcast_to(w, (len(x), len(w)))], axis=1))[:, 0])
        return np.concatenate(out).astype(np.float64) if out else np.zeros(0)


def tfq_value_and_grad(model: SplitModel, params: np.ndarray, x: np.ndarray, *,
                       simulators: Simulators | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(ℒ per row (M,), ∂ℒ/∂φ per row (M, 2LP)) from the training path: the serialised symbolic circuit
    (encoding tree included) on TFQ with the adjoint differentiator. float32 precision; for checks."""
    import tensorflow as tf

    circuit, data_symbols, model_symbols = model.symbolic_circuit()
    backend = (simulators or Simulators.from_env()).tfq()
    compiled = backend.compile(circuit, data_symbols + model_symbols, [model.observable()])
    data = model.data_symbol_values(x)
    values = np.concatenate([data, np.broadcast_to(np.asarray(params, dtype=np.float64), (len(data), model.n_params))],
                            axis=1)
    symbol_values = tf.Variable(values.astype(np.float32))
    with tf.GradientTape() as tape:
        out = compiled.tf_call(symbol_values)[:, 0]
    grad = tape.gradient(out, symbol_values).numpy()  # rows are independent: row i holds ∂ℒᵢ/∂(its symbols)
    return out.numpy().astype(np.float64), grad[:, len(data_symbols):].astype(np.float64)


def train_split_model(
    model: SplitModel,
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_test: np.ndarray,
    y_test: np.ndarray,
    *,
    epochs: int,
    learning_rate: float,
    batch_size: int,
    seed: int,
    on_epoch: Callable[[int, dict[str, float]], None] | None = None,
    check_cancelled: Callable[[], None] | None = None,
    init_params: np.ndarray | None = None,
    simulators: Simulators | None = None,
) -> TrainResult:
    """Adam on the mean binary cross-entropy with exact TFQ adjoint gradients.

    Parameters start at ``init_params`` or U[0, 2π) from ``seed``; ``on_epoch(epoch, metrics)`` runs for the
    untrained model (epoch 0) and after every epoch, ``check_cancelled()`` before every step (it may raise).
    ``simulators`` builds the TFQ backend (None: the process default)."""
    start = time.perf_counter()
    n = len(x_train)
    if n == 0:
        raise ValueError("empty training set")
    batch = int(min(batch_size, n))
    params0 = (np.asarray(init_params, dtype=np.float64) if init_params is not None
               else model.init_params(np.random.default_rng([seed, _STREAM_INIT])))
    data_train = model.data_symbol_values(x_train).astype(np.float32)
    y_tr = np.asarray(y_train).astype(np.float32)
    tfq_model = _TfqSplitModel(model, params0, batch, learning_rate, simulators or Simulators.from_env())

    def metrics() -> dict[str, float]:
        params = tfq_model.params()
        train_loss, train_acc = bce(predict(model, params, x_train), y_train)
        out = {"train_loss": train_loss, "train_accuracy": train_acc}
        if len(x_test):
            out["test_loss"], out["test_accuracy"] = bce(predict(model, params, x_test), y_test)
        else:
            out["test_loss"] = out["test_accuracy"] = math.nan
        return out

    initial = {"epoch": 0, **metrics()}
    if on_epoch is not None:  # the curves start at the untrained model
        on_epoch(0, initial)
    steps = math.ceil(n / batch)
    pad = steps * batch - n
    mask = np.concatenate([np.ones(n, np.float32), np.zeros(pad, np.float32)])
    rng = np.random.default_rng([seed, _STREAM_SHUFFLE])
    history = []
    for epoch in range(1, epochs + 1):
        t0 = time.perf_counter()
        perm = rng.permutation(n)
        order = np.concatenate([perm, perm[:pad]])
        for b in range(steps):
            if check_cancelled is not None:
                check_cancelled()
            idx = order[b * batch:(b + 1) * batch]
            tfq_model.step(data_train[idx], y_tr[idx], mask[b * batch:(b + 1) * batch])
        row = {"epoch": epoch, **metrics(), "epoch_s": time.perf_counter() - t0}
        history.append(row)
        if on_epoch is not None:
            on_epoch(epoch, row)
    return TrainResult(params=tfq_model.params(), history=history, initial=initial,
                       wall_s=time.perf_counter() - start, steps_per_epoch=steps, batch_size=batch,
                       padded_rows_per_epoch=pad, differentiator=tfq_model.compiled.differentiator_name,
                       info={"n_data_symbols": tfq_model.n_data, "n_model_symbols": model.n_params})
