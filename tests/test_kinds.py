"""One suite for every experiment kind, driven by the registry: each kind in ``KINDS`` (and the toy kind of
``tests/toykind``, registered as a plug-in would be) must keep the same contract.

Per kind: a consistent registry record whose form covers the spec; specs that round-trip; the same result
from the same seed and another from another seed; a cancel that takes effect within one step; every figure
of the run view built from the example's result; the Runs page and the kind's page rendering; a tiny sweep.
The example run is computed once per kind and session and shared by the tests that only read it.
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import itertools
import json
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import plotly.graph_objects as go
import pytest
from helpers import RecordingContext, example_run, goto
from streamlit.testing.v1 import AppTest

from db import SUCCEEDED, RunRecord, Storage
from qmlapp import services, sweeps
from qmlapp.config import Settings
from qmlapp.context import LocalContext, RunCancelled, json_safe
from qmlapp.kinds.base import PROVENANCES, ExperimentKind
from qmlapp.registry import KINDS, get_kind, parse_spec, register, unregister
from qmlapp.specs import Spec, SpecError
from qmlapp.worker import Worker

TOY = "toy"
KIND_NAMES = [*KINDS, TOY]  # the toy kind is registered by its fixture, for the tests that use it
WORKER_ID = "test-kinds"
REL_TOL = 1e-6  # two runs in one process on one CPU agree to the last bits; this only forgives summation order

# Result keys (at any depth) holding measured wall-clock times; they differ between two runs of one spec.
TIME_KEYS = frozenset({
    "wall_time_s", "train_time_s", "enumeration_time_s",  # whole run and its phases
    "wall_s",  # qnetwork: one protocol run
    "seconds",  # qnewton, sparse_qgd: one HHL simulation
    "timing", "t_hessian_s", "t_train_s",  # sparse_qgd: phases, per checkpoint and epoch
    "step_time_s", "cumulative_time_s", "total_time_s", "t_call_s", "t_classical_s", "t_classical_model_s",
    "solve_time_s", "classical_time_s", "all_classical_time_s", "sgd_time_s",  # qnewton: steps and solves
})
# Keys computed from measured times. Q-Newton's scheduler sends a solve to the quantum solver when its
# estimated time beats the measured classical one, so its choices, and what is counted or summed from
# them, follow the machine's load (training itself uses the same update whichever solver is chosen).
MEASURED_KEYS: dict[str, frozenset[str]] = {
    "qnewton": frozenset({"choice", "reason", "n_quantum", "n_classical", "quantum_time_s", "n_quantum_solves",
                          "n_classical_solves", "total_time_estimated_s", "speedup_vs_sgd"}),
}


def unstable_keys(kind: str) -> frozenset[str]:
    return TIME_KEYS | MEASURED_KEYS.get(kind, frozenset())


@dataclass(frozen=True)
class Example:
    """The kind's example spec, its result as stored (JSON-safe) and the context it ran with."""

    spec: Spec
    result: dict[str, Any]
    ctx: RecordingContext


def run_example(kind: ExperimentKind, spec: Spec, **ctx_args: Any) -> tuple[dict[str, Any], RecordingContext]:
    ctx = RecordingContext(**ctx_args)
    return json_safe(dict(kind.load_runner()(spec, ctx))), ctx


def kind_package(kind: ExperimentKind) -> str:
    """The kind's package: where its spec, runner and plots modules live."""
    return kind.spec_class.__module__.rpartition(".")[0]


def plots_module(kind: ExperimentKind) -> ModuleType:
    return importlib.import_module(f"{kind_package(kind)}.plots")


