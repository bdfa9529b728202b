"""Sparse quantum GD plots: Hessian spectra over training, dissipativity, κ of the history system vs T,
the cost ratio with the quantum-favourable windows, and the scaling of the estimated cost with n.

``*_info`` functions take the stored result's plain dicts; ``plot_*`` draw them. Spectra, κ and the
classification are *computed*; costs are *estimated*; the small HHL solve is *simulated*.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from qmlapp.kinds.sparse_qgd.result import Checkpoint, KappaPoint, ScalingPoint
from qmlapp.kinds.sparse_qgd.spec import SparseQgdSpec

PHASE_COLORS = {"dense": "#1f77b4", "pruned": "#d62728", "sparse": "#2ca02c"}
QUANTILES = ("q01", "q05", "q25", "q50", "q75", "q95", "q99")


class SpectrumInfo(NamedTuple):
    epochs: list[float]
    quantiles: dict[str, list[float]]
    lam_min: list[float]
    lam_max: list[float]
    negative_fraction: list[float]
    negative_mass: list[float]
    phases: list[str]
    prune_epoch: float | None
    methods: list[str]


def spectrum_info(checkpoints: Sequence[Checkpoint]) -> SpectrumInfo:
    cps = sorted(checkpoints, key=lambda c: (c["epoch"], c["phase"] != "pruned"))
    quant = {q: [float(c["quantiles"][q]) for c in cps] for q in QUANTILES if cps and q in cps[0]["quantiles"]}
    prune = next((float(c["epoch"]) for c in cps if c["phase"] == "pruned"), None)
    return SpectrumInfo([float(c["epoch"]) for c in cps], quant, [float(c["lambda_min"]) for c in cps],
                        [float(c["lambda_max"]) for c in cps], [float(c["negative_fraction"]) for c in cps],
                        [float(c["negative_mass"]) for c in cps], [str(c["phase"]) for c in cps], prune,
                        [str(c["method"]) for c in cps])


def plot_spectrum(info: SpectrumInfo) -> go.Figure:
    fig = make_subplots(rows=1, cols=2, horizontal_spacing=0.1,
                        subplot_titles=("Hessian eigenvalue quantiles (unpruned coordinates)",
                                        "negative eigenvalues"))
    fill = [("q01", "q99", "1–99 %", 0.12), ("q05", "q95", "5–95 %", 0.2), ("q25", "q75", "25–75 %", 0.35)]
    for lo, hi, label, alpha in fill:
        if lo in info.quantiles and hi in info.quantiles:
            fig.add_trace(go.Scatter(x=info.epochs, y=info.quantiles[hi], mode="lines", line={"width": 0},
                                     showlegend=False, hoverinfo="skip"), row=1, col=1)
            fig.add_trace(go.Scatter(x=info.epochs, y=info.quantiles[lo], mode="lines", line={"width": 0},
                                     fill="tonexty", fillcolor=f"rgba(31,119,180,{alpha})", name=f"{label} (computed)"),
                          row=1, col=1)
    if "q50" in info.quantiles:
        fig.add_trace(go.Scatter(x=info.epochs, y=info.quantiles["q50"], mode="lines", name="median (computed)",
                                 line={"color": "#1f77b4"}), row=1, col=1)
    fig.add_trace(go.Scatter(x=info.epochs, y=info.lam_min, mode="lines+markers", name="λ_min (computed)",
                             line={"color": "#d62728"}), row=1, col=1)
    fig.add_trace(go.Scatter(x=info.epochs, y=info.lam_max, mode="lines+markers", name="λ_max (computed)",
                             line={"color": "#2ca02c"}), row=1, col=1)
    fig.add_trace(go.Scatter(x=info.epochs, y=info.negative_fraction, mode="lines+markers",
                             name="fraction of negative eigenvalues (computed)", line={"color": "#9467bd"}),
                  row=1, col=2)
    fig.add_trace(go.Scatter(x=info.epochs, y=info.negative_mass, mode="lines+markers",
                             name="negative spectral mass Σ|λ⁻|/Σ|λ| (computed)", line={"color": "#8c564b",
                                                                                     "dash": "dash"}), row=1, col=2)
    if info.prune_epoch is not None:
        for col in (1, 2):
            fig.add_vline(x=info.prune_epoch, line_dash="dot", row=1, col=col)
        fig.add_annotation(x=info.prune_epoch, y=1.0, yref="paper", text="pruned", showarrow=False, row=1, col=1)
    fig.update_xaxes(title_text="epoch")
    fig.update_yaxes(title_text="eigenvalue λ of the training-loss Hessian", type="linear", row=1, col=1)
    fig.update_yaxes(title_text="fraction", row=1, col=2)
    fig.update_layout(title="Hessian spectrum over training: dense → prune → sparse", height=430,
                      legend={"orientation": "h", "y": -0.25})
    return fig


class KappaTInfo(NamedTuple):
    curves: dict[str, tuple[list[int], list[float]]]
    title: str


def kappa_t_info(curves: Mapping[str, Sequence[KappaPoint]]) -> KappaTInfo:
    out = {name: ([int(p["T"]) for p in pts], [float(p["kappa"]) for p in pts]) for name, pts in curves.items()}
    return KappaTInfo(out, "κ of the T-step history system 𝓛 = I − S⊗M vs window length T (computed)")


def plot_kappa_t(info: KappaTInfo) -> go.Figure:
    fig = go.Figure()
    for name, (ts, ks) in info.curves.items():
        fig.add_trace(go.Scatter(x=ts, y=ks, mode="lines+markers", name=name))
    fig.update_xaxes(title_text="window length T (GD steps, log scale)", type="log")
    fig.update_yaxes(title_text="condition number κ(𝓛) (log scale)", type="log")
    fig.update_layout(title=info.title, height=400, legend={"orientation": "h", "y": -0.25})
    return fig


class CostInfo(NamedTuple):
    epochs: list[float]
    ratio: list[float]
    favourable: list[bool]
    phases: list[str]
    title: str


def cost_info(checkpoints: Sequence[Checkpoint]) -> CostInfo:
    cps = sorted(checkpoints, key=lambda c: (c["epoch"], c["phase"] != "pruned"))
    return CostInfo([float(c["epoch"]) for c in cps], [float(c["cost"]["speedup"]) for c in cps],
                    [bool(c["cost"]["favourable"]) for c in cps], [str(c["phase"]) for c in cps],
                    "Estimated classical ÷ quantum cost of one window, over training")


def plot_cost(info: CostInfo) -> go.Figure:
    fig = go.Figure(go.Scatter(x=info.epochs, y=info.ratio, mode="lines+markers",
                               name="classical ÷ quantum time per window (estimated)",
                               marker={"color": ["#2ca02c" if f else "#7f7f7f" for f in info.favourable],
                                       "size": 10}))
    for e, fav in zip(info.epochs, info.favourable, strict=True):
        if fav:
            fig.add_vrect(x0=e - 0.25, x1=e + 0.25, fillcolor="#2ca02c", opacity=0.15, line_width=0)
    fig.add_hline(y=1.0, line_dash="dot", annotation_text="break-even")
    fig.update_xaxes(title_text="epoch (shaded: quantum-favourable windows)")
    fig.update_yaxes(title_text="speed-up (log scale)", type="log")
    fig.update_layout(title=info.title, height=380)
    return fig


class ScalingInfo(NamedTuple):
    n: list[float]
    quantum: list[float]
    classical: list[float]
    target: float
    title: str


def scaling_info(points: Sequence[ScalingPoint], target: float) -> ScalingInfo:
    pts = sorted(points, key=lambda p: p["n"])
    return ScalingInfo([float(p["n"]) for p in pts], [float(p["quantum_time_s"]) for p in pts],
                       [float(p["classical_time_s"]) for p in pts], target,
                       "Estimated time of one window vs parameter count n (sparsity and κ carried over)")


def plot_scaling(info: ScalingInfo) -> go.Figure:
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=info.n, y=info.quantum, mode="lines", name="quantum window (estimated)"))
    fig.add_trace(go.Scatter(x=info.n, y=info.classical, mode="lines", name="classical T steps (estimated)"))
    fig.add_vline(x=info.target, line_dash="dot")
    fig.update_xaxes(title_text="parameters n (log scale)", type="log")
    fig.update_yaxes(title_text="time per window (s, log scale)", type="log")
    fig.update_layout(title=info.title, height=380, legend={"orientation": "h", "y": -0.25})
    return fig


def result_figures(result: Mapping[str, Any], spec: SparseQgdSpec) -> list[go.Figure]:
    """Every figure the run view draws from a finished run's result, in its order (the per-checkpoint curves
    come from the metrics)."""
    if "checkpoints" not in result:
        return []
    checkpoints = result["checkpoints"]
    return [plot_spectrum(spectrum_info(checkpoints)), plot_kappa_t(kappa_t_info(result["kappa_vs_T"])),
            plot_cost(cost_info(checkpoints)), plot_scaling(scaling_info(result["scaling"], spec.target_params))]
