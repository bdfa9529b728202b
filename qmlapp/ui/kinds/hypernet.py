"""Quantum-hypernetwork page and the hypernet sections of the run view."""

from __future__ import annotations

from typing import Any, cast

import pandas as pd
import streamlit as st

from db import RunRecord
from qmlapp.kinds.hypernet import KIND
from qmlapp.kinds.hypernet.layouts import BitLayout
from qmlapp.kinds.hypernet.plots import (
    boundary_info,
    depth_study_info,
    landscape_info,
    plot_boundary,
    plot_depth_study,
    plot_landscape_histogram,
    plot_restart_curves,
    plot_walsh_spectrum,
    plot_weight_image,
    restart_curves_info,
)
from qmlapp.kinds.hypernet.result import HypernetResult
from qmlapp.kinds.hypernet.spec import HypernetSpec
from qmlapp.specs import SpecError
from qmlapp.ui.forms import spec_widgets, submit_values
from qmlapp.ui.run_view import show_last_run

# The kind's form groups: the first two choose the problem (previewed live), the rest sit in the form.
PROBLEM_GROUPS = KIND.form_groups[:2]
TRAIN_GROUPS = KIND.form_groups[2:]
STUDY_DEPTHS = "1, 2, 4, 6"


def page() -> None:
    st.title("🧬 Quantum hypernetworks")
    st.markdown(
        "Every bitstring of an n-qubit register is one **binary neural network** — its ±1 weights and "
        "biases, and bits that choose the activation, the weight encoding or the hidden width. A brickwork "
        "circuit prepares a superposition of all of them; training minimises the expected training loss "
        "Σ|ψ(σ)|² C(σ), so probability flows to good networks (Carrasquilla et al. 2023). The app enumerates "
        "C for all 2ⁿ networks, so it knows the true optimum and can say how often the circuit finds it."
    )
    st.info("**Depth convention.** `depth` is the *code* depth D: the number of brickwork sub-layers (a CX "
            "sub-layer, then Ry and Rz on every qubit). **One manuscript layer = two sub-layers**: D = 2, 4, 6 "
            "are the paper's 1, 2, 3 layers, and D = 1 is its product state.", icon="📏")

    st.subheader("1 · Problem and bit layout")
    problem_values = spec_widgets("hypernet", PROBLEM_GROUPS, key="hn", rest=False)
    layout = _layout_preview(problem_values)

    st.subheader("2 · Circuit, objective and restarts")
    with st.form("hn_form"):
        values = spec_widgets("hypernet", TRAIN_GROUPS, key="hn", rest=False)
        run_name = st.text_input("run name (optional)", key="hn_name")
        c1, c2 = st.columns(2)
        single = c1.form_submit_button("Run", type="primary")
        study = c2.form_submit_button(f"Run depth study (D = {STUDY_DEPTHS} unless listed)",
                                      help="Runs every restart at each code depth of `depth study` (or "
                                           f"{STUDY_DEPTHS} when that is empty) and plots success vs depth.")
    if single or study:
        raw = {**problem_values, **values}
        if study and not str(raw.get("study_depths", "")).strip():
            raw["study_depths"] = STUDY_DEPTHS
        submit_values("hypernet", raw, run_name, key="hn")
    if not show_last_run("hn") and layout is not None:
        st.caption("Press *Run* to train; results, the landscape and the decoded networks appear here.")


def _layout_preview(values: dict[str, Any]) -> BitLayout | None:
    try:
        spec = HypernetSpec.from_dict(values)
    except SpecError as exc:
        st.error(f"Invalid **{exc.field}** — {exc.message}.", icon="🚫")
        return None
    layout = spec.layout()
    n = layout.n_bits
    st.markdown(f"**{n} bits = {n} qubits** · {2**n:,} networks enumerated exactly · state vector "
                f"{2**n * 16 / 2**20:.1f} MiB (complex128)")
    for note in layout.notes:
        st.caption(note)
    st.dataframe(pd.DataFrame(layout.table()), hide_index=True)
    st.caption(f"Bit p is layout position p, most significant first. Qubit map: "
               f"{'bit p on qubit p' if spec.qubit_order == 'app' else 'bit p on qubit n−1−p (authors’ Julia order)'}.")
    return layout


# --- run view sections (called by qmlapp.ui.run_view) --------------------------------------------


def curves(run: RunRecord, series: dict[str, Any]) -> None:
    info = restart_curves_info(series, run.result, (run.result or {}).get("loss_kind", _loss_kind(run)))
    st.plotly_chart(plot_restart_curves(info), key=f"hn_curves_{run.id}")


def _loss_kind(run: RunRecord) -> str:
    try:
        return HypernetSpec.from_dict(run.spec).layout().loss
    except SpecError:
        return "mse"


@st.cache_data(max_entries=8, show_spinner="Loading the problem's data …")
def _problem(spec_json: str) -> tuple[Any, Any]:
    from qmlapp.kinds.hypernet.problems import load_problem_data

    spec = HypernetSpec.from_json(spec_json)
    layout = spec.layout()
    return layout, load_problem_data(layout, n_points=spec.n_points, seed=spec.seed)


