"""Sparse quantum GD page and the sparse_qgd sections of the run view."""

from __future__ import annotations

from typing import Any, cast

import pandas as pd
import streamlit as st

from db import RunRecord
from qmlapp.kinds.sparse_qgd.plots import (
    cost_info,
    kappa_t_info,
    plot_cost,
    plot_kappa_t,
    plot_scaling,
    plot_spectrum,
    scaling_info,
    spectrum_info,
)
from qmlapp.kinds.sparse_qgd.result import SparseQgdResult
from qmlapp.ui.common import computed_curves
from qmlapp.ui.forms import kind_form


def page() -> None:
    st.title("🌿 Quantum dissipative sparse gradient descent")
    st.markdown(
        "Gradient descent is a nonlinear dynamical system; when it is **dissipative** (the Hessian's eigenvalues "
        "satisfy 0 < ηλ < 2) and **sparse**, Carleman linearisation turns T steps into one linear system that a "
        "fault-tolerant quantum solver could handle in O(T²·polylog n) (Liu et al., Nat. Commun. 2024), with the "
        "weights uploaded after pruning and downloaded by tomography. This page trains a small network densely, "
        "prunes it, keeps training sparsely, and measures at every checkpoint the Hessian spectrum on the "
        "unpruned weights, the dissipativity, κ of the T-step history system and the estimated cost of a quantum "
        "window — then carries the measured sparsity and κ to paper scale (7M and 103M parameters, estimated)."
    )
    st.caption("The discrete-time history system 𝓛 = I − S⊗M is our construction (the paper leaves it as future "
               "work); the R-number is a diagnostic, not a guarantee (Jennings et al. 2025 corrected parts of the "
               "analysis).")
    kind_form("sparse_qgd", key="sq")


def curves(run: RunRecord, series: dict[str, Any]) -> None:
    computed_curves(run, series, title=f"Run {run.id} at each checkpoint", x_label="checkpoint", key="sq")


def results(run: RunRecord, detail: Any) -> None:
    result = cast(SparseQgdResult, run.result or {})  # runs stored by older versions may lack keys added since
    if "checkpoints" not in result:
        return
    cps = result["checkpoints"]
    a, b, c, d = st.columns(4)
    nonzero = round(result["n_params"] * (1 - result["sparsity"]))
    a.metric("parameters n / non-zeros s", f"{result['n_params']:,} / {nonzero:,}",
             help="Computed from the architecture; sparsity = fraction of all weights that are zero after pruning.")
    b.metric("negative eigenvalues after pruning", f"{result['negative_eigen_fraction_after_prune']:.1%}",
             help=f"Restricted Hessian right after pruning: {result['dissipativity_after_prune']} (computed).")
    c.metric("κ(history) after pruning", f"{result['kappa_history']:.3g}",
             help="κ of the T-step history system with M = I − ηH (computed).")
    d.metric("favourable windows", f"{result['favourable_windows']} / {len(cps)}",
             help="Checkpoints whose estimated quantum window beats T classical steps and that are not "
                  "non-dissipative (estimated).")
    st.plotly_chart(plot_spectrum(spectrum_info(cps)), key=f"sq_spec_{run.id}")
    methods = {cp["method"] for cp in cps}
    if "lanczos" in methods:
        st.caption("Checkpoints with more unpruned coordinates than the exact limit use Lanczos (80 Hessian-vector "
                   "products, one probe): λ_min and λ_max are accurate, but quantiles and the negative fraction come "
                   "from 80 Ritz values and are coarse. The other checkpoints are exact (eigh).")
    left, right = st.columns(2)
    left.plotly_chart(plot_kappa_t(kappa_t_info(result["kappa_vs_T"])), key=f"sq_kappa_{run.id}")
    right.plotly_chart(plot_cost(cost_info(cps)), key=f"sq_cost_{run.id}")
    rows = [{"checkpoint": cp["index"], "epoch": round(cp["epoch"], 2), "phase": cp["phase"], "method": cp["method"],
             "n active": cp["n_active"], "λ min": cp["lambda_min"], "λ max": cp["lambda_max"],
             "negative fraction": cp["negative_fraction"], "class": cp["dissipativity"],
             "R": cp["r_number"], "κ(history)": cp["kappa_history"], "speed-up (est.)": cp["cost"]["speedup"]}
            for cp in cps]
    with st.expander("Every checkpoint (computed; costs estimated)"):
        st.dataframe(pd.DataFrame(rows), hide_index=True)
    if result.get("schedule"):
        st.markdown("#### Download / re-upload schedule after pruning (estimated)")
        st.dataframe(pd.DataFrame(result["schedule"]), hide_index=True)
        st.caption(f"Each window is one checkpoint's conditions held for T steps. Hybrid total "
                   f"{result['schedule_time_s']:.3g} s vs all classical {result['schedule_classical_time_s']:.3g} s "
                   "(estimated, at this model's size).")
    st.markdown("#### Paper scale (estimated)")
    paper = [{"parameters": f"{t['target_params']:.3g}", "qubits": t["qubits"]["total"],
              "queries": f"{t['queries']:.3g}", "download shots": f"{t['shots']['total']:.3g}",
              "quantum time per window (s)": f"{t['quantum_time_s']:.3g}",
              "classical time (s)": f"{t['classical_time_s']:.3g}", "speed-up": f"{t['speedup']:.2g}"}
             for t in result["paper_scale"]]
    st.dataframe(pd.DataFrame(paper), hide_index=True)
    st.caption("Sparsity, κ(history) and s_row measured right after pruning are carried over to the target size; "
               "the download (tomography of s weights to precision δ_d, plus the norm) dominates the quantum cost.")
    target = float(run.spec.get("target_params", 7e6))
    st.plotly_chart(plot_scaling(scaling_info(result["scaling"], target)), key=f"sq_scale_{run.id}")
    if result.get("small_solve"):
        s = result["small_solve"]
        st.markdown("#### Small real solve (simulated)")
        st.markdown(f"A {s['dim_L']}×{s['dim_L']} Carleman history system (Hermitian dilation padded to "
                    f"{s['dim_hhl']}, κ = {s['kappa_L']:.3g}) solved by HHL on qsim with {s['qubits']['total']} "
                    f"qubits: fidelity **{s['fidelity']:.4f}** to the classical solution, success probability "
                    f"{s['success_probability']:.3f} (simulated); exact eigenbasis emulation: fidelity "
                    f"{s['emulated']['fidelity']:.4f} (emulated).")
