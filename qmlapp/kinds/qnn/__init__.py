"""Variational quantum classifiers: encoding, ansatz and readout trained on tabular data with TFQ's qsim
ops (Herbst-style design studies, Moussa-style hyperparameter importance)."""

from __future__ import annotations

from qmlapp.kinds.base import ExperimentKind, Objective
from qmlapp.kinds.qnn.result import QnnResult
from qmlapp.kinds.qnn.spec import QnnSpec


def _run_name(spec: QnnSpec) -> str:
    return f"{spec.dataset} · {spec.n_qubits}q {spec.encoding}/{spec.ansatz} d{spec.depth} · {spec.optimizer}"


KIND = ExperimentKind(
    name="qnn",
    title="QNN classifier",
    description=(
        "Trains a variational quantum classifier (encoding + ansatz + readout) on a tabular dataset with "
        "TensorFlow Quantum's qsim ops and adjoint gradients."
    ),
    icon="🧪",
    page_title="QNN classifier",
    url_path="QNN",
    spec_class=QnnSpec,
    result_type=QnnResult,
    runner="qmlapp.kinds.qnn.run:run",
    view="qmlapp.ui.kinds.qnn",
    objectives=(
        Objective("val_accuracy", "validation accuracy", "fraction correct", "maximize", "simulated"),
        Objective("val_f1", "validation F1, weighted", "0–1", "maximize", "simulated"),
        Objective("val_loss", "validation loss", "cross-entropy, nats", "minimize", "simulated"),
        Objective("test_accuracy", "test accuracy", "fraction correct", "maximize", "simulated"),
    ),
    summary_keys=("val_accuracy", "test_accuracy", "test_f1", "wall_time_s"),
    curve_metrics=("val_accuracy", "val_loss", "train_loss", "train_accuracy"),
    form_groups=(
        ("Data", ("dataset", "reduction", "n_qubits", "scaling", "input_activation", "validation_fraction",
                  "test_fraction")),
        ("Circuit", ("encoding", "feature_map_entanglement", "ansatz", "entanglement", "entangler",
                     "reduced_rotations", "depth", "readout")),
        ("Training", ("optimizer", "learning_rate", "epochs", "budget_preset", "batch_size", "init", "init_constant",
                      "init_mode", "loss_log_base", "loss_reduction", "seed")),
        ("Noise and shots", ("shots", "noise_1q", "noise_2q", "amplitude_damping", "readout_error")),
    ),
    example={"dataset": "banknote", "n_qubits": 2, "depth": 1, "epochs": 1},
    run_name=_run_name,
    headline="val acc {val_accuracy:.3f} · test acc {test_accuracy:.3f} (simulated)",
    units={"wall_time_s": "s", "train_time_s": "s", "test_loss": "nats", "test_f1": "0–1"},
)
