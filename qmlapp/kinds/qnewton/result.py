"""The stored result of a ``qnewton`` run, as :func:`qmlapp.kinds.qnewton.run.run` returns it.

Losses are cross-entropies in nats, accuracies fractions, times seconds. Classical times are measured on the
machine that ran the run; quantum solve times are estimated. Strict JSON has no infinity: a value typed
``float | None`` below is None once stored where it was infinite (a singular block's κ, for instance).
"""

# No ``from __future__ import annotations``: TypedDict reads NotRequired from evaluated annotations only.
from typing_extensions import NotRequired, TypedDict

from qmlapp.kinds.base import Provenance


class SolveRow(TypedDict):
    """One Hessian-block solve of the main optimiser (:class:`qmlapp.kinds.qnewton.linalg.SolveRecord` plus
    where it happened)."""

    step: int
    epoch: int
    layer: str
    n: int  # parameters of the block
    N: int
    d: int  # sparsity: non-zeros per row after pruning
    lam: float  # regularisation λ
    kappa_exact: float | None
    kappa_bound: float | None
    alpha: float
    queries: float | None
    gates_per_query: float
    t_quantum_s: float | None  # estimated
    t_classical_s: float  # measured
    t_classical_model_s: float
    choice: str  # "quantum" or "classical"
    reason: str
    gate_time_s: float
    readout_shots: float
    kappa_threshold: float | None
    forced: bool
    log10_kappa_bound: float | None
    t_call_s: float
    delta_nan: NotRequired[int]  # entries of a failed solve left unchanged


class StepTime(TypedDict):
    step: int
    epoch: int
    batch_loss: float  # before the update
    step_time_s: float
    cumulative_time_s: float


class EpochRow(TypedDict):
    """Scores at the end of an epoch (epoch 0: the initial weights)."""

    epoch: float
    step: float
    train_loss: float
    train_accuracy: float
    test_loss: float
    test_accuracy: float
    cumulative_time_s: float


class OptimizerTrace(TypedDict):
    steps: list[StepTime]
    epoch_metrics: list[EpochRow]
    total_time_s: float
    n_records: int


class GateTimePoint(TypedDict):
    gate_time_s: float
    total_time_s: float
    quantum_time_s: float
    classical_time_s: float
    n_quantum: int
    n_classical: int


class Scenario(TypedDict):
    gate_time_s: float
    solve_time_s: float
    total_time_s: float
    n_quantum: int


class HhlRow(TypedDict):
    kappa: float
    N: int
    fidelity: float
    success_probability: float
    qubits: int
    system_qubits: int
    clock_qubits: int
    t: float  # evolution time
    c_constant: float
    seconds: float  # qsim simulation time


class QnewtonResult(TypedDict):
    final_loss: float
    final_accuracy: float
    n_quantum_solves: int
    n_classical_solves: int
    total_time_estimated_s: float
    sgd_time_s: float | None  # None without baselines
    speedup_vs_sgd: float | None
    kappa_initial: float | None  # first W1 solve; None without Newton solves
    kappa_final: float | None
    records: list[SolveRow]
    optimizers: dict[str, OptimizerTrace]  # the main optimiser and the baselines, by name
    n_train: int
    n_test: int
    # Newton and Q-Newton with at least one solve:
    gate_time_curve: NotRequired[list[GateTimePoint]]
    scenarios: NotRequired[list[Scenario]]
    all_classical_time_s: NotRequired[float]
    hhl: NotRequired[list[HhlRow]]  # with the HHL demo
    wall_time_s: float
    labels: dict[str, Provenance]
    label_notes: dict[str, str]
