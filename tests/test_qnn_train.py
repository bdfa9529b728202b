"""QNN training engine: data pipeline, initialisation, optimisers, cancellation, reproducibility."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from qmlapp.context import LocalContext, RunCancelled
from qmlapp.kinds.qnn.circuits import build_qnn_circuit, pauli_two_design_axes
from qmlapp.kinds.qnn.result import QnnResult
from qmlapp.kinds.qnn.run import (
    LossConvention,
    QnnModel,
    initial_weights,
    make_optimizer,
    nelder_mead_fatol,
    prepare_data,
    run,
    score,
    spsa_minimize,
)
from qmlapp.kinds.qnn.spec import INITS, QnnSpec
from qmlapp.registry import parse_spec

GOLDEN = Path(__file__).parent / "golden"
# Results of the v1 engine (commit c32bd0c) for stored v1 specs, recorded before schema v2.
V1_RESULTS: dict[str, Any] = json.loads((GOLDEN / "qnn_results_v1.json").read_text())

REQUIRED = ("val_accuracy", "val_f1", "test_accuracy", "test_f1", "test_loss", "confusion_matrix",
            "class_names", "n_parameters", "n_train", "n_val", "n_test", "wall_time_s", "train_time_s",
            "labels", "loss_convention")
TIMES = ("wall_time_s", "train_time_s")


def without_times(result: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in result.items() if k not in TIMES}


def assert_same_as_v1(case: str, result: Mapping[str, Any]) -> None:
    """Same metrics as the v1 engine gave for this stored v1 spec, within what float32 simulation allows
    across CPUs. TFQ/TensorFlow pick SIMD kernels per CPU, so the last float32 digits differ and training
    carries that on: losses moved by 5e-6 relative after 3 epochs on another x86-64 CPU, hence 1e-4.
    An accuracy may flip one sample that sits on the decision boundary. Initial weights come from numpy's
    seeded generator and are exact. Trained weights are not compared: a weight the readout ignores (e.g. a
    rotation on a qubit that ``mod_k`` never reads) has an exactly-zero gradient, and Adam's normalised
    step turns float noise in it into moves of up to the learning rate per step (0.9 rad seen)."""
    expected = V1_RESULTS[case]["result"]
    sizes = {"val": result["n_val"], "test": result["n_test"], "train": result["n_train"]}
    for key, value in expected.items():
        if key == "initial_weights":
            np.testing.assert_array_equal(result[key], value, err_msg=f"{case}: {key}")
        elif key.endswith("accuracy"):
            one_sample = 1.0 / sizes[key.split("_")[0]]
            assert result[key] == pytest.approx(value, abs=one_sample + 1e-12), (case, key)
        elif key.endswith("loss"):
            assert result[key] == pytest.approx(value, rel=1e-4), (case, key)


def v1_spec(case: str) -> QnnSpec:
    spec = parse_spec("qnn", V1_RESULTS[case]["spec"])
    assert isinstance(spec, QnnSpec) and V1_RESULTS[case]["spec"]["schema_version"] == 1
    return spec


@pytest.fixture(scope="module")
def default_run() -> tuple[QnnResult, LocalContext]:
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
    # normal_beta ~ N(μ, s) and beta_mu = μ, with μ, s the mean and std of the fitted Beta.
    mu = float(weights["beta_mu"][0])
    assert np.all(weights["beta_mu"] == mu) and 0 < mu < 1
    assert weights["normal_beta"].mean() == pytest.approx(mu, abs=0.1)
    assert weights["normal_beta"].std() == pytest.approx(weights["beta"].std(), rel=0.3)
    # Seeded: same seed, same point; another seed, another point.
    np.testing.assert_array_equal(initial_weights(spec, 16), initial_weights(spec, 16))
    assert not np.allclose(initial_weights(spec, 16), initial_weights(spec.replace(seed=1), 16))


def test_authors_init_mode_starts_every_init_from_u01() -> None:
    spec = QnnSpec(init_mode="authors", depth=20)
    beta_source = prepare_data(spec).beta_source
    weights = [initial_weights(spec.replace(init=init), 160, beta_source) for init in INITS]
    for w in weights[1:]:
        np.testing.assert_array_equal(w, weights[0])  # the init has no effect, as in the authors' code
    assert weights[0].min() >= 0 and weights[0].max() < 1 and weights[0].mean() == pytest.approx(0.5, abs=0.08)
    assert not np.allclose(weights[0], initial_weights(spec.replace(init_mode="correct"), 160))
    assert not np.allclose(weights[0], initial_weights(spec.replace(seed=1), 160))  # still seeded


def test_tanh_activation_changes_the_encoded_angles() -> None:
    linear = prepare_data(QnnSpec(encoding="zz_feature_map"))
    tanh = prepare_data(QnnSpec(encoding="zz_feature_map", input_activation="tanh"))
    for a, b in ((linear.x_train, tanh.x_train), (linear.x_val, tanh.x_val), (linear.x_test, tanh.x_test)):
        np.testing.assert_allclose(b, np.tanh(a))
    np.testing.assert_array_equal(tanh.beta_source, linear.beta_source)  # the Beta fit sees the raw scale
    qnn = build_qnn_circuit(QnnSpec(encoding="zz_feature_map"))
    angles = qnn.data_values(tanh.x_train)
    assert angles[:, :4].max() < 1 < linear.x_train.max()  # tanh of [0, π] lies in [0, 0.997]
    np.testing.assert_allclose(angles[:, 4], (np.pi - angles[:, 0]) * (np.pi - angles[:, 1]), rtol=1e-5)


def test_loss_conventions_log_base_and_reduction() -> None:
    p = np.array([[0.25, 0.75], [0.5, 0.5], [0.9, 0.1]])
    y = np.array([1, 0, 1])
    nll = -np.log(p[np.arange(3), y])
    cases = {("e", "mean"): nll.mean(), ("2", "mean"): nll.mean() / math.log(2), ("e", "sum"): nll.sum(),
             ("2", "sum"): nll.sum() / math.log(2)}
    for (base, reduction), expected in cases.items():
        convention = LossConvention(base, reduction)
        assert score(np.log(p), y, convention).loss == pytest.approx(expected, rel=1e-12)
        assert base in convention.describe() or "natural" in convention.describe()
    assert score(np.log(p), y).loss == nll.mean()
    # Nelder–Mead's fatol: the authors' 0.1 on Σ log₂, carried to each convention.
    assert nelder_mead_fatol(LossConvention("2", "sum"), 400) == pytest.approx(0.1)
    assert nelder_mead_fatol(LossConvention("e", "mean"), 400) == pytest.approx(0.1 * math.log(2) / 400)


def test_train_step_uses_the_loss_convention() -> None:
    from qmlapp.simulators import TfqBackend

    spec = QnnSpec(readout="mod_k", loss_log_base="2", loss_reduction="sum")
    data = prepare_data(spec)
    qnn = build_qnn_circuit(spec)
    compiled = TfqBackend().compile(qnn.circuit, qnn.symbols, qnn.operators)
    convention = LossConvention.of(spec)
    model = QnnModel(qnn, compiled, initial_weights(spec, len(qnn.weight_symbols)), batch_size=8,
                     optimizer=make_optimizer("sgd", 0.1), loss=convention)
    x = qnn.data_values(data.x_train[:8])
    y = data.y_train[:8]
    log_probs = model.log_probs(x[:5])
    expected = score(log_probs, y[:5], convention).loss
    assert expected == pytest.approx(score(log_probs, y[:5]).loss * 5 / math.log(2), rel=1e-9)
    mask = np.array([1, 1, 1, 1, 1, 0, 0, 0], np.float32)
    loss, _ = model.train_step(x, y.astype(np.int32), mask)
    assert float(loss) == pytest.approx(expected, rel=1e-5)


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


def test_v1_golden_spec_runs_as_in_v1(default_run: tuple[dict, LocalContext]) -> None:
    golden = parse_spec("qnn", json.loads((GOLDEN / "qnn_spec_v1.json").read_text()))
    assert golden == QnnSpec() == v1_spec("default")  # so default_run is the golden v1 spec's run
    result, _ = default_run
    assert_same_as_v1("default", result)
    assert result["loss_convention"] == "cross-entropy, natural log, mean over samples, p clipped at 1e-10"
    assert (result["noisy"], result["noise_simulation"], result["trajectories"]) == (False, "none (noiseless)", 0)
    assert (result["init_mode"], result["init_effective"], result["entangler"]) == ("correct", "uniform", "cz")
    assert result["differentiator"] == "Adjoint" and result["backend"] == "tfq"


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
    result = run(v1_spec("banknote_mod_k"), LocalContext())  # dataset banknote, mod_k, 3 epochs
    assert result["val_accuracy"] > 0.7  # balanced-ish binary task, majority class is 0.56
    assert_same_as_v1("banknote_mod_k", result)


def test_train_step_loss_equals_evaluation_loss() -> None:
    from qmlapp.kinds.qnn.circuits import build_qnn_circuit
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
    spec = v1_spec(f"{optimizer}_zz_real_amplitudes")
    assert spec == QnnSpec(optimizer=optimizer, epochs=6, encoding="zz_feature_map", ansatz="real_amplitudes")
    ctx = LocalContext()
    result = run(spec, ctx)
    assert_same_as_v1(f"{optimizer}_zz_real_amplitudes", result)
    assert result["iterations_budget"] == 6 and result["budget_preset"] == "none"
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


def test_spec_fields_take_effect() -> None:
    # 3 qubits: "full" differs from "linear"
    small: dict[str, Any] = {"dataset": "iris", "n_qubits": 3, "depth": 1, "epochs": 2}
    first = run(QnnSpec(**small), LocalContext())
    for change in ({"learning_rate": 0.2}, {"batch_size": 16}, {"optimizer": "sgd"}, {"epochs": 1},
                   {"entanglement": "full"}):
        changed = run(QnnSpec(**{**small, **change}), LocalContext())
        assert changed["weights"] != first["weights"], change
    assert run(QnnSpec(**small, batch_size=16), LocalContext())["steps_per_epoch"] == 6  # 90 training rows


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


BASE_V2: dict[str, Any] = {"optimizer": "cobyla", "epochs": 2}
V2_CHANGES: list[dict[str, Any]] = [
    {"input_activation": "tanh"}, {"ansatz": "pauli_two_design"}, {"entangler": "sqrt_iswap"},
    {"reduced_rotations": True}, {"init": "normal_beta"}, {"init": "beta_mu"}, {"init_mode": "authors"},
    {"loss_log_base": "2"}, {"loss_reduction": "sum"}, {"budget_preset": "herbst_as_run", "epochs": 1},
    {"noise_1q": 0.05}, {"noise_2q": 0.1}, {"amplitude_damping": 0.05}, {"readout_error": 0.05},
]


@pytest.mark.slow  # about 20 trainings; test_spec_fields_take_effect covers the v1 fields in the fast suite
def test_every_v2_field_changes_the_run() -> None:
    base: Mapping[str, Any] = run(QnnSpec(**BASE_V2), LocalContext())
    keys = ("weights", "initial_weights", "val_loss", "train_loss", "iterations_budget")
    for change in V2_CHANGES:
        changed: Mapping[str, Any] = run(QnnSpec(**{**BASE_V2, **change}), LocalContext())
        assert any(changed[k] != base[k] for k in keys), change
    zz = {**BASE_V2, "encoding": "zz_feature_map"}
    assert (run(QnnSpec(**zz, feature_map_entanglement="full"), LocalContext())["val_loss"]
            != run(QnnSpec(**zz), LocalContext())["val_loss"])


@pytest.mark.slow  # 150 SPSA evaluations on 4 qubits
def test_herbst_budget_and_circuit_choices_are_recorded() -> None:
    """SPSA uses 2·budget + 51 evaluations, which shows the preset's budget (as run, noisy: 75)."""
    spec = QnnSpec(optimizer="spsa", budget_preset="herbst_as_run", readout_error=0.05, ansatz="pauli_two_design",
                   entangler="sqrt_iswap", init="beta", init_mode="authors", loss_log_base="2", loss_reduction="sum",
                   seed=3)
    ctx = LocalContext()
    result = run(spec, ctx)
    assert result["iterations_budget"] == 75 and result["budget_preset"] == "herbst_as_run"
    assert result["n_evaluations"] == 2 * 75 + 51 and len(ctx.series("train_loss")) == 75
    assert result["pauli_two_design_axes"] == [list(layer) for layer in pauli_two_design_axes(3, 4, 2)]
    assert result["entangler"] == "sqrt_iswap"
    assert result["init_mode"] == "authors" and "U[0,1)" in result["init_effective"]
    assert all(0 <= w < 1 for w in result["initial_weights"])
    assert result["loss_convention"] == "cross-entropy, log2, sum over samples, p clipped at 1e-10"
    assert result["noisy"] and result["readout_error"] == 0.05 and result["noise_1q"] == 0.0
    assert result["noise_simulation"].startswith("readout error applied to the observables")
    assert result["trajectories"] == 0 and result["backend"] == "tfq" and result["differentiator"] is None
    assert result["labels"]["val_accuracy"] == "simulated" and result["labels"]["readout_error"] == "computed"