def results(run: RunRecord, detail: Any) -> None:
    result = cast(HypernetResult, run.result or {})  # runs stored by older versions may lack keys added since
    if "depth_study" not in result:
        return
    eps = result.get("tolerance", 0.0)
    st.markdown("#### Success")
    a, b, c, d = st.columns(4)
    lo, hi = result.get("success_probability_ci", [None, None])
    a.metric("(a) restarts reaching C_min + ε", f"{result['success_probability']:.0%}",
             help=f"Share of restarts at D={result['depth']} whose expected loss ≤ C_min + ε (ε = {eps:g}); "
                  f"95 % Wilson interval [{lo:.2f}, {hi:.2f}]. Simulated.")
    b.metric("(b) Born mass on optimal set", f"{result['born_mass_optimal']:.3f}",
             help="Mean over restarts of Σ_{σ∈O_ε} |ψ(σ)|² at the trained parameters. Simulated (exact).")
    c.metric("global minimum C_min", f"{result['global_min_loss']:.5g}",
             help=f"Computed by enumerating all networks; {result['n_optimal_bitstrings']} network(s) within ε.")
    d.metric("best network found", f"{result['best_loss']:.5g}",
             help=f"{result['best_bitstring']} · training accuracy {result['best_accuracy']:.3f} (computed)")
    st.plotly_chart(plot_depth_study(depth_study_info(result)), key=f"hn_depth_{run.id}")
    st.caption("Both success metrics are shown separately: (a) counts restarts, (b) is the "
               "probability that one measurement of the trained circuit returns an ε-optimal network.")
    with st.expander("Restarts (every depth)"):
        cols = ["depth", "layers", "restart", "final_loss", "success", "born_mass_optimal",
                "born_mass_optimal_sampled", "mode_bitstring", "mode_loss", "best_sampled_bitstring",
                "best_sampled_loss", "iterations", "converged", "noisy_loss", "noisy_born_mass_optimal"]
        frame = pd.DataFrame(result["restarts"])
        st.dataframe(frame[[c for c in cols if c in frame]], hide_index=True)
    land = landscape_info(result)
    st.markdown("#### Landscape (every network, computed)")
    stats = land.stats
    st.markdown(f"{stats.get('n_networks', 0):,} networks · C_min = {stats.get('global_min_loss', 0):.5g} with "
                f"**{stats.get('n_optimal_bitstrings', 0)}** network(s) within ε = {land.tolerance:g} · "
                f"**{stats.get('n_local_minima', 0):,}** single-flip local minima · mean C = "
                f"{stats.get('mean_loss', 0):.4g}")
    l1, l2 = st.columns(2)
    l1.plotly_chart(plot_landscape_histogram(land), key=f"hn_hist_{run.id}")
    l2.plotly_chart(plot_walsh_spectrum(land), key=f"hn_walsh_{run.id}")
    optimal = result["landscape"].get("optimal_bitstrings", [])
    if optimal:
        st.caption("ε-optimal bitstrings (first listed): " + ", ".join(f"`{b}`" for b in optimal[:12]))
    st.markdown("#### Networks")
    _network_section(run, result)


def _network_section(run: RunRecord, result: HypernetResult) -> None:
    from qmlapp.kinds.hypernet.problems import decision_boundary, describe_network, weight_image

    layout, data = _problem(_dumps(run.spec))
    choices = {"best network found": result["best_bitstring"]}
    if result.get("optimal_network"):
        choices["a global optimum"] = result["optimal_network"]["bitstring"]
    pick = st.radio("show", [*choices, "decode a bitstring …"], horizontal=True, key=f"hn_pick_{run.id}")
    if pick is not None and pick in choices:
        bits = choices[pick]
    else:
        bits = st.text_input(f"bitstring ({layout.n_bits} characters of 0/1, bit 0 first)", value=result[
            "best_bitstring"], key=f"hn_bits_{run.id}")
    try:
        net = describe_network(layout, data, bits)
    except ValueError as exc:
        st.error(f"Invalid **bitstring** — {exc}")
        return
    left, right = st.columns([2, 3])
    with left:
        st.markdown(f"`{net['bitstring']}` · loss **{net['loss']:.5g}** · accuracy **{net['accuracy']:.3f}** "
                    "(training set, computed)")
        arch = (f"activation **{net['activation']}** · active hidden units **{net['active_hidden']}**"
                if layout.hidden else "logistic regression (no hidden layer)")
        st.markdown(arch + (f" · weight encoding e = **{net['encoding']}**" if net.get("encoding") is not None
                            else ""))
        if bits == result["best_bitstring"] and result.get("best_test_accuracy") is not None:
            st.markdown(f"held-out test accuracy **{result['best_test_accuracy']:.3f}** (MNIST test split, "
                        "computed)")
        rows = [{"field": f["field"], "bits": f["bits"],
                 "value": str(net.get(f["field"], ""))} for f in layout.table()]
        st.dataframe(pd.DataFrame(rows), hide_index=True)
    with right:
        if layout.n_inputs == 2:
            info = boundary_info(decision_boundary(layout, bits, data), net)
            st.plotly_chart(plot_boundary(info), key=f"hn_boundary_{run.id}_{pick}")
        elif layout.n_inputs == 16:
            st.plotly_chart(plot_weight_image(weight_image(layout, bits).tolist(),
                                              f"Input weights of {net['bitstring']} on the 4×4 image"),
                            key=f"hn_weights_{run.id}_{pick}")


def _dumps(spec: dict[str, Any]) -> str:
    import json

    return json.dumps(spec, sort_keys=True)
