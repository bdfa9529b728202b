"""Plots: each is a pure ``*_info`` function returning data plus a ``plot_*`` renderer.

Tests check the info; pages call ``st.plotly_chart`` on the figure. No Streamlit here.
"""

from qmlapp.plots.runs import (
    ConfusionInfo,
    CurvesInfo,
    compare_curves_info,
    confusion_info,
    learning_curves_info,
    plot_confusion_matrix,
    plot_curves,
)

__all__ = [
    "ConfusionInfo", "CurvesInfo", "compare_curves_info", "confusion_info", "learning_curves_info",
    "plot_confusion_matrix", "plot_curves",
]
