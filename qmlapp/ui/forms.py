"""Spec forms generated from the spec class's field constraints (one st.form → one spec)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import streamlit as st

from db import RunRecord, StorageError
from qmlapp import services
from qmlapp.registry import get_kind
from qmlapp.specs import Param, SpecError
from qmlapp.ui.common import get_storage, md_text


def _widget(name: str, default: Any, p: Param, key: str) -> Any:
    label = p.label or name.replace("_", " ")
    constrained = p.choices is not None or p.low is not None or p.high is not None
    help_text = f"{p.help} Allowed: {p.describe()}.".strip() if constrained else p.help
    if p.choices is not None:
        options = list(p.choices)
        return st.selectbox(label, options, index=options.index(default), key=key, help=help_text)
    if isinstance(default, tuple):  # list fields: comma-separated text, parsed and checked by the spec
        return st.text_input(label, value=", ".join(map(str, default)), key=key, help=help_text)
    if isinstance(default, bool):
        return st.checkbox(label, value=default, key=key, help=help_text)
    if isinstance(default, int):
        # Bounds are enforced by validation (with a message naming the field), not by the widget.
        return st.number_input(label, value=default, step=1, key=key, help=help_text)
    if isinstance(default, float):
        fmt = "%.6g"
        return st.number_input(label, value=default, format=fmt, key=key, help=help_text)
    return st.text_input(label, value=str(default), key=key, help=help_text)


def spec_widgets(kind: str, groups: Sequence[tuple[str, Sequence[str]]] | None = None, *, key: str,
                 defaults: Mapping[str, Any] | None = None, rest: bool = True) -> dict[str, Any]:
    """Widgets for the spec fields, in titled column groups (the kind's ``form_groups`` by default); returns
    the raw values (unvalidated). Fields not named in ``groups`` get an "Other" group unless ``rest`` is false."""
    params = get_kind(kind).spec_class.params()
    if groups is None:
        groups = get_kind(kind).form_groups
    listed = [f for _, fields in groups for f in fields]
    missing = [f for f in params if f not in listed]
    if missing and rest:
        groups = [*groups, ("Other", missing)]
    values: dict[str, Any] = {}
    cols = st.columns(len(groups))
    for col, (title, fields) in zip(cols, groups, strict=True):
        with col:
            st.markdown(f"**{title}**")
            for name in fields:
                f, p = params[name]
                default = (defaults or {}).get(name, f.default)
                values[name] = _widget(name, default, p, key=f"{key}_{name}")
    return values


def submit_values(kind: str, values: Mapping[str, Any], run_name: str, *, key: str,
                  announce: bool = True) -> RunRecord | None:
    """Validate and queue; a bad value is shown naming its field and nothing is stored. The queued run
    becomes the page's ``{key}_last_run`` and the Runs page's open run."""
    try:
        run = services.submit_run(get_storage(), kind, dict(values), name=run_name)
    except SpecError as exc:
        st.error(f"Invalid **{exc.field}**{_label_note(kind, exc.field)} — {exc.message}. Nothing was queued.",
                 icon="🚫")
        return None
    except StorageError as exc:  # read-only, full or unreachable database
        st.error(f"Nothing was queued: {exc}", icon="🚫")
        return None
    st.session_state[f"{key}_last_run"] = run.id
    st.session_state["runs_open"] = run.id
    if announce:
        st.success(f"Queued run {run.id}: {md_text(run.name)}")
    return run


def _label_note(kind: str, field_name: str) -> str:
    """' (the “depth study” field)' when the form labels the field differently from its name."""
    if field_name == "name":
        return " (the run name field)"
    params = get_kind(kind).spec_class.params()
    label = params[field_name][1].label if field_name in params else None
    return f" (the “{label}” field)" if label else ""


def kind_form(kind: str, groups: Sequence[tuple[str, Sequence[str]]] | None = None, *, key: str,
              rest: bool = False) -> None:
    """A kind's whole form section: the fields in column groups, *Run*, and the queued run shown live below."""
    from qmlapp.ui.run_view import show_last_run  # run_view imports kind views, which import this module

    with st.form(f"{key}_form"):
        values = spec_widgets(kind, groups, key=key, rest=rest)
        run_name = st.text_input("run name (optional)", key=f"{key}_name")
        submitted = st.form_submit_button("Run", type="primary")
    if submitted:
        submit_values(kind, values, run_name, key=key)
    show_last_run(key)
