"""Quantum-network page and the qnetwork sections of the run view."""

from __future__ import annotations

from typing import Any, cast

import pandas as pd
import streamlit as st

from db import RunRecord
from qmlapp.kinds.qnetwork import accounting as acc
from qmlapp.kinds.qnetwork.plots import (
    communication_info,
    depth_info,
    expressivity_info,
    gradient_info,
    linear_vs_deep_info,
    plot_communication,
    plot_depth,
    plot_expressivity,
    plot_gradient,
    plot_linear_vs_deep,
    plot_privacy,
    plot_shot_convergence,
    privacy_info,
    shot_convergence_info,
)
from qmlapp.kinds.qnetwork.result import QnetworkResult
from qmlapp.kinds.qnetwork.spec import QnetworkSpec
from qmlapp.specs import SpecError
from qmlapp.ui.forms import kind_form


def page() -> None:
    st.title("🛰️ Distributed learning over a quantum network")
    st.markdown(
        "Alice holds an input x ∈ ℝᴺ, amplitude-encoded in ⌈log₂N⌉ qubits; the model is split as "
        "B_L A_L ⋯ B₁ A₁ with Alice's unitaries A_ℓ and Bob's B_ℓ, and the register crosses the Alice|Bob cut "
        "after each one (Gilboa, Michaeli, Soudry & McClean, NeurIPS 2024). The app runs this protocol on qsim, "
        "counts every qubit that crosses the cut (rounds × copies), and compares with classical protocols: "
        "Alice ships x (N·b bits), Bob ships his parameters (L·P·b bits), or — for a linear classifier — "
        "ℓ₂-sampling sketches. Numbers are labelled **simulated**, **computed** or **estimated**."
    )
    st.info("With P fixed, shipping Bob's L·P numbers costs the same at every N, so it beats the quantum "
            "protocol's O(L·log N/ε²) qubits for small models. The exponential separation of the paper is "
            "against protocols that must convey an N-dimensional input or a model whose description grows with "
            "N; the scaling plot shows both regimes (fixed P, and P = N).", icon="⚖️")
    kind_form("qnetwork", key="qn")


# --- run view sections (called by qmlapp.ui.run_view) --------------------------------------------


