"""Study analysis on any set of trials: importance, recommendation, marginals, parallel coordinates,
slice, contour, learning curves and the best configurations (computed once, cached).

Every title, unit and provenance comes from the experiment kind's objectives, and the learning curves
from the kind's per-step metrics, so sweeps and selections of any kind are analysed alike."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import streamlit as st

from db import Storage
from qmlapp import analysis, plots, sweeps
from qmlapp.plots import study as study_plots
from qmlapp.registry import KINDS, get_kind, objective_info

METHOD_LABELS = {"fanova": "fANOVA (random-forest surrogate)", "ped_anova": "PED-ANOVA (top-quantile densities)"}
CURVE_X_LABEL = "logged training step"  # epochs, iterations or checkpoints, as each kind logs them
Series = tuple[list[int], list[float]]


@st.cache_data(ttl=900, max_entries=64, show_spinner="Computing hyperparameter importance …")
def _report(trials_json: str, space_json: str, objective: str, kind: str | None, method: str, seed: int,
            curve_metric: str | None, curve_provenance: str) -> study_plots.StudyReport:
    raw = json.loads(trials_json)
    trials = [analysis.Trial(t["run_id"], t["params"], t["value"], t["status"],
                             {k: (v[0], v[1]) for k, v in t["curves"].items()} if t["curves"] else None, t["label"])
              for t in raw]
    space = analysis.SearchSpace.from_json(json.loads(space_json))
    return study_plots.study_report(trials, space, objective=objective, kind=kind, method=method,  # type: ignore[arg-type]
                                    seed=seed, curve_metric=curve_metric, curve_provenance=curve_provenance,
                                    curve_x_label=CURVE_X_LABEL)


def _trials_json(trials: Sequence[analysis.Trial]) -> str:
    return json.dumps([{"run_id": t.run_id, "params": t.params, "value": t.value, "status": t.status,
                        "curves": {k: [list(v[0]), list(v[1])] for k, v in (t.curves or {}).items()} or None,
                        "label": t.label} for t in trials], default=str, sort_keys=True)


def curve_provenance(kind: str | None) -> str:
    """Provenance of a kind's per-step metrics, as the kind declares it ("" for an unknown kind)."""
    return KINDS[kind].curve_provenance if kind in KINDS else ""


def kind_curves(storage: Storage, kind: str, specs: Mapping[int, Mapping[str, Any]]
                ) -> tuple[str | None, dict[int, dict[str, Series]]]:
    """The first of the kind's per-step metrics that any of the runs logged, with each run's series.

    A metric may depend on the spec (a hypernetwork logs "D{depth}_r0_loss" at its own depth), so the
    name is filled per run; the series are keyed by one common name: the filled name when every run shares
    it, else the template. Returns (None, {}) when no run logged any of them.
    """
    if kind not in KINDS:
        return None, {}
    for template in KINDS[kind].curve_metrics:
        names: dict[int, str] = {}
        for run_id, spec in specs.items():
            try:
                names[run_id] = template.format(**spec)
            except (KeyError, IndexError, ValueError):
                continue
        by_name: dict[str, list[int]] = {}
        for run_id, name in names.items():
            by_name.setdefault(name, []).append(run_id)
        found: dict[int, Series] = {}
        for name, ids in by_name.items():
            found |= storage.get_metric_series(ids, name)
        if found:
            key = next(iter(by_name)) if len(by_name) == 1 else template
            return key, {run_id: {key: series} for run_id, series in found.items()}
    return None, {}


