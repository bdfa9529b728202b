"""Shared UI pieces: the storage factory, run tables, provenance notes."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any

import pandas as pd
import streamlit as st

from db import RunRecord, Storage
from qmlapp.config import Settings
from qmlapp.plots import learning_curves_info, plot_curves
from qmlapp.registry import KINDS
from qmlapp.ui.auth import guarded

_PAGES: dict[str, Any] = {}


def register_pages(pages: dict[str, Any]) -> None:
    """The menu's pages by name (set by the navigation on every script run), for :func:`page_link`."""
    _PAGES.clear()
    _PAGES.update(pages)


def page_link(name: str, *, label: str, icon: str | None = None) -> None:
    """A link to a page by name ("runs", "sweeps", "compare", "home" or a kind's name)."""
    page = _PAGES.get(name)
    if page is not None:
        st.page_link(page, label=label, icon=icon)


STATUS_ICON = {"queued": "⏳", "running": "▶️", "succeeded": "✅", "failed": "❌", "cancelled": "⏹️"}
LIVE_REFRESH_S = 2.0


@st.cache_resource(show_spinner=False)
def _storage_for(url: str) -> Storage:
    return Storage(url)


_MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~$:&])")


def md_text(text: object) -> str:
    """User text (a run or sweep name) for a Markdown body, heading, alert or label: every Markdown and
    HTML character escaped, so that ``![x](http://…)`` shows as written and the browser fetches nothing."""
    return _MARKDOWN_SPECIAL.sub(r"\\\1", str(text)).replace("\n", " ")


def confirm_delete(where: Any, label: str, key: str, target: int, what: str, delete: Callable[[], None]) -> None:
    """A Delete button that asks first: ``delete()`` runs only after a second, explicit click naming
    ``what`` (e.g. "run 12 · banknote study and its metrics and artifacts"), for the same ``target``."""
    pending = f"{key}_pending"
    if where.button(label, key=key):
        st.session_state[pending] = target
    if st.session_state.get(pending) != target:
        return
    st.warning(f"Delete {md_text(what)}? This cannot be undone.")
    yes, no, _ = st.columns([1, 1, 3])
    if yes.button("Delete permanently", type="primary", key=f"{key}_confirm"):
        st.session_state.pop(pending, None)
        delete()
    elif no.button("Keep it", key=f"{key}_keep"):
        st.session_state.pop(pending, None)
        st.rerun()


def live_fragment(fn: Callable[..., Any], run_every: float) -> Callable[..., Any]:
    """``st.fragment(fn, run_every=…)`` whose every rerun first checks that the session is still logged in."""
    return st.fragment(guarded(fn), run_every=run_every)


def get_settings() -> Settings:
    return Settings.from_env()


def get_storage() -> Storage:
    """One migrated Storage (engine + pool) per database URL for the whole server process."""
    return _storage_for(get_settings().database_url)


def _headline(run: RunRecord) -> str:
    kind = KINDS.get(run.kind)
    return kind.headline_text(run.result) if kind else ""


def runs_frame(runs: Sequence[RunRecord]) -> pd.DataFrame:
    rows = []
    for r in runs:
        rows.append({
            "id": r.id,
            "name": r.name,
            "kind": r.kind,
            "status": f"{STATUS_ICON.get(r.status, '')} {r.status}",
            "progress": r.progress,
            "message": r.error if r.status == "failed" and r.error else r.message,
            "result": _headline(r),
            "duration (s)": None if r.duration_s is None else round(r.duration_s, 1),
            "created (UTC)": r.created_at.strftime("%Y-%m-%d %H:%M:%S"),
        })
    return pd.DataFrame(rows)


RUN_COLUMNS = {
    "id": st.column_config.NumberColumn("id", width="small"),
    "progress": st.column_config.ProgressColumn("progress", min_value=0.0, max_value=1.0, format="percent"),
    "result": st.column_config.TextColumn("result", width="large"),
}


def show_runs_table(runs: Sequence[RunRecord], key: str) -> None:
    if not runs:
        st.info("No runs yet.")
        return
    st.dataframe(runs_frame(runs), column_config=RUN_COLUMNS, hide_index=True, key=key)


def provenance_caption() -> None:
    st.caption("Every number is labelled **simulated** (from a circuit run on a simulator), **computed** "
               "(classical numerics) or **estimated** (a cost formula at a scale that was not run).")


def computed_curves(run: RunRecord, series: dict[str, tuple[list[int], list[float]]], *, title: str, x_label: str,
                    key: str) -> None:
    """Training curves of a classical (computed, not simulated) run: Q-Newton, sparse GD."""
    info = learning_curves_info(series, title=title, x_label=x_label, provenance="computed")
    st.plotly_chart(plot_curves(info), key=f"{key}_curves_{run.id}")

