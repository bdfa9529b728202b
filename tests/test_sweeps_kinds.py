"""Sweeps over every experiment kind: validation against the kind's fields and objectives, and real sweeps of
the hypernet and qnewton kinds (tiny bases from each kind's ``example``) from the CLI and from the Sweeps page,
analysed with that kind's objective labels, units and provenance."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from helpers import goto
from streamlit.testing.v1 import AppTest

from db import SUCCEEDED, Storage
from qmlapp import sweeps
from qmlapp.config import Settings
from qmlapp.registry import KINDS, get_kind
from qmlapp.specs import SpecError
from qmlapp.worker import Worker

# Hypernet: a 9-bit 2→2→1 network (the example's 3-bit one is solved by every trial, leaving nothing to rank);
# no extra depth study, so each trial runs its own depth only.
HYPERNET_BASE: dict[str, Any] = {**KINDS["hypernet"].example, "custom_hidden": 2, "study_depths": ""}
HYPERNET_SWEEP: dict[str, Any] = {
    "kind": "hypernet", "base": HYPERNET_BASE, "space": {"depth": [1, 2], "restarts": [1, 2]},
    "sampler": "grid", "n_trials": 4, "objective": "born_mass_optimal", "seed": 0}
# Q-Newton: the gate time changes the estimated quantum solve time, hence the estimated total time.
QNEWTON_BASE: dict[str, Any] = {**KINDS["qnewton"].example, "hhl_demo": False, "baselines": False}
QNEWTON_SWEEP: dict[str, Any] = {
    "kind": "qnewton", "base": QNEWTON_BASE, "space": {"gate_time_s": [1e-9, 1e-8, 1e-7]},
    "sampler": "grid", "n_trials": 3, "objective": "total_time_estimated_s", "seed": 0}
FROM_SCRATCH = "sweep_(start from scratch)"


def _searchable_value(kind: str, name: str) -> Any:
    """A value of the field as a sweep file writes it (list fields as text, like the form)."""
    default = get_kind(kind).spec_class.params()[name][0].default
    return ", ".join(map(str, default)) if isinstance(default, tuple) else default


@pytest.mark.parametrize("kind", list(KINDS))
def test_every_field_of_every_kind_can_be_swept(kind: str) -> None:
    k = get_kind(kind)
    base = dict(k.example)
    for name in k.spec_class.params():
        if name == "seed":
            continue
        data = {"kind": kind, "base": base, "space": {name: [_searchable_value(kind, name)]}, "sampler": "grid"}
        spec = sweeps.SweepSpec.from_dict(data)
        assert spec.kind == kind and spec.effective_trials() == 1, name
        # the default objective is the kind's first, its direction the kind's
        assert spec.objective == k.objectives[0].name and spec.direction == k.objectives[0].direction
        assert spec.objective_info == k.objectives[0]


@pytest.mark.parametrize("kind", list(KINDS))
def test_an_objective_of_another_kind_names_the_field_and_lists_the_kinds_objectives(kind: str) -> None:
    k = get_kind(kind)
    other = next(o.name for kk in KINDS.values() for o in kk.objectives if o.name not in k.objective_names)
    field = next(n for n in k.spec_class.params() if n != "seed")
    data = {"kind": kind, "base": dict(k.example), "space": {field: [_searchable_value(kind, field)]},
            "objective": other}
    with pytest.raises(SpecError) as err:
        sweeps.SweepSpec.from_dict(data)
    assert err.value.field == "objective"
    assert all(repr(o) in err.value.message for o in get_kind(kind).objective_names), err.value.message
    assert repr(other) in err.value.message and repr(kind) in err.value.message


def test_cli_refuses_a_wrong_objective_for_the_kind(cli: Any, tmp_path: Path, storage: Storage) -> None:
    path = tmp_path / "sweep.json"
    path.write_text(json.dumps({**HYPERNET_SWEEP, "objective": "val_accuracy"}))
    code, out, err = cli("sweep", "--spec", str(path), "--json")
    assert code == 2 and out == "" and "Traceback" not in err
    assert "objective" in err and all(repr(o) in err for o in get_kind("hypernet").objective_names)
    assert storage.list_sweeps() == []


def test_sweep_json_names_the_kind_and_its_objective(storage: Storage) -> None:
    sweep = sweeps.create_sweep(storage, QNEWTON_SWEEP)
    doc = sweeps.sweep_json(storage, sweep.id)
    assert doc["kind"] == "qnewton" and doc["objective"] == "total_time_estimated_s"
    assert (doc["objective_label"], doc["objective_unit"], doc["objective_provenance"], doc["direction"]) == (
        "total training time", "s", "estimated", "minimize")
    assert all(r.kind == "qnewton" for r in storage.list_runs(sweep_id=sweep.id))


@pytest.mark.parametrize(("definition", "provenance"), [
    pytest.param(HYPERNET_SWEEP, "simulated", id="hypernet"),
    # its subprocess imports TensorFlow (the digits data), 10–20 s on 2 busy cores
    pytest.param(QNEWTON_SWEEP, "estimated", id="qnewton", marks=pytest.mark.slow)])
def test_cli_sweep_of_a_kind_runs_real_trials(cli: Any, tmp_path: Path, definition: dict[str, Any],
                                              provenance: str) -> None:
    path = tmp_path / "sweep.json"
    path.write_text(json.dumps(definition))
    code, out, err = cli("sweep", "--spec", str(path), "--wait", "--json", timeout=300)
    assert code == 0, err
    doc = json.loads(out)
    obj = get_kind(definition["kind"]).objective(definition["objective"])
    assert doc["kind"] == definition["kind"] and doc["status"] == "succeeded"
    assert doc["n_succeeded"] == doc["n_trials"] == definition["n_trials"]
    assert (doc["objective_label"], doc["objective_unit"], doc["objective_provenance"]) == (
        obj.label, obj.unit, provenance)
    assert doc["best"]["spec"]["kind"] == definition["kind"]
    assert set(doc["best"]["params"]) == set(definition["space"])
    assert set(doc["importance"]) == set(definition["space"])


def _widget(app: AppTest, key: str) -> Any:
    for element in ("selectbox", "number_input", "text_input", "checkbox", "multiselect"):
        try:
            return getattr(app, element)(key=key)
        except KeyError:
            continue
    raise KeyError(key)


def _titles(app: AppTest) -> list[str]:
    out = []
    for chart in app.get("plotly_chart"):
        title = json.loads(chart.proto.spec).get("layout", {}).get("title", {})
        out.append(title.get("text", "") if isinstance(title, dict) else str(title))
    return out


@pytest.mark.parametrize(
    ("kind", "base", "ranges", "objective", "sampler", "n_trials"),
    [("hypernet", HYPERNET_BASE, {"depth": (1, 2), "restarts": (1, 2)}, "born_mass_optimal", "grid", 4),
     ("qnewton", QNEWTON_BASE, {"gate_time_s": (1e-9, 1e-7)}, "total_time_estimated_s", "random", 3)],
    ids=["hypernet", "qnewton"])
def test_sweeps_page_runs_and_analyses_a_sweep_of_a_kind(app: AppTest, storage: Storage, settings: Settings,
                                                         kind: str, base: dict[str, Any],
                                                         ranges: dict[str, tuple[float, float]], objective: str,
                                                         sampler: str, n_trials: int) -> None:
    goto(app, "sweeps").run()
    app.selectbox(key=f"{FROM_SCRATCH}_kind").set_value(kind).run()
    form = f"{FROM_SCRATCH}_{kind}"
    obj = get_kind(kind).objective(objective)
    # the kind's own form, objectives (with label, unit and provenance) and fields
    assert app.selectbox(key=f"{form}_obj").options == [
        f"{o.title} · {o.provenance} · {o.direction} ({o.name})" for o in get_kind(kind).objectives]
    assert set(app.multiselect(key=f"{form}_dims").options) == set(get_kind(kind).spec_class.params()) - {"seed"}
    for name, value in base.items():
        _widget(app, f"{form}_base_{name}").set_value(value)
    app.selectbox(key=f"{form}_sampler").set_value(sampler)
    app.number_input(key=f"{form}_n").set_value(n_trials)
    app.selectbox(key=f"{form}_obj").set_value(objective)
    app.multiselect(key=f"{form}_dims").set_value(list(ranges)).run()
    for name, (low, high) in ranges.items():
        app.number_input(key=f"{form}_lo_{name}").set_value(low)
        app.number_input(key=f"{form}_hi_{name}").set_value(high)
        if sampler != "grid":
            app.checkbox(key=f"{form}_lg_{name}").check()
    app.button(key="sweep_start").click().run()
    assert not app.exception, [e.value for e in app.exception]
    assert not app.error, [e.value for e in app.error]
    (sweep,) = storage.list_sweeps()
    assert sweep.kind == kind and sweep.definition["objective"] == objective
    assert sweep.definition["base"] == get_kind(kind).example_spec(**base).to_dict()  # the form's values

    worker = Worker(settings, storage)  # runs the trials in this process, advancing the sweep after each
    for _ in range(4 * n_trials):
        if worker.run_once() is None and storage.get_sweep(sweep.id).status != "running":
            break
    assert storage.get_sweep(sweep.id).status == SUCCEEDED, storage.get_sweep(sweep.id).message

    goto(app, "sweeps").run()
    assert not app.exception, [e.value for e in app.exception]
    table = next(d.value for d in app.dataframe if "trial" in d.value.columns)
    assert f"{obj.title}, {obj.provenance}, mean over repeats" in table.columns
    sweeps_list = app.dataframe[0].value
    assert list(sweeps_list["kind"]) == [kind]
    titles = _titles(app)
    importance = [t for t in titles if t.startswith("Hyperparameter importance for")]
    assert importance and obj.label in importance[0] and importance[0].endswith(f"({obj.provenance})"), titles
    marginals = [t for t in titles if " by " in t and "mean ± std" in t]
    assert len(marginals) == len(ranges), titles
    assert all(obj.label.lower() in t.lower() and t.endswith(f"({obj.provenance})") for t in marginals), titles


def test_presets_set_the_kind_and_switching_kinds_resets_the_form(app: AppTest, storage: Storage) -> None:
    from qmlapp.presets import PRESETS

    goto(app, "sweeps").run()
    for name, preset in PRESETS.items():
        app.selectbox(key="sweep_preset").set_value(name).run()
        assert not app.exception, [e.value for e in app.exception]
        kind = preset.definition["kind"]
        form = f"sweep_{name}_{kind}"
        assert app.selectbox(key=f"sweep_{name}_kind").value == kind
        assert app.selectbox(key=f"{form}_obj").value == preset.definition["objective"]
        assert app.multiselect(key=f"{form}_dims").value == list(preset.definition["space"])
        # the page's form reproduces the preset exactly (lists of numbers stay lists)
        shown = json.loads(next(c.value for c in app.code if '"space"' in c.value))
        assert sweeps.SweepSpec.from_dict(shown) == sweeps.SweepSpec.from_dict(preset.definition), name
    # another kind than the preset's starts from that kind's defaults, with its own fields and objectives
    app.selectbox(key=f"sweep_{name}_kind").set_value("qnn").run()
    assert not app.exception, [e.value for e in app.exception]
    form = f"sweep_{name}_qnn"
    assert app.multiselect(key=f"{form}_dims").value == []
    assert app.selectbox(key=f"{form}_obj").value == get_kind("qnn").objectives[0].name
    assert app.number_input(key=f"{form}_base_n_qubits").value == get_kind("qnn").spec_class().n_qubits  # type: ignore[attr-defined]
    assert storage.list_sweeps() == []


def _selection_page(db_url: str, run_ids: list[int]) -> None:
    """The analysis block of the Compare page for hand-picked runs (AppTest runs this function's source)."""
    from db import Storage
    from qmlapp.ui.analysis_view import render_selection_analysis

    storage = Storage(db_url)
    render_selection_analysis(storage, [storage.get_run(i) for i in run_ids], key="sel")


def test_selection_analysis_uses_the_kinds_objectives_and_curves(storage: Storage, db_url: str) -> None:
    """Hand-picked qnewton runs (finished here as a worker would store them) are analysed with qnewton's
    objectives; runs of two kinds are refused with a sentence."""
    ids = []
    for i, gate in enumerate((1e-9, 1e-8, 1e-7, 1e-6)):
        run = storage.create_run("qnewton", get_kind("qnewton").example_spec(gate_time_s=gate).to_dict(), seed=0)
        assert storage.claim_next_run("w") is not None
        storage.add_metrics(run.id, [(s, "test_accuracy", 0.5 + 0.1 * s) for s in range(3)])
        storage.finish_run(run.id, "w", SUCCEEDED, result={"final_accuracy": 0.8 + 0.01 * i,
                                                           "speedup_vs_sgd": 10.0 ** -i})
        ids.append(run.id)
    at = AppTest.from_function(_selection_page, args=(db_url, ids), default_timeout=60).run()
    assert not at.exception, [e.value for e in at.exception]
    objective = at.selectbox(key="sel_qnewton_objective")
    assert objective.options == [f"{o.title} ({o.provenance})" for o in get_kind("qnewton").objectives]
    titles = _titles(at)
    assert any(t.startswith("Hyperparameter importance for test accuracy") and t.endswith("(computed)")
               for t in titles), titles
    assert any(t.startswith("Test accuracy of 4 trials") and t.endswith("(computed)") for t in titles), titles
    objective.set_value("speedup_vs_sgd").run()
    assert any(t.startswith("Hyperparameter importance for time speed-up vs SGD") and t.endswith("(estimated)")
               for t in _titles(at)), _titles(at)

    other = storage.create_run("qnn", {}, seed=0)
    at = AppTest.from_function(_selection_page, args=(db_url, [*ids, other.id]), default_timeout=60).run()
    assert not at.exception and not at.get("plotly_chart")
    assert any("one known experiment kind" in i.value for i in at.info)
