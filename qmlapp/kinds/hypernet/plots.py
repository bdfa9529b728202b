"""Hypernetwork plots: success vs depth, restart curves, cost landscape, decoded networks.

Each ``*_info`` function turns a stored result (plain dicts) into plot data; ``plot_*`` draws it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from qmlapp.kinds.hypernet.spec import HypernetSpec

LOSS_UNITS = {"mse": "training loss C (MSE, dimensionless)", "bce": "training loss C (cross-entropy, nats)"}


class DepthStudyInfo(NamedTuple):
    depths: list[int]
    layers: list[float]
    success: list[float]
    success_err_low: list[float]  # distance below the point (Wilson 95 % interval)
    success_err_high: list[float]
    mass: list[float]
    mass_err: list[float]  # standard error over restarts
    restarts: list[int]
    noisy_mass: list[float] | None
    noisy_mass_err: list[float] | None
    tolerance: float
    title: str


def depth_study_info(result: Mapping[str, Any]) -> DepthStudyInfo:
    study = sorted(result.get("depth_study", []), key=lambda s: s["depth"])
    noisy = all("noisy_born_mass_mean" in s for s in study) and bool(study)
    return DepthStudyInfo(
        depths=[int(s["depth"]) for s in study],
        layers=[float(s["layers"]) for s in study],
        success=[float(s["success_fraction"]) for s in study],
        success_err_low=[float(s["success_fraction"] - s["success_ci_low"]) for s in study],
        success_err_high=[float(s["success_ci_high"] - s["success_fraction"]) for s in study],
        mass=[float(s["born_mass_mean"]) for s in study],
        mass_err=[float(s["born_mass_se"] or 0.0) for s in study],
        restarts=[int(s["restarts"]) for s in study],
        noisy_mass=[float(s["noisy_born_mass_mean"]) for s in study] if noisy else None,
        noisy_mass_err=[float(s.get("noisy_born_mass_se") or 0.0) for s in study] if noisy else None,
        tolerance=float(result.get("tolerance", 0.0)),
        title="Probability of success vs circuit depth (simulated)",
    )


def plot_depth_study(info: DepthStudyInfo) -> go.Figure:
    fig = go.Figure()
    hover = [f"D={d} ({ly:g} manuscript layers), {r} restarts" for d, ly, r in
             zip(info.depths, info.layers, info.restarts, strict=True)]
    fig.add_trace(go.Scatter(
        x=info.depths, y=info.success, mode="lines+markers", name="(a) share of restarts reaching C_min + ε",
        error_y={"type": "data", "symmetric": False, "array": info.success_err_high,
                 "arrayminus": info.success_err_low}, text=hover))
    fig.add_trace(go.Scatter(
        x=info.depths, y=info.mass, mode="lines+markers", name="(b) Born mass on the ε-optimal set (mean ± s.e.)",
        error_y={"type": "data", "array": info.mass_err}, line={"dash": "dash"}, text=hover))
    if info.noisy_mass is not None:
        fig.add_trace(go.Scatter(
            x=info.depths, y=info.noisy_mass, mode="lines+markers", name="(b) under depolarising noise",
            error_y={"type": "data", "array": info.noisy_mass_err}, line={"dash": "dot"}, text=hover))
    fig.update_xaxes(title_text="code depth D (brickwork sub-layers; manuscript layers = D/2)",
                     tickvals=info.depths, ticktext=[f"{d} ({ly:g})" for d, ly in zip(info.depths, info.layers,
                                                                                        strict=True)])
    fig.update_yaxes(title_text="probability of success", range=[-0.05, 1.05])
    fig.update_layout(title=f"{info.title} · ε = {info.tolerance:g}", height=400,
                      legend={"orientation": "h", "y": -0.3})
    return fig


class RestartCurvesInfo(NamedTuple):
    curves: list[tuple[str, int, list[int], list[float], list[float]]]  # label, depth, steps, loss, mass
    global_min: float
    loss_unit: str
    title: str


def restart_curves_info(series: Mapping[str, tuple[Sequence[int], Sequence[float]]],
                        result: Mapping[str, Any] | None, loss_kind: str = "mse") -> RestartCurvesInfo:
    """One loss curve (expected training loss ⟨C⟩) and one optimal-mass curve per depth × restart."""
    curves = []
    for name in sorted(series, key=_restart_order):
        if not name.endswith("_loss"):
            continue
        prefix = name[: -len("_loss")]
        steps, loss = series[name]
        mass = series.get(f"{prefix}_optimal_mass", ([], []))[1]
        depth = int(prefix.split("_")[0][1:]) if prefix.startswith("D") else 0
        curves.append((prefix.replace("_r", " restart "), depth, list(steps), list(loss), list(mass)))
    g = float((result or {}).get("global_min_loss", float("nan")))
    return RestartCurvesInfo(curves, g, LOSS_UNITS.get(loss_kind, "training loss C"),
                             "Training curves per restart (simulated)")


def _restart_order(name: str) -> tuple[int, int, str]:
    try:
        d, r = name.split("_")[:2]
        return int(d[1:]), int(r[1:]), name
    except (ValueError, IndexError):
        return (0, 0, name)


def plot_restart_curves(info: RestartCurvesInfo) -> go.Figure:
    fig = make_subplots(rows=1, cols=2, subplot_titles=("expected loss ⟨C⟩", "Born mass on the ε-optimal set"))
    palette = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf"]
    depths = sorted({c[1] for c in info.curves})
    for label, depth, steps, loss, mass in info.curves:
        color = palette[depths.index(depth) % len(palette)]
        group = f"D={depth}"
        fig.add_trace(go.Scatter(x=steps, y=loss, mode="lines", name=label, legendgroup=group,
                                 line={"color": color, "width": 1}), row=1, col=1)
        if mass:
            fig.add_trace(go.Scatter(x=steps[: len(mass)], y=mass, mode="lines", name=label, legendgroup=group,
                                     showlegend=False, line={"color": color, "width": 1}), row=1, col=2)
    if np.isfinite(info.global_min):
        fig.add_hline(y=info.global_min, line_dash="dot", line_color="black", row=1, col=1,
                      annotation_text="global minimum C_min (computed)")
    fig.update_xaxes(title_text="optimizer iteration")
    fig.update_yaxes(title_text=info.loss_unit, row=1, col=1)
    fig.update_yaxes(title_text="probability", range=[-0.02, 1.02], row=1, col=2)
    fig.update_layout(title=info.title, height=400, legend={"orientation": "h", "y": -0.3})
    return fig


class LandscapeInfo(NamedTuple):
    edges: list[float]
    counts: list[int]
    global_min: float
    tolerance: float
    walsh_orders: list[int]
    walsh_fraction: list[float]
    loss_unit: str
    stats: dict[str, Any]


def landscape_info(result: Mapping[str, Any]) -> LandscapeInfo:
    land = result["landscape"]
    frac = list(land.get("walsh_weights_fraction", []))
    return LandscapeInfo(
        edges=list(land["histogram"]["edges"]), counts=list(land["histogram"]["counts"]),
        global_min=float(land["global_min_loss"]), tolerance=float(land.get("tolerance", 0.0)),
        walsh_orders=list(range(1, len(frac) + 1)) if len(frac) == land["n_bits"] else list(range(len(frac))),
        walsh_fraction=frac, loss_unit=LOSS_UNITS.get(result.get("loss_kind", "mse"), "training loss C"),
        stats={k: land[k] for k in ("n_networks", "global_min_loss", "n_optimal_bitstrings", "n_local_minima",
                                    "mean_loss", "max_loss") if k in land},
    )


def plot_landscape_histogram(info: LandscapeInfo) -> go.Figure:
    centres = [(a + b) / 2 for a, b in zip(info.edges[:-1], info.edges[1:], strict=True)]
    widths = [b - a for a, b in zip(info.edges[:-1], info.edges[1:], strict=True)]
    fig = go.Figure(go.Bar(x=centres, y=info.counts, width=widths, name="networks"))
    fig.add_vline(x=info.global_min, line_dash="dot", annotation_text=f"C_min (ε = {info.tolerance:g})")
    fig.update_xaxes(title_text=info.loss_unit)
    fig.update_yaxes(title_text="number of networks", type="log")
    fig.update_layout(title="Loss of every network (computed by enumeration)", height=360, bargap=0)
    return fig


def plot_walsh_spectrum(info: LandscapeInfo) -> go.Figure:
    fig = go.Figure(go.Bar(x=info.walsh_orders, y=info.walsh_fraction))
    fig.update_xaxes(title_text="Walsh order k (number of interacting bits)", dtick=1)
    fig.update_yaxes(title_text="share of variance W_k / Σ_{k≥1} W_k", type="log")
    fig.update_layout(title="Walsh (Z-Pauli) spectrum of C by order (computed)", height=360)
    return fig


class BoundaryInfo(NamedTuple):
    xs: list[float]
    ys: list[float]
    z: list[list[float]]
    points: list[tuple[float, float, int]]
    title: str


def boundary_info(boundary: Mapping[str, Any], network: Mapping[str, Any]) -> BoundaryInfo:
    """From ``problems.decision_boundary`` output (grid + data points) and ``describe_network``."""
    xs = list(boundary.get("xs") or boundary.get("x") or [])
    ys = list(boundary.get("ys") or boundary.get("y") or [])
    z = boundary.get("proba") or boundary.get("z") or boundary.get("probability") or []
    px = boundary.get("points_x") or [p[0] for p in boundary.get("points", [])]
    py = boundary.get("points_y") or [p[1] for p in boundary.get("points", [])]
    pl = boundary.get("labels") or boundary.get("points_label") or [int(p[2]) for p in boundary.get("points", [])]
    title = (f"Network {network.get('bitstring', '')}: loss {network.get('loss', float('nan')):.4g}, "
             f"accuracy {network.get('accuracy', float('nan')):.3f} (computed)")
    return BoundaryInfo(xs, ys, [list(r) for r in z], list(zip(px, py, pl, strict=True)), title)


def plot_boundary(info: BoundaryInfo) -> go.Figure:
    fig = go.Figure(go.Heatmap(x=info.xs, y=info.ys, z=info.z, zmin=0, zmax=1, colorscale="RdBu_r", opacity=0.6,
                               colorbar={"title": "P(y = 1)"}))
    fig.add_trace(go.Contour(x=info.xs, y=info.ys, z=info.z, contours={"start": 0.5, "end": 0.5, "size": 1,
                                                                        "coloring": "none"},
                             line={"width": 2, "color": "black"}, showscale=False, name="ŷ = 0.5"))
    for label, color in ((0, "#1f77b4"), (1, "#d62728")):
        pts = [(x, y) for x, y, lab in info.points if int(lab) == label]
        if pts:
            fig.add_trace(go.Scatter(x=[p[0] for p in pts], y=[p[1] for p in pts], mode="markers",
                                     marker={"size": 3, "color": color}, name=f"label {label}"))
    fig.update_xaxes(title_text="x₁")
    fig.update_yaxes(title_text="x₂", scaleanchor="x")
    fig.update_layout(title=info.title, height=480, legend={"orientation": "h", "y": -0.2})
    return fig


def plot_weight_image(image: Sequence[Sequence[float]], title: str) -> go.Figure:
    fig = go.Figure(go.Heatmap(z=[list(r) for r in image], colorscale="RdBu", zmid=0, text=[
        [f"{v:g}" for v in r] for r in image], texttemplate="%{text}", colorbar={"title": "weight"}))
    fig.update_yaxes(autorange="reversed", title_text="pixel row (4×4 image)")
    fig.update_xaxes(title_text="pixel column")
    fig.update_layout(title=title, height=380, width=420)
    return fig


def result_figures(result: Mapping[str, Any], spec: HypernetSpec) -> list[go.Figure]:
    """Every figure the run view draws from a finished run's result, in its order, with the best network found
    decoded as the view opens it (restart curves come from the metrics)."""
    if "depth_study" not in result:
        return []
    from qmlapp.kinds.hypernet.problems import decision_boundary, describe_network, load_problem_data, weight_image

    land = landscape_info(result)
    figures = [plot_depth_study(depth_study_info(result)), plot_landscape_histogram(land), plot_walsh_spectrum(land)]
    layout = spec.layout()
    data = load_problem_data(layout, n_points=spec.n_points, seed=spec.seed)
    bits = result["best_bitstring"]
    net = describe_network(layout, data, bits)
    if layout.n_inputs == 2:
        figures.append(plot_boundary(boundary_info(decision_boundary(layout, bits, data), net)))
    elif layout.n_inputs == 16:
        figures.append(plot_weight_image(weight_image(layout, bits).tolist(),
                                         f"Input weights of {net['bitstring']} on the 4×4 image"))
    return figures
