"""Compare page: runs from any sweep or kind side by side — curves, differing spec fields, export."""

from __future__ import annotations

import json
from typing import Any

import pandas as pd
import streamlit as st

from db import SUCCEEDED
from qmlapp import services
from qmlapp.plots import compare_curves_info, plot_curves
from qmlapp.registry import KINDS
from qmlapp.ui.common import get_storage

KEY = "compare"


def selection_frame(details: list[services.RunDetail]) -> pd.DataFrame:
    """One column per run: results first, then spec fields that differ, then the shared ones."""
    rows: dict[str, dict[str, Any]] = {}
    for d in details:
        label = f"run {d.run.id}"
        spec = {f"spec.{k}": v for k, v in d.run.spec.items() if k != "schema_version"}
        rows[label] = {"name": d.run.name, "kind": d.run.kind, "sweep": d.run.sweep_id,
                       **{f"result.{k}": v for k, v in services.summary(d.run).items()}, **spec}
    frame = pd.DataFrame(rows)
    differs = frame.apply(lambda r: r.astype(str).nunique() > 1, axis=1)
    is_spec = frame.index.str.startswith("spec.")
    return pd.concat([frame[~is_spec], frame[is_spec & differs], frame[is_spec & ~differs]]).astype(str)


def compare_page() -> None:
    st.title("📊 Compare runs")
    storage = get_storage()
    c1, c2 = st.columns(2)
    kinds = c1.multiselect("kind", list(KINDS), key=f"{KEY}_kinds")
    sweep_ids = [s.id for s in storage.list_sweeps()]
    sweeps_chosen = c2.multiselect("from sweeps (empty = any run)", sweep_ids, key=f"{KEY}_sweeps")
    runs = storage.list_runs(kinds=kinds or None, statuses=[SUCCEEDED], limit=1000)
    if sweeps_chosen:
        runs = [r for r in runs if r.sweep_id in sweeps_chosen]
    if len(runs) < 2:
        st.info("Compare needs at least two succeeded runs (run some from the QNN or Sweeps page).")
        return
    labels = {r.id: f"{r.id} · {r.name}" for r in runs}
    chosen = st.multiselect("runs", list(labels), default=[r.id for r in runs[:3]], format_func=labels.__getitem__,
                            key=f"{KEY}_runs")
    if not chosen:
        return
    details = [services.run_detail(storage, rid) for rid in chosen]
    metrics = sorted({name for d in details for name in d.series()})
    if metrics:
        default = "val_accuracy" if "val_accuracy" in metrics else metrics[0]
        metric = st.selectbox("curve", metrics, index=metrics.index(default), key=f"{KEY}_metric")
        info = compare_curves_info([(labels[d.run.id], d.series()) for d in details], metric)
        st.plotly_chart(plot_curves(info), key=f"{KEY}_chart")
    frame = selection_frame(details)
    n_diff = sum(1 for i in frame.index if i.startswith("spec.") and frame.loc[i].nunique() > 1)
    only_diff = st.toggle("only spec fields that differ", value=True, key=f"{KEY}_only_diff")
    shown = frame.loc[[i for i in frame.index if not i.startswith("spec.") or frame.loc[i].nunique() > 1]] \
        if only_diff else frame
    st.markdown(f"**Results (simulated) and specs** — {n_diff} spec field(s) differ")
    st.dataframe(shown, key=f"{KEY}_table")
    export = [json.loads(services.export_detail(d, "json")) for d in details]
    e1, e2 = st.columns(2)
    e1.download_button("⬇ selection (JSON: records, specs, metrics)", json.dumps(export, indent=2),
                       file_name="comparison.json", mime="application/json", key=f"{KEY}_exj")
    e2.download_button("⬇ selection (CSV: one column per run)", services.frame_to_csv(frame),
                       file_name="comparison.csv",
                       mime="text/csv", key=f"{KEY}_exc")
    if len(details) >= 3:
        with st.expander("Analyse this selection (importance of the spec fields that differ)"):
            from qmlapp.ui.analysis_view import render_selection_analysis

            render_selection_analysis(storage, [d.run for d in details], key=f"{KEY}_an")
