"""Sweeps page: define a sweep (from a preset or by hand), watch its trials, cancel/resume, analyse."""

from __future__ import annotations

import json
from typing import Any

import pandas as pd
import streamlit as st

from db import StorageError
from qmlapp import services, sweeps
from qmlapp.presets import PRESETS
from qmlapp.registry import get_kind
from qmlapp.specs import SpecError
from qmlapp.ui.common import LIVE_REFRESH_S, confirm_delete, get_storage, live_fragment, md_text
from qmlapp.ui.forms import spec_widgets

KEY = "sweep"
NOT_SEARCHABLE = {"seed"}


def _space_editor(kind: str, preset_space: dict[str, Any], grid: bool, key: str) -> dict[str, Any]:
    """Pick hyperparameters and their values/ranges; returns the sweep file's ``space`` object."""
    params = get_kind(kind).spec_class.params()
    searchable = [n for n in params if n not in NOT_SEARCHABLE]
    chosen = st.multiselect("hyperparameters to sweep", searchable, default=[n for n in preset_space if n in params],
                            key=f"{key}_dims", help="Each chosen field is varied; the others keep the base value.")
    space: dict[str, Any] = {}
    for name in chosen:
        f, p = params[name]
        preset = preset_space.get(name)
        cols = st.columns([2, 1, 1, 1])
        cols[0].markdown(f"**{name}**  \n<small>{p.describe()}</small>", unsafe_allow_html=True)
        if p.choices is not None or isinstance(f.default, (bool, str)):
            options = list(p.choices) if p.choices is not None else [True, False]
            default = [v for v in (preset or options) if v in options] if isinstance(preset, list) else options
            space[name] = cols[1].multiselect("values", options, default=default, key=f"{key}_sp_{name}",
                                              label_visibility="collapsed")
            continue
        is_int = isinstance(f.default, int)
        rng = preset if isinstance(preset, dict) else {}
        low_default = rng.get("low", p.low if p.low is not None and p.low_inclusive else f.default)
        high_default = rng.get("high", f.default * 4 if f.default else (p.high or 1))
        low = cols[1].number_input("low", value=low_default, key=f"{key}_lo_{name}", step=1 if is_int else None,
                                   format=None if is_int else "%.6g")
        high = cols[2].number_input("high", value=high_default, key=f"{key}_hi_{name}",
                                    step=1 if is_int else None, format=None if is_int else "%.6g")
        entry: dict[str, Any] = {"low": low, "high": high}
        if grid and not is_int:
            entry["step"] = cols[3].number_input("step (grid)", value=float(rng.get("step", (high - low) / 4 or 1)),
                                                 key=f"{key}_st_{name}", format="%.6g")
        else:
            entry["log"] = cols[3].checkbox("log scale", value=bool(rng.get("log", p.log)), key=f"{key}_lg_{name}")
        space[name] = entry
    return space


