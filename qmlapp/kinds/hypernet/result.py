"""The stored result of a ``hypernet`` run, as :func:`qmlapp.kinds.hypernet.run.run` returns it.

Losses are the training loss C of the problem (``loss_kind``: MSE, or cross-entropy in nats); probabilities and
accuracies are fractions; times are seconds. Bitstrings list bit 0 (layout position 0) first.
"""

# No ``from __future__ import annotations``: TypedDict reads NotRequired from evaluated annotations only.
from typing_extensions import NotRequired, TypedDict

from qmlapp.kinds.base import Provenance


class TrainingFacts(TypedDict):
    """What the optimiser of one restart reports."""

    iterations: int
    evaluations: int  # objective (and gradient) evaluations
    converged: bool
    optimizer_message: str


class RestartEvaluation(TypedDict):
    """One trained circuit evaluated: exact quantities from the state vector, sampled ones from qsim."""

    final_loss: float  # expected loss Σ|ψ(σ)|² C(σ)
    success: bool  # final_loss ≤ C_min + ε
    born_mass_optimal: float
    born_mass_optimal_sampled: float
    born_mass_optimal_sampled_se: float
    entropy_nats: float
    mode_bitstring: str
    mode_probability: float
    mode_loss: float
    best_sampled_bitstring: str
    best_sampled_loss: float
    sampled_loss_mean: float
    distinct_samples: int
    # with noise > 0: means over Monte-Carlo trajectories (standard errors None for a single trajectory)
    noisy_loss: NotRequired[float]
    noisy_loss_se: NotRequired[float | None]
    noisy_born_mass_optimal: NotRequired[float]
    noisy_born_mass_optimal_se: NotRequired[float | None]


class RestartRow(TrainingFacts, RestartEvaluation):
    depth: int  # code depth D (brickwork sub-layers)
    layers: float  # manuscript layers, D/2
    restart: int


class DepthSummary(TypedDict):
    depth: int
    layers: float
    restarts: int
    n_params: int
    success_fraction: float
    success_ci_low: float  # 95 % Wilson interval
    success_ci_high: float
    born_mass_mean: float
    born_mass_se: float | None  # None for a single restart
    final_loss_mean: float
    final_loss_min: float
    best_sampled_loss: float
    noisy_born_mass_mean: NotRequired[float]
    noisy_born_mass_se: NotRequired[float | None]
    noisy_loss_mean: NotRequired[float]


class Histogram(TypedDict):
    edges: list[float]
    counts: list[int]


class Landscape(TypedDict):
    """Every network's loss, enumerated (see :func:`qmlapp.kinds.hypernet.landscape.landscape_summary`)."""

    n_bits: int
    n_networks: int
    global_min_loss: float
    max_loss: float
    mean_loss: float
    tolerance: float
    n_optimal_bitstrings: int
    optimal_bitstrings: list[str]  # the lowest-cost ones, at most 64
    n_local_minima: int
    local_minima_bitstrings: list[str]
    walsh_weights: list[float]  # orders 0 … n
    walsh_weights_fraction: list[float]  # orders 1 … n, summing to 1
    walsh_note: str
    histogram: Histogram


class NetworkSummary(TypedDict):
    """A decoded network (:func:`qmlapp.kinds.hypernet.problems.describe_network`). It also holds one entry
    per weight or bias field of the layout, named after the field (a list of floats): names vary by layout."""

    bitstring: str
    index: int
    loss: float
    loss_kind: str
    accuracy: float  # training set
    activation: str
    active_hidden: int
    encoding: int | None
    width: NotRequired[str]  # layouts with a width bit


class LayoutRow(TypedDict):
    field: str
    bits: str
    count: int
    shape: str
    meaning: str


class OptimizerSettings(TypedDict):
    name: str
    method: NotRequired[str]  # lbfgs
    gtol: NotRequired[float]  # lbfgs
    maxiter: NotRequired[int]  # lbfgs
    learning_rate: NotRequired[float]  # adam
    iterations: NotRequired[int]  # adam


class HypernetResult(TypedDict):
    best_loss: float  # exact training loss of the decoded best network
    best_bitstring: str
    global_min_loss: float
    n_optimal_bitstrings: int
    success_probability: float  # share of restarts at the run's depth reaching C_min + ε
    success_probability_ci: list[float]  # [low, high], 95 % Wilson interval
    born_mass_optimal: float
    best_accuracy: float
    best_test_accuracy: float | None  # MNIST problems only
    n_bits: int
    depth: int
    layers: float
    n_params: int
    tolerance: float
    layout: list[LayoutRow]
    layout_notes: list[str]
    loss_kind: str
    dataset: str
    n_points: int
    depth_study: list[DepthSummary]
    restarts: list[RestartRow]  # every depth × restart
    landscape: Landscape
    best_network: NetworkSummary
    optimal_network: NetworkSummary
    optimizer: OptimizerSettings
    enumeration_time_s: float
    train_time_s: float
    wall_time_s: float
    labels: dict[str, Provenance]
    label_notes: dict[str, str]