NOISY_TINY: dict[str, Any] = {"dataset": "iris", "n_qubits": 2, "readout": "mod_k", "depth": 1, "noise_1q": 0.02,
                              "noise_2q": 0.05, "amplitude_damping": 0.02, "readout_error": 0.03}


@pytest.mark.slow  # two noisy density-matrix trainings
def test_noisy_adam_training_is_exact_and_reproducible() -> None:
    spec = QnnSpec(**NOISY_TINY, epochs=3)
    ctx = LocalContext()
    result = run(spec, ctx)
    assert result["backend"] == "density_matrix" and result["noise_simulation"] == "exact density-matrix simulation"
    differentiator = result["differentiator"]
    assert differentiator is not None and differentiator.startswith("backpropagation")
    assert result["trajectories"] == 0
    assert result["noisy"] and {k: result[k] for k in ("noise_1q", "noise_2q", "amplitude_damping",
                                                       "readout_error")} == spec.noise_settings()
    assert "depolarize(0.05) on each qubit after every 2-qubit gate" in result["noise_model"]
    assert result["labels"]["test_accuracy"] == result["labels"]["val_loss"] == "simulated"
    assert ctx.series("train_loss")[-1] < ctx.series("train_loss")[0]
    assert b"noise (not in this file)" in ctx.artifacts["circuit.qasm"].content
    assert without_times(run(spec, LocalContext())) == without_times(result)  # exact, hence seeded
    ideal = run(spec.replace(noise_1q=0.0, noise_2q=0.0, amplitude_damping=0.0, readout_error=0.0), LocalContext())
    assert ideal["weights"] != result["weights"] and ideal["backend"] == "tfq"


def test_noisy_shots_gradient_free_are_seeded_samples() -> None:
    spec = QnnSpec(**NOISY_TINY, optimizer="cobyla", epochs=3, shots=200)
    result = run(spec, LocalContext())
    assert result["backend"] == "density_matrix" and "200 shots per row sampled" in result["noise_simulation"]
    assert without_times(run(spec, LocalContext())) == without_times(result)
    assert run(spec.replace(seed=1), LocalContext())["val_loss"] != result["val_loss"]


def test_noisy_shots_with_adam_run_tfq_trajectories() -> None:
    result = run(QnnSpec(**NOISY_TINY, epochs=1, shots=20, batch_size=128), LocalContext())
    assert result["backend"] == "tfq" and result["trajectories"] == 20
    assert result["noise_simulation"] == "Monte-Carlo trajectories on TFQ's noisy qsim backend, 20 per expectation"
    assert result["differentiator"] == "ParameterShift" and 0 <= result["val_accuracy"] <= 1


def test_shots_use_the_sampled_path() -> None:
    result = run(QnnSpec(shots=100, epochs=1), LocalContext())
    assert result["shots"] == 100 and 0 <= result["val_accuracy"] <= 1
