"""Distributed-inference plots (``qnetwork`` kind): communication vs N, vs depth, gradients, linear vs deep,
shot convergence, expressivity and the Holevo privacy bound.

Each ``*_info`` is pure (plain data in, NamedTuple of plain data out); ``plot_*`` draws it. Every trace name
ends with its provenance: **simulated** (came out of a simulated circuit), **computed** (exact counting of a
defined protocol at a size that was run, or plain arithmetic) or **estimated** (a formula or bound at a scale
that was not run; the shadow-tomography bound always). Training curves reuse :mod:`qmlapp.plots.runs`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from qmlapp.kinds.qnetwork.accounting import (
    COMPUTED,
    ESTIMATED,
    depth_curves,
    hoeffding_copies,
    holevo_bound_bits,
    parameter_shift_qubits,
    register_qubits,
    rounds,
    scaling_curves,
    shadow_crossover_params,
    shadow_gradient_qubits,
    ship_data_bits,
    ship_gradient_bits,
    ship_model_bits,
)
from qmlapp.kinds.qnetwork.spec import QnetworkSpec

X_N = "input dimension N (log scale)"
Y_COMM = "bits or qubits communicated per inference (log scale)"
Y_GRAD = "qubits or bits communicated per gradient (log scale)"
COLORS = {"quantum_inference": "#1f77b4", "parameter_shift": "#1f77b4", "shadow_gradient": "#9467bd",
          "ship_data": "#d62728", "ship_model": "#ff7f0e", "linear_sketch": "#2ca02c", "quantum_linear": "#17becf",
          "ship_gradient": "#7f7f7f", "deep": "#1f77b4", "deep_vs_data": "#d62728", "linear": "#2ca02c"}
DASH = {COMPUTED: "solid", ESTIMATED: "dash", "simulated": "solid"}
SHADOW_NOTE = "shadow tomography wins in P but pays 1/ε⁴ against parameter shift's 1/ε²"


class Line(NamedTuple):
    key: str
    label: str  # without provenance; traces append " (computed)" etc. per segment
    x: list[float]
    y: list[float]
    provenance: list[str]  # one word per point


def _line(key: str, x: Sequence[float], series: Mapping[str, Any]) -> Line:
    return Line(key, str(series["label"]), [float(v) for v in x], [float(v) for v in series["values"]],
                [str(p) for p in series["provenance"]])


def _segments(line: Line) -> list[tuple[str, list[float], list[float]]]:
    """Split a line into runs of equal provenance; each run starts at the previous run's last point (no gap)."""
    out: list[tuple[str, list[float], list[float]]] = []
    for i, (x, y, p) in enumerate(zip(line.x, line.y, line.provenance, strict=True)):
        if out and out[-1][0] == p:
            out[-1][1].append(x)
            out[-1][2].append(y)
        else:
            xs = [line.x[i - 1], x] if i else [x]
            ys = [line.y[i - 1], y] if i else [y]
            out.append((p, xs, ys))
    return out


def _add_line(fig: go.Figure, line: Line, *, row: int | None = None, col: int | None = None,
              showlegend: bool = True, color: str | None = None) -> None:
    color = color or COLORS.get(line.key)
    for prov, xs, ys in _segments(line):
        trace = go.Scatter(x=xs, y=ys, mode="lines", name=f"{line.label} ({prov})", legendgroup=line.key,
                           showlegend=showlegend, line={"color": color, "dash": DASH.get(prov, "dot")},
                           hovertemplate=f"{line.label} ({prov})<br>%{{x:.4g}} → %{{y:.4g}}<extra></extra>")
        if row is None:
            fig.add_trace(trace)
        else:
            fig.add_trace(trace, row=row, col=col)


# -------------------------------------------------------------------------------- communication vs N


class SimPoint(NamedTuple):
    n_features: int
    qubits: float
    loss_exact: float | None
    loss_estimate: float | None


class CommunicationInfo(NamedTuple):
    lines: list[Line]  # absolute costs (bits or qubits)
    simulated: list[SimPoint]
    ratios: list[Line]  # classical ÷ quantum
    title: str
    x_label: str
    y_label: str
    ratio_label: str
    notes: list[str]


def _opt_float(v: Any) -> float | None:
    return None if v is None else float(v)


