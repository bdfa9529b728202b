"""Run-level plots: learning curves, confusion matrix, and curve overlays across runs."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import NamedTuple

import plotly.graph_objects as go
from plotly.subplots import make_subplots

Series = Mapping[str, tuple[Sequence[int], Sequence[float]]]


class Curve(NamedTuple):
    label: str
    panel: str  # "loss" | "accuracy" | other metric family
    steps: list[int]
    values: list[float]


class CurvesInfo(NamedTuple):
    title: str
    x_label: str
    panels: list[str]
    curves: list[Curve]
    provenance: str  # simulated / computed / estimated


def _panel(name: str) -> str:
    for key in ("loss", "accuracy", "f1"):
        if name.endswith(key):
            return key
    return name


def learning_curves_info(series: Series, *, title: str = "Learning curves",
                         x_label: str = "epoch", provenance: str = "simulated") -> CurvesInfo:
    """One curve per metric series, grouped into panels by metric family (loss, accuracy ...)."""
    curves = [Curve(name.replace("_", " "), _panel(name), list(s), list(v))
              for name, (s, v) in sorted(series.items())]
    panels = sorted({c.panel for c in curves}, key=lambda p: (p != "loss", p != "accuracy", p))
    return CurvesInfo(title, x_label, panels, curves, provenance)


def compare_curves_info(runs: Sequence[tuple[str, Series]], metric: str, *,
                        x_label: str = "epoch", provenance: str = "simulated") -> CurvesInfo:
    """Overlay of one metric across several runs (label = run name)."""
    curves = [Curve(label, _panel(metric), list(series[metric][0]), list(series[metric][1]))
              for label, series in runs if metric in series]
    return CurvesInfo(f"{metric.replace('_', ' ')} across runs", x_label, [_panel(metric)], curves, provenance)


def plot_curves(info: CurvesInfo) -> go.Figure:
    n = max(len(info.panels), 1)
    fig = make_subplots(rows=1, cols=n, subplot_titles=[p for p in info.panels] or [""])
    for curve in info.curves:
        col = info.panels.index(curve.panel) + 1
        dash = "dot" if curve.label.startswith(("val", "test")) else "solid"
        fig.add_trace(go.Scatter(x=curve.steps, y=curve.values, mode="lines+markers", name=curve.label,
                                 line={"dash": dash}), row=1, col=col)
    for i, panel in enumerate(info.panels, start=1):
        fig.update_xaxes(title_text=info.x_label, row=1, col=i)
        unit = "cross-entropy (nats)" if panel == "loss" else "fraction correct" if panel == "accuracy" else panel
        fig.update_yaxes(title_text=unit, row=1, col=i)
    fig.update_layout(title=f"{info.title} ({info.provenance})", height=380, margin={"t": 70},
                      legend={"orientation": "h", "y": -0.25})
    return fig

