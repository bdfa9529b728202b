"""Analysis of sweeps and hand-picked runs: search spaces, importance, marginal effects, recommendations.

Pure functions over :class:`Trial` records: no Streamlit, no database, no TensorFlow. Plots of these
numbers live in :mod:`qmlapp.plots.study`.
"""

from qmlapp.analysis.effects import (
    Binning,
    ConfigGroup,
    MarginalInfo,
    best_configurations,
    binning,
    config_groups,
    marginal_effects,
    repeat_noise,
)
from qmlapp.analysis.importance import METHODS, ImportanceResult, Method, importance
from qmlapp.analysis.recommend import NEGLIGIBLE_SHARE, recommendation
from qmlapp.analysis.space import Categorical, Dimension, Range, SearchSpace, infer_space, to_optuna_distributions
from qmlapp.analysis.trials import (
    MIN_TRIALS,
    AnalysisError,
    Direction,
    Objective,
    Trial,
    Usable,
    objective_info,
    trials_from_runs,
    usable_trials,
)

__all__ = [
    "METHODS", "MIN_TRIALS", "NEGLIGIBLE_SHARE", "AnalysisError", "Binning", "Categorical",
    "ConfigGroup", "Dimension", "Direction", "ImportanceResult", "MarginalInfo", "Method", "Objective", "Range",
    "SearchSpace", "Trial", "Usable", "best_configurations", "binning", "config_groups", "importance",
    "infer_space", "marginal_effects", "objective_info", "recommendation", "repeat_noise", "to_optuna_distributions",
    "trials_from_runs", "usable_trials",
]