def new_sweep_tab() -> None:
    storage = get_storage()
    names = ["(start from scratch)", *PRESETS]
    preset_name = st.selectbox("preset", names, key=f"{KEY}_preset",
                               format_func=lambda n: PRESETS[n].title if n in PRESETS else n)
    preset = PRESETS.get(preset_name)
    definition: dict[str, Any] = dict(preset.definition) if preset else {"kind": "qnn", "base": {}, "space": {}}
    if preset:
        st.info(preset.description)
    kind = definition.get("kind", "qnn")
    # Widget keys depend on the preset so that switching presets resets the form.
    with st.expander("Base configuration (fields not swept keep these values)", expanded=preset is None):
        base = spec_widgets(kind, key=f"{KEY}_{preset_name}_base", defaults=definition.get("base", {}))
    c = st.columns(5)
    sampler = c[0].selectbox("sampler", sweeps.SAMPLERS, index=sweeps.SAMPLERS.index(definition.get("sampler", "tpe")),
                             key=f"{KEY}_{preset_name}_sampler", help="grid: every combination; random; TPE (Optuna).")
    n_trials = c[1].number_input("trials", value=int(definition.get("n_trials", 20)), step=1,
                                 key=f"{KEY}_{preset_name}_n", help="Budget of configurations (a grid caps it).")
    objectives = list(get_kind(kind).objective_names)
    objective = c[2].selectbox("objective", objectives, index=objectives.index(definition.get("objective",
                               "val_accuracy")), key=f"{KEY}_{preset_name}_obj")
    repeats = c[3].number_input("repeats (seeds)", value=int(definition.get("repeats", 1)), step=1,
                                key=f"{KEY}_{preset_name}_rep", help="Runs per configuration with seeds base.seed + r.")
    seed = c[4].number_input("sampler seed", value=int(definition.get("seed", 0)), step=1,
                             key=f"{KEY}_{preset_name}_seed")
    st.markdown("**Search space**")
    with st.container(key=f"{KEY}_{preset_name}_space"):
        space = _space_editor(kind, dict(definition.get("space", {})), grid=sampler == "grid",
                              key=f"{KEY}_{preset_name}")
    name = st.text_input("sweep name (optional)", key=f"{KEY}_{preset_name}_name")
    data = {"kind": kind, "name": name, "base": base, "space": space, "sampler": sampler, "n_trials": n_trials,
            "objective": objective, "repeats": repeats, "seed": seed}
    if sampler == "grid" and space:
        try:  # sized arithmetically, so this is cheap on every rerun
            size = sweeps.SweepSpec.from_dict(data).grid_size
            st.caption(f"Grid: {size:,} points (limit {sweeps.MAX_GRID_POINTS:,}).")
        except SpecError as exc:
            if exc.field.startswith("space"):
                st.caption(f"Grid: **{exc.field}** — {exc.message}")
    with st.expander("As a sweep file (for `python -m qmlapp sweep --spec FILE`)"):
        st.code(json.dumps({k: v for k, v in data.items() if k != "name" or v}, indent=2, default=str),
                language="json")
    if st.button("Start sweep", type="primary", key=f"{KEY}_start"):
        try:
            spec = sweeps.SweepSpec.from_dict(data)
            record = sweeps.create_sweep(storage, spec, workers=max(1, len(services.alive_workers(storage))))
        except SpecError as exc:
            st.error(f"Invalid **{exc.field}** — {exc.message}. Nothing was started.", icon="🚫")
            return
        except StorageError as exc:
            st.error(f"Nothing was started: {exc}", icon="🚫")
            return
        st.session_state[f"{KEY}_open"] = record.id
        st.success(f"Started sweep {record.id}: {md_text(record.name)} ({spec.effective_trials()} trials × "
                   f"{spec.repeats} repeats). Open it in the *Sweeps* tab.")


def _sweeps_table() -> list[sweeps.SweepRecord]:
    storage = get_storage()
    records = storage.list_sweeps()
    rows = []
    for s in records:
        doc = sweeps.sweep_json(storage, s.id)
        done = doc["n_succeeded"] + doc["n_failed"] + doc["n_invalid"]
        rows.append({"id": s.id, "name": s.name, "status": s.status,
                     "progress": done / max(doc["n_trials"], 1), "trials": f"{done}/{doc['n_trials']}",
                     f"best {doc['objective']}": (doc["best"] or {}).get("value"),
                     "created (UTC)": s.created_at.strftime("%Y-%m-%d %H:%M")})
    if rows:
        st.dataframe(pd.DataFrame(rows), hide_index=True, key=f"{KEY}_table", column_config={
            "progress": st.column_config.ProgressColumn("progress", min_value=0.0, max_value=1.0, format="percent")})
    else:
        st.info("No sweeps yet: start one in the *New sweep* tab.")
    return records


def _trials_frame(rows: list[sweeps.TrialRow], objective: str) -> pd.DataFrame:
    return pd.DataFrame([{"trial": r.number, "state": r.state, f"{objective} (simulated, mean)": r.value,
                          "repeats": ", ".join(f"{v:.3f}" for v in r.values), **r.params,
                          "runs": ", ".join(map(str, r.run_ids)), "note": r.note} for r in rows])


def _delete_button(sweep_id: int, where: Any) -> None:
    def delete() -> None:
        try:
            get_storage().delete_sweep(sweep_id)
            st.session_state.pop(f"{KEY}_open", None)
            st.rerun()
        except StorageError as exc:
            st.error(str(exc))

    confirm_delete(where, "Delete sweep", f"{KEY}_delete_{sweep_id}", sweep_id,
                   f"sweep {sweep_id} with all its trial runs", delete)


