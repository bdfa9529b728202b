"""Q-Newton plots: κ over training, the scheduler's choices, time and loss comparisons, gate-time
scenarios and the HHL demo. ``*_info`` functions take the stored result (plain dicts); ``plot_*`` draw.

Provenance: classical solve and step times are *computed* (measured on this machine); quantum solve times
are *estimated* (query count × gates per query × gate time); HHL results are *simulated*.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from qmlapp.kinds.qnewton.result import GateTimePoint, HhlRow, OptimizerTrace, SolveRow
from qmlapp.kinds.qnewton.spec import QnewtonSpec

LAYER_COLORS = {"W1": "#1f77b4", "b1": "#2ca02c", "W2": "#d62728", "b2": "#9467bd"}
OPT_COLORS = {"qnewton": "#1f77b4", "newton": "#ff7f0e", "sgd": "#2ca02c", "adam": "#d62728"}
OPT_LABELS = {"qnewton": "Q-Newton (classical measured + quantum estimated)", "newton": "Newton (measured)",
              "sgd": "SGD (measured)", "adam": "Adam (measured)"}


def _num(value: Any) -> float:
    """Stored results hold null where the value was infinite (strict JSON)."""
    return float("inf") if value is None else float(value)


class KappaInfo(NamedTuple):
    series: dict[str, tuple[list[int], list[float], list[float]]]  # layer -> steps, κ exact, κ bound
    threshold: float
    title: str


def kappa_info(records: Sequence[SolveRow], threshold: float) -> KappaInfo:
    series: dict[str, tuple[list[int], list[float], list[float]]] = {}
    for r in records:
        steps, exact, bound = series.setdefault(str(r["layer"]), ([], [], []))
        steps.append(int(r["step"]))
        # stored results turn inf into null: plot the bound from its (finite) log10
        exact.append(_num(r.get("kappa_exact")))
        log_bound = r.get("log10_kappa_bound")
        bound.append(10.0 ** float(log_bound) if log_bound is not None and float(log_bound) < 300 else float("inf"))
    return KappaInfo(series, threshold, "Condition number κ of the regularised Hessian blocks (computed)")


def plot_kappa(info: KappaInfo) -> go.Figure:
    fig = go.Figure()
    for layer, (steps, exact, bound) in info.series.items():
        color = LAYER_COLORS.get(layer, None)
        fig.add_trace(go.Scatter(x=steps, y=[e if e < 1e300 else None for e in exact], mode="lines+markers",
                                 name=f"{layer}: κ exact (σmax/σmin)",
                                 line={"color": color}))
        finite = [(s, b) for s, b in zip(steps, bound, strict=True) if b == b and b < 1e300]
        if finite:
            fig.add_trace(go.Scatter(x=[s for s, _ in finite], y=[b for _, b in finite], mode="lines",
                                     name=f"{layer}: κ bound (det/Frobenius, loose)",
                                     line={"color": color, "dash": "dot"}))
    fig.add_hline(y=info.threshold, line_dash="dash", annotation_text="κ threshold: above it, always classical")
    # The det/Frobenius bound runs to 1e+265 on large blocks: keep the axis on the exact κ and the threshold
    exact = [k for _, e, _ in info.series.values() for k in e if 0 < k < 1e300] + [info.threshold]
    top = math.log10(max(exact)) + 3
    fig.update_xaxes(title_text="training step")
    fig.update_yaxes(title_text="condition number κ (log scale; bounds above the top are off-scale)", type="log",
                     range=[0, top])
    fig.update_layout(title=info.title, height=420, legend={"orientation": "h", "y": -0.25})
    return fig


class TimelineInfo(NamedTuple):
    layers: list[str]
    points: list[tuple[int, str, str, str]]  # step, layer, choice, hover text
    title: str


def timeline_info(records: Sequence[SolveRow]) -> TimelineInfo:
    layers = list(dict.fromkeys(str(r["layer"]) for r in records))
    points = [(int(r["step"]), str(r["layer"]), str(r["choice"]),
               f"κ={_num(r.get('kappa_exact')):.3g}, d={r['d']}, N={r['N']}, T_Q={_num(r.get('t_quantum_s')):.3g} s "
               f"(est.), T_C={_num(r.get('t_classical_s')):.3g} s (measured): {r.get('reason', '')}")
              for r in records]
    return TimelineInfo(layers, points, "Scheduler's choice per solve (quantum time estimated, classical measured)")


def plot_timeline(info: TimelineInfo) -> go.Figure:
    fig = go.Figure()
    for choice, color, symbol in (("quantum", "#9467bd", "diamond"), ("classical", "#7f7f7f", "square")):
        pts = [p for p in info.points if p[2] == choice]
        fig.add_trace(go.Scatter(x=[p[0] for p in pts], y=[p[1] for p in pts], mode="markers", name=choice,
                                 text=[p[3] for p in pts], marker={"color": color, "symbol": symbol, "size": 9}))
    fig.update_xaxes(title_text="training step")
    fig.update_yaxes(title_text="parameter block", categoryorder="array", categoryarray=info.layers)
    fig.update_layout(title=info.title, height=320)
    return fig


class CompareInfo(NamedTuple):
    curves: dict[str, dict[str, list[float]]]  # optimizer -> {"step", "time", "loss", "epoch_time", ...}
    title: str


def compare_info(optimizers: Mapping[str, OptimizerTrace]) -> CompareInfo:
    curves = {}
    for name, data in optimizers.items():
        ep = data.get("epoch_metrics", [])
        curves[name] = {
            "step": [float(h["step"]) for h in data.get("steps", [])],
            "cum_time": [float(h["cumulative_time_s"]) for h in data.get("steps", [])],
            "batch_loss": [float(h["batch_loss"]) for h in data.get("steps", [])],
            "epoch": [float(e["epoch"]) for e in ep],
            "epoch_time": [float(e["cumulative_time_s"]) for e in ep],
            "test_loss": [float(e["test_loss"]) for e in ep],
            "test_accuracy": [float(e["test_accuracy"]) for e in ep],
        }
    return CompareInfo(curves, "Training compared from the same initial weights")


def plot_compare(info: CompareInfo) -> go.Figure:
    fig = make_subplots(rows=1, cols=3, subplot_titles=("cumulative time vs step", "loss vs step",
                                                        "test loss vs time"), horizontal_spacing=0.08)
    for name, c in info.curves.items():
        color = OPT_COLORS.get(name)
        label = OPT_LABELS.get(name, name)
        fig.add_trace(go.Scatter(x=c["step"], y=c["cum_time"], mode="lines", name=label, legendgroup=name,
                                 line={"color": color}), row=1, col=1)
        fig.add_trace(go.Scatter(x=c["step"], y=c["batch_loss"], mode="lines", name=label, legendgroup=name,
                                 showlegend=False, line={"color": color}), row=1, col=2)
        timed = [(t, v) for t, v in zip(c["epoch_time"], c["test_loss"], strict=True) if t > 0]  # log axis
        fig.add_trace(go.Scatter(x=[t for t, _ in timed], y=[v for _, v in timed], mode="lines+markers", name=label,
                                 legendgroup=name, showlegend=False, line={"color": color}), row=1, col=3)
    fig.update_xaxes(title_text="training step", row=1, col=1)
    fig.update_xaxes(title_text="training step", row=1, col=2)
    fig.update_xaxes(title_text="cumulative time (s, log scale)", type="log", row=1, col=3)
    fig.update_yaxes(title_text="time (s, log scale)", type="log", row=1, col=1)
    fig.update_yaxes(title_text="mini-batch cross-entropy (nats)", row=1, col=2)
    fig.update_yaxes(title_text="test cross-entropy (nats)", row=1, col=3)
    fig.update_layout(title=info.title, height=430, legend={"orientation": "h", "y": -0.3})
    return fig


class GateTimeInfo(NamedTuple):
    gate_times: list[float]
    qnewton: list[float]
    n_quantum: list[int]
    flat: dict[str, float]  # optimizer -> measured total time (independent of the gate time)
    chosen: float
    title: str


def gate_time_info(curve: Sequence[GateTimePoint], flat: Mapping[str, float], chosen: float) -> GateTimeInfo:
    pts = sorted(curve, key=lambda p: p["gate_time_s"])
    return GateTimeInfo([float(p["gate_time_s"]) for p in pts], [float(p["total_time_s"]) for p in pts],
                        [int(p["n_quantum"]) for p in pts], dict(flat), chosen,
                        "Total training time vs quantum gate time (Q-Newton rescheduled at each gate time)")


def plot_gate_time(info: GateTimeInfo) -> go.Figure:
    fig = go.Figure(go.Scatter(x=info.gate_times, y=info.qnewton, mode="lines+markers",
                               name="Q-Newton (measured classical + estimated quantum)",
                               text=[f"{k} quantum solves" for k in info.n_quantum],
                               line={"color": OPT_COLORS["qnewton"]}))
    for name, total in info.flat.items():
        label = ("Newton: the same measurements, every solve classical" if name == "newton"
                 else OPT_LABELS.get(name, name))
        fig.add_trace(go.Scatter(x=[min(info.gate_times), max(info.gate_times)], y=[total, total], mode="lines",
                                 name=label, line={"color": OPT_COLORS.get(name), "dash": "dash"}))
    if info.gate_times:
        nearest = min(range(len(info.gate_times)),
                      key=lambda i: abs(math.log10(info.gate_times[i]) - math.log10(info.chosen)))
        fig.add_trace(go.Scatter(x=[info.chosen], y=[info.qnewton[nearest]], mode="markers",
                                 marker={"size": 14, "symbol": "star", "color": "black"},
                                 name=f"this run's gate time ({info.chosen:g} s)"))
    lo, hi = math.log10(min(info.gate_times or [1e-18])), math.log10(max(info.gate_times or [1e-6]))
    fig.update_xaxes(title_text="time per quantum gate (s, log scale; faster to the right)", type="log",
                     range=[hi + 0.5, lo - 0.5])
    fig.update_yaxes(title_text="total training time (s, log scale)", type="log")
    fig.update_layout(title=info.title, height=420, legend={"orientation": "h", "y": -0.25})
    return fig


class HhlInfo(NamedTuple):
    rows: list[HhlRow]
    size: int
    title: str


def hhl_info(rows: Sequence[HhlRow], size: int) -> HhlInfo:
    return HhlInfo(list(rows), size, f"HHL on qsim, {size}×{size} Hessian-like blocks (simulated)")


def plot_hhl(info: HhlInfo) -> go.Figure:
    fig = make_subplots(rows=1, cols=2, subplot_titles=("fidelity to the classical solution",
                                                        "success probability (post-selection)"))
    clocks = sorted({int(r["clock_qubits"]) for r in info.rows})
    for c in clocks:
        rows = sorted([r for r in info.rows if int(r["clock_qubits"]) == c], key=lambda r: r["kappa"])
        ks = [r["kappa"] for r in rows]
        fig.add_trace(go.Scatter(x=ks, y=[r["fidelity"] for r in rows], mode="lines+markers",
                                 name=f"{c} clock qubits", legendgroup=str(c)), row=1, col=1)
        fig.add_trace(go.Scatter(x=ks, y=[r["success_probability"] for r in rows], mode="lines+markers",
                                 name=f"{c} clock qubits", legendgroup=str(c), showlegend=False), row=1, col=2)
    for col in (1, 2):
        fig.update_xaxes(title_text="condition number κ (log scale)", type="log", row=1, col=col)
    fig.update_yaxes(title_text="|⟨x|x̃⟩|²", range=[0, 1.05], row=1, col=1)
    fig.update_yaxes(title_text="probability (log scale)", type="log", row=1, col=2)
    fig.update_layout(title=info.title, height=400, legend={"orientation": "h", "y": -0.25})
    return fig


def result_figures(result: Mapping[str, Any], spec: QnewtonSpec) -> list[go.Figure]:
    """Every figure the run view draws from a finished run's result, in its order (the chosen optimizer's
    curves come from the metrics)."""
    if "records" not in result:
        return []
    figures = []
    records = result["records"]
    if records:
        figures += [plot_kappa(kappa_info(records, spec.kappa_threshold)), plot_timeline(timeline_info(records))]
    figures.append(plot_compare(compare_info(result["optimizers"])))
    if result.get("gate_time_curve"):
        flat = {k: v["total_time_s"] for k, v in result["optimizers"].items() if k not in (spec.optimizer, "newton")}
        if result.get("all_classical_time_s") is not None:
            flat["newton"] = result["all_classical_time_s"]
        figures.append(plot_gate_time(gate_time_info(result["gate_time_curve"], flat, spec.gate_time_s)))
    if result.get("hhl"):
        figures.append(plot_hhl(hhl_info(result["hhl"], spec.hhl_size)))
    return figures