def communication_info(curves: Mapping[str, Any], simulated: Sequence[Mapping[str, Any]] = (),
                       keys: Sequence[str] = ("quantum_inference", "ship_data", "ship_model", "linear_sketch"),
                       ratio_keys: Sequence[str] = ("deep", "deep_vs_data", "linear")) -> CommunicationInfo:
    """From :func:`~qmlapp.kinds.qnetwork.accounting.scaling_curves` output and protocol runs.

    ``simulated``: dicts ``{"n_features": N, "qubits_per_inference": q, "loss_exact": ℒ, "loss_estimate": ℒ̂}``
    (losses optional), one per simulated size; drawn as markers ("simulated (counted)").
    """
    Ns = curves["N"]
    lines = [_line(k, Ns, curves["series"][k]) for k in keys if k in curves["series"]]
    ratios = [_line(k, Ns, curves["ratios"][k]) for k in ratio_keys if k in curves.get("ratios", {})]
    sims = sorted((SimPoint(int(s["n_features"]), float(s["qubits_per_inference"]), _opt_float(s.get("loss_exact")),
                            _opt_float(s.get("loss_estimate"))) for s in simulated), key=lambda p: p.n_features)
    st = curves.get("settings", {})
    notes = ["Classical: costs of concrete protocols, no lower bound; ratio = cheapest classical ÷ "
             "quantum at the same ε, δ."]
    if st.get("params_growth", "fixed") == "fixed":
        notes.append(f"P = {st.get('P')} fixed: shipping Bob's weights is flat in N and caps the advantage "
                     "(the paper's gap needs P growing with N).")
    else:
        notes.append("P = N per unitary (dense model): shipping Bob's weights grows with N like shipping x.")
    title = (f"Communication per inference vs N · L = {st.get('L')}, K = {st.get('K')} copies, b = {st.get('b')} "
             f"bits/number, γ = {st.get('gamma')}")
    return CommunicationInfo(lines, sims, ratios, title, X_N, Y_COMM,
                             "classical bits ÷ quantum qubits (log scale)", notes)


def plot_communication(info: CommunicationInfo) -> go.Figure:
    fig = make_subplots(rows=1, cols=2, subplot_titles=("cost per inference", "advantage: classical ÷ quantum"),
                        horizontal_spacing=0.1)
    for line in info.lines:
        _add_line(fig, line, row=1, col=1)
    if info.simulated:
        hover = [f"N = {p.n_features}: {p.qubits:.6g} qubits counted"
                 + (f"<br>ℒ exact {p.loss_exact:.4g}" if p.loss_exact is not None else "")
                 + (f", estimate {p.loss_estimate:.4g}" if p.loss_estimate is not None else "")
                 for p in info.simulated]
        fig.add_trace(go.Scatter(x=[p.n_features for p in info.simulated], y=[p.qubits for p in info.simulated],
                                 mode="markers", name="quantum inference, simulated (counted)",
                                 marker={"size": 9, "color": COLORS["quantum_inference"], "symbol": "circle-open",
                                         "line": {"width": 2}},
                                 text=hover, hovertemplate="%{text}<extra></extra>"), row=1, col=1)
    for line in info.ratios:
        _add_line(fig, line, row=1, col=2)
    fig.add_hline(y=1, line_dash="dot", line_color="black", row=1, col=2, annotation_text="break-even")
    fig.update_xaxes(type="log", title_text=info.x_label)
    fig.update_yaxes(type="log", title_text=info.y_label, row=1, col=1)
    fig.update_yaxes(type="log", title_text=info.ratio_label, row=1, col=2)
    notes = "<br>".join(f"<sup>{n}</sup>" for n in info.notes)
    fig.update_layout(title=f"{info.title}<br>{notes}", height=520, legend={"orientation": "h", "y": -0.2},
                      margin={"t": 120})
    return fig


# --------------------------------------------------------------------------------------------- gradients


class GradientInfo(NamedTuple):
    vs_params: list[Line]  # x = parameters per unitary P
    vs_epsilon: list[Line]  # x = precision ε (K from Hoeffding at each ε)
    crossover_params: float  # shadow cheaper for P above this (at the given N, L, ε, K)
    crossover_epsilon: float | None  # shadow cheaper for ε above this (at the given P), None if no crossing
    params: int
    epsilon: float
    title: str
    notes: list[str]