def sweep_detail(sweep_id: int) -> None:
    storage = get_storage()

    def body() -> None:
        try:
            sweep = storage.get_sweep(sweep_id)
        except StorageError:
            st.warning(f"Sweep {sweep_id} no longer exists.")
            return
        try:
            spec = sweeps.load_spec(sweep)
        except SpecError as exc:  # stored before the current limits; advancing it ends it failed
            st.markdown(f"#### Sweep {sweep.id} · {md_text(sweep.name)}")
            st.caption(f"status **{sweep.status}** · {md_text(sweep.message)}")
            st.error(f"This sweep's definition is not valid: **{exc.field}** — {exc.message}", icon="🚫")
            if sweep.status != sweeps.ACTIVE:
                _delete_button(sweep_id, st)
            return
        rows = sweeps.trial_rows(storage, sweep_id, spec)
        doc = sweeps.sweep_json(storage, sweep_id, rows)
        done = doc["n_succeeded"] + doc["n_failed"] + doc["n_invalid"]
        st.markdown(f"#### Sweep {sweep.id} · {md_text(sweep.name)}")
        st.caption(f"{spec.sampler} sampler · objective {spec.objective} ({spec.direction}) · "
                   f"{spec.repeats} repeat(s) per configuration · status **{sweep.status}** · {sweep.message}")
        st.progress(min(done / max(doc["n_trials"], 1), 1.0),
                    text=f"{done} of {doc['n_trials']} trials finished · "
                         f"{sum(r.state == 'running' for r in rows)} in flight")
        b1, b2, b3 = st.columns(3)
        if sweep.status == sweeps.ACTIVE and b1.button("Cancel sweep", key=f"{KEY}_cancel_{sweep_id}"):
            sweeps.cancel_sweep(storage, sweep_id)
            st.rerun()
        if sweep.status in ("cancelled", "failed") and b2.button("Resume sweep", key=f"{KEY}_resume_{sweep_id}"):
            sweeps.resume_sweep(storage, sweep_id, workers=max(1, len(services.alive_workers(storage))))
            st.rerun()
        if sweep.status != sweeps.ACTIVE:
            _delete_button(sweep_id, b3)
        if rows:
            frame = _trials_frame(rows, spec.objective)
            st.dataframe(frame, hide_index=True, key=f"{KEY}_trials_{sweep_id}")
            export = {"sweep": sweep.to_dict(), "trials": [r.__dict__ | {"curves": None} for r in rows]}
            e1, e2 = st.columns(2)
            e1.download_button("⬇ sweep (JSON)", json.dumps(export, indent=2, default=str),
                               file_name=f"sweep{sweep_id}.json", mime="application/json",
                               key=f"{KEY}_exj_{sweep_id}")
            e2.download_button("⬇ trials (CSV)", services.frame_to_csv(frame, index=False),
                               file_name=f"sweep{sweep_id}_trials.csv",
                               mime="text/csv", key=f"{KEY}_exc_{sweep_id}")
        from qmlapp.ui.analysis_view import render_sweep_analysis

        render_sweep_analysis(storage, spec, rows, key=f"{KEY}_an_{sweep_id}")
        if live and sweep.status != sweeps.ACTIVE:
            st.rerun()

    live = storage.get_sweep(sweep_id).status == sweeps.ACTIVE
    if live:
        live_fragment(body, run_every=LIVE_REFRESH_S)()
    else:
        body()


def sweeps_page() -> None:
    st.title("🧭 Sweeps")
    st.markdown(
        "A sweep varies chosen hyperparameters of a base configuration with an Optuna sampler (grid, random "
        "or TPE). Every trial is an ordinary run on the worker pool (start more workers to run trials in "
        "parallel); the page ranks hyperparameters by importance (fANOVA, PED-ANOVA) and recommends settings."
    )
    tab_new, tab_list = st.tabs(["New sweep", "Sweeps"])
    with tab_new:
        new_sweep_tab()
    with tab_list:
        live_fragment(_sweeps_table, run_every=LIVE_REFRESH_S * 2)()
        records = get_storage().list_sweeps()
        if not records:
            return
        ids = [s.id for s in records]
        default = st.session_state.get(f"{KEY}_open")
        labels = {s.id: f"{s.id} · {s.status} · {s.name}" for s in records}
        chosen = st.selectbox("sweep", ids, index=ids.index(default) if default in ids else 0,
                              format_func=labels.__getitem__, key=f"{KEY}_select")
        st.session_state[f"{KEY}_open"] = chosen
        sweep_detail(chosen)
