"""One run's details: live status, learning curves, results, circuit, exports."""

from __future__ import annotations

import base64
import json
from typing import Any

import pandas as pd
import streamlit as st

from db import RunRecord, StorageError
from qmlapp import services
from qmlapp.formatting import format_value, kind_or_none, result_provenance, result_titles
from qmlapp.plots import learning_curves_info, plot_curves
from qmlapp.registry import get_kind
from qmlapp.specs import SpecError
from qmlapp.ui.common import LIVE_REFRESH_S, STATUS_ICON, get_storage, live_fragment, md_text, page_link


def _status_block(run: RunRecord) -> None:
    icon = STATUS_ICON.get(run.status, "")
    st.markdown(f"#### {icon} Run {run.id} · {md_text(run.name)}")
    st.caption(f"kind `{run.kind}` · seed {run.seed} · attempt {run.attempts} · "
               f"created {run.created_at:%Y-%m-%d %H:%M:%S} UTC"
               + (f" · {run.duration_s:.1f} s" if run.duration_s is not None else ""))
    if run.status in ("queued", "running"):
        st.progress(min(max(run.progress, 0.0), 1.0), text=f"{run.status}: {run.message}")
    elif run.status == "failed":
        st.error(f"Failed: {run.error}")
        if run.traceback:
            with st.expander("Traceback (for debugging)"):
                st.code(run.traceback, language="text")
    elif run.status == "cancelled":
        st.warning(run.message or "cancelled")


def _kind_view(kind: str) -> Any:
    """The kind's own view module (``page()``, optional ``curves(run, series)`` and ``results(run, detail)``)."""
    try:
        return get_kind(kind).load_view()
    except SpecError:  # a run of a kind this version does not know
        return None


def _results_block(run: RunRecord) -> None:
    result = run.result or {}
    labels = result.get("labels") or {}
    notes = result.get("label_notes") or {}
    kind = kind_or_none(run.kind)
    rows = []
    for key, title in result_titles(run.kind).items():
        if key in result and result[key] is not None:
            # Runs stored before labels were one word hold "computed (exhaustive enumeration)": word, then note.
            _, _, rest = str(labels.get(key, "")).partition(" ")
            note = notes.get(key) or rest.strip().removeprefix("(").removesuffix(")")
            # One type per column (Arrow): text, as on the Compare page (4 significant digits, units in the title).
            rows.append({"quantity": title, "value": format_value(result[key]),
                         "provenance": result_provenance(kind, result, key), "note": note})
    if rows:
        frame = pd.DataFrame(rows)
        if not any(row["note"] for row in rows):
            frame = frame.drop(columns="note")
        st.dataframe(frame, hide_index=True)


def _artifacts_block(run_id: int, names: list[str]) -> None:
    storage = get_storage()
    if "circuit.svg" in names:
        art = storage.get_artifact(run_id, "circuit.svg")
        if art and art.content:
            st.markdown("**Circuit** (symbols: x = input features, zz = ZZ feature products, w = trainable "
                        "weights; OpenQASM below has the trained weights filled in)")
            data = base64.b64encode(art.content).decode()
            # st.html drops inline <svg>; an <img> with a data URI keeps it, scrollable when wide.
            st.html(f'<div style="overflow-x:auto;background:white">'
                    f'<img src="data:image/svg+xml;base64,{data}" style="max-width:none"/></div>')
    cols = st.columns(4)
    for i, name in enumerate(names):
        art = storage.get_artifact(run_id, name)
        if art and art.content is not None:
            cols[i % 4].download_button(f"⬇ {name}", art.content, file_name=f"run{run_id}_{name}",
                                        mime=art.media_type, key=f"dl_{run_id}_{name}")


def render_run(run_id: int) -> None:
    """Full detail view; refreshes itself while the run is queued or running."""
    storage = get_storage()
    try:
        run = storage.get_run(run_id)
    except StorageError:
        st.warning(f"Run {run_id} no longer exists.")
        return
    live = not run.finished

    def body() -> None:
        try:
            detail = services.run_detail(storage, run_id)
        except StorageError:
            st.warning(f"Run {run_id} no longer exists.")
            return
        run = detail.run
        _status_block(run)
        series = detail.series()
        view = _kind_view(run.kind)
        if series and view is not None and hasattr(view, "curves"):
            view.curves(run, series)
        elif series:
            info = learning_curves_info(series, title=f"Run {run.id} learning curves")
            st.plotly_chart(plot_curves(info), key=f"curves_{run.id}")
        elif live:
            st.caption("Waiting for the first epoch …")
        if run.finished:
            if run.status == "succeeded":
                _results_block(run)
                if view is not None and hasattr(view, "results"):
                    view.results(run, detail)
            _artifacts_block(run.id, detail.artifacts)
            c1, c2 = st.columns(2)
            c1.download_button("⬇ export run (JSON)", services.export_detail(detail, "json"),
                               file_name=f"run{run.id}.json", mime="application/json", key=f"exj_{run.id}")
            c2.download_button("⬇ metrics (CSV)", services.export_detail(detail, "csv"),
                               file_name=f"run{run.id}_metrics.csv", mime="text/csv", key=f"exc_{run.id}")
            if live:  # it just finished: redraw the page once without the timer
                st.rerun()
        with st.expander("Spec and software versions (reproduce this run)"):
            st.code(json.dumps(run.spec, indent=2), language="json")
            st.caption("Save as spec.json and run `python -m qmlapp submit "
                       f"{run.kind} --spec spec.json --wait` to reproduce.")
            st.json(run.versions, expanded=False)

    if live:
        live_fragment(body, run_every=LIVE_REFRESH_S)()
    else:
        body()


def show_last_run(key: str) -> bool:
    """Below a form: the run it queued last (``{key}_last_run``), live. Returns whether there was one."""
    last = st.session_state.get(f"{key}_last_run")
    if last is None:
        return False
    st.divider()
    render_run(int(last))
    page_link("runs", label="All runs", icon="📋")
    return True