def _ps_continuous(N: int, L: int, P: int, epsilon: float, delta: float, bob_measures: bool) -> float:
    """Parameter-shift qubits with K = 2 ln(2/δ)/ε² unrounded (smooth in ε for the crossover search)."""
    k = 2 * math.log(2 / delta) / epsilon**2
    return 4 * L * P * k * rounds(L, bob_measures) * register_qubits(N)


def gradient_info(N: int, L: int, P: int, epsilon: float, delta: float, C: float = 1.0, *, K: int | None = None,
                  b: int = 32, p_max: int | None = None, simulated_max_n: int | None = None,
                  bob_measures: bool = True) -> GradientInfo:
    """Gradient communication: parameter shift vs the shadow bound, against P (crossover marked) and against ε.

    The parameter-shift count is ``computed`` when N was simulated (n ≤ ``simulated_max_n``), else
    ``estimated``; the shadow bound is always ``estimated``; the classical gradient (ship x and Alice's weights,
    get her gradient back) is plain arithmetic, ``computed``.
    """
    from scipy.optimize import brentq

    K = hoeffding_copies(epsilon, delta) if K is None else int(K)
    n = register_qubits(N)
    tag = COMPUTED if simulated_max_n is not None and n <= simulated_max_n else ESTIMATED
    cross_p = shadow_crossover_params(N, L, epsilon, delta=delta, C=C, K=K, bob_measures=bob_measures)
    top = int(p_max) if p_max else int(max(10 * P, 4 * cross_p, 100))
    ps_grid = sorted({round(float(v)) for v in np.geomspace(1, top, 80)})
    m = len(ps_grid)
    vs_p = [
        Line("parameter_shift", f"parameter shift, K = {K}", [float(p) for p in ps_grid],
             [float(parameter_shift_qubits(N, L, p, K, bob_measures)) for p in ps_grid], [tag] * m),
        Line("shadow_gradient", f"shadow bound, C = {C:g} (asymptotic)", [float(p) for p in ps_grid],
             [shadow_gradient_qubits(N, L, p, epsilon, C) for p in ps_grid], [ESTIMATED] * m),
        Line("ship_gradient", "classical: ship x + weights, get gradient", [float(p) for p in ps_grid],
             [float(ship_gradient_bits(N, L, p, b)) for p in ps_grid], [COMPUTED] * m),
    ]
    eps_grid = [float(e) for e in np.geomspace(1e-3, 1.0, 61)]
    vs_e = [
        Line("parameter_shift", "parameter shift, K = ⌈2 ln(2/δ)/ε²⌉", eps_grid,
             [float(parameter_shift_qubits(N, L, P, hoeffding_copies(e, delta), bob_measures)) for e in eps_grid],
             [tag] * len(eps_grid)),
        Line("shadow_gradient", f"shadow bound, C = {C:g} (asymptotic)", eps_grid,
             [shadow_gradient_qubits(N, L, P, e, C) for e in eps_grid], [ESTIMATED] * len(eps_grid)),
    ]

    def gap(e: float) -> float:
        return math.log(shadow_gradient_qubits(N, L, P, e, C)) - math.log(_ps_continuous(N, L, P, e, delta,
                                                                                             bob_measures))

    # shadow/shift ∝ ε⁻²: decreasing in ε, so at most one crossing
    cross_e = float(brentq(gap, 1e-9, 2.0)) if gap(1e-9) > 0 > gap(2.0) else None
    title = (f"Gradient communication · N = {N} ({n} qubits), L = {L}, P = {P}, ε = {epsilon:g}, δ = {delta:g}")
    notes = [SHADOW_NOTE + ".", f"At ε = {epsilon:g} the shadow bound is cheaper for P > {cross_p:.4g} parameters per "
             "unitary" + (f"; at P = {P} it is cheaper for ε > {cross_e:.3g}." if cross_e else ".")]
    return GradientInfo(vs_p, vs_e, cross_p, cross_e, int(P), float(epsilon), title, notes)


