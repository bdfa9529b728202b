"""Sweeps page: define a sweep (from a preset or by hand), watch its trials, cancel/resume, analyse."""

from __future__ import annotations

import json
from typing import Any

import pandas as pd
import streamlit as st

from db import StorageError
from qmlapp import services, sweeps
from qmlapp.presets import PRESETS
from qmlapp.registry import KINDS, get_kind, objective_info
from qmlapp.specs import SpecError
from qmlapp.ui.common import LIVE_REFRESH_S, confirm_delete, get_storage, live_fragment, md_text
from qmlapp.ui.forms import spec_widgets

KEY = "sweep"
NOT_SEARCHABLE = {"seed"}


def _numbers(text: str, is_int: bool) -> list[Any]:
    """Comma-separated numbers as typed; a part that is not a number is kept as text, so that validation
    names the field and the value."""
    out: list[Any] = []
    for part in (p.strip() for p in text.replace(";", ",").split(",")):
        if not part:
            continue
        try:
            value = float(part)
        except ValueError:
            out.append(part)
            continue
        out.append(int(value) if is_int and value.is_integer() else value)
    return out


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
        cols = st.columns([2, 1, 1, 1, 1])
        cols[0].markdown(f"**{name}**  \n<small>{p.describe()}</small>", unsafe_allow_html=True)
        if p.choices is not None or isinstance(f.default, bool):
            options = list(p.choices) if p.choices is not None else [True, False]
            default = [v for v in (preset or options) if v in options] if isinstance(preset, list) else options
            space[name] = cols[1].multiselect("values", options, default=default, key=f"{key}_sp_{name}",
                                              label_visibility="collapsed")
            continue
        if not isinstance(f.default, (int, float)):  # free text or a list field: values as the form writes them
            shown = "; ".join(", ".join(map(str, v)) if isinstance(v, (list, tuple)) else str(v)
                              for v in (preset if isinstance(preset, list) else [f.default]))
            text = cols[1].text_input("values (separated by ;)", value=shown, key=f"{key}_tx_{name}",
                                      help="Each value as the base form takes it, e.g. 1, 2, 4 for a list field.")
            space[name] = [v.strip() for v in text.split(";") if v.strip()]
            continue
        is_int = isinstance(f.default, int)
        # A number is swept over listed values (a preset's 1, 2, 4) or a range (sampled, or stepped on a grid).
        mode = cols[1].selectbox("sweep over", ["range", "values"], index=1 if isinstance(preset, list) else 0,
                                 key=f"{key}_md_{name}", help="range: low–high; values: a comma-separated list.")
        if mode == "values":
            listed = preset if isinstance(preset, list) else [f.default]
            text = cols[2].text_input("values (comma-separated)", value=", ".join(map(str, listed)),
                                      key=f"{key}_vl_{name}")
            space[name] = _numbers(text, is_int)
            continue
        rng = preset if isinstance(preset, dict) else {}
        low_default = rng.get("low", p.low if p.low is not None and p.low_inclusive else f.default)
        high_default = rng.get("high", f.default * 4 if f.default else (p.high or 1))
        if p.high is not None and "high" not in rng:  # keep the suggestion inside the field's range
            high_default = type(f.default)(min(high_default, p.high))
        if "low" not in rng and low_default >= high_default:
            low_default = type(f.default)(high_default / 4 if p.log or not is_int else high_default - 1)
        low = cols[2].number_input("low", value=low_default, key=f"{key}_lo_{name}", step=1 if is_int else None,
                                   format=None if is_int else "%.6g")
        high = cols[3].number_input("high", value=high_default, key=f"{key}_hi_{name}",
                                    step=1 if is_int else None, format=None if is_int else "%.6g")
        entry: dict[str, Any] = {"low": low, "high": high}
        if grid and not is_int:
            entry["step"] = cols[4].number_input("step (grid)", value=float(rng.get("step", (high - low) / 4 or 1)),
                                                 key=f"{key}_st_{name}", format="%.6g")
        else:
            entry["log"] = cols[4].checkbox("log scale", value=bool(rng.get("log", p.log)), key=f"{key}_lg_{name}")
        space[name] = entry
    return space


def objective_text(kind: str, name: str) -> str:
    """An objective as the selector and tables show it: label, unit, provenance and direction."""
    o = objective_info(name, kind)
    return f"{o.title} · {o.provenance or 'unlabelled'} · {o.direction} ({name})"


