"""Compare page: runs from any sweep or kind side by side — curves, headline numbers per kind, spec diffs
within a kind, export. The tables and what can be overlaid come from :mod:`qmlapp.compare`."""

from __future__ import annotations

import json

import streamlit as st

from db import SUCCEEDED, Storage
from qmlapp import compare, services
from qmlapp.plots.runs import compare_curves_info, plot_compare_curves
from qmlapp.registry import KINDS
from qmlapp.ui.common import get_storage, md_text, provenance_caption

KEY = "compare"


def _curves(details: list[services.RunDetail]) -> None:
    plan = compare.overlay_plan(details)
    chosen: list[str] = []
    if plan.metrics:
        chosen = st.multiselect("curves (one panel each)", list(plan.metrics), default=list(plan.default),
                                key=f"{KEY}_metrics")
        if chosen:
            info = compare_curves_info(compare.overlay_runs(details, chosen), chosen)
            st.plotly_chart(plot_compare_curves(info), key=f"{KEY}_chart")
            for caveat in compare.overlay_caveats(details, chosen):
                st.caption(md_text(caveat))
    notes = compare.overlay_notes(details, chosen)
    if notes:
        st.info("**Not overlaid**\n\n" + "\n".join(f"- {md_text(n)}" for n in notes))


def _tables(comparison: compare.Comparison) -> None:
    st.markdown("##### Headline numbers" + (" per kind" if comparison.mixed else ""))
    provenance_caption()
    for g in comparison.groups:
        if comparison.mixed:
            st.markdown(f"**{g.title}** — {len(g.runs)} run{'s' if len(g.runs) != 1 else ''}")
        st.dataframe(compare.headline_frame(g), hide_index=True, key=f"{KEY}_results_{g.kind}")
    diffable = [g for g in comparison.groups if len(g.runs) >= 2]
    st.markdown("##### Specs")
    if comparison.mixed:
        st.caption("Specs of different kinds are not compared: each kind has its own fields."
                   + (" Runs of the same kind are diffed below." if diffable else ""))
    for g in comparison.groups:
        if len(g.runs) == 1:
            st.caption(f"Run {g.runs[0].id} is the only {g.title} run selected: nothing to diff its spec with.")
    if not diffable:
        return
    only_diff = st.toggle("only spec fields that differ", value=True, key=f"{KEY}_only_diff")
    for g in diffable:
        st.markdown(f"**{g.title} specs** — {g.n_differ} spec field(s) differ")
        if g.n_differ or not only_diff:
            st.dataframe(compare.spec_frame(g, only_differing=only_diff), hide_index=True,
                         key=f"{KEY}_specs_{g.kind}")


def _analysis(storage: Storage, comparison: compare.Comparison) -> None:
    offer = compare.analysis_offer(comparison)
    if not offer.kinds:
        st.caption(offer.reason)
        return
    titles = {g.kind: g.title for g in comparison.groups}
    with st.expander("Analyse this selection (importance of the spec fields that differ)"):
        kind = offer.kinds[0]
        if len(offer.kinds) > 1:
            kind = st.selectbox("kind", list(offer.kinds), format_func=titles.__getitem__,
                                key=f"{KEY}_an_kind") or kind
        from qmlapp.ui.analysis_view import render_selection_analysis

        runs = [r for r in comparison.runs if r.kind == kind]
        render_selection_analysis(storage, runs, key=f"{KEY}_an")


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
    labels = {r.id: f"{r.id} · {compare.kind_title(r.kind)} · {r.name}" for r in runs}
    chosen = st.multiselect("runs", list(labels), default=[r.id for r in runs[:3]], format_func=labels.__getitem__,
                            key=f"{KEY}_runs")
    if not chosen:
        return
    details = [services.run_detail(storage, rid) for rid in chosen]
    comparison = compare.build_comparison([d.run for d in details])
    if comparison.mixed:
        st.info(f"{len(details)} runs of {len(comparison.groups)} kinds: their headline numbers are shown per "
                "kind, and only runs of the same kind have their specs compared.")
    _curves(details)
    _tables(comparison)
    export = [json.loads(services.export_detail(d, "json")) for d in details]
    e1, e2 = st.columns(2)
    e1.download_button("⬇ selection (JSON: records, specs, metrics)", json.dumps(export, indent=2),
                       file_name="comparison.json", mime="application/json", key=f"{KEY}_exj")
    e2.download_button("⬇ selection (CSV: the tables above, formatted and raw)", compare.comparison_csv(comparison),
                       file_name="comparison.csv", mime="text/csv", key=f"{KEY}_exc")
    _analysis(storage, comparison)