def plot_gradient(info: GradientInfo) -> go.Figure:
    fig = make_subplots(rows=1, cols=2, horizontal_spacing=0.1,
                        subplot_titles=(f"vs parameters per unitary (ε = {info.epsilon:g})",
                                        f"vs precision ε (P = {info.params})"))
    for line in info.vs_params:
        _add_line(fig, line, row=1, col=1)
    for line in info.vs_epsilon:
        _add_line(fig, line, row=1, col=2, showlegend=False)
    fig.add_vline(x=info.crossover_params, line_dash="dot", line_color="black", row=1, col=1,
                  annotation_text=f"crossover P* ≈ {info.crossover_params:.3g}")
    fig.add_vline(x=info.params, line_dash="dashdot", line_color="grey", row=1, col=1,
                  annotation_text=f"this model P = {info.params}", annotation_position="bottom right")
    if info.crossover_epsilon is not None:
        fig.add_vline(x=info.crossover_epsilon, line_dash="dot", line_color="black", row=1, col=2,
                      annotation_text=f"crossover ε* ≈ {info.crossover_epsilon:.3g}")
    fig.add_vline(x=info.epsilon, line_dash="dashdot", line_color="grey", row=1, col=2,
                  annotation_text=f"this ε = {info.epsilon:g}", annotation_position="bottom right")
    fig.update_xaxes(type="log", title_text="parameters per unitary P (log scale)", row=1, col=1)
    fig.update_xaxes(type="log", title_text="precision ε of each expectation (log scale)", row=1, col=2)
    fig.update_yaxes(type="log", title_text=Y_GRAD)
    fig.update_layout(title=f"{info.title}<br><sup>{SHADOW_NOTE}</sup><br><sup>{info.notes[-1]}</sup>", height=500,
                      legend={"orientation": "h", "y": -0.2}, margin={"t": 120})
    return fig


# ------------------------------------------------------------------------------------------------ depth


class DepthInfo(NamedTuple):
    lines: list[Line]  # x = L
    title: str
    x_label: str
    y_label: str


def depth_info(curves: Mapping[str, Any]) -> DepthInfo:
    """From :func:`~qmlapp.kinds.qnetwork.accounting.depth_curves` output."""
    Ls = curves["L"]
    lines = [_line(k, Ls, s) for k, s in curves["series"].items()]
    st = curves.get("settings", {})
    return DepthInfo(lines, f"Communication vs depth · N = {curves['N']} ({curves['n_qubits']} qubits), "
                            f"P = {st.get('P')}, K = {st.get('K')}, b = {st.get('b')}",
                     "model depth L (unitary pairs A_ℓ, B_ℓ)",
                     "bits or qubits communicated (per inference; per gradient for gradients; log scale)")


def plot_depth(info: DepthInfo) -> go.Figure:
    fig = go.Figure()
    for line in info.lines:
        _add_line(fig, line)
    fig.update_xaxes(title_text=info.x_label, dtick=1)
    fig.update_yaxes(type="log", title_text=info.y_label)
    fig.update_layout(title=info.title, height=480, legend={"orientation": "h", "y": -0.35}, margin={"b": 140})
    return fig


# ----------------------------------------------------------------------------------------- linear vs deep


class Bars(NamedTuple):
    label: str
    key: str
    values: list[float]  # one per N
    provenance: list[str]


class LinearDeepInfo(NamedTuple):
    N: list[int]
    linear: list[Bars]  # quantum linear, ship x, ℓ₂ sketch
    deep: list[Bars]  # quantum inference, ship x, ship weights
    linear_ratio: list[float]  # cheapest classical ÷ quantum
    deep_ratio: list[float]
    title: str
    y_label: str


