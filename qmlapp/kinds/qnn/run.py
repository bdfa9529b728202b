"""Training engine of the ``qnn`` kind: data pipeline, QNN model, optimisers, final evaluation.

``run(spec, ctx)`` is the registered runner. The simulator is injected (``backend``); by default
``ctx.simulators`` builds TensorFlow Quantum's qsim ops with adjoint gradients
(:class:`~qmlapp.simulators.TfqBackend`), and for gate noise without shots the exact density-matrix simulator
(:class:`~qmlapp.simulators.DensityMatrixBackend`; see :func:`default_backend`).

Conventions recorded with every result:

* loss: cross-entropy, natural log or log₂ (``loss_log_base``), mean or sum over the samples
  (``loss_reduction``), p clipped at 1e-10; the default is natural log and mean;
* z_per_class readout: logits = ``LOGIT_SCALE`` · ⟨Z_c⟩ (a fixed constant, not trained), softmax;
  mod_k readout: p(c) = ⟨Σ_{k≡c mod K} |k⟩⟨k|⟩ with qubit 0 as least significant bit;
  parity / all_z: p(1) = (1 − ⟨O⟩)/2 for O = Z₀Z₁ / ⊗Z (class 1 = odd parity of the measured bits);
* noise (``qmlapp.kinds.qnn.noise``): channels after every gate; readout error folded into the observables;
* mini-batches: the training rows are reshuffled every epoch and the last partial batch is padded
  to the full batch size with rows from the start of the permutation whose loss weight is 0, so the
  compiled step keeps one static shape and every row counts exactly once per epoch;
* ``train_loss``/``train_accuracy`` per epoch (adam/sgd) are running averages over the epoch's
  batches before each update (Keras' convention); for gradient-free optimisers they are evaluated
  on the whole training split at the logged iterate.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from qmlapp.context import RunContext
from qmlapp.datasets import load_dataset
from qmlapp.kinds.base import Provenance
from qmlapp.kinds.qnn.circuits import (
    LOGIT_SCALE,
    PROBABILITY_READOUTS,
    QnnCircuit,
    build_qnn_circuit,
    circuit_qasm,
    circuit_svg,
)
from qmlapp.kinds.qnn.noise import NoiseModel, add_gate_noise, fold_readout_error
from qmlapp.kinds.qnn.result import QnnOptimizerFacts, QnnResult
from qmlapp.kinds.qnn.spec import GRADIENT_OPTIMIZERS, NOISE_EXACT_MAX_QUBITS, QnnSpec
from qmlapp.simulators import CompiledExpectation, Simulator, Simulators, TfqCompiled

if TYPE_CHECKING:
    import tensorflow as tf

P_FLOOR = 1e-10
EVAL_CHUNK = 128  # rows per forward call: TFQ gains nothing from larger batches
# Sampled TFQ evaluation is split so that one call stays around a second (~10 µs per row and shot at 4
# qubits with noise, measured): a run then notices a cancel between calls even at 10^6 shots per row.
ROW_SHOTS_PER_CALL = 100_000
MAX_LOGGED_POINTS = 100  # gradient-free runs log about this many metric points
BETA_CLIP = 1e-6  # MinMax values are clipped into (0, 1) before the Beta fit

# SPSA constants: Qiskit defaults.
SPSA_C, SPSA_GAMMA, SPSA_ALPHA, SPSA_CALIBRATION_DRAWS = 0.2, 0.101, 0.602, 25
SCIPY_TOL = 0.1  # authors' tol for COBYLA (final trust radius) and Nelder–Mead (xatol)

# Independent random streams derived from spec.seed (the split uses spec.seed directly; stream 3
# draws the pauli_two_design axes in qmlapp.kinds.qnn.circuits).
_STREAM_INIT, _STREAM_SHUFFLE, _STREAM_SPSA, _STREAM_SHOTS = 0, 1, 2, 4


@dataclass(frozen=True)
class LossConvention:
    """Cross-entropy ℓᵢ = −log_b max(p(yᵢ|xᵢ), 1e-10), reduced by mean or sum over the samples."""

    log_base: str = "e"
    reduction: str = "mean"

    @classmethod
    def of(cls, spec: QnnSpec) -> LossConvention:
        return cls(spec.loss_log_base, spec.loss_reduction)

    @property
    def scale(self) -> float:
        """Factor from natural-log terms to this base."""
        return 1.0 if self.log_base == "e" else 1.0 / math.log(2)

    def reduce(self, total: float, count: int) -> float:
        """The loss of ``count`` samples whose (scaled) terms sum to ``total``."""
        return total / count if self.reduction == "mean" else total

    def describe(self) -> str:
        log = "natural log" if self.log_base == "e" else "log2"
        return f"cross-entropy, {log}, {self.reduction} over samples, p clipped at 1e-10"


DEFAULT_LOSS = LossConvention()
LOSS_CONVENTION = DEFAULT_LOSS.describe()  # v1 and the default: natural log, mean


# --- data ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PreparedData:
    """Reduced and scaled splits; ``beta_source`` are the MinMax-[0,1] training values for Beta init."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    class_names: tuple[str, ...]
    beta_source: np.ndarray


