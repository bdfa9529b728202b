"""Page bodies. ``app.py`` and ``pages/*.py`` only call these."""

from __future__ import annotations

from datetime import datetime, timezone

import streamlit as st

from db import STATUSES, StorageError, redact_url
from qmlapp import services
from qmlapp.registry import KINDS
from qmlapp.ui.common import (
    LIVE_REFRESH_S,
    confirm_delete,
    get_settings,
    get_storage,
    live_fragment,
    page_link,
    provenance_caption,
    show_runs_table,
)
from qmlapp.ui.run_view import render_run

UTC = timezone.utc  # datetime.UTC needs Python 3.11


def _workers_status() -> None:
    workers = services.alive_workers(get_storage())
    if workers:
        busy = [w for w in workers if w.current_run_id is not None]
        st.success(f"{len(workers)} worker(s) alive, {len(busy)} busy"
                   + (": " + ", ".join(f"run {w.current_run_id}" for w in busy) if busy else ""))
    else:
        st.warning("No worker is running: queued runs wait until one starts. `make run` starts one with the "
                   "app; or run `python -m qmlapp worker` in another terminal.")


def home_page() -> None:
    st.title("⚛️ QML Explorer")
    st.markdown(
        "Configure, run and compare **quantum machine learning experiments** in the browser. Fill a form, "
        "press *Run*, and a background worker trains the model on the **qsim** simulator through "
        "**Cirq** and **TensorFlow Quantum**. Progress streams live; every run is stored with its spec, "
        "seed and software versions so it can be compared, exported and reproduced."
    )
    st.subheader("Experiment families")
    for kind in KINDS.values():
        st.markdown(f"- {kind.icon} **{kind.title}** (`{kind.name}`): {kind.description}")
    for kind in KINDS.values():
        page_link(kind.name, label=kind.title, icon=kind.icon)
    page_link("sweeps", label="Run a hyperparameter study (sweep) and see what matters", icon="🧭")
    page_link("runs", label="Browse runs", icon="📋")
    page_link("compare", label="Compare runs side by side", icon="📊")
    provenance_caption()

    def live() -> None:
        st.subheader("Workers")
        _workers_status()
        st.subheader("Recent runs")
        storage = get_storage()
        counts = storage.count_runs()
        st.caption(" · ".join(f"{s}: {counts.get(s, 0)}" for s in STATUSES))
        show_runs_table(storage.list_runs(limit=8), key="home_recent")

    live_fragment(live, run_every=LIVE_REFRESH_S * 2)()
    st.caption(f"Database: `{redact_url(get_settings().database_url)}`")


def _runs_table_fragment(kinds: list[str], statuses: list[str]) -> None:
    storage = get_storage()
    runs = storage.list_runs(kinds=kinds or None, statuses=statuses or None, limit=200)
    show_runs_table(runs, key="runs_table")
    active = sum(r.status in ("queued", "running") for r in runs)
    st.caption(f"{len(runs)} run(s), {active} active · refreshed {datetime.now(UTC):%H:%M:%S} UTC")


def runs_page() -> None:
    st.title("📋 Runs")
    storage = get_storage()
    c1, c2 = st.columns(2)
    kinds = c1.multiselect("kind", list(KINDS), key="runs_kinds")
    statuses = c2.multiselect("status", list(STATUSES), key="runs_statuses")
    live_fragment(_runs_table_fragment, run_every=LIVE_REFRESH_S)(kinds, statuses)

    runs = storage.list_runs(kinds=kinds or None, statuses=statuses or None, limit=200)
    if not runs:
        return
    ids = [r.id for r in runs]
    names = {r.id: f"{r.id} · {r.name}" for r in runs}  # no status: it would go stale while the view below refreshes
    default = st.session_state.get("runs_open")
    index = ids.index(default) if default in ids else 0
    page_link("compare", label="Compare runs side by side", icon="📊")
    a, b, c = st.columns([4, 1, 1], vertical_alignment="bottom")
    run_id = a.selectbox("run", ids, index=index, format_func=names.__getitem__, key="runs_select")
    st.session_state["runs_open"] = run_id
    if b.button("Cancel run", key="runs_cancel"):
        try:
            rec = services.cancel_run(storage, run_id)
            st.toast(f"Run {run_id}: {'cancel requested' if rec.status == 'running' else rec.status}")
        except StorageError as exc:
            st.error(str(exc))
    def delete() -> None:
        try:
            services.delete_run(storage, run_id)
            st.session_state.pop("runs_open", None)
            st.toast(f"Run {run_id} deleted")
            st.rerun()
        except StorageError as exc:
            st.error(str(exc))

    confirm_delete(c, "Delete run", "runs_delete", run_id,
                   f"run {names[run_id]} with its metrics and artifacts", delete)
    render_run(run_id)
