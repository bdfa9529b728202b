"""QNN training engine: data pipeline, initialisation, optimisers, cancellation, reproducibility."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from qmlapp.context import LocalContext, RunCancelled
from qmlapp.experiments.qnn import INITS, QnnSpec
from qmlapp.experiments.qnn_train import (
    QnnModel,
    initial_weights,
    make_optimizer,
    prepare_data,
    run,
    score,
    spsa_minimize,
)
from qmlapp.registry import get_kind

REQUIRED = ("val_accuracy", "val_f1", "test_accuracy", "test_f1", "test_loss", "confusion_matrix",
            "class_names", "n_parameters", "n_train", "n_val", "n_test", "wall_time_s", "train_time_s",
            "labels", "loss_convention")
TIMES = ("wall_time_s", "train_time_s")


def without_times(result: dict) -> dict:
    return {k: v for k, v in result.items() if k not in TIMES}


@pytest.fixture(scope="module")
def default_run() -> tuple[dict, LocalContext]:
    """The default spec (iris, 4 qubits, depth 2, adam, 20 epochs), run once for several tests."""
    ctx = LocalContext()
    return run(QnnSpec(), ctx), ctx


# --- data -----------------------------------------------------------------------------------------


def test_split_is_stratified_and_scaled_on_train() -> None:
    data = prepare_data(QnnSpec())
    assert (len(data.y_train), len(data.y_val), len(data.y_test)) == (90, 30, 30)
    assert np.bincount(data.y_val).tolist() == [10, 10, 10]
    assert data.x_train.min() == pytest.approx(0.0, abs=1e-12)
    assert data.x_train.max() == pytest.approx(math.pi)
    other = prepare_data(QnnSpec(validation_fraction=0.3, test_fraction=0.1, scaling="standard"))
    assert (len(other.y_train), len(other.y_val), len(other.y_test)) == (90, 45, 15)
    np.testing.assert_allclose(other.x_train.mean(axis=0), 0.0, atol=1e-9)
    assert not np.allclose(prepare_data(QnnSpec(seed=1)).y_test, data.y_test)


@pytest.mark.parametrize(("reduction", "n_qubits", "dataset"), [("pca", 3, "wine"), ("lda", 2, "wine"),
                                                                ("none", 4, "iris")])
def test_reduction_gives_one_feature_per_qubit(reduction: str, n_qubits: int, dataset: str) -> None:
    data = prepare_data(QnnSpec(dataset=dataset, reduction=reduction, n_qubits=n_qubits, scaling="minmax",
                                readout="mod_k"))
    assert data.x_train.shape[1] == data.x_val.shape[1] == data.x_test.shape[1] == n_qubits
    assert data.x_train.min() >= -1e-12 and data.x_train.max() <= 1 + 1e-12


# --- initialisation -------------------------------------------------------------------------------


def test_init_modes_give_different_initial_weights() -> None:
    spec = QnnSpec(n_qubits=4, depth=20)
    beta_source = prepare_data(spec).beta_source
    weights = {init: initial_weights(spec.replace(init=init), 160, beta_source) for init in INITS}
    for a in INITS:
        for b in INITS:
            if a < b:
                assert not np.allclose(weights[a], weights[b]), (a, b)
    assert np.all(weights["constant"] == spec.init_constant)
    assert np.all(initial_weights(spec.replace(init="constant", init_constant=-0.7), 5) == -0.7)
    assert np.all(weights["zeros"] == 0.0)
    assert weights["uniform"].min() >= 0 and weights["uniform"].max() < 2 * math.pi
    assert weights["normal"].std() == pytest.approx(1 / math.sqrt(20), rel=0.25)
    assert weights["beta"].min() > 0 and weights["beta"].max() < 1
    # Seeded: same seed, same point; another seed, another point.
    np.testing.assert_array_equal(initial_weights(spec, 16), initial_weights(spec, 16))
    assert not np.allclose(initial_weights(spec, 16), initial_weights(spec.replace(seed=1), 16))


def test_run_starts_from_the_chosen_init() -> None:
    spec = QnnSpec(init="constant", init_constant=0.25, optimizer="cobyla", epochs=2)
    result = run(spec, LocalContext())
    assert result["initial_weights"] == [0.25] * result["n_parameters"]


# --- training -------------------------------------------------------------------------------------


def test_default_spec_learns_iris(default_run: tuple[dict, LocalContext]) -> None:
    result, ctx = default_run
    assert result["val_accuracy"] > 0.6 and result["test_accuracy"] > 0.6  # chance is 1/3
    assert ctx.series("train_loss")[-1] < ctx.series("train_loss")[0]
    assert result["wall_time_s"] < 60


def test_result_contract(default_run: tuple[dict, LocalContext]) -> None:
    result, ctx = default_run
    assert set(REQUIRED) <= set(result)
    json.dumps(result, allow_nan=False)
    assert np.array(result["confusion_matrix"]).shape == (3, 3)
    assert np.array(result["confusion_matrix"]).sum() == result["n_test"] == 30
    assert result["n_parameters"] == 16 and result["class_names"] == ["setosa", "versicolor", "virginica"]
    assert result["labels"]["test_accuracy"] == "simulated" and result["labels"]["n_parameters"] == "computed"
    assert {k for k in REQUIRED if isinstance(result[k], (int, float))} <= set(result["labels"])
    # One metric point per epoch, progress ends at 1.
    for name in ("train_loss", "train_accuracy", "val_loss", "val_accuracy"):
        assert len(ctx.series(name)) == 20
    assert ctx.progress_log[-1][0] == 1.0
    assert all(0 <= f <= 1 for f, _ in ctx.progress_log)
    assert ctx.artifacts["circuit.svg"].media_type == "image/svg+xml"
    assert ctx.artifacts["circuit.svg"].content.startswith(b"<svg")
    qasm = ctx.artifacts["circuit.qasm"]
    assert qasm.media_type == "text/plain" and b"OPENQASM 2.0;" in qasm.content and b"w0" not in qasm.content


def test_banknote_learns_with_mod_k_readout() -> None:
    result = run(QnnSpec(dataset="banknote", readout="mod_k", epochs=3), LocalContext())
    assert result["val_accuracy"] > 0.7  # balanced-ish binary task, majority class is 0.56


def test_train_step_loss_equals_evaluation_loss() -> None:
    from qmlapp.circuits import build_qnn_circuit
    from qmlapp.simulators import TfqBackend

    spec = QnnSpec(readout="mod_k")
    data = prepare_data(spec)
    qnn = build_qnn_circuit(spec)
    compiled = TfqBackend().compile(qnn.circuit, qnn.symbols, qnn.operators)
    w0 = initial_weights(spec, len(qnn.weight_symbols))
    model = QnnModel(qnn, compiled, w0, batch_size=8, optimizer=make_optimizer("sgd", 0.1))
    x = qnn.data_values(data.x_train[:8])
    y = data.y_train[:8]
    expected = score(model.log_probs(x[:5]), y[:5]).loss
    mask = np.array([1, 1, 1, 1, 1, 0, 0, 0], np.float32)  # padded rows must not count
    loss, _ = model.train_step(x, y.astype(np.int32), mask)
    assert float(loss) == pytest.approx(expected, rel=1e-5)
    assert not np.allclose(model.current_weights(), w0)  # one SGD update was applied


@pytest.mark.parametrize("optimizer", ["cobyla", "nelder_mead", "spsa"])
def test_gradient_free_optimizers_smoke(optimizer: str) -> None:
    spec = QnnSpec(optimizer=optimizer, epochs=6, encoding="zz_feature_map", ansatz="real_amplitudes")
    ctx = LocalContext()
    result = run(spec, ctx)
    assert set(REQUIRED) <= set(result)
    assert len(ctx.series("val_accuracy")) >= 1
    assert result["weights"] != result["initial_weights"]
    if optimizer == "spsa":
        assert result["n_evaluations"] == 2 * 6 + 51  # Qiskit's budget: calibration + 2 per step + final
        assert len(ctx.series("train_loss")) == 6
    else:
        assert result["n_evaluations"] <= 6 + 2 * result["n_parameters"] + 2
    assert ctx._checks >= result["n_evaluations"]  # cancellation is checked on every evaluation


def test_spsa_minimises_a_quadratic() -> None:
    target = np.array([0.5, -1.0, 2.0])
    x, info = spsa_minimize(lambda v: float(np.sum((v - target) ** 2)), np.zeros(3), 300, 0.5,
                            np.random.default_rng(0))
    np.testing.assert_allclose(x, target, atol=0.1)
    assert info["spsa_a"] > 0


@pytest.mark.parametrize("optimizer", ["adam", "spsa", "cobyla"])
def test_cancellation_propagates(optimizer: str) -> None:
    ctx = LocalContext(cancel_after_steps=3)
    with pytest.raises(RunCancelled):
        run(QnnSpec(optimizer=optimizer, epochs=50), ctx)
    assert "circuit.qasm" not in ctx.artifacts


def test_same_seed_same_result_and_spec_fields_take_effect(default_run: tuple[dict, LocalContext]) -> None:
    first, _ = default_run
    again = run(QnnSpec(), LocalContext())
    assert without_times(again) == without_times(first)
    other_seed = run(QnnSpec(seed=1), LocalContext())
    assert other_seed["initial_weights"] != first["initial_weights"]
    for change in ({"learning_rate": 0.2}, {"batch_size": 16}, {"optimizer": "sgd"}, {"epochs": 19},
                   {"entanglement": "full"}):
        changed = run(QnnSpec(**change), LocalContext())
        assert changed["weights"] != first["weights"], change
    assert run(QnnSpec(batch_size=16), LocalContext())["steps_per_epoch"] == 6


def test_injected_reference_backend_gives_the_same_run() -> None:
    from qmlapp.simulators import CirqReference

    spec = QnnSpec(optimizer="cobyla", epochs=3)
    fast = run(spec, LocalContext())
    ref = run(spec, LocalContext(), backend=CirqReference())
    assert ref["backend"] == "cirq" and fast["backend"] == "tfq"
    assert ref["val_accuracy"] == fast["val_accuracy"]
    assert ref["test_loss"] == pytest.approx(fast["test_loss"], abs=1e-4)
    with pytest.raises(ValueError, match="differentiable backend"):
        run(QnnSpec(epochs=1), LocalContext(), backend=CirqReference())


def test_shots_use_the_sampled_path() -> None:
    result = run(QnnSpec(shots=100, epochs=1), LocalContext())
    assert result["shots"] == 100 and 0 <= result["val_accuracy"] <= 1


def test_registry_runner_is_this_module() -> None:
    assert get_kind("qnn").load_runner() is run