def prepare_data(spec: QnnSpec) -> PreparedData:
    """Stratified train/val/test split (seeded), then reduction and scaling fitted on train only."""
    from sklearn.decomposition import PCA
    from sklearn.discriminant_analysis import LinearDiscriminantAnalysis
    from sklearn.model_selection import train_test_split
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import MinMaxScaler, StandardScaler

    data = load_dataset(spec.dataset)
    x_rest, x_test, y_rest, y_test = train_test_split(
        data.X, data.y, test_size=spec.test_fraction, stratify=data.y, random_state=spec.seed
    )
    # validation_fraction is a share of all rows, hence the rescaling for the second split.
    x_train, x_val, y_train, y_val = train_test_split(
        x_rest, y_rest, test_size=spec.validation_fraction / (1.0 - spec.test_fraction),
        stratify=y_rest, random_state=spec.seed,
    )
    reducer: Any
    if spec.reduction == "pca":
        reducer = make_pipeline(StandardScaler(), PCA(spec.n_qubits, random_state=spec.seed))
    elif spec.reduction == "lda":
        reducer = LinearDiscriminantAnalysis(n_components=spec.n_qubits)  # unscaled features
    else:
        reducer = None
    if reducer is not None:
        reducer.fit(x_train, y_train)
        x_train, x_val, x_test = (reducer.transform(x) for x in (x_train, x_val, x_test))

    beta_source = np.clip(MinMaxScaler().fit_transform(x_train), BETA_CLIP, 1.0 - BETA_CLIP)
    scaler: Any = {
        "minmax": MinMaxScaler((0.0, 1.0)),
        "minmax_pi": MinMaxScaler((0.0, math.pi)),
        "standard": StandardScaler(),
        "none": None,
    }[spec.scaling]
    if scaler is not None:
        scaler.fit(x_train)
        x_train, x_val, x_test = (scaler.transform(x) for x in (x_train, x_val, x_test))
    if spec.input_activation == "tanh":  # A′: activation of the scaled inputs before encoding
        x_train, x_val, x_test = (np.tanh(x) for x in (x_train, x_val, x_test))
    return PreparedData(x_train, y_train, x_val, y_val, x_test, y_test, data.class_names, beta_source)


def _rng(seed: int, stream: int) -> np.random.Generator:
    return np.random.default_rng([seed, stream])


AUTHORS_INIT = "U[0,1) for every init (authors' code: the chosen init was discarded)"


def initial_weights(spec: QnnSpec, n_parameters: int, beta_source: np.ndarray | None = None) -> np.ndarray:
    """The initial point for every optimiser (float64), seeded by ``spec.seed``.

    uniform U[0, 2π); normal N(0, σ² = 1/depth); zeros; constant: ``spec.init_constant``; the beta
    family fits Beta(a, b) (loc 0, scale 1) to all MinMax-scaled training values, then beta: θ ~ Beta(a, b);
    normal_beta: θ ~ N(μ, s) with μ = a/(a+b), s = √(ab/((a+b)²(a+b+1))) (the Beta's mean and std);
    beta_mu: θ = μ. With ``init_mode`` 'authors' every init gives U[0, 1) (Qiskit-ML's default start,
    which the authors' code used whatever it asked for).
    """
    rng = _rng(spec.seed, _STREAM_INIT)
    if spec.init_mode == "authors":
        return rng.uniform(0.0, 1.0, n_parameters)
    if spec.init == "uniform":
        return rng.uniform(0.0, 2 * math.pi, n_parameters)
    if spec.init == "normal":
        return rng.normal(0.0, 1.0 / math.sqrt(spec.depth), n_parameters)
    if spec.init == "zeros":
        return np.zeros(n_parameters)
    if spec.init == "constant":
        return np.full(n_parameters, spec.init_constant, dtype=np.float64)
    if spec.init in ("beta", "normal_beta", "beta_mu"):
        from scipy import stats

        if beta_source is None:
            raise ValueError(f"init {spec.init!r} needs the MinMax-scaled training values")
        a, b, _, _ = stats.beta.fit(np.ravel(beta_source), floc=0.0, fscale=1.0)
        if spec.init == "beta":
            return rng.beta(a, b, n_parameters)
        mu = a / (a + b)
        if spec.init == "beta_mu":
            return np.full(n_parameters, mu, dtype=np.float64)
        return rng.normal(mu, math.sqrt(a * b / ((a + b) ** 2 * (a + b + 1))), n_parameters)
    raise ValueError(f"unknown init {spec.init!r}")