def differences(a: Any, b: Any, skip: frozenset[str], path: str = "") -> list[str]:
    """Where two JSON-like values differ, leaving out mapping keys in ``skip``; numbers within REL_TOL."""
    if isinstance(a, dict) and isinstance(b, dict):
        out = []
        for key in sorted((set(a) | set(b)) - skip, key=str):
            if key not in a or key not in b:
                out.append(f"{path}.{key}: in one result only")
            else:
                out += differences(a[key], b[key], skip, f"{path}.{key}")
        return out
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return [f"{path}: {len(a)} vs {len(b)} items"]
        return [d for i, (x, y) in enumerate(zip(a, b, strict=True)) for d in differences(x, y, skip, f"{path}[{i}]")]
    numbers = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (a, b))
    if numbers and math.isclose(a, b, rel_tol=REL_TOL):
        return []
    return [] if a == b else [f"{path}: {a!r} vs {b!r}"]


def metric_series(ctx: LocalContext, skip: frozenset[str]) -> dict[str, list[list[float]]]:
    series: dict[str, list[list[float]]] = {}
    for step, name, value in ctx.metrics:
        if name not in skip:
            series.setdefault(name, []).append([step, value])
    return series


# --- fixtures ------------------------------------------------------------------------------------------------
@pytest.fixture
def toy_kind() -> Iterator[ExperimentKind]:
    """The toy kind, registered for one test as a plug-in registers its own kind, and removed afterwards."""
    from toykind import KIND

    register(KIND)
    try:
        yield KIND
    finally:
        unregister(KIND.name)


@pytest.fixture(params=KIND_NAMES)
def kind(request: pytest.FixtureRequest) -> ExperimentKind:
    if request.param == TOY:
        request.getfixturevalue("toy_kind")
    return get_kind(request.param)


@pytest.fixture
def example(kind: ExperimentKind) -> Example:
    """The kind's example run with seed 0, computed once per session (the golden tests share it)."""
    spec, result, ctx = example_run(kind)
    return Example(spec, json_safe(dict(result)), ctx)


# --- the registry record -------------------------------------------------------------------------------------
def test_registry_record_is_consistent(kind: ExperimentKind) -> None:
    assert KINDS[kind.name] is kind and kind.spec_class.kind == kind.name
    assert issubclass(kind.spec_class, Spec) and dataclasses.is_dataclass(kind.spec_class)
    assert kind.title and kind.description and kind.icon and kind.page_title and kind.url_path
    assert callable(kind.load_runner())
    assert kind.runner.partition(":")[0].startswith(kind_package(kind) + "."), "the runner lives in the kind's package"
    view = kind.load_view()
    assert callable(view.page)
    for optional in ("curves", "results"):
        fn = getattr(view, optional, None)
        assert fn is None or callable(fn), f"{kind.view}.{optional} is not a function"
    assert kind.objectives
    for o in kind.objectives:
        assert o.direction in ("maximize", "minimize") and o.provenance in PROVENANCES, o
        assert o.label and kind.objective(o.name) is o
    assert len(set(kind.objective_names)) == len(kind.objectives)
    declared = kind.result_type.__required_keys__ | kind.result_type.__optional_keys__  # type: ignore[attr-defined]
    assert set(kind.summary_keys) <= declared, set(kind.summary_keys) - declared
    assert set(kind.objective_names) <= declared, set(kind.objective_names) - declared
    assert kind.curve_metrics


def test_example_validates_and_names_its_run(kind: ExperimentKind) -> None:
    spec = kind.example_spec()
    assert isinstance(spec, kind.spec_class) and parse_spec(kind.name, kind.example) == spec
    name = kind.run_name(spec)
    assert name.strip() and name != kind.title
    assert kind.default_run_name(spec) == name


def test_form_covers_every_spec_field_once_with_help(kind: ExperimentKind) -> None:
    listed = [f for _, fields in kind.form_groups for f in fields]
    params = kind.spec_class.params()
    twice = sorted({f for f in listed if listed.count(f) > 1})
    assert not twice, f"fields in two form groups: {twice}"
    assert set(listed) == set(params), {"not on the form": set(params) - set(listed),
                                        "not spec fields": set(listed) - set(params)}
    assert all(title for title, _ in kind.form_groups)
    for name, (_, p) in params.items():
        assert p.help.strip(), f"{kind.name}.{name} has no help text"