def render_analysis(trials: Sequence[analysis.Trial], space: analysis.SearchSpace, objective: str, *, key: str,
                    kind: str | None = None, seed: int = 0, curve_metric: str | None = None) -> None:
    """The full analysis block for trials in a space; explains instead of failing when it cannot run."""
    method = st.radio("importance method", list(METHOD_LABELS), format_func=METHOD_LABELS.__getitem__,
                      horizontal=True, key=f"{key}_method") or "fanova"
    try:
        report = _report(_trials_json(trials), json.dumps(space.to_json(), default=str), objective, kind, method,
                         seed, curve_metric, curve_provenance(kind))
    except analysis.AnalysisError as exc:
        st.info(f"Analysis not available yet: {exc}")
        return
    obj = objective_info(objective, kind)
    source = f"{obj.label}, {obj.provenance}" if obj.provenance else obj.label
    st.markdown(f"##### Recommendation (computed from the trials' {source})")
    st.info(report.recommendation)
    st.plotly_chart(plots.plot_importance(report.importance_plot), key=f"{key}_imp")
    notes = [f"{report.importance.n_trials} trials", f"uncertainty over {report.importance.n_repeats} surrogate fits"]
    if report.importance.explained is not None:
        notes.append(f"main effects explain {report.importance.explained:.0%} of the surrogate's variance "
                     "(the rest is interactions)")
    st.caption("Importance is **computed** (" + "; ".join(notes) + "). " + " ".join(report.importance.notes))
    st.plotly_chart(plots.plot_best_configs(report.best), key=f"{key}_best")
    st.markdown(f"##### Marginal effect of each hyperparameter (mean ± std of {obj.title})")
    cols = st.columns(2)
    for i, info in enumerate(report.marginal_plots):
        cols[i % 2].plotly_chart(plots.plot_marginal_effect(info), key=f"{key}_marg_{i}")
    st.plotly_chart(plots.plot_parallel_coordinates(report.parallel), key=f"{key}_par")
    st.plotly_chart(plots.plot_slice(report.slices), key=f"{key}_slice")
    if report.contour is not None:
        st.plotly_chart(plots.plot_contour(report.contour), key=f"{key}_contour")
    if report.curves is not None and report.curves.curves:
        st.plotly_chart(plots.plot_trial_curves(report.curves), key=f"{key}_curves")


def sweep_trials(storage: Storage, spec: sweeps.SweepSpec, rows: Sequence[sweeps.TrialRow]
                 ) -> tuple[list[analysis.Trial], str | None]:
    """Complete sweep trials (mean over repeats) with the first repeat's learning curve of the kind's first
    logged per-step metric; returns the trials and that metric's name (None when none was logged)."""
    complete = [r for r in rows if r.state == "complete"]
    specs = {r.run_ids[0]: spec.trial_spec(r.params, 0).to_dict() for r in complete}
    metric, curves = kind_curves(storage, spec.kind, specs)
    return [analysis.Trial(r.run_ids[0], r.params, r.value, "succeeded", curves.get(r.run_ids[0]),
                           f"trial {r.number}") for r in complete], metric


def render_sweep_analysis(storage: Storage, spec: sweeps.SweepSpec, rows: Sequence[sweeps.TrialRow], *,
                          key: str) -> None:
    complete = [r for r in rows if r.state == "complete"]
    st.markdown("#### Which hyperparameters matter?")
    if len(complete) < analysis.MIN_TRIALS:
        st.caption(f"The analysis appears once {analysis.MIN_TRIALS} trials are complete ({len(complete)} so far).")
        return
    trials, metric = sweep_trials(storage, spec, complete)
    render_analysis(trials, spec.space, spec.objective, key=key, kind=spec.kind, seed=spec.seed, curve_metric=metric)


def render_selection_analysis(storage: Storage, runs: Sequence[Any], *, key: str) -> None:
    """Importance and effects over hand-picked runs of one kind: the space is what differs between them,
    the objectives are the kind's."""
    kinds = sorted({r.kind for r in runs})
    if len(kinds) != 1 or kinds[0] not in KINDS:
        st.info("Pick runs of one known experiment kind to analyse them together (selected: "
                f"{', '.join(kinds)}).")
        return
    kind = kinds[0]
    objectives = list(get_kind(kind).objective_names)
    objective = st.selectbox("objective", objectives, key=f"{key}_{kind}_objective",
                             format_func=lambda o: objective_info(o, kind).title
                             + f" ({objective_info(o, kind).provenance or 'unlabelled'})") or objectives[0]
    metric, curves = kind_curves(storage, kind, {r.id: r.spec for r in runs})
    trials = analysis.trials_from_runs(runs, objective, curves)
    space = analysis.infer_space([t.params for t in trials])
    if not len(space):
        st.info("The selected runs share every spec field; pick runs that differ to analyse them.")
        return
    render_analysis(trials, space, objective, key=key, kind=kind, curve_metric=metric)