# --- model --------------------------------------------------------------------------------------


def class_log_probs(expectations: tf.Tensor, readout: str) -> tf.Tensor:
    """Natural-log class probabilities (batch, K) from readout expectations (batch, K)."""
    import tensorflow as tf

    if readout == "z_per_class":
        return tf.nn.log_softmax(LOGIT_SCALE * expectations, axis=-1)
    if readout not in PROBABILITY_READOUTS:
        raise ValueError(f"unknown readout {readout!r}")
    return tf.math.log(tf.maximum(expectations, P_FLOOR))


def make_optimizer(name: str, learning_rate: float) -> Any:
    """Keras (tf-keras) Adam or plain SGD."""
    import tensorflow as tf

    if name == "adam":
        return tf.keras.optimizers.Adam(learning_rate=learning_rate)
    if name == "sgd":
        return tf.keras.optimizers.SGD(learning_rate=learning_rate)
    raise ValueError(f"{name!r} is not a gradient optimiser")


class QnnModel:
    """Circuit + readout + weight vector, with the compiled training step used by :func:`run`.

    ``train_step(x, y, mask)`` takes data-symbol values (batch, n_data) float32, labels (batch,)
    int32 and per-row loss weights (batch,) float32 at the static ``batch_size``; it returns the
    loss of the rows with weight (weighted mean or sum, in the ``loss`` convention) and the natural-log
    class probabilities before the update.
    """

    def __init__(
        self,
        qnn: QnnCircuit,
        compiled: CompiledExpectation,
        weights: np.ndarray,
        batch_size: int | None = None,
        optimizer: Any | None = None,
        loss: LossConvention = DEFAULT_LOSS,
    ) -> None:
        import tensorflow as tf

        self.qnn = qnn
        self.loss = loss
        self.compiled = compiled
        self.n_data = len(qnn.data_symbols)
        self.batch_size = batch_size
        self.weights = tf.Variable(np.asarray(weights, dtype=np.float32), name="qnn_weights")
        self.optimizer = optimizer
        # Forward evaluation (may be a shot-chunked stand-in for ``compiled``) and the cancel check
        # called between its calls; the runner sets both.
        self.forward: CompiledExpectation = compiled
        self.check: Callable[[], None] = lambda: None
        if optimizer is None:
            return
        if batch_size is None or not hasattr(compiled, "tf_call"):
            raise ValueError("gradient training needs a batch size and a differentiable backend (TfqBackend)")
        optimizer.build([self.weights])  # create slots outside the graph
        tf_call = compiled.tf_call
        readout = qnn.readout
        weights_var = self.weights
        scale, mean = loss.scale, loss.reduction == "mean"

        def step(x: tf.Tensor, y: tf.Tensor, mask: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
            with tf.GradientTape() as tape:
                tiled = tf.tile(weights_var[None, :], [batch_size, 1])
                expectations = tf_call(tf.concat([x, tiled], axis=1))
                log_probs = class_log_probs(expectations, readout)
                nll = -tf.gather(log_probs, y, axis=1, batch_dims=1)
                loss = tf.reduce_sum(mask * nll)
                if scale != 1.0:
                    loss = loss * scale
                if mean:
                    loss = loss / tf.reduce_sum(mask)
            grad = tape.gradient(loss, weights_var)
            optimizer.apply_gradients([(grad, weights_var)])
            return loss, log_probs

        self.train_step = tf.function(step, input_signature=[
            tf.TensorSpec([batch_size, self.n_data], tf.float32),
            tf.TensorSpec([batch_size], tf.int32),
            tf.TensorSpec([batch_size], tf.float32),
        ])

    def current_weights(self) -> np.ndarray:
        return self.weights.numpy().astype(np.float64)

    def log_probs(self, data_values: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
        """Class log-probabilities for data-symbol rows (see ``QnnCircuit.data_values``)."""
        import tensorflow as tf

        w = self.weights.numpy() if weights is None else np.asarray(weights, dtype=np.float32)
        chunks = []
        for start in range(0, len(data_values), EVAL_CHUNK):
            self.check()
            x = data_values[start:start + EVAL_CHUNK]
            values = np.concatenate([x, np.broadcast_to(w, (len(x), len(w)))], axis=1)
            chunks.append(np.asarray(self.forward(values), dtype=np.float32))
        expectations = np.concatenate(chunks) if chunks else np.zeros((0, self.qnn.n_classes), np.float32)
        return class_log_probs(tf.constant(expectations), self.qnn.readout).numpy().astype(np.float64)


class ShotChunked:
    """Sampled expectations of ``shots`` shots per row computed as the shot-weighted mean of calls with
    at most ``ROW_SHOTS_PER_CALL`` rows × shots each, with ``check`` between calls.

    The mean of independent estimates over disjoint groups of shots is the estimate over all of them, so
    the statistics are those of one call with ``shots`` (TFQ's sampling is unseeded either way).
    """

    def __init__(self, make: Callable[[int], CompiledExpectation], shots: int, check: Callable[[], None]) -> None:
        self.shots = int(shots)
        per_call = min(self.shots, ROW_SHOTS_PER_CALL)
        self.pieces = [per_call] * (self.shots // per_call) + ([self.shots % per_call] if self.shots % per_call else [])
        self._compiled = {r: make(r) for r in set(self.pieces)}
        self.rows_per_call = max(1, ROW_SHOTS_PER_CALL // per_call)
        self.check = check
        first = self._compiled[per_call]
        self.n_symbols, self.n_outputs = first.n_symbols, first.n_outputs

    def __call__(self, symbol_values: np.ndarray) -> np.ndarray:
        values = np.asarray(symbol_values, dtype=np.float32).reshape(-1, self.n_symbols)
        out = np.zeros((len(values), self.n_outputs))
        for start in range(0, len(values), self.rows_per_call):
            rows = values[start:start + self.rows_per_call]
            for r in self.pieces:
                self.check()
                out[start:start + len(rows)] += r * np.asarray(self._compiled[r](rows), dtype=np.float64)
        return out / self.shots


@dataclass(frozen=True)
class Scores:
    loss: float
    accuracy: float
    predictions: np.ndarray


def score(log_probs: np.ndarray, y: np.ndarray, loss: LossConvention = DEFAULT_LOSS) -> Scores:
    """Loss (in the ``loss`` convention), accuracy and predictions from natural-log class probabilities."""
    nll = -log_probs[np.arange(len(y)), y]
    pred = np.argmax(log_probs, axis=1)
    if loss == DEFAULT_LOSS:
        value = float(np.mean(nll))  # v1's exact arithmetic
    else:
        value = loss.reduce(float(np.sum(nll)) * loss.scale, len(y))
    return Scores(value, float(np.mean(pred == y)), pred)


# --- optimisers ---------------------------------------------------------------------------------


@dataclass
class _Trace:
    """Bookkeeping shared by the training loops: metric logging and progress."""

    ctx: RunContext
    total: int
    unit: str  # "epoch" or "iteration"
    evaluate_val: Callable[[np.ndarray | None], Scores]
    last_logged: int = 0

    def log(self, step: int, train_loss: float, train_acc: float, weights: np.ndarray | None) -> Scores:
        val = self.evaluate_val(weights)
        self.ctx.log_metrics(step, {"train_loss": train_loss, "train_accuracy": train_acc,
                                    "val_loss": val.loss, "val_accuracy": val.accuracy})
        message = f"{self.unit} {step}/{self.total} · loss {train_loss:.4f} · val acc {val.accuracy:.3f}"
        self.ctx.progress(0.05 + 0.9 * min(1.0, step / self.total), message)
        self.last_logged = step
        return val


def _train_gradient(
    spec: QnnSpec, model: QnnModel, x: np.ndarray, y: np.ndarray, trace: _Trace
) -> QnnOptimizerFacts:
    batch = model.batch_size
    assert batch is not None
    n = len(x)
    n_batches = math.ceil(n / batch)
    pad = n_batches * batch - n
    rng = _rng(spec.seed, _STREAM_SHUFFLE)
    mask = np.concatenate([np.ones(n, np.float32), np.zeros(pad, np.float32)])
    y32 = y.astype(np.int32)
    for epoch in range(1, spec.epochs + 1):
        perm = rng.permutation(n)
        order = np.concatenate([perm, perm[:pad]])
        nll_sum, correct = 0.0, 0
        mean = model.loss.reduction == "mean"
        for b in range(n_batches):
            trace.ctx.check_cancelled()
            idx = order[b * batch:(b + 1) * batch]
            m = mask[b * batch:(b + 1) * batch]
            loss, log_probs = model.train_step(x[idx], y32[idx], m)
            lp = log_probs.numpy()
            real = m > 0
            nll_sum += float(loss.numpy()) * float(m.sum()) if mean else float(loss.numpy())
            correct += int(np.sum(np.argmax(lp[real], axis=1) == y[idx][real]))
        trace.log(epoch, nll_sum / n if mean else nll_sum, correct / n, None)
    return {"epochs_run": spec.epochs, "steps_per_epoch": n_batches, "batch_size": batch,
            "padded_rows_per_epoch": pad}


class _Objective:
    """Full-training-set loss for gradient-free optimisers; checks for cancellation on every call."""

    def __init__(self, model: QnnModel, x: np.ndarray, y: np.ndarray, ctx: RunContext) -> None:
        self.model, self.x, self.y, self.ctx = model, x, y, ctx
        self.loss = model.loss
        self.evaluations = 0
        self._cache: dict[bytes, Scores] = {}

    def scores(self, w: np.ndarray) -> Scores:
        key = np.asarray(w, dtype=np.float64).tobytes()
        if key not in self._cache:
            if len(self._cache) > 64:
                self._cache.clear()
            self._cache[key] = score(self.model.log_probs(self.x, w), self.y, self.loss)
        return self._cache[key]

    def __call__(self, w: np.ndarray) -> float:
        self.ctx.check_cancelled()
        self.evaluations += 1
        return self.scores(w).loss


def _log_every(total: int) -> int:
    return max(1, total // MAX_LOGGED_POINTS)


def nelder_mead_fatol(loss: LossConvention, n_samples: int) -> float:
    """The authors' Nelder–Mead tol 0.1 was on a log₂ loss summed over the samples; the same stopping
    rule on our loss convention. xatol is in parameter space and needs no rescaling."""
    fatol = SCIPY_TOL * (math.log(2) if loss.log_base == "e" else 1.0)
    return fatol / n_samples if loss.reduction == "mean" else fatol


def _train_scipy(
    spec: QnnSpec, w0: np.ndarray, objective: _Objective, trace: _Trace, budget: int
) -> tuple[np.ndarray, QnnOptimizerFacts]:
    from scipy.optimize import minimize

    every = _log_every(budget)
    iteration = 0

    def callback(xk: np.ndarray) -> None:
        nonlocal iteration
        iteration += 1  # COBYLA calls back once per evaluation, Nelder–Mead once per iteration
        if iteration % every == 0 or iteration == budget:
            s = objective.scores(xk)
            trace.log(iteration, s.loss, s.accuracy, xk)

    if spec.optimizer == "cobyla":
        res = minimize(objective, w0, method="COBYLA", tol=SCIPY_TOL,
                       options={"maxiter": budget}, callback=callback)
    else:
        fatol = nelder_mead_fatol(objective.loss, len(objective.y))
        res = minimize(objective, w0, method="Nelder-Mead", callback=callback,
                       options={"maxiter": budget, "adaptive": True, "xatol": SCIPY_TOL, "fatol": fatol})
    w = np.asarray(res.x, dtype=np.float64)
    if trace.last_logged != iteration or iteration == 0:
        s = objective.scores(w)
        trace.log(max(iteration, 1), s.loss, s.accuracy, w)
    return w, {"iterations": iteration if spec.optimizer == "nelder_mead" else int(res.nfev),
               "n_evaluations": objective.evaluations, "scipy_nfev": int(res.nfev),
               "optimizer_message": str(res.message), "optimizer_success": bool(res.success)}


def spsa_minimize(
    loss: Callable[[np.ndarray], float],
    x0: np.ndarray,
    maxiter: int,
    target_magnitude: float,
    rng: np.random.Generator,
    on_iteration: Callable[[int, np.ndarray], None] | None = None,
) -> tuple[np.ndarray, dict[str, Any]]:
    """SPSA with Qiskit's calibration and power-series gains.

    c_k = 0.2/k^0.101, a_k = a/k^0.602 (k = 1, 2, ...), Rademacher Δ,
    ĝ = [L(θ+c_kΔ) − L(θ−c_kΔ)]/(2c_k)·Δ. Calibration: a = target_magnitude / m with m the mean of
    |L(θ₀+0.2Δ) − L(θ₀−0.2Δ)|/0.4 over 25 draws. Uses 2·maxiter + 51 loss evaluations.
    """
    x = np.asarray(x0, dtype=np.float64).copy()
    dim = len(x)
    magnitudes = []
    for _ in range(SPSA_CALIBRATION_DRAWS):
        delta = rng.choice([-1.0, 1.0], dim)
        diff = loss(x + SPSA_C * delta) - loss(x - SPSA_C * delta)
        magnitudes.append(abs(diff / (2 * SPSA_C)))
    m = float(np.mean(magnitudes))
    # Qiskit falls back to a = target when the calibration sees a flat landscape.
    a = target_magnitude / m if m > 0 else math.inf
    if not math.isfinite(a) or a < 1e-10:
        a = target_magnitude
    for k in range(1, maxiter + 1):
        ck = SPSA_C / k**SPSA_GAMMA
        ak = a / k**SPSA_ALPHA
        delta = rng.choice([-1.0, 1.0], dim)
        diff = loss(x + ck * delta) - loss(x - ck * delta)
        x = x - ak * diff / (2 * ck) * delta
        if on_iteration is not None:
            on_iteration(k, x)
    final_loss = loss(x)
    return x, {"spsa_a": a, "spsa_c": SPSA_C, "spsa_calibration_magnitude": m, "final_loss": final_loss}


def _train_spsa(
    spec: QnnSpec, w0: np.ndarray, objective: _Objective, trace: _Trace, budget: int
) -> tuple[np.ndarray, QnnOptimizerFacts]:
    every = _log_every(budget)

    def on_iteration(k: int, x: np.ndarray) -> None:
        if k % every == 0 or k == budget:
            s = objective.scores(x)  # monitoring only, not counted as an optimiser evaluation
            trace.log(k, s.loss, s.accuracy, x)

    # learning_rate is SPSA's calibrated gain: the target size of the first step per parameter
    # (Qiskit's default target is 2π/10 ≈ 0.63).
    w, info = spsa_minimize(objective, w0, budget, spec.learning_rate, _rng(spec.seed, _STREAM_SPSA),
                            on_iteration)
    facts: QnnOptimizerFacts = {
        "spsa_a": info["spsa_a"], "spsa_c": info["spsa_c"],
        "spsa_calibration_magnitude": info["spsa_calibration_magnitude"], "final_loss": info["final_loss"],
        "iterations": budget, "n_evaluations": objective.evaluations, "spsa_target_magnitude": spec.learning_rate,
    }
    return w, facts


# --- run ----------------------------------------------------------------------------------------


# Numbers that came out of circuit runs; every other number in a result is "computed" (settings,
# counts, random draws, timings: the vocabulary has no separate "measured").
_SIMULATED = frozenset({"val_accuracy", "val_f1", "val_loss", "test_accuracy", "test_f1", "test_loss",
                        "train_accuracy", "train_loss", "confusion_matrix", "initial_val_accuracy", "weights",
                        "final_loss", "spsa_a", "spsa_calibration_magnitude"})


def _labels(result: Mapping[str, object]) -> dict[str, Provenance]:
    """Honesty labels for every numeric entry (scalars, vectors, matrices) of a result."""
    def numeric(v: Any) -> bool:
        if isinstance(v, bool):
            return False
        if isinstance(v, (int, float, np.integer, np.floating)):
            return True
        return isinstance(v, (list, tuple, np.ndarray)) and len(v) > 0 and all(numeric(x) for x in v)

    return {k: "simulated" if k in _SIMULATED else "computed" for k, v in result.items() if numeric(v)}


_READOUT_CONVENTIONS = {
    "z_per_class": f"softmax({LOGIT_SCALE:g}·⟨Z_c⟩), fixed scale",
    "mod_k": "p(c) = Σ_{k ≡ c mod K} P(k), qubit 0 = least significant bit",
    "parity": "O = Z0·Z1, p(1) = (1 − ⟨O⟩)/2: class 1 = odd parity of bits 0 and 1",
    "all_z": "O = Z on every qubit, p(1) = (1 − ⟨O⟩)/2: class 1 = odd parity of all bits",
}


def default_backend(spec: QnnSpec, simulators: Simulators) -> Simulator:
    """The simulator of a run: TFQ's qsim state vectors when there is no gate noise; with gate noise
    the density-matrix simulator (exact, or sampled from the exact distribution for gradient-free
    optimisers), except for shots with adam/sgd or more than ``NOISE_EXACT_MAX_QUBITS`` qubits, which
    run as TFQ noisy trajectories, one per shot, with parameter-shift gradients."""
    if spec.has_gate_noise and spec.n_qubits <= NOISE_EXACT_MAX_QUBITS and (
            spec.shots == 0 or spec.optimizer not in GRADIENT_OPTIMIZERS):
        return simulators.density_matrix(seed=int(_rng(spec.seed, _STREAM_SHOTS).integers(2**63)))
    return simulators.tfq()


def _noise_simulation(noise: NoiseModel, compiled: CompiledExpectation) -> str:
    """How the noise of a run was simulated, in words."""
    if noise.is_noiseless:
        return "none (noiseless)"
    if not noise.has_gate_noise:
        return "readout error applied to the observables; noiseless state-vector simulation"
    trajectories = int(getattr(compiled, "trajectories", 0))
    if trajectories:
        return f"Monte-Carlo trajectories on TFQ's noisy qsim backend, {trajectories} per expectation"
    shots = int(getattr(compiled, "repetitions", 0))
    if shots:
        return f"exact density-matrix simulation, {shots} shots per row sampled from it (seeded)"
    return "exact density-matrix simulation"


def run(spec: QnnSpec, ctx: RunContext, backend: Simulator | None = None) -> QnnResult:
    """Train and evaluate one QNN configuration; returns the result, in plain JSON types.

    Raises:
        RunCancelled: propagated from ``ctx.check_cancelled()`` (called once per step/evaluation).
    """
    from sklearn.metrics import confusion_matrix, f1_score

    started = time.perf_counter()
    ctx.progress(0.0, "preparing data")
    data = prepare_data(spec)
    ctx.check_cancelled()
    n_classes = len(data.class_names)
    qnn = build_qnn_circuit(spec, n_classes)
    noise = NoiseModel.from_spec(spec)
    circuit = add_gate_noise(qnn.circuit, noise)
    operators = fold_readout_error(qnn.operators, noise.readout_error)
    backend = backend if backend is not None else default_backend(spec, ctx.simulators)
    compiled = backend.compile(circuit, qnn.symbols, operators, repetitions=spec.shots)
    ctx.check_cancelled()
    w0 = initial_weights(spec, len(qnn.weight_symbols), data.beta_source)
    loss = LossConvention.of(spec)

    x_train, x_val, x_test = (qnn.data_values(x) for x in (data.x_train, data.x_val, data.x_test))
    gradient = spec.optimizer in GRADIENT_OPTIMIZERS
    batch = min(spec.batch_size, len(x_train))
    model = QnnModel(qnn, compiled, w0, batch_size=batch if gradient else None,
                     optimizer=make_optimizer(spec.optimizer, spec.learning_rate) if gradient else None, loss=loss)
    model.check = ctx.check_cancelled
    if isinstance(compiled, TfqCompiled) and compiled.repetitions > ROW_SHOTS_PER_CALL // EVAL_CHUNK:
        # Many shots per row: evaluation calls would run for minutes without a cancel check.
        def make(shots: int) -> CompiledExpectation:
            return compiled if shots == spec.shots else backend.compile(circuit, qnn.symbols, operators,
                                                                        repetitions=shots)

        model.forward = ShotChunked(make, compiled.repetitions, ctx.check_cancelled)

    def evaluate_val(weights: np.ndarray | None) -> Scores:
        return score(model.log_probs(x_val, weights), data.y_val, loss)

    initial_val = evaluate_val(w0)
    ctx.progress(0.05, f"training with {spec.optimizer} ({len(w0)} parameters)")
    budget = spec.epochs if gradient else spec.iterations_budget
    assert budget is not None
    trace = _Trace(ctx, budget, "epoch" if gradient else "iteration", evaluate_val)
    train_started = time.perf_counter()
    if gradient:
        info = _train_gradient(spec, model, x_train, data.y_train, trace)
        weights = model.current_weights()
    else:
        objective = _Objective(model, x_train, data.y_train, ctx)
        trainer = _train_spsa if spec.optimizer == "spsa" else _train_scipy
        weights, info = trainer(spec, w0, objective, trace, budget)
    train_time = time.perf_counter() - train_started

    ctx.progress(0.96, "evaluating")
    train = score(model.log_probs(x_train, weights), data.y_train, loss)
    val = score(model.log_probs(x_val, weights), data.y_val, loss)
    test = score(model.log_probs(x_test, weights), data.y_test, loss)
    labels = list(range(n_classes))

    # The ideal circuit: channels have no QASM form and would crowd the drawing; the noise is in the result.
    ctx.save_artifact("circuit.svg", circuit_svg(qnn.circuit), "image/svg+xml")
    x_rep = data.x_train.mean(axis=0)
    header = (f"QML Explorer qnn circuit with trained weights; input = mean of the scaled training "
              f"features x = [{', '.join(f'{v:.6g}' for v in x_rep)}]")
    if not noise.is_noiseless:
        header += f"\nnoise (not in this file): {noise.describe()}"
    qasm = circuit_qasm(qnn.circuit, qnn.resolver(x_rep, weights), header)
    ctx.save_artifact("circuit.qasm", qasm, "text/plain")

    def weighted_f1(y: np.ndarray, s: Scores) -> float:
        return float(f1_score(y, s.predictions, average="weighted", labels=labels, zero_division=0))

    result: QnnResult = {
        "val_accuracy": val.accuracy,
        "val_f1": weighted_f1(data.y_val, val),
        "val_loss": val.loss,
        "test_accuracy": test.accuracy,
        "test_f1": weighted_f1(data.y_test, test),
        "test_loss": test.loss,
        "train_accuracy": train.accuracy,
        "train_loss": train.loss,
        "initial_val_accuracy": initial_val.accuracy,
        "confusion_matrix": confusion_matrix(data.y_test, test.predictions, labels=labels).tolist(),
        "class_names": list(data.class_names),
        "n_parameters": len(weights),
        "n_qubits": spec.n_qubits,
        "n_classes": n_classes,
        "n_train": len(x_train),
        "n_val": len(x_val),
        "n_test": len(x_test),
        "initial_weights": w0.tolist(),
        "weights": weights.tolist(),
        "init_mode": spec.init_mode,
        "init_effective": AUTHORS_INIT if spec.init_mode == "authors" else spec.init,
        "loss_convention": loss.describe(),
        "readout_convention": _READOUT_CONVENTIONS[spec.readout],
        "logit_scale": LOGIT_SCALE if spec.readout == "z_per_class" else None,
        "entangler": qnn.entangler,
        "pauli_two_design_axes": [list(layer) for layer in qnn.rotation_axes] or None,
        "budget_preset": spec.budget_preset,
        "iterations_budget": None if gradient else budget,
        "backend": getattr(backend, "name", type(backend).__name__),
        "shots": spec.shots,
        "noisy": not noise.is_noiseless,
        "noise_1q": spec.noise_1q,
        "noise_2q": spec.noise_2q,
        "amplitude_damping": spec.amplitude_damping,
        "readout_error": spec.readout_error,
        "noise_model": noise.describe(),
        "noise_simulation": _noise_simulation(noise, compiled),
        "trajectories": int(getattr(compiled, "trajectories", 0)),
        "differentiator": getattr(compiled, "differentiator_name", None) if gradient else None,
        **info,
        "train_time_s": train_time,
        "wall_time_s": time.perf_counter() - started,
        "labels": {},
        "label_notes": {},
    }
    result["labels"] = _labels(result)
    ctx.progress(1.0, f"done · test acc {test.accuracy:.3f}")
    return result
