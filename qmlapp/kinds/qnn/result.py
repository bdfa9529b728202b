"""The stored result of a ``qnn`` run, as :func:`qmlapp.kinds.qnn.run.run` returns it.

Accuracies are fractions of the split's rows; losses follow ``loss_convention``; times are seconds.
"""

# No ``from __future__ import annotations``: TypedDict reads NotRequired from evaluated annotations only.
from typing_extensions import TypedDict

from qmlapp.kinds.base import Provenance


class QnnOptimizerFacts(TypedDict, total=False):
    """What the optimiser reports; which keys depend on the optimiser family."""

    # adam / sgd
    epochs_run: int
    steps_per_epoch: int
    batch_size: int
    padded_rows_per_epoch: int  # rows repeated with loss weight 0 to fill the last batch
    # gradient-free optimisers
    iterations: int
    n_evaluations: int  # loss evaluations on the training split
    # cobyla / nelder_mead
    scipy_nfev: int
    optimizer_message: str
    optimizer_success: bool
    # spsa
    spsa_a: float
    spsa_c: float
    spsa_calibration_magnitude: float
    spsa_target_magnitude: float
    final_loss: float  # SPSA's last training-split loss


class QnnResult(QnnOptimizerFacts):
    val_accuracy: float
    val_f1: float  # weighted over classes
    val_loss: float
    test_accuracy: float
    test_f1: float
    test_loss: float
    train_accuracy: float
    train_loss: float
    initial_val_accuracy: float  # at the initial weights
    confusion_matrix: list[list[int]]  # test split; rows: true class, columns: predicted class
    class_names: list[str]
    n_parameters: int
    n_qubits: int
    n_classes: int
    n_train: int
    n_val: int
    n_test: int
    initial_weights: list[float]
    weights: list[float]  # trained
    init_mode: str
    init_effective: str  # the initialisation that actually ran
    loss_convention: str
    readout_convention: str
    logit_scale: float | None  # z_per_class readout only
    entangler: str
    pauli_two_design_axes: list[list[str]] | None  # pauli_two_design only: axis per layer, then qubit
    budget_preset: str
    iterations_budget: int | None  # gradient-free optimisers only
    backend: str
    shots: int
    noisy: bool
    noise_1q: float
    noise_2q: float
    amplitude_damping: float
    readout_error: float
    noise_model: str
    noise_simulation: str
    trajectories: int  # Monte-Carlo trajectories per expectation (0: none)
    differentiator: str | None  # gradient optimisers only
    train_time_s: float
    wall_time_s: float
    labels: dict[str, Provenance]  # every numeric entry
    label_notes: dict[str, str]  # empty: every label of this kind is self-explanatory