def linear_vs_deep_info(curves: Mapping[str, Any], n_values: Sequence[int] = (4, 10, 20, 40)) -> LinearDeepInfo:
    """Quantum vs classical for a linear classifier and for the deep split model, at a few N = 2ⁿ.

    The linear ratio stays O(1) (≈ (n + b)/(n + 1)); the deep one grows with N only while shipping the model
    is not the cheaper classical option (see ``params_growth`` in ``scaling_curves``).
    """
    ns = list(curves["n_qubits"])
    idx = [ns.index(n) for n in n_values if n in ns]
    s = curves["series"]

    def pick(key: str, label: str) -> Bars:
        return Bars(label, key, [float(s[key]["values"][i]) for i in idx], [s[key]["provenance"][i] for i in idx])

    linear = [pick("quantum_linear", "quantum: overlap test (qubits)"), pick("ship_data", "classical: ship x (bits)"),
              pick("linear_sketch", "classical: ℓ₂-sampling sketch (bits)")]
    deep = [pick("quantum_inference", "quantum: split model (qubits)"), pick("ship_data", "classical: ship x (bits)"),
            pick("ship_model", "classical: ship Bob's weights (bits)")]
    r = curves["ratios"]
    st = curves.get("settings", {})
    return LinearDeepInfo([int(curves["N"][i]) for i in idx], linear, deep,
                          [float(r["linear"]["values"][i]) for i in idx], [float(r["deep"]["values"][i]) for i in idx],
                          f"Linear classifier vs deep split model · margin γ = {st.get('gamma')}, "
                          f"δ = {st.get('delta')}, b = {st.get('b')}",
                          "bits or qubits communicated per decision (log scale)")


def plot_linear_vs_deep(info: LinearDeepInfo) -> go.Figure:
    cats = [f"N = 2^{register_qubits(N)}" for N in info.N]
    fig = make_subplots(rows=1, cols=2, shared_yaxes=True, horizontal_spacing=0.05,
                        subplot_titles=("linear classifier sign(w·x)", "deep split model ℒ(x)"))
    palette = ["#1f77b4", "#d62728", "#2ca02c"]
    for col, (group, ratio) in enumerate(((info.linear, info.linear_ratio), (info.deep, info.deep_ratio)), start=1):
        for j, bars in enumerate(group):
            provs = sorted(set(bars.provenance))
            fig.add_trace(go.Bar(x=cats, y=bars.values, name=f"{bars.label} ({'/'.join(provs)})",
                                 marker_color=palette[j % 3], legendgroup=f"{col}-{j}",
                                 hovertext=[f"{v:.4g} ({p})" for v, p in zip(bars.values, bars.provenance,
                                                                             strict=True)]),
                          row=1, col=col)
        top = [max(b.values[i] for b in group) for i in range(len(cats))]
        fig.add_trace(go.Scatter(x=cats, y=[t * 3 for t in top], mode="text", showlegend=False,
                                 text=[f"÷ = {r:.3g}" for r in ratio], hoverinfo="skip"), row=1, col=col)
    fig.update_yaxes(type="log", title_text=info.y_label, row=1, col=1)
    fig.update_yaxes(type="log", row=1, col=2)
    fig.update_xaxes(title_text="input dimension N")
    fig.update_layout(title=f"{info.title}<br><sup>÷ = cheapest classical bits ÷ quantum qubits at the same ε, δ"
                            "</sup>", barmode="group", height=460, legend={"orientation": "h", "y": -0.25},
                      margin={"t": 90})
    return fig


# ------------------------------------------------------------------------------------------ shot convergence


class ShotInfo(NamedTuple):
    copies: list[int]
    estimate: list[float]
    se: list[float]
    abs_error: list[float]
    exact: float
    sigma_ref: list[float]  # √(1−ℒ²)/√K: the exact standard deviation of a K-shot mean of ±1 outcomes
    hoeffding: list[float]  # √(2 ln(2/δ)/K): the ε guaranteed with probability 1−δ
    delta: float
    title: str


def shot_convergence_info(points: Sequence[Mapping[str, Any]], exact: float, delta: float = 0.05) -> ShotInfo:
    """``points``: ``{"copies": K, "estimate": ℒ̂, "se": s}`` from sampled runs; ``exact``: the simulated ℒ."""
    pts = sorted(points, key=lambda p: int(p["copies"]))
    ks = [int(p["copies"]) for p in pts]
    est = [float(p["estimate"]) for p in pts]
    sigma = math.sqrt(max(0.0, 1 - float(exact) ** 2))
    return ShotInfo(ks, est, [float(p.get("se") or 0.0) for p in pts], [abs(e - float(exact)) for e in est],
                    float(exact), [sigma / math.sqrt(k) for k in ks],
                    [math.sqrt(2 * math.log(2 / delta) / k) for k in ks], float(delta),
                    "Shot convergence of ℒ(x)")