def results(run: RunRecord, detail: Any) -> None:
    result = cast(QnetworkResult, run.result or {})  # runs stored by older versions may lack keys added since
    if "communication" not in result:
        return
    try:
        spec = QnetworkSpec.from_dict(run.spec)
    except SpecError:
        return
    comm = result["communication"]
    K, n, L, P = spec.copies, spec.n_qubits, spec.layers, spec.params_per_unitary
    st.markdown("#### Communication per inference")
    a, b, c, d = st.columns(4)
    a.metric("qubits (quantum protocol)", f"{comm['qubits_per_inference']:,}",
             help=f"K = {K} copies × R = {result['rounds']} transfers × n = {n} qubits. Computed from the transfer "
                  "log of the simulated protocol.")
    b.metric("bits: Alice ships x", f"{comm['classical_bits_data']:,}", help=f"N · b = {spec.n_features} · "
             f"{spec.bits_per_number}. Computed.")
    c.metric("bits: Bob ships his model", f"{comm['classical_bits_model']:,}", help=f"L · P · b = {L} · {P} · "
             f"{spec.bits_per_number}. Computed.")
    d.metric("classical ÷ quantum", f"{comm['advantage_ratio']:.3g}",
             help="The cheaper classical protocol divided by the quantum one, at the same ε and δ (> 1 means the "
                  f"quantum protocol communicates less). vs shipping x alone: {comm['ratio_vs_data']:.3g}.")
    st.caption(f"ℒ(x) exact {result['mean_output_exact']:.4f} vs estimate from K = {K} copies "
               f"{result['mean_output_estimate']:.4f} (mean over {len(result['protocol_runs'])} inputs; "
               "simulated). Privacy: the transmitted states reveal at most "
               f"{comm['holevo_bound_bits']:,} bits (Holevo; {comm['holevo_bound_bits_entangled']:,} with "
               "pre-shared entanglement).")
    with st.expander("Transfer log of one copy (simulated)"):
        st.dataframe(pd.DataFrame(result["transfers"]), hide_index=True)
        st.dataframe(pd.DataFrame(result["protocol_runs"]), hide_index=True)

    st.markdown("#### Scaling with N")
    simulated_max = max((p["n_qubits"] for p in result.get("scaling", [])), default=n)
    growth = st.radio("Bob's model size as N grows", ["fixed P", "P = N (dense model)"], horizontal=True,
                      key=f"qn_growth_{run.id}")
    curves = acc.scaling_curves(L, P, spec.epsilon, spec.delta, K, spec.bits_per_number, spec.linear_margin,
                                spec.shadow_constant, n_max=40, simulated_max_n=simulated_max,
                                params_growth="fixed" if growth == "fixed P" else "dense")
    st.plotly_chart(plot_communication(communication_info(curves, result.get("scaling", []))),
                    key=f"qn_comm_{run.id}_{growth}")
    if result.get("scaling"):
        st.caption(f"Markers: the protocol run for real on qsim at N = 2^{SCALING_MIN} … 2^{simulated_max}; "
                   "lines: the same counts as formulas (computed where simulated, estimated beyond).")
    st.markdown("#### Linear classifier vs deep model")
    lin = result["linear"]
    st.markdown(f"Linear classifier sign(w·x), margin γ = {lin['margin']:g}: the ℓ₂-sampling sketch was run for "
                f"real with {lin['samples']:,} samples ({lin['sketch_bits_sent']:,} bits sent), estimate "
                f"{lin['sketch_estimate']:.3f} ± {lin['sketch_se']:.3f} of w·x = {lin['exact_overlap']:.3f} "
                f"(computed). Quantum: {lin['quantum_qubits']:,} qubits → ratio **{lin['ratio']:.2f}**: no "
                "exponential gap for linear models.")
    st.plotly_chart(plot_linear_vs_deep(linear_vs_deep_info(curves)), key=f"qn_lin_{run.id}_{growth}")
    st.markdown("#### Gradients, depth, shots, expressivity, privacy")
    demo = result["gradient_demo"]
    st.caption(f"One parameter-shift gradient through the protocol: {demo['circuits']:,} shifted circuits × "
               f"K = {demo['copies']} copies = {demo['qubits_communicated']:,} qubits; RMS error vs the exact "
               f"gradient {demo['rms_error']:.3g} (simulated).")
    st.plotly_chart(plot_gradient(gradient_info(spec.n_features, L, P, spec.epsilon, spec.delta,
                                                spec.shadow_constant, K=K, b=spec.bits_per_number,
                                                simulated_max_n=simulated_max)), key=f"qn_grad_{run.id}")
    st.plotly_chart(plot_depth(depth_info(acc.depth_curves(spec.n_features, max(L, 8), P, K, spec.bits_per_number,
                                                           epsilon=spec.epsilon, C=spec.shadow_constant,
                                                           simulated_max_n=n, simulated_max_layers=L))),
                    key=f"qn_depth_{run.id}")
    st.plotly_chart(plot_shot_convergence(shot_convergence_info(result["shot_convergence"],
                                                                result["protocol_runs"][0]["loss_exact"],
                                                                spec.delta)), key=f"qn_shots_{run.id}")
    st.plotly_chart(plot_expressivity(expressivity_info(result["expressivity"])), key=f"qn_expr_{run.id}")
    st.caption("Expressivity: without data re-uploading ℒ(x) = x̂ᵀ(U†OU)x̂ is a quadratic form at every depth "
               "(highest frequency 2 along a path); re-uploading on Alice's side adds frequencies with L at no "
               "extra communication.")
    st.plotly_chart(plot_privacy(privacy_info(spec.n_features, L, P, K, spec.bits_per_number)),
                    key=f"qn_priv_{run.id}")
    if result.get("training_communication"):
        tc = result["training_communication"]
        st.markdown("#### Training communication")
        st.markdown(f"{tc['gradient_evaluations']:,} per-example gradients: parameter shift "
                    f"{tc['parameter_shift_qubits']:,.0f} qubits (computed), shadow bound "
                    f"{tc['shadow_bound_qubits']:,.3g} qubits (estimated); shipping the training set once: "
                    f"{tc['ship_data_bits']:,} bits (computed). Test accuracy {result['test_accuracy']:.3f} "
                    f"exact, {result['test_accuracy_estimate']:.3f} from K copies (simulated).")


SCALING_MIN = 2
