"""Plots: each is a pure ``*_info`` function returning data plus a ``plot_*`` renderer.

Tests check the info; pages call ``st.plotly_chart`` on the figure. No Streamlit here.
"""

from qmlapp.plots.runs import (
    CurvesInfo,
    compare_curves_info,
    learning_curves_info,
    plot_curves,
)
from qmlapp.plots.study import (
    BestConfigsInfo,
    ContourInfo,
    ImportanceInfo,
    MarginalEffectInfo,
    ParallelAxis,
    ParallelCoordinatesInfo,
    SliceInfo,
    SliceSubplot,
    StudyReport,
    TrialCurve,
    TrialCurvesInfo,
    best_configs_info,
    contour_info,
    importance_info,
    marginal_effect_info,
    parallel_coordinates_info,
    plot_best_configs,
    plot_contour,
    plot_importance,
    plot_marginal_effect,
    plot_parallel_coordinates,
    plot_slice,
    plot_trial_curves,
    slice_info,
    study_report,
    trial_curves_info,
)

__all__ = [
    "CurvesInfo", "compare_curves_info", "learning_curves_info", "plot_curves",
]
__all__ += [
    "BestConfigsInfo", "ContourInfo", "ImportanceInfo", "MarginalEffectInfo", "ParallelAxis", "ParallelCoordinatesInfo",
    "SliceInfo", "SliceSubplot", "StudyReport", "TrialCurve", "TrialCurvesInfo", "best_configs_info", "contour_info",
    "importance_info", "marginal_effect_info", "parallel_coordinates_info", "plot_best_configs", "plot_contour",
    "plot_importance", "plot_marginal_effect", "plot_parallel_coordinates", "plot_slice", "plot_trial_curves",
    "slice_info", "study_report", "trial_curves_info",
]
