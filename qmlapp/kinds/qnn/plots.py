"""Plots of a ``qnn`` run beyond the shared learning curves: data (``*_info``) then figure (``plot_*``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

import plotly.graph_objects as go

from qmlapp.kinds.qnn.spec import QnnSpec


class ConfusionInfo(NamedTuple):
    matrix: list[list[int]]
    class_names: list[str]
    title: str


def confusion_info(result: Mapping[str, Any], *, split: str = "test") -> ConfusionInfo | None:
    matrix = result.get("confusion_matrix")
    if not matrix:
        return None
    names = [str(c) for c in result.get("class_names") or range(len(matrix))]
    return ConfusionInfo([[int(v) for v in row] for row in matrix], names,
                         f"Confusion matrix, {split} split (simulated)")


def plot_confusion_matrix(info: ConfusionInfo) -> go.Figure:
    fig = go.Figure(go.Heatmap(z=info.matrix, x=info.class_names, y=info.class_names, colorscale="Blues",
                               text=info.matrix, texttemplate="%{text}", hovertemplate=
                               "true %{y}, predicted %{x}: %{z} samples<extra></extra>"))
    fig.update_layout(title=info.title, xaxis_title="predicted class", yaxis_title="true class",
                      yaxis_autorange="reversed", height=380)
    return fig


def result_figures(result: Mapping[str, Any], spec: QnnSpec) -> list[go.Figure]:
    """Every figure the run view draws from a finished run's result (learning curves come from the metrics)."""
    cm = confusion_info(result)
    return [] if cm is None else [plot_confusion_matrix(cm)]