def plot_shot_convergence(info: ShotInfo) -> go.Figure:
    fig = make_subplots(rows=1, cols=2, horizontal_spacing=0.1,
                        subplot_titles=("estimate ± s.e. vs copies", "|estimate − exact| vs copies"))
    fig.add_trace(go.Scatter(x=info.copies, y=info.estimate, mode="markers", name="shot estimate ℒ̂ (simulated)",
                             error_y={"type": "data", "array": info.se}, marker={"color": "#1f77b4"}), row=1, col=1)
    fig.add_hline(y=info.exact, line_dash="dot", row=1, col=1, annotation_text=f"exact ℒ = {info.exact:.4g} "
                  "(simulated state vector)")
    # zero errors cannot sit on a log axis; they are dropped from the log panel (hover keeps the values)
    err = [e if e > 0 else None for e in info.abs_error]
    fig.add_trace(go.Scatter(x=info.copies, y=err, mode="markers", name="|ℒ̂ − ℒ| (simulated)",
                             marker={"color": "#d62728"}), row=1, col=2)
    if any(s > 0 for s in info.sigma_ref):
        fig.add_trace(go.Scatter(x=info.copies, y=info.sigma_ref, mode="lines",
                                 name="σ/√K, σ = √(1−ℒ²) (computed, ∝ 1/√K)", line={"dash": "dash"}), row=1, col=2)
    fig.add_trace(go.Scatter(x=info.copies, y=info.hoeffding, mode="lines",
                             name=f"Hoeffding ε(K) at δ = {info.delta:g} (computed)", line={"dash": "dot"}),
                  row=1, col=2)
    fig.update_xaxes(type="log", title_text="copies K per estimate (log scale)")
    fig.update_yaxes(title_text="ℒ (expectation of the observable, in [−1, 1])", row=1, col=1)
    fig.update_yaxes(type="log", title_text="absolute error (log scale)", row=1, col=2)
    fig.update_layout(title=info.title, height=480, legend={"orientation": "h", "y": -0.35}, margin={"b": 140})
    return fig


# ---------------------------------------------------------------------------------------------- expressivity


class ExpressivityInfo(NamedTuple):
    degree: list[tuple[str, list[int], list[float]]]  # label, layers, highest frequency
    accuracy: list[tuple[str, list[int], list[float]]]
    title: str
    note: str


def _by_data_layers(points: Sequence[Mapping[str, Any]], value: str, what: str,
                    ) -> list[tuple[str, list[int], list[float]]]:
    out = []
    for flag, name in ((True, "with data layers"), (False, "without data layers")):
        pts = sorted((p for p in points if bool(p["data_layers"]) == flag), key=lambda p: int(p["layers"]))
        if pts:
            prov = str(pts[0].get("provenance", "simulated"))
            out.append((f"{what}, {name} ({prov})", [int(p["layers"]) for p in pts], [float(p[value]) for p in pts]))
    return out


def expressivity_info(points: Sequence[Mapping[str, Any]],
                      accuracy: Sequence[Mapping[str, Any]] | None = None) -> ExpressivityInfo:
    """``points``: ``{"layers": L, "data_layers": bool, "degree": d}`` (optional ``"provenance"``, default
    "simulated"); ``accuracy``: ``{"layers": L, "data_layers": bool, "accuracy": a}`` from training runs."""
    return ExpressivityInfo(
        _by_data_layers(points, "degree", "highest frequency"),
        _by_data_layers(accuracy or [], "accuracy", "training accuracy"),
        "Expressivity vs depth",
        "Without data layers ℒ = x̂ᵀ(U†OU)x̂ is a quadratic form at every depth.",
    )


def plot_expressivity(info: ExpressivityInfo) -> go.Figure:
    cols = 2 if info.accuracy else 1
    fig = make_subplots(rows=1, cols=cols, horizontal_spacing=0.12, subplot_titles=(
        "highest Fourier frequency of ℒ along a path", "training accuracy")[:cols])
    for i, (label, ls, ds) in enumerate(info.degree):
        fig.add_trace(go.Scatter(x=ls, y=ds, mode="lines+markers", name=label,
                                 line={"dash": "solid" if i == 0 else "dash"}), row=1, col=1)
    for i, (label, ls, acc) in enumerate(info.accuracy):
        fig.add_trace(go.Scatter(x=ls, y=acc, mode="lines+markers", name=label,
                                 line={"dash": "solid" if i == 0 else "dash"}), row=1, col=2)
    fig.update_xaxes(title_text="model depth L (unitary pairs)", dtick=1)
    fig.update_yaxes(title_text="highest frequency (integer harmonic)", rangemode="tozero", row=1, col=1)
    if cols == 2:
        fig.update_yaxes(title_text="fraction correct", range=[0, 1.02], row=1, col=2)
    fig.update_layout(title=f"{info.title}<br><sup>{info.note}</sup>", height=420, margin={"t": 90},
                      legend={"orientation": "h", "y": -0.25})
    return fig


