"""Distributed inference and learning over a quantum channel (Gilboa, Michaeli, Soudry & McClean, NeurIPS 2024).

Alice holds the data x, amplitude-encoded in ⌈log₂N⌉ qubits, and the unitaries A_ℓ; Bob holds the B_ℓ and
measures. :mod:`.model` defines the split model (one gate list that feeds Cirq, qsim, TFQ and an exact NumPy
engine), :mod:`.protocol` simulates the two-party protocol with qsimcirq and counts the qubits that cross the
Alice|Bob cut, :mod:`.train` trains the model with TensorFlow Quantum (imported only on the worker side).
"""

from __future__ import annotations

from qmlapp.kinds.base import ExperimentKind, Objective
from qmlapp.kinds.qnetwork.result import QnetworkResult
from qmlapp.kinds.qnetwork.spec import QnetworkSpec


def _run_name(spec: QnetworkSpec) -> str:
    return f"N={spec.n_features} · L={spec.layers} · ε={spec.epsilon:g} · {spec.mode}"


KIND = ExperimentKind(
    name="qnetwork",
    title="Distributed learning over a quantum network",
    description=(
        "Alice holds the data, Bob part of the model; they exchange the amplitude-encoded register "
        "instead of data. The two-party protocol runs on qsim, every qubit crossing the cut is counted "
        "and compared with classical baselines (ship the data, ship the model, linear sketching)."
    ),
    icon="🛰️",
    page_title="Quantum network",
    url_path="Quantum_network",
    spec_class=QnetworkSpec,
    result_type=QnetworkResult,
    runner="qmlapp.kinds.qnetwork.run:run",
    view="qmlapp.ui.kinds.qnetwork",
    objectives=(
        Objective("advantage_ratio", "classical bits ÷ qubits communicated", "ratio", "maximize", "computed"),
        Objective("qubits_communicated", "qubits sent across the cut", "qubits", "minimize", "computed"),
        Objective("loss_exact", "model output / loss", "exact", "minimize", "simulated"),
    ),
    summary_keys=("loss_exact", "loss_estimate", "qubits_communicated", "rounds", "classical_bits_data",
                  "classical_bits_model", "advantage_ratio", "holevo_bound_bits"),
    curve_metrics=("train_loss", "test_loss", "train_accuracy", "test_accuracy"),
    form_groups=(
        ("Model", ("n_features", "layers", "params_per_unitary", "ansatz", "data_layers", "data_scale",
                   "observable")),
        ("Task", ("mode", "dataset", "n_inputs", "scaling_study", "epochs", "learning_rate", "batch_size",
                  "train_size")),
        ("Precision and baselines", ("epsilon", "delta", "shots", "gradient", "bits_per_number", "linear_margin",
                                     "shadow_constant", "seed")),
    ),
    example={"n_features": 16, "layers": 1, "params_per_unitary": 4, "n_inputs": 2, "epsilon": 0.2,
             "scaling_study": False},
    run_name=_run_name,
    headline="{qubits_communicated:,.0f} qubits vs {classical_bits_data:,} / {classical_bits_model:,} bits "
             "(data / model), ratio {advantage_ratio:.3g} (computed)",
    units={"qubits_communicated": "qubits", "classical_bits_data": "bits", "classical_bits_model": "bits",
           "holevo_bound_bits": "bits", "loss_estimate": "estimate of the exact value",
           "wall_time_s": "s"},
)
