"""Q-Newton page and the qnewton sections of the run view."""

from __future__ import annotations

from typing import Any, cast

import pandas as pd
import streamlit as st

from db import RunRecord
from qmlapp.kinds.qnewton.plots import (
    compare_info,
    gate_time_info,
    hhl_info,
    kappa_info,
    plot_compare,
    plot_gate_time,
    plot_hhl,
    plot_kappa,
    plot_timeline,
    timeline_info,
)
from qmlapp.kinds.qnewton.result import QnewtonResult
from qmlapp.kinds.qnewton.spec import QnewtonSpec
from qmlapp.specs import SpecError
from qmlapp.ui.common import computed_curves
from qmlapp.ui.forms import kind_form


def page() -> None:
    st.title("🧮 Q-Newton")
    st.markdown(
        "Newton training where every per-layer linear solve H̃Δ = g is sent either to a quantum linear-system "
        "solver (cost ∝ d·κ·log(Nκ/ε) queries) or to a classical one (∝ N³), after lowering κ by regularisation "
        "(H̃ = H + λI) and creating sparsity d by pruning (Li, Liu, Wang & Chen 2024). Classical work is "
        "**measured** on this machine; quantum solves are **estimated** from the query count, gates per query "
        "and the gate time you choose; the update is the same either way. The scheduler is our implementation "
        "of the paper's description (the authors' code has none)."
    )
    st.caption("Fixes of the authors' code: the κ bound is computed with the correct (N/‖A‖²_F)^N term in log space "
               "(their typo gives NaN); the pruning mask is symmetrised so H̃ stays Hermitian; we prune, then "
               "regularise.")
    kind_form("qnewton", key="qnw")


def curves(run: RunRecord, series: dict[str, Any]) -> None:
    computed_curves(run, series, title=f"Run {run.id}: the chosen optimizer's curves", x_label="training step",
                    key="qnw")


def results(run: RunRecord, detail: Any) -> None:
    result = cast(QnewtonResult, run.result or {})  # runs stored by older versions may lack keys added since
    if "records" not in result:
        return
    try:
        spec = QnewtonSpec.from_dict(run.spec)
    except SpecError:
        return
    a, b, c, d = st.columns(4)
    a.metric("test accuracy", f"{result['final_accuracy']:.3f}", help="Computed on the held-out split.")
    b.metric("solves: quantum / classical", f"{result['n_quantum_solves']} / {result['n_classical_solves']}",
             help="The scheduler's decisions for the main optimizer (computed).")
    c.metric("total time (estimated)", f"{result['total_time_estimated_s']:.3g} s",
             help="Measured classical work plus estimated quantum solve times.")
    if result.get("speedup_vs_sgd") is not None:
        d.metric("vs SGD", f"{result['speedup_vs_sgd']:.3g}×",
                 help=f"SGD took {result['sgd_time_s']:.3g} s (measured); > 1 means faster than SGD.")
    records = result["records"]
    if records:
        st.plotly_chart(plot_kappa(kappa_info(records, spec.kappa_threshold)), key=f"qnw_kappa_{run.id}")
        st.caption(f"κ of W1 went from {result['kappa_initial']:.4g} to {result['kappa_final']:.4g}. The bound is "
                   "shown because the paper's scheduler uses it; it is exact for 2×2 and very loose for large N.")
        st.plotly_chart(plot_timeline(timeline_info(records)), key=f"qnw_timeline_{run.id}")
    st.plotly_chart(plot_compare(compare_info(result["optimizers"])), key=f"qnw_compare_{run.id}")
    if result.get("gate_time_curve"):
        flat = {k: v["total_time_s"] for k, v in result["optimizers"].items() if k not in (spec.optimizer, "newton")}
        if result.get("all_classical_time_s") is not None:
            flat["newton"] = result["all_classical_time_s"]
        st.plotly_chart(plot_gate_time(gate_time_info(result["gate_time_curve"], flat, spec.gate_time_s)),
                        key=f"qnw_gate_{run.id}")
        sgd = result.get("sgd_time_s")
        rows = [{"gate time (s)": f"{s['gate_time_s']:g}", "quantum solves": s["n_quantum"],
                 "total time (s, estimated)": round(s["total_time_s"], 4),
                 "SGD (s, measured)": round(sgd, 4) if sgd else None}
                for s in result.get("scenarios", [])]
        st.dataframe(pd.DataFrame(rows), hide_index=True)
    with st.expander("Every solve (κ exact and bound, d, α, queries, times, choice)"):
        st.dataframe(pd.DataFrame(records), hide_index=True)
    if result.get("hhl"):
        st.plotly_chart(plot_hhl(hhl_info(result["hhl"], spec.hhl_size)), key=f"qnw_hhl_{run.id}")
        st.caption("HHL = phase estimation with the clock register, a controlled rotation on an ancilla, "
                   "uncomputation and post-selection, simulated on qsim for random symmetric positive-definite "
                   "blocks of the given κ. More clock qubits resolve the eigenvalues better; the success "
                   "probability falls as κ grows.")
