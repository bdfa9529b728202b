"""The stored result of a ``qnetwork`` run, as :func:`qmlapp.kinds.qnetwork.run.run` returns it.

ℒ is the expectation of the observable in [−1, 1] (inference) or a binary cross-entropy in nats (training);
communication is counted in qubits and bits; times are seconds.
"""

# No ``from __future__ import annotations``: TypedDict reads NotRequired from evaluated annotations only.
from typing_extensions import NotRequired, TypedDict

from qmlapp.kinds.base import Provenance


class Communication(TypedDict):
    copies: int
    qubits_per_copy: int
    qubits_per_inference: int
    classical_bits_data: int  # Alice ships x: N·b
    classical_bits_model: int  # Bob ships his parameters: L·P·b
    advantage_ratio: float  # cheaper classical protocol ÷ quantum, per inference
    ratio_vs_data: float
    ratio_vs_model: float
    gradient_qubits_parameter_shift: int
    gradient_qubits_shadow_bound: float
    shadow_crossover_params: float
    holevo_bound_bits: int
    holevo_bound_bits_entangled: int
    n_params_total: int
    classical_bits_gradient: NotRequired[int]  # training mode


# "from" is a keyword: functional syntax
Transfer = TypedDict("Transfer", {"round": int, "from": str, "to": str, "qubits": int})


class ProtocolRunRow(TypedDict):
    loss_exact: float
    loss_estimate: float  # from K single-shot copies
    loss_se: float
    qubits: int
    wall_s: float


class ShotPoint(TypedDict):
    copies: int
    estimate: float
    se: float


class GradientDemo(TypedDict):
    qubits_communicated: int
    circuits: int
    rms_error: float  # against the exact gradient
    max_abs_exact: float
    copies: int
    provenance: Provenance
    note: str


class LinearComparison(TypedDict):
    margin: float
    samples: int
    sketch_estimate: float
    sketch_se: float
    exact_overlap: float
    sketch_bits_sent: int
    classical_bits: int
    quantum_qubits: int
    ratio: float


class ScalingPoint(TypedDict):
    n_features: int
    n_qubits: int
    rounds: int
    qubits_per_copy: int
    qubits_per_inference: int
    loss_exact: float
    loss_estimate: float
    loss_se: float
    wall_s: float


class ExpressivityPoint(TypedDict):
    layers: int
    data_layers: bool
    degree: int  # highest Fourier frequency along a path
    n_qubits: int
    provenance: Provenance


class TrainingCommunication(TypedDict):
    gradient_evaluations: int
    parameter_shift_qubits: int
    shadow_bound_qubits: float
    ship_data_bits: int
    note: str


class QnetworkTraining(TypedDict, total=False):
    """Keys of a training-mode run (all of them there, none in inference mode)."""

    test_loss: float
    test_accuracy: float
    test_loss_estimate: float
    test_accuracy_estimate: float
    train_loss: float
    train_accuracy: float
    train_time_s: float
    train_size: int
    test_size: int
    dataset_description: str
    training_communication: TrainingCommunication


class QnetworkResult(QnetworkTraining):
    n_qubits: int
    n_features: int
    layers: int
    params_per_unitary: int
    mode: str  # "inference" or "training"
    loss_exact: float  # inference: mean ℒ(x) over the inputs; training: test loss
    loss_estimate: float
    mean_output_exact: float
    mean_output_estimate: float
    qubits_communicated: float  # per inference, or per gradient in training mode (the shadow bound is fractional)
    rounds: int
    classical_bits_data: int
    classical_bits_model: int
    advantage_ratio: float
    holevo_bound_bits: int
    copies: int
    communication: Communication
    transfers: list[Transfer]  # one copy
    inputs: str
    protocol_runs: list[ProtocolRunRow]
    shot_convergence: list[ShotPoint]
    gradient_demo: GradientDemo
    linear: LinearComparison
    scaling: list[ScalingPoint]  # empty without the scaling study
    expressivity: list[ExpressivityPoint]
    wall_time_s: float
    labels: dict[str, Provenance]
    label_notes: dict[str, str]