def new_sweep_tab() -> None:
    storage = get_storage()
    names = ["(start from scratch)", *PRESETS]
    preset_name = st.selectbox("preset", names, key=f"{KEY}_preset",
                               format_func=lambda n: PRESETS[n].title if n in PRESETS else n) or names[0]
    preset = PRESETS.get(preset_name)
    if preset:
        st.info(preset.description)
    preset_kind = preset.definition.get("kind", sweeps.DEFAULT_KIND) if preset else sweeps.DEFAULT_KIND
    kinds = list(KINDS)
    kind = st.selectbox("experiment kind", kinds, index=kinds.index(preset_kind) if preset_kind in kinds else 0,
                        key=f"{KEY}_{preset_name}_kind", format_func=lambda k: f"{KINDS[k].icon} {KINDS[k].title}",
                        help="What each trial runs; the base configuration, objectives and searchable fields are "
                             "this kind's.") or kinds[0]
    # A preset's values apply to its own kind only; another kind starts from its defaults.
    definition: dict[str, Any] = dict(preset.definition) if preset and kind == preset_kind else {}
    # Widget keys depend on the preset and the kind, so that switching either resets the form.
    form = f"{KEY}_{preset_name}_{kind}"
    with st.expander("Base configuration (fields not swept keep these values)", expanded=preset is None):
        base = spec_widgets(kind, key=f"{form}_base", defaults=definition.get("base", {}))
    c = st.columns(5)
    sampler = c[0].selectbox("sampler", sweeps.SAMPLERS, index=sweeps.SAMPLERS.index(definition.get("sampler", "tpe")),
                             key=f"{form}_sampler", help="grid: every combination; random; TPE (Optuna).")
    n_trials = c[1].number_input("trials", value=int(definition.get("n_trials", 20)), step=1,
                                 key=f"{form}_n", help="Budget of configurations (a grid caps it).")
    objectives = list(get_kind(kind).objective_names)
    chosen = definition.get("objective", objectives[0])
    objective = c[2].selectbox("objective", objectives, index=objectives.index(chosen) if chosen in objectives else 0,
                               key=f"{form}_obj", format_func=lambda o: objective_text(kind, o),
                               help="The result the sampler optimises, with its unit and where it comes from.")
    repeats = c[3].number_input("repeats (seeds)", value=int(definition.get("repeats", 1)), step=1,
                                key=f"{form}_rep", help="Runs per configuration with seeds base.seed + r.")
    seed = c[4].number_input("sampler seed", value=int(definition.get("seed", 0)), step=1, key=f"{form}_seed")
    st.markdown(f"**Search space** (fields of {get_kind(kind).title})")
    with st.container(key=f"{form}_space"):
        space = _space_editor(kind, dict(definition.get("space", {})), grid=sampler == "grid", key=form)
    name = st.text_input("sweep name (optional)", key=f"{form}_name")
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
        best = (doc["best"] or {}).get("value")
        unit = f" {doc['objective_unit']}" if doc["objective_unit"] else ""
        prov = f" ({doc['objective_provenance']})" if doc["objective_provenance"] else ""
        # Objectives differ between kinds, so the best value is text with its own label, unit and provenance.
        rows.append({"id": s.id, "kind": s.kind, "name": s.name, "status": s.status,
                     "progress": done / max(doc["n_trials"], 1), "trials": f"{done}/{doc['n_trials']}",
                     "best objective": "–" if best is None else f"{doc['objective_label']} {best:.4g}{unit}{prov}",
                     "created (UTC)": s.created_at.strftime("%Y-%m-%d %H:%M")})
    if rows:
        st.dataframe(pd.DataFrame(rows), hide_index=True, key=f"{KEY}_table", column_config={
            "progress": st.column_config.ProgressColumn("progress", min_value=0.0, max_value=1.0, format="percent")})
    else:
        st.info("No sweeps yet: start one in the *New sweep* tab.")
    return records


def objective_column(spec: sweeps.SweepSpec) -> str:
    """Header of the objective column: label, unit and provenance as the kind declares them."""
    o = spec.objective_info
    return f"{o.title}, {o.provenance + ', ' if o.provenance else ''}mean over repeats"


def _trials_frame(rows: list[sweeps.TrialRow], spec: sweeps.SweepSpec) -> pd.DataFrame:
    return pd.DataFrame([{"trial": r.number, "state": r.state, objective_column(spec): r.value,
                          "repeats": ", ".join(f"{v:.4g}" for v in r.values), **r.params,
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
        st.caption(f"{get_kind(spec.kind).title} · {spec.sampler} sampler · objective "
                   f"{objective_text(spec.kind, spec.objective)} · "
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
            frame = _trials_frame(rows, spec)
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
        labels = {s.id: f"{s.id} · {s.kind} · {s.status} · {s.name}" for s in records}
        chosen = st.selectbox("sweep", ids, index=ids.index(default) if default in ids else 0,
                              format_func=labels.__getitem__, key=f"{KEY}_select") or ids[0]
        st.session_state[f"{KEY}_open"] = chosen
        sweep_detail(chosen)
