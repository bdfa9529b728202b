"""Run-level plots: learning curves of one run, and curve overlays across runs (the Compare page)."""

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


class RunCurves(NamedTuple):
    """One run's logged series, with what each metric is measured in and where it comes from."""

    run_id: int
    label: str  # legend text
    series: Series
    units: Mapping[str, str]  # metric -> unit ("" when the run's kind does not say)
    provenance: Mapping[str, str]  # metric -> simulated / computed / estimated


class OverlayPanel(NamedTuple):
    metric: str
    title: str  # the metric in words
    y_label: str  # its unit(s); several when kinds measure it differently


class OverlayCurve(NamedTuple):
    run_id: int
    label: str
    panel: int  # index into CompareCurvesInfo.panels
    steps: list[int]
    values: list[float]
    provenance: str
    colour: str  # one per run, the same in every panel


class CompareCurvesInfo(NamedTuple):
    title: str
    x_label: str
    panels: list[OverlayPanel]
    curves: list[OverlayCurve]
    provenance: str  # shared by every curve, else "" (then each legend entry names its own)


_RUN_COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf",
                "#7f7f7f", "#bcbd22")


def compare_curves_info(runs: Sequence[RunCurves], metrics: Sequence[str], *, x_label: str = "step",
                        title: str = "Curves across runs") -> CompareCurvesInfo:
    """One panel per metric, one colour per run: each run that logs the metric is overlaid in its panel."""
    panels = []
    curves = []
    for p, metric in enumerate(metrics):
        units = sorted({r.units.get(metric, "") for r in runs if metric in r.series} - {""})
        panels.append(OverlayPanel(metric, metric.replace("_", " "), " / ".join(units) or metric.replace("_", " ")))
        for i, r in enumerate(runs):
            if metric in r.series:
                steps, values = r.series[metric]
                curves.append(OverlayCurve(r.run_id, r.label, p, list(steps), list(values),
                                           r.provenance.get(metric, ""), _RUN_COLOURS[i % len(_RUN_COLOURS)]))
    shared = {c.provenance for c in curves}
    return CompareCurvesInfo(title, x_label, panels, curves, shared.pop() if len(shared) == 1 else "")


def plot_compare_curves(info: CompareCurvesInfo) -> go.Figure:
    n = max(len(info.panels), 1)
    cols = min(n, 2)
    rows = (n + cols - 1) // cols
    fig = make_subplots(rows=rows, cols=cols, subplot_titles=[p.title for p in info.panels] or [""],
                        vertical_spacing=0.3 / rows + 0.05)
    in_legend: set[int] = set()
    for curve in info.curves:
        row, col = divmod(curve.panel, cols)
        name = curve.label if info.provenance else f"{curve.label} ({curve.provenance or 'unlabelled'})"
        fig.add_trace(go.Scatter(x=curve.steps, y=curve.values, mode="lines+markers", name=name,
                                 legendgroup=str(curve.run_id), showlegend=curve.run_id not in in_legend,
                                 line={"color": curve.colour}, marker={"color": curve.colour, "size": 5}),
                      row=row + 1, col=col + 1)
        in_legend.add(curve.run_id)
    for i, panel in enumerate(info.panels):
        row, col = divmod(i, cols)
        fig.update_xaxes(title_text=info.x_label, row=row + 1, col=col + 1)
        fig.update_yaxes(title_text=panel.y_label, row=row + 1, col=col + 1)
    title = f"{info.title} ({info.provenance})" if info.provenance else info.title
    fig.update_layout(title=title, height=150 + 300 * rows, margin={"t": 70},
                      legend={"orientation": "h", "y": -0.15 / rows - 0.1})
    return fig


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

