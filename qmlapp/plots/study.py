"""Study-level plots of a sweep or of hand-picked runs: importance, marginal effects, parallel coordinates,
slices, a binned contour, learning-curve overlays and the best-configurations table.

Each plot is a pure ``*_info`` function returning a NamedTuple (tested) and a ``plot_*`` renderer.
Titles end with the objective's provenance, e.g. "(simulated)"; axis titles carry units. ``kind`` names
the experiment kind whose objective it is (names such as "final_accuracy" mean different things in
different kinds); without it the first kind declaring the name is used.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, NamedTuple

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from qmlapp.analysis import (
    Categorical,
    ImportanceResult,
    MarginalInfo,
    Method,
    SearchSpace,
    Trial,
    best_configurations,
    binning,
    importance,
    marginal_effects,
    objective_info,
    recommendation,
    usable_trials,
)
from qmlapp.analysis.effects import N_BINS
from qmlapp.analysis.space import Dimension, as_scalar
from qmlapp.registry import KINDS, Objective

# Units of numeric spec fields, by field name across the kinds; categoricals are labelled "choice".
PARAM_UNITS: dict[str, str] = {
    # qnn
    "depth": "layers", "n_qubits": "qubits", "epochs": "epochs or iterations", "batch_size": "samples",
    "shots": "shots, 0 = exact", "learning_rate": "step size", "init_constant": "rad",
    "validation_fraction": "fraction of rows", "test_fraction": "fraction of rows", "seed": "integer",
    # hypernet (its depth is a code depth: brickwork sub-layers)
    "restarts": "restarts", "max_iterations": "iterations", "n_points": "points", "eval_samples": "samples",
    "tolerance": "loss units", "noise": "× base depolarising rate", "noise_trajectories": "trajectories",
    "prior_weight": "β", "custom_hidden": "hidden units", "custom_encoding_bits": "bits",
    # qnetwork
    "n_features": "N, features", "layers": "L, layer pairs", "params_per_unitary": "rotations",
    "n_inputs": "inputs", "epsilon": "precision ε", "delta": "probability", "train_size": "examples",
    "data_scale": "rad per unit", "linear_margin": "margin", "shadow_constant": "constant",
    # qnewton
    "gate_time_s": "s", "epsilon_norm": "ε_norm, × max|H_ij|", "prune_ratio": "fraction", "kappa_threshold": "κ",
    "qlsa_epsilon": "precision ε", "gates_per_query": "gates", "hidden_units": "units",
    "sgd_learning_rate": "step size", "adam_learning_rate": "step size", "hhl_size": "matrix dimension",
    # sparse_qgd
    "window_steps": "GD steps", "dense_epochs": "epochs", "sparse_epochs": "epochs", "carleman_order": "order",
    "target_params": "parameters", "download_precision": "precision", "channels": "channels",
    "checkpoints_per_epoch": "checkpoints",
}
# Per-step metric units by name suffix; a kind's own loss unit comes first (see _metric_title).
METRIC_UNITS: dict[str, str] = {"loss": "cross-entropy, nats", "accuracy": "fraction correct", "f1": "weighted F1, 0–1",
                                "optimal_mass": "probability", "fraction": "fraction", "lambda_min": "eigenvalue",
                                "lambda_max": "eigenvalue"}


def param_title(dimension: Dimension, *, log_axis: bool = False) -> str:
    """Axis title with unit, e.g. "learning rate (step size, log scale)" or "encoding (choice)"."""
    text = dimension.name.replace("_", " ")
    if isinstance(dimension, Categorical):
        return f"{text} (choice)"
    unit = PARAM_UNITS.get(dimension.name, "value")
    if dimension.log:
        unit += ", log10 axis" if log_axis else ", log scale"
    return f"{text} ({unit})"


def _cap(text: str) -> str:
    """First letter upper-cased; str.capitalize would lower-case the rest ("F1", "Born", "D{depth}")."""
    return text[:1].upper() + text[1:]


def _titled(title: str, provenance: str) -> str:
    return f"{title} ({provenance})" if provenance else title


def _metric_title(metric: str, kind: str | None = None) -> str:
    """Axis title of a per-step metric: an objective's own title, else a unit by suffix. A kind with a
    loss objective names its loss unit (a hypernetwork's loss is not a cross-entropy)."""
    text = metric.replace("_", " ")
    if kind is not None:
        obj = objective_info(metric, kind)
        if obj.unit:
            return f"{text} ({obj.unit})"
        if metric.endswith("loss"):
            losses = [o for o in _kind_objectives(kind) if o.name.endswith("loss") and o.unit]
            if losses:
                return f"{text} ({losses[0].unit})"
    for key, unit in METRIC_UNITS.items():
        if metric.endswith(key):
            return f"{text} ({unit})"
    return f"{text} (value)"


def _kind_objectives(kind: str) -> tuple[Objective, ...]:
    return KINDS[kind].objectives if kind in KINDS else ()


def _objective(name: str, kind: str | None) -> Objective:
    """The objective's labels; no name means the kind's default objective (the first kind's without one)."""
    if name:
        return objective_info(name, kind)
    return (KINDS[kind] if kind in KINDS else next(iter(KINDS.values()))).objectives[0]


# --- importance -------------------------------------------------------------------------------------------


class ImportanceInfo(NamedTuple):
    params: list[str]  # most important first
    shares: list[float]
    errors: list[float] | None
    error_note: str
    title: str
    x_label: str
    y_label: str
    n_trials: int


def importance_info(result: ImportanceResult, *, objective: str = "", kind: str | None = None
                    ) -> ImportanceInfo:
    obj = _objective(objective, kind)
    errors = None if result.std is None else [result.std[p] for p in result.shares]
    note = ("" if result.std is None else
            f"error bars: ± std over {result.n_repeats} surrogate forests" if result.method == "fanova" else
            f"error bars: ± std over {result.n_repeats} bootstrap resamples")
    x_label = ("share of explained variance (fraction, sums to 1)" if result.method == "fanova"
               else "share of PED-ANOVA importance (fraction, sums to 1)")
    title = _titled(f"Hyperparameter importance for {obj.label}, {result.method_label}, {result.n_trials} trials",
                    obj.provenance)
    return ImportanceInfo(list(result.shares), list(result.shares.values()), errors, note, title, x_label,
                          "hyperparameter", result.n_trials)


def plot_importance(info: ImportanceInfo) -> go.Figure:
    # Reversed so that the most important hyperparameter is the top bar.
    error_x = None if info.errors is None else {"type": "data", "array": info.errors[::-1], "visible": True}
    fig = go.Figure(go.Bar(x=info.shares[::-1], y=info.params[::-1], orientation="h", error_x=error_x,
                           text=[f"{100 * s:.0f} %" for s in info.shares[::-1]], textposition="auto",
                           hovertemplate="%{y}: %{x:.3f}<extra></extra>"))
    fig.update_layout(title=info.title, xaxis_title=info.x_label, yaxis_title=info.y_label,
                      height=max(260, 60 + 34 * len(info.params)), margin={"t": 60},
                      annotations=[{"text": info.error_note, "xref": "paper", "yref": "paper", "x": 1, "y": -0.25,
                                    "showarrow": False, "xanchor": "right", "font": {"size": 11}}]
                      if info.error_note else [])
    return fig


# --- marginal effects -------------------------------------------------------------------------------------


class MarginalEffectInfo(NamedTuple):
    param: str
    labels: list[str]  # choice or bin labels, in axis order
    means: list[float | None]
    stds: list[float | None]
    counts: list[int]
    title: str
    x_label: str
    y_label: str


def marginal_effect_info(marginal: MarginalInfo, space: SearchSpace, *, objective: str = "",
                         kind: str | None = None) -> MarginalEffectInfo:
    obj = _objective(objective, kind)
    title = _titled(f"{_cap(obj.label)} by {marginal.name}, mean ± std", obj.provenance)
    return MarginalEffectInfo(marginal.name, list(marginal.labels), list(marginal.means), list(marginal.stds),
                              list(marginal.counts), title, param_title(space[marginal.name]), obj.title)


def plot_marginal_effect(info: MarginalEffectInfo) -> go.Figure:
    fig = go.Figure(go.Scatter(
        x=info.labels, y=info.means, mode="markers+text", marker={"size": 10},
        error_y={"type": "data", "array": [s or 0.0 for s in info.stds], "visible": True},
        text=[f"n={c}" for c in info.counts], textposition="middle right",
        hovertemplate="%{x}: mean %{y:.3f} (%{text})<extra></extra>"))
    fig.update_xaxes(type="category", categoryorder="array", categoryarray=info.labels)
    fig.update_layout(title=info.title, xaxis_title=info.x_label, yaxis_title=info.y_label, height=360)
    return fig


# --- parallel coordinates ---------------------------------------------------------------------------------


class ParallelAxis(NamedTuple):
    label: str
    values: list[float]  # categorical codes, or log10 values for log ranges
    range: tuple[float, float]
    tickvals: list[float] | None
    ticktext: list[str] | None


class ParallelCoordinatesInfo(NamedTuple):
    axes: list[ParallelAxis]  # one per hyperparameter, then the objective
    color: list[float]  # objective value of each trial
    color_label: str
    run_labels: list[str]
    title: str


def _log_ticks(lo: float, hi: float) -> tuple[list[float], list[str]]:
    """Ticks at whole decades inside [lo, hi] (log10 units), plus the ends when fewer than two decades fit."""
    ticks = [float(e) for e in range(math.ceil(lo), math.floor(hi) + 1)]
    if len(ticks) < 2:
        ticks = sorted({lo, *ticks, hi})
    return ticks, [f"{10**t:.3g}" for t in ticks]


def _axis(dimension: Dimension, values: Sequence[Any]) -> ParallelAxis:
    if isinstance(dimension, Categorical):
        codes = [float(dimension.code(v)) for v in values]  # type: ignore[arg-type]
        return ParallelAxis(param_title(dimension), codes, (0.0, float(max(len(dimension.choices) - 1, 1))),
                            [float(i) for i in range(len(dimension.choices))], dimension.labels())
    lo, hi = dimension.axis_bounds()
    xs = [dimension.to_axis(v) for v in values]
    if dimension.log:
        tickvals, ticktext = _log_ticks(lo, hi)
        return ParallelAxis(param_title(dimension, log_axis=True), xs, (lo, hi), tickvals, ticktext)
    return ParallelAxis(param_title(dimension), xs, (lo, hi), None, None)


def parallel_coordinates_info(trials: Sequence[Trial], space: SearchSpace, *, objective: str = "",
                              params: Sequence[str] | None = None, kind: str | None = None) -> ParallelCoordinatesInfo:
    """One line per usable trial; categorical axes carry integer codes with the choices as tick labels."""
    obj = _objective(objective, kind)
    usable = usable_trials(trials, space).trials
    names = list(params) if params is not None else space.names
    axes = [_axis(space[n], [t.params[n] for t in usable]) for n in names]
    values = [float(t.value) for t in usable]  # type: ignore[arg-type]
    lo, hi = (min(values), max(values)) if values else (0.0, 1.0)
    axes.append(ParallelAxis(obj.title, values, (lo, hi), None, None))
    title = _titled(f"Parallel coordinates of {len(usable)} trials, coloured by {obj.label}", obj.provenance)
    return ParallelCoordinatesInfo(axes, values, obj.title, [t.display_label for t in usable], title)


def plot_parallel_coordinates(info: ParallelCoordinatesInfo) -> go.Figure:
    dims = []
    for a in info.axes:
        d: dict[str, Any] = {"label": a.label, "values": a.values, "range": list(a.range)}
        if a.tickvals is not None:
            d |= {"tickvals": a.tickvals, "ticktext": a.ticktext}
        dims.append(d)
    fig = go.Figure(go.Parcoords(dimensions=dims, line={"color": info.color, "colorscale": "Viridis",
                                                         "showscale": True, "colorbar": {"title": info.color_label}}))
    fig.update_layout(title=info.title, height=460, margin={"t": 90, "l": 60, "r": 60})
    return fig


# --- slice ------------------------------------------------------------------------------------------------


class SliceSubplot(NamedTuple):
    param: str
    x: list[Any]  # values (ranges) or codes (categoricals)
    y: list[float]
    x_label: str
    log: bool
    tickvals: list[float] | None
    ticktext: list[str] | None


class SliceInfo(NamedTuple):
    subplots: list[SliceSubplot]
    run_labels: list[str]
    y_label: str
    title: str


def slice_info(trials: Sequence[Trial], space: SearchSpace, *, objective: str = "",
               params: Sequence[str] | None = None, kind: str | None = None) -> SliceInfo:
    """Objective against each hyperparameter, one point per usable trial."""
    obj = _objective(objective, kind)
    usable = usable_trials(trials, space).trials
    y = [float(t.value) for t in usable]  # type: ignore[arg-type]
    subplots = []
    for name in (params if params is not None else space.names):
        d = space[name]
        if isinstance(d, Categorical):
            subplots.append(SliceSubplot(name, [d.code(t.params[name]) for t in usable], y, param_title(d), False,
                                         [float(i) for i in range(len(d.choices))], d.labels()))
        else:
            subplots.append(SliceSubplot(name, [as_scalar(t.params[name]) for t in usable], y, param_title(d),
                                         d.log, None, None))
    title = _titled(f"{_cap(obj.label)} against each hyperparameter, {len(usable)} trials", obj.provenance)
    return SliceInfo(subplots, [t.display_label for t in usable], obj.title, title)


def plot_slice(info: SliceInfo, *, columns: int = 3) -> go.Figure:
    n = max(len(info.subplots), 1)
    cols = min(columns, n)
    rows = math.ceil(n / cols)
    fig = make_subplots(rows=rows, cols=cols, shared_yaxes=True, horizontal_spacing=0.06,
                        vertical_spacing=0.22 / max(rows - 1, 1) if rows > 1 else 0.0)
    for i, sp in enumerate(info.subplots):
        r, c = divmod(i, cols)
        fig.add_trace(go.Scatter(x=sp.x, y=sp.y, mode="markers", name=sp.param, showlegend=False,
                                 text=info.run_labels, marker={"size": 6, "opacity": 0.7},
                                 hovertemplate="%{text}: %{x} → %{y:.3f}<extra></extra>"), row=r + 1, col=c + 1)
        xaxis: dict[str, Any] = {"title_text": sp.x_label}
        if sp.log:
            xaxis["type"] = "log"
        if sp.tickvals is not None:
            xaxis |= {"tickvals": sp.tickvals, "ticktext": sp.ticktext}
        fig.update_xaxes(row=r + 1, col=c + 1, **xaxis)
        if c == 0:
            fig.update_yaxes(title_text=info.y_label, row=r + 1, col=1)
    fig.update_layout(title=info.title, height=300 * rows + 60, margin={"t": 70})
    return fig


# --- contour (binned) -------------------------------------------------------------------------------------


class ContourInfo(NamedTuple):
    x_param: str
    y_param: str
    x_labels: list[str]  # choice / bin labels
    y_labels: list[str]
    z: list[list[float | None]]  # mean objective, z[y_index][x_index]; None = no trial in the cell
    counts: list[list[int]]
    x_label: str
    y_label: str
    z_label: str
    title: str


def contour_info(trials: Sequence[Trial], space: SearchSpace, x_param: str, y_param: str, *,
                 objective: str = "", n_bins: int = N_BINS, kind: str | None = None) -> ContourInfo:
    """Mean objective on a grid of choices × bins (log bins for log ranges); no interpolation."""
    if x_param == y_param:
        raise ValueError(f"contour needs two different hyperparameters, got {x_param!r} twice")
    obj = _objective(objective, kind)
    bx, by = binning(space[x_param], n_bins), binning(space[y_param], n_bins)
    sums = [[0.0] * len(bx.labels) for _ in by.labels]
    counts = [[0] * len(bx.labels) for _ in by.labels]
    usable = usable_trials(trials, space).trials
    for t in usable:
        i, j = by.index(t.params[y_param]), bx.index(t.params[x_param])
        sums[i][j] += float(t.value)  # type: ignore[arg-type]
        counts[i][j] += 1
    z = [[s / c if c else None for s, c in zip(srow, crow, strict=True)]
         for srow, crow in zip(sums, counts, strict=True)]
    title = _titled(f"Mean {obj.label} by {x_param} and {y_param}, {len(usable)} trials", obj.provenance)
    return ContourInfo(x_param, y_param, bx.labels, by.labels, z, counts, param_title(space[x_param]),
                       param_title(space[y_param]), f"mean {obj.title}", title)


def plot_contour(info: ContourInfo) -> go.Figure:
    text = [[f"n={c}" if c else "" for c in row] for row in info.counts]
    fig = go.Figure(go.Heatmap(z=info.z, x=info.x_labels, y=info.y_labels, text=text, texttemplate="%{text}",
                               colorscale="Viridis", colorbar={"title": info.z_label}, hoverongaps=False,
                               hovertemplate="%{x}, %{y}: %{z:.3f} (%{text})<extra></extra>"))
    fig.update_xaxes(type="category")
    fig.update_yaxes(type="category")
    fig.update_layout(title=info.title, xaxis_title=info.x_label, yaxis_title=info.y_label, height=420)
    return fig


# --- learning curves across trials ------------------------------------------------------------------------


class TrialCurve(NamedTuple):
    label: str
    steps: list[int]
    values: list[float]
    objective_value: float


class TrialCurvesInfo(NamedTuple):
    metric: str
    curves: list[TrialCurve]  # best trial first
    n_without_metric: int  # usable trials that have no curve of this metric
    x_label: str
    y_label: str
    title: str


def trial_curves_info(trials: Sequence[Trial], metric: str, *, objective: str = "",
                      direction: str | None = None, max_curves: int = 20, x_label: str = "epoch",
                      provenance: str = "simulated", kind: str | None = None) -> TrialCurvesInfo:
    """One curve of ``metric`` per trial, for the best ``max_curves`` trials by objective.

    ``provenance`` labels the curves themselves (training metrics of simulated circuits by default).
    ``metric`` may be a template such as "D{depth}_r0_loss" when each trial stored its own filled-in name
    under that key (see ``qmlapp.ui.analysis_view.sweep_trials``).
    """
    obj = _objective(objective, kind)
    direction = direction or obj.direction
    usable = usable_trials(trials, SearchSpace()).trials
    with_curve = [t for t in usable if t.curves and metric in t.curves]
    with_curve.sort(key=lambda t: -float(t.value) if direction == "maximize" else float(t.value))  # type: ignore[arg-type]
    curves = [TrialCurve(f"{t.display_label} ({obj.label} {float(t.value):.3g})",  # type: ignore[arg-type]
                         list(t.curves[metric][0]), list(t.curves[metric][1]), float(t.value))  # type: ignore[index,arg-type]
              for t in with_curve[:max_curves]]
    shown = f"best {len(curves)} of {len(with_curve)}" if len(with_curve) > len(curves) else f"{len(curves)}"
    title = _titled(f"{_cap(metric.replace('_', ' '))} of {shown} trials", provenance)
    return TrialCurvesInfo(metric, curves, len(usable) - len(with_curve), f"{x_label} (count)",
                           _metric_title(metric, kind), title)


def plot_trial_curves(info: TrialCurvesInfo) -> go.Figure:
    fig = go.Figure()
    for c in info.curves:
        fig.add_trace(go.Scatter(x=c.steps, y=c.values, mode="lines", name=c.label))
    fig.update_layout(title=info.title, xaxis_title=info.x_label, yaxis_title=info.y_label, height=400,
                      legend={"font": {"size": 10}})
    return fig


# --- best configurations table ----------------------------------------------------------------------------


class BestConfigsInfo(NamedTuple):
    columns: list[str]
    rows: list[list[Any]]  # rank, hyperparameters..., mean, std, repeats, min, max, runs
    title: str


def best_configs_info(trials: Sequence[Trial], space: SearchSpace, direction: str | None = None, *,
                      objective: str = "", k: int = 10, kind: str | None = None) -> BestConfigsInfo:
    """Top ``k`` configurations; repeats (same params, other ``seed``) are one row with mean and std."""
    obj = _objective(objective, kind)
    groups = best_configurations(trials, direction or obj.direction, k=k, space=space)
    unit = f" ({obj.unit})" if obj.unit else ""
    columns = ["rank", *(param_title(d) for d in space), f"mean {obj.label}{unit}", f"std{unit}", "repeats",
               f"min{unit}", f"max{unit}", "runs"]
    rows = [[rank, *(as_scalar(g.params.get(n)) for n in space.names), g.mean, g.std, g.n, g.min, g.max,
             ", ".join(g.labels)] for rank, g in enumerate(groups, start=1)]
    return BestConfigsInfo(columns, rows, _titled(f"Best {len(rows)} configurations by {obj.label}", obj.provenance))


def plot_best_configs(info: BestConfigsInfo) -> go.Figure:
    def cell(v: Any) -> str:
        return "–" if v is None else f"{v:.4g}" if isinstance(v, float) else str(v)

    columns = [[cell(row[i]) for row in info.rows] for i in range(len(info.columns))]
    fig = go.Figure(go.Table(header={"values": info.columns, "align": "left"},
                             cells={"values": columns, "align": "left"}))
    fig.update_layout(title=info.title, height=120 + 28 * max(len(info.rows), 1), margin={"t": 60})
    return fig


# --- everything at once -----------------------------------------------------------------------------------


class StudyReport(NamedTuple):
    importance: ImportanceResult
    importance_plot: ImportanceInfo
    marginals: dict[str, MarginalInfo]
    marginal_plots: list[MarginalEffectInfo]
    parallel: ParallelCoordinatesInfo
    slices: SliceInfo
    contour: ContourInfo | None  # the two most important hyperparameters
    curves: TrialCurvesInfo | None
    best: BestConfigsInfo
    recommendation: str


def study_report(trials: Sequence[Trial], space: SearchSpace, *, objective: str = "",
                 kind: str | None = None, direction: str | None = None, method: Method = "fanova", seed: int = 0,
                 curve_metric: str | None = None, curve_provenance: str = "simulated",
                 curve_x_label: str = "epoch", **importance_options: Any) -> StudyReport:
    """Importance, marginals, every plot's info and the recommendation, e.g. for one cached page call.
    ``kind``'s objective labels, units and provenance title every plot; ``curve_*`` describe the per-step
    metric whose curves are overlaid.

    Raises:
        AnalysisError: from :func:`~qmlapp.analysis.importance` (too few usable trials, nothing varies).
    """
    objective = objective or _objective(objective, kind).name
    direction = direction or objective_info(objective, kind).direction
    result = importance(trials, space, direction, method, seed, **importance_options)
    marginals = marginal_effects(trials, space)
    varied = [p for p in result.shares if p not in result.constant]
    contour = (contour_info(trials, space, varied[0], varied[1], objective=objective, kind=kind)
               if len(varied) >= 2 else None)
    curves = None
    if curve_metric is not None:
        curves = trial_curves_info(trials, curve_metric, objective=objective, direction=direction, kind=kind,
                                   provenance=curve_provenance, x_label=curve_x_label)
    return StudyReport(
        result, importance_info(result, objective=objective, kind=kind), marginals,
        [marginal_effect_info(marginals[p], space, objective=objective, kind=kind) for p in result.shares],
        parallel_coordinates_info(trials, space, objective=objective, kind=kind),
        slice_info(trials, space, objective=objective, kind=kind), contour, curves,
        best_configs_info(trials, space, direction, objective=objective, kind=kind),
        recommendation(trials, space, direction, result, objective=objective, kind=kind))

