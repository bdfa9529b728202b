"""Plots of a ``toy`` run: data (``*_info``) then figure (``plot_*``), and ``result_figures``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

import plotly.graph_objects as go

from toykind.spec import ToySpec


class FitInfo(NamedTuple):
    x: list[float]
    y: list[float]
    slope: float
    title: str


def fit_info(result: Mapping[str, Any]) -> FitInfo:
    return FitInfo(list(result["x"]), list(result["y"]), float(result["slope"]),
                   f"Fitted line y = {result['slope']:.3f}·x (computed)")


def plot_fit(info: FitInfo) -> go.Figure:
    ends = [min(info.x), max(info.x)]
    fig = go.Figure([go.Scatter(x=info.x, y=info.y, mode="markers", name="data"),
                     go.Scatter(x=ends, y=[info.slope * v for v in ends], mode="lines", name="fit")])
    fig.update_layout(title=info.title, xaxis_title="x", yaxis_title="y", height=360)
    return fig


def result_figures(result: Mapping[str, Any], spec: ToySpec) -> list[go.Figure]:
    """Every figure the run view draws from a finished run's result."""
    return [plot_fit(fit_info(result))]