# ------------------------------------------------------------------------------------------------- privacy


class PrivacyInfo(NamedTuple):
    labels: list[str]
    values: list[float]  # bits
    provenance: list[str]
    title: str
    y_label: str


def privacy_info(N: int, L: int, P: int, K: int, b: int, *, bob_measures: bool = True,
                 inferences: int = 1) -> PrivacyInfo:
    """Holevo bound on what the exchanged states reveal, next to the bits in x and in the weights.

    All numbers are exact arithmetic (``computed``); the Holevo value is an upper bound on information, over
    ``inferences`` protocol runs (K copies each).
    """
    R, n = rounds(L, bob_measures), register_qubits(N)
    labels = ["Holevo bound K·R·n (no entanglement)", "Holevo bound 2·K·R·n (pre-shared entanglement)",
              "Alice's data x: N·b", "Bob's weights: L·P·b"]
    values = [float(holevo_bound_bits(K, R, n) * inferences), float(holevo_bound_bits(K, R, n, True) * inferences),
              float(ship_data_bits(N, b)), float(ship_model_bits(L, P, b))]
    runs = "one inference" if inferences == 1 else f"{inferences} inferences"
    return PrivacyInfo(labels, values, [COMPUTED] * 4,
                       f"Privacy: information leaked ≤ Holevo bound, {runs} (N = {N}, L = {L}, K = {K})",
                       "bits (log scale)")


def plot_privacy(info: PrivacyInfo) -> go.Figure:
    colors = ["#9467bd", "#c5b0d5", "#d62728", "#ff7f0e"]
    fig = go.Figure(go.Bar(x=[f"{lbl} ({p})" for lbl, p in zip(info.labels, info.provenance, strict=True)],
                           y=info.values, marker_color=colors[: len(info.values)],
                           text=[f"{v:.3g}" for v in info.values], textposition="outside"))
    fig.update_yaxes(type="log", title_text=info.y_label)
    fig.update_xaxes(title_text="quantity")
    fig.update_layout(title=info.title, height=420, showlegend=False)
    return fig


def result_figures(result: Mapping[str, Any], spec: QnetworkSpec) -> list[go.Figure]:
    """Every figure the run view draws from a finished run's result, in its order (communication with Bob's
    model size fixed, the view's first choice)."""
    if "communication" not in result:
        return []
    K, n, L, P, b = spec.copies, spec.n_qubits, spec.layers, spec.params_per_unitary, spec.bits_per_number
    simulated_max = max((p["n_qubits"] for p in result.get("scaling", [])), default=n)
    curves = scaling_curves(L, P, spec.epsilon, spec.delta, K, b, spec.linear_margin, spec.shadow_constant,
                            n_max=40, simulated_max_n=simulated_max, params_growth="fixed")
    depth = depth_curves(spec.n_features, max(L, 8), P, K, b, epsilon=spec.epsilon, C=spec.shadow_constant,
                         simulated_max_n=n, simulated_max_layers=L)
    return [
        plot_communication(communication_info(curves, result.get("scaling", []))),
        plot_linear_vs_deep(linear_vs_deep_info(curves)),
        plot_gradient(gradient_info(spec.n_features, L, P, spec.epsilon, spec.delta, spec.shadow_constant, K=K, b=b,
                                    simulated_max_n=simulated_max)),
        plot_depth(depth_info(depth)),
        plot_shot_convergence(shot_convergence_info(result["shot_convergence"],
                                                    result["protocol_runs"][0]["loss_exact"], spec.delta)),
        plot_expressivity(expressivity_info(result["expressivity"])),
        plot_privacy(privacy_info(spec.n_features, L, P, K, b)),
    ]