# --- specs round-trip ----------------------------------------------------------------------------------------
def test_specs_round_trip_through_dicts_and_json(kind: ExperimentKind) -> None:
    cls = kind.spec_class
    for spec in (kind.example_spec(), cls()):
        tagged = spec.to_dict()
        assert (tagged["kind"], tagged["schema_version"]) == (kind.name, cls.schema_version)
        assert set(tagged) == {"kind", "schema_version", *cls.params()}
        assert cls.from_dict(tagged) == spec
        assert cls.from_json(spec.to_json()) == spec
        assert parse_spec(kind.name, json.loads(json.dumps(tagged))) == spec


# --- the example result, reproducibly ------------------------------------------------------------------------
def test_example_result_keeps_the_records_promises(kind: ExperimentKind, example: Example) -> None:
    result = example.result
    missing = [key for key in (*kind.summary_keys, *kind.objective_names) if key not in result]
    assert not missing, f"the example result has no {missing}"  # None is allowed: an undefined quantity
    assert result[kind.objectives[0].name] is not None, "a sweep's default objective needs a value"
    for key, label in result.get("labels", {}).items():
        assert label.split()[0] in PROVENANCES, (key, label)
    assert kind.headline_text(result) or not kind.headline
    logged = {name for _, name, _ in example.ctx.metrics}
    if logged:  # a kind may log no curve for some specs (qnetwork's inference mode)
        assert kind.curve_names(example.spec.to_dict())[0] in logged, (kind.curve_metrics, logged)


def test_same_seed_gives_the_same_result_and_curves(kind: ExperimentKind, example: Example) -> None:
    result, ctx = run_example(kind, example.spec, seed=0)
    skip = unstable_keys(kind.name)
    assert differences(example.result, result, skip) == []
    assert differences(metric_series(example.ctx, skip), metric_series(ctx, skip), frozenset()) == []
    assert example.ctx.progress_log[-1][0] == pytest.approx(1.0)


def test_another_seed_gives_another_result(kind: ExperimentKind, example: Example) -> None:
    if "seed" not in kind.spec_class.params():
        pytest.skip(f"{kind.name} specs have no seed: the example is not random")
    spec = example.spec.replace(seed=example.spec.seed + 1)  # type: ignore[attr-defined]
    result, _ = run_example(kind, spec, seed=spec.seed)  # type: ignore[attr-defined]
    assert differences(example.result, result, unstable_keys(kind.name)) != []


# --- cancel --------------------------------------------------------------------------------------------------
def busiest_check(ctx: RecordingContext) -> int:
    """The check (1-based) after which the full run logged the most distinct steps before its next check."""
    marks = ctx.metrics_at_check
    logged = [len({step for step, _, _ in ctx.metrics[a:b]}) for a, b in itertools.pairwise(marks)]
    return 1 + max(range(len(logged)), key=logged.__getitem__)


def test_cancel_takes_effect_within_one_step(kind: ExperimentKind, example: Example) -> None:
    checks = example.ctx.metrics_at_check
    steps = {step for step, _, _ in example.ctx.metrics}
    assert len(checks) >= max(2, len(steps)), f"{len(checks)} cancel checks for {len(steps)} logged steps"
    for k in sorted({1, busiest_check(example.ctx)}):  # at once, and where the run logs the most per check
        ctx = RecordingContext(seed=0, cancel_after_steps=k)
        with pytest.raises(RunCancelled):
            kind.load_runner()(example.spec, ctx)
        assert len(ctx.metrics_at_check) == k + 1, "the first refused check must end the run"
        after = {step for step, _, _ in ctx.metrics[ctx.metrics_at_check[k - 1]:]}
        assert len(after) <= 1, f"steps {sorted(after)} were logged after cancel check {k}"


