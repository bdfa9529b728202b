"""The stored result of a ``sparse_qgd`` run, as :func:`qmlapp.kinds.sparse_qgd.run.run` returns it.

Eigenvalues are of the training-loss Hessian; times are seconds (cost-model estimates unless the key starts
with ``t_``, which are measured). Strict JSON has no infinity: a value typed ``float | None`` is None once
stored where it was infinite (an undefined R-number).
"""

# No ``from __future__ import annotations``: TypedDict reads NotRequired from evaluated annotations only.
from typing_extensions import NotRequired, TypedDict

from qmlapp.kinds.base import Provenance


class DownloadShots(TypedDict):
    tomography: float
    norm: float
    total: float


class WindowCost(TypedDict):
    """Estimated cost of one quantum window against T classical steps."""

    queries: float
    upload_gates: float
    shots: DownloadShots
    quantum_time_s: float
    classical_time_s: float
    speedup: float  # classical ÷ quantum time
    favourable: bool


class Checkpoint(TypedDict):
    index: int
    epoch: float
    phase: str  # "dense", "pruned" or "sparse"
    n_active: int  # unpruned coordinates
    s: int  # non-zero weights
    n_params: int
    method: str  # "exact" or "lanczos"
    lambda_min: float
    lambda_max: float
    quantiles: dict[str, float]  # q01, q05, q25, q50, q75, q95, q99 of the eigenvalues
    negative_fraction: float
    negative_mass: float
    dissipativity: str
    delta: float
    contraction: float
    r_number: float | None  # None where undefined
    r_defined: bool
    kappa_history: float
    s_row: int
    s_row_method: str
    train_loss: float
    test_accuracy: float
    grad_norm: float
    density_grid: list[float]  # eigenvalue grid of the spectral density
    density: list[float]
    cost: WindowCost
    favourable: bool
    t_hessian_s: float


class ScheduleWindow(TypedDict):
    window: int
    epoch: float
    steps: int
    route: str
    upload_gates: float
    download_shots: float
    time_s: float  # estimated
    classical_time_s: float


class EpochRow(TypedDict):
    epoch: float
    phase: str
    step: int
    train_loss: float
    train_accuracy: float
    test_loss: float
    test_accuracy: float
    n_active: int
    sparsity: int  # non-zero weights
    sparsity_fraction: float  # non-zero share of all weights
    weight_norm: float
    t_train_s: float


class KappaPoint(TypedDict):
    T: int
    kappa: float


class QubitCounts(TypedDict):
    parameter: int
    carleman: int
    time: int
    dilation: int
    clock: int
    ancilla: int
    total: int


class PaperScalePoint(TypedDict):
    target_params: float
    qubits: QubitCounts
    queries: float
    shots: DownloadShots
    quantum_time_s: float
    classical_time_s: float
    speedup: float
    favourable: bool


class ScalingPoint(TypedDict):
    n: float
    quantum_time_s: float
    classical_time_s: float


class Timing(TypedDict):
    """Measured on the machine that ran the run."""

    t_train_s: float
    t_hessian_s: float
    t_eval_s: float
    t_prune_s: float
    t_total_s: float
    n_checkpoints: float
    t_hessian_per_checkpoint_s: float


class SolveQubits(TypedDict):
    system: int
    clock: int
    ancilla: int
    total: int


class EmulatedSolve(TypedDict):
    label: str
    fidelity: float
    success_probability: float


class SmallSolve(TypedDict):
    """A tiny Carleman history system solved by HHL on qsim."""

    label: str
    method: str
    fidelity: float
    success_probability: float
    qubits: SolveQubits
    dim_L: int
    dim_hhl: int
    kappa_L: float
    kappa_hhl: float
    emulated: EmulatedSolve
    sim_vs_emulated: float
    seconds: float


class SparseQgdResult(TypedDict):
    schedule: list[ScheduleWindow]  # the windows after pruning
    schedule_time_s: float
    schedule_classical_time_s: float
    n_params: int
    sparsity: float  # fraction of all weights that are zero after pruning
    negative_eigen_fraction_after_prune: float
    r_number: float | None
    kappa_history: float
    favourable_windows: int
    estimated_speedup_at_target: float
    dissipativity_after_prune: str
    n_checkpoints: int
    final_test_accuracy: float
    checkpoints: list[Checkpoint]
    epoch_metrics: list[EpochRow]
    kappa_vs_T: dict[str, list[KappaPoint]]  # by curve name
    paper_scale: list[PaperScalePoint]
    scaling: list[ScalingPoint]
    timing: Timing
    small_solve: NotRequired[SmallSolve]
    wall_time_s: float
    labels: dict[str, Provenance]
    label_notes: dict[str, str]
