"""Study analysis on any set of trials: importance, recommendation, marginals, parallel coordinates,
slice, contour, learning curves and the best configurations (computed once, cached)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import streamlit as st

from db import Storage
from qmlapp import analysis, plots, sweeps
from qmlapp.plots import study as study_plots

METHOD_LABELS = {"fanova": "fANOVA (random-forest surrogate)", "ped_anova": "PED-ANOVA (top-quantile densities)"}


@st.cache_data(ttl=900, max_entries=64, show_spinner="Computing hyperparameter importance …")
def _report(trials_json: str, space_json: str, objective: str, method: str, seed: int,
            curve_metric: str | None) -> study_plots.StudyReport:
    raw = json.loads(trials_json)
    trials = [analysis.Trial(t["run_id"], t["params"], t["value"], t["status"],
                             {k: (v[0], v[1]) for k, v in t["curves"].items()} if t["curves"] else None, t["label"])
              for t in raw]
    space = analysis.SearchSpace.from_json(json.loads(space_json))
    return study_plots.study_report(trials, space, objective=objective, method=method,  # type: ignore[arg-type]
                                    seed=seed, curve_metric=curve_metric)


def _trials_json(trials: Sequence[analysis.Trial]) -> str:
    return json.dumps([{"run_id": t.run_id, "params": t.params, "value": t.value, "status": t.status,
                        "curves": {k: [list(v[0]), list(v[1])] for k, v in (t.curves or {}).items()} or None,
                        "label": t.label} for t in trials], default=str, sort_keys=True)


def render_analysis(trials: Sequence[analysis.Trial], space: analysis.SearchSpace, objective: str, *, key: str,
                    seed: int = 0, curve_metric: str | None = "val_accuracy") -> None:
    """The full analysis block for trials in a space; explains instead of failing when it cannot run."""
    method = st.radio("importance method", list(METHOD_LABELS), format_func=METHOD_LABELS.__getitem__,
                      horizontal=True, key=f"{key}_method")
    try:
        report = _report(_trials_json(trials), json.dumps(space.to_json(), default=str), objective, method, seed,
                         curve_metric)
    except analysis.AnalysisError as exc:
        st.info(f"Analysis not available yet: {exc}")
        return
    st.markdown("##### Recommendation (computed from the simulated results above)")
    st.info(report.recommendation)
    st.plotly_chart(plots.plot_importance(report.importance_plot), key=f"{key}_imp")
    notes = [f"{report.importance.n_trials} trials", f"uncertainty over {report.importance.n_repeats} surrogate fits"]
    if report.importance.explained is not None:
        notes.append(f"main effects explain {report.importance.explained:.0%} of the surrogate's variance "
                     "(the rest is interactions)")
    st.caption("Importance is **computed** (" + "; ".join(notes) + "). " + " ".join(report.importance.notes))
    st.plotly_chart(plots.plot_best_configs(report.best), key=f"{key}_best")
    st.markdown("##### Marginal effect of each hyperparameter (mean ± std of the objective)")
    cols = st.columns(2)
    for i, info in enumerate(report.marginal_plots):
        cols[i % 2].plotly_chart(plots.plot_marginal_effect(info), key=f"{key}_marg_{i}")
    st.plotly_chart(plots.plot_parallel_coordinates(report.parallel), key=f"{key}_par")
    st.plotly_chart(plots.plot_slice(report.slices), key=f"{key}_slice")
    if report.contour is not None:
        st.plotly_chart(plots.plot_contour(report.contour), key=f"{key}_contour")
    if report.curves is not None and report.curves.curves:
        st.plotly_chart(plots.plot_trial_curves(report.curves), key=f"{key}_curves")


def sweep_trials(storage: Storage, rows: Sequence[sweeps.TrialRow], curve_metric: str) -> list[analysis.Trial]:
    """Complete sweep trials (mean over repeats) with the first repeat's learning curve."""
    complete = [r for r in rows if r.state == "complete"]
    series = storage.get_metric_series([r.run_ids[0] for r in complete], curve_metric)
    return [analysis.Trial(r.run_ids[0], r.params, r.value, "succeeded",
                           {curve_metric: series[r.run_ids[0]]} if r.run_ids[0] in series else None,
                           f"trial {r.number}") for r in complete]


def render_sweep_analysis(storage: Storage, spec: sweeps.SweepSpec, rows: Sequence[sweeps.TrialRow], *,
                          key: str) -> None:
    complete = [r for r in rows if r.state == "complete"]
    st.markdown("#### Which hyperparameters matter?")
    if len(complete) < analysis.MIN_TRIALS:
        st.caption(f"The analysis appears once {analysis.MIN_TRIALS} trials are complete ({len(complete)} so far).")
        return
    trials = sweep_trials(storage, complete, "val_accuracy")
    render_analysis(trials, spec.space, spec.objective, key=key, seed=spec.seed)


def render_selection_analysis(storage: Storage, runs: Sequence[Any], *, key: str) -> None:
    """Importance and effects over hand-picked runs: the space is what differs between them."""
    objective = st.selectbox("objective", list(get_kind(runs[0].kind).objective_names), key=f"{key}_objective")
    series = storage.get_metric_series([r.id for r in runs], "val_accuracy")
    curves = {run_id: {"val_accuracy": s} for run_id, s in series.items()}
    trials = analysis.trials_from_runs(runs, objective, curves)
    space = analysis.infer_space([t.params for t in trials])
    if not len(space):
        st.info("The selected runs share every spec field; pick runs that differ to analyse them.")
        return
    render_analysis(trials, space, objective, key=key)