# --- figures -------------------------------------------------------------------------------------------------
def test_every_figure_of_the_run_view_builds_from_the_result(kind: ExperimentKind, example: Example,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    plots = plots_module(kind)
    called: set[str] = set()
    result_infos = [name for name, fn in vars(plots).items() if name.endswith("_info") and not name.startswith("_")
                    and inspect.isfunction(fn) and fn.__module__ == plots.__name__
                    and next(iter(inspect.signature(fn).parameters)) == "result"]

    def spy(name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            called.add(name)
            return fn(*args, **kwargs)
        return wrapper

    for name in result_infos:
        monkeypatch.setattr(plots, name, spy(name, getattr(plots, name)))
    figures = plots.result_figures(example.result, example.spec)
    assert figures, "the run view shows no figure of the result"
    assert called == set(result_infos), f"not drawn: {set(result_infos) - called}"
    for fig in figures:
        assert isinstance(fig, go.Figure) and fig.data and fig.layout.title.text
        json.loads(fig.to_json())  # what st.plotly_chart sends to the browser


# --- pages ---------------------------------------------------------------------------------------------------
def store_succeeded_run(storage: Storage, kind: ExperimentKind, example: Example) -> RunRecord:
    """Store the example as a worker does: create, claim, metrics and artifacts while owned, then finish."""
    run = storage.create_run(kind.name, example.spec.to_dict(), seed=int(getattr(example.spec, "seed", 0)),
                             name=kind.default_run_name(example.spec), versions=services.software_versions())
    assert storage.claim_run(run.id, WORKER_ID) is not None
    assert storage.add_metrics(run.id, example.ctx.metrics, worker_id=WORKER_ID)
    for art in example.ctx.artifacts.values():
        assert storage.save_artifact(run.id, art.name, art.media_type, art.content, worker_id=WORKER_ID)
    assert storage.finish_run(run.id, WORKER_ID, SUCCEEDED, result=example.result, message="done")
    return storage.get_run(run.id)


def chart_titles(app: AppTest) -> list[str]:
    return [json.loads(c.proto.spec)["layout"].get("title", {}).get("text", "") for c in app.get("plotly_chart")]


def out_of_range_value(kind: ExperimentKind) -> tuple[str, str, float]:
    """The first numeric field of the form with an upper bound: its name, form label and a value above it."""
    params = kind.spec_class.params()
    for _, fields in kind.form_groups:
        for name in fields:
            f, p = params[name]
            if p.high is None or p.choices is not None or isinstance(f.default, bool):
                continue
            if isinstance(f.default, (int, float)):
                above = p.high * 2 + 1
                return name, p.label or name.replace("_", " "), int(above) if isinstance(f.default, int) else above
    raise AssertionError(f"no bounded number on the {kind.name} form")


def test_pages_render_a_finished_run_and_the_form(kind: ExperimentKind, example: Example, app: AppTest,
                                                  storage: Storage) -> None:
    run = store_succeeded_run(storage, kind, example)
    goto(app, "runs").run()
    app.selectbox(key="runs_select").set_value(run.id).run()
    assert not app.exception, [e.value for e in app.exception]
    headline = app.dataframe[0].value.set_index("id").loc[run.id, "result"]
    assert headline == kind.headline_text(example.result)
    tables = [d.value for d in app.dataframe if "quantity" in d.value.columns]
    assert tables and kind.objectives[0].title in set(tables[0]["quantity"])
    shown = chart_titles(app)
    expected = [fig.layout.title.text for fig in plots_module(kind).result_figures(example.result, example.spec)]
    assert [t for t in expected if t not in shown] == [], shown
    if example.ctx.metrics:
        assert len(shown) > len(expected), "no learning curves"
    goto(app, kind.name).run()
    assert not app.exception, [e.value for e in app.exception]
    # A value out of its field's range is refused, naming the field, and nothing is queued.
    name, label, value = out_of_range_value(kind)
    (widget,) = [w for w in app.number_input if w.label == label]
    widget.set_value(value)
    next(b for b in app.button if b.label == "Run").click().run()
    assert not app.exception, [e.value for e in app.exception]
    assert any(name in e.value and "Nothing was queued" in e.value for e in app.error), [e.value for e in app.error]
    assert [r.id for r in storage.list_runs()] == [run.id]


# --- sweeps --------------------------------------------------------------------------------------------------
def sweep_dimension(kind: ExperimentKind) -> tuple[str, list[int]]:
    """Two values of one field of the example: the last integer one that may grow by one (the examples list
    budgets such as epochs, steps or samples last; seeds are not searched)."""
    spec = kind.example_spec()
    for name in reversed(list(kind.example)):
        value = getattr(spec, name)
        if isinstance(value, int) and not isinstance(value, bool) and name != "seed":
            try:
                spec.replace(**{name: value + 1})
            except SpecError:
                continue
            return name, [value, value + 1]
    raise AssertionError(f"the {kind.name} example has no integer field to sweep")


def test_a_two_point_grid_sweep_runs_to_the_end(kind: ExperimentKind, storage: Storage, settings: Settings) -> None:
    name, values = sweep_dimension(kind)
    definition = {"kind": kind.name, "base": dict(kind.example), "space": {name: values}, "sampler": "grid",
                  "n_trials": 2}
    assert sweeps.SweepSpec.from_dict(definition).objective == kind.objectives[0].name  # the default objective
    foreign = next(o.name for k in KINDS.values() for o in k.objectives if o.name not in kind.objective_names)
    with pytest.raises(SpecError) as err:  # objectives are the kind's own, not any kind's
        sweeps.SweepSpec.from_dict({**definition, "objective": foreign})
    assert err.value.field == "objective" and kind.objectives[0].name in err.value.message
    sweep = sweeps.create_sweep(storage, definition)
    worker = Worker(settings, storage)
    for _ in range(20):
        if worker.run_once() is None and storage.get_sweep(sweep.id).status != sweeps.ACTIVE:
            break
    doc = sweeps.sweep_json(storage, sweep.id)
    runs = storage.list_runs(sweep_id=sweep.id)
    assert (doc["status"], doc["n_trials"], doc["n_succeeded"]) == (SUCCEEDED, 2, 2), [r.error for r in runs]
    assert sorted(r.spec[name] for r in runs) == values
    assert doc["best"]["value"] in [(r.result or {}).get(kind.objectives[0].name) for r in runs]


# --- the toy kind: a kind added without touching the app -----------------------------------------------------
def test_the_menu_lists_and_opens_a_registered_kind(toy_kind: ExperimentKind, app: AppTest) -> None:
    app.run()
    assert not app.exception, [e.value for e in app.exception]
    assert any(toy_kind.title in m.value for m in app.markdown)
    goto(app, toy_kind.name).run()
    assert not app.exception, [e.value for e in app.exception]
    assert [t.value for t in app.title] == ["📏 Toy line fit"]


def test_cli_kinds_lists_a_registered_kind(toy_kind: ExperimentKind, capsys: pytest.CaptureFixture[str]) -> None:
    from qmlapp.cli import main

    assert main(["kinds", "--json"]) == 0
    kinds = {k["name"]: k for k in json.loads(capsys.readouterr().out)["kinds"]}
    assert list(kinds) == list(KINDS) and list(kinds)[-1] == toy_kind.name
    assert set(kinds[toy_kind.name]["fields"]) == set(toy_kind.spec_class.params())
    assert main(["kinds"]) == 0
    assert toy_kind.title in capsys.readouterr().out


def test_a_registered_kind_runs_on_the_worker(toy_kind: ExperimentKind, storage: Storage, settings: Settings) -> None:
    run = services.submit_run(storage, toy_kind.name, {"steps": 30})
    assert Worker(settings, storage).run_once() == SUCCEEDED, storage.get_run(run.id).error
    done = storage.get_run(run.id)
    assert done.result is not None and done.result["slope_error"] < 0.1  # y = 2x + noise
    assert [p.step for p in storage.get_metrics(run.id, ["loss"])] == list(range(1, 31))
    assert storage.get_artifact(run.id, "fit.json") is not None
