"""Page tests with Streamlit's AppTest, driven through the real multipage entrypoint and database."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from helpers import TINY_QNN, goto
from streamlit.testing.v1 import AppTest

from db import Storage
from qmlapp import services
from qmlapp.config import Settings
from qmlapp.worker import Worker


def _no_exceptions(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]


def test_home_explains_app_and_reports_missing_worker(app: AppTest, storage: Storage) -> None:
    app.run()
    _no_exceptions(app)
    assert "QML Explorer" in app.title[0].value
    assert any("qnn" in m.value for m in app.markdown)
    assert any("No worker is running" in w.value for w in app.warning)


def test_qnn_default_form_queues_exactly_the_default_spec(app: AppTest, storage: Storage) -> None:
    goto(app, "qnn").run()
    _no_exceptions(app)
    app.button[0].click().run()
    _no_exceptions(app)
    runs = storage.list_runs()
    assert len(runs) == 1
    assert runs[0].spec == services.validate_spec("qnn", {}).to_dict()
    assert any(f"Queued run {runs[0].id}" in s.value for s in app.success)
    # the submitted run is shown below the form, live
    assert any(f"Run {runs[0].id}" in m.value for m in app.markdown)


@pytest.mark.parametrize(
    ("widget", "value", "field"),
    [("qnn_learning_rate", -1.0, "learning_rate"), ("qnn_n_qubits", 0, "n_qubits"),
     ("qnn_epochs", 0, "epochs")],
)
def test_qnn_bad_number_names_field_and_stores_nothing(app: AppTest, storage: Storage, widget: str,
                                                       value: float, field: str) -> None:
    goto(app, "qnn").run()
    app.number_input(key=widget).set_value(value)
    app.button[0].click().run()
    _no_exceptions(app)
    errors = [e.value for e in app.error]
    assert errors and field in errors[0] and "Nothing was queued" in errors[0]
    assert storage.list_runs() == []


def test_qnn_cross_field_error_names_field(app: AppTest, storage: Storage) -> None:
    goto(app, "qnn").run()
    app.selectbox(key="qnn_reduction").set_value("lda")  # iris has 3 classes: LDA gives ≤ 2 components
    app.button[0].click().run()
    assert any("n_qubits" in e.value and "lda" in e.value for e in app.error)
    assert storage.list_runs() == []


@pytest.fixture
def two_finished_runs(storage: Storage, settings: Settings) -> list[int]:
    ids = []
    for seed in (1, 2):
        run = services.submit_run(storage, "qnn", {**TINY_QNN, "seed": seed})
        assert Worker(settings, storage).run_once() == "succeeded", storage.get_run(run.id).error
        ids.append(run.id)
    return ids


def test_runs_page_opens_result_with_curves_and_circuit(app: AppTest, storage: Storage,
                                                        two_finished_runs: list[int]) -> None:
    queued = services.submit_run(storage, "qnn", TINY_QNN)
    goto(app, "runs").run()
    _no_exceptions(app)
    table = app.dataframe[0].value
    assert set(table["id"]) == {*two_finished_runs, queued.id}
    # open a finished run
    app.selectbox(key="runs_select").set_value(two_finished_runs[0]).run()
    _no_exceptions(app)
    charts = [c for c in app.get("plotly_chart")]
    assert len(charts) >= 2  # learning curves + confusion matrix
    results = [d.value for d in app.dataframe if "quantity" in d.value.columns]
    assert results and any(q.startswith("test accuracy") for q in results[0]["quantity"])
    provenance = set(results[0]["provenance"])
    assert "simulated" in provenance and provenance <= {"simulated", "computed", "estimated"}
    # cancel the queued run from the page
    app.selectbox(key="runs_select").set_value(queued.id).run()
    app.button(key="runs_cancel").click().run()
    _no_exceptions(app)
    assert storage.get_run(queued.id).status == "cancelled"
    # delete asks first: "Keep it" keeps the run, "Delete permanently" deletes it
    app.button(key="runs_delete").click().run()
    _no_exceptions(app)
    assert queued.id in {r.id for r in storage.list_runs()}
    assert any(f"run {queued.id}" in w.value and "cannot be undone" in w.value for w in app.warning)
    app.button(key="runs_delete_keep").click().run()
    assert queued.id in {r.id for r in storage.list_runs()}
    assert not any("cannot be undone" in w.value for w in app.warning)
    app.button(key="runs_delete").click().run()
    app.button(key="runs_delete_confirm").click().run()
    _no_exceptions(app)
    assert queued.id not in {r.id for r in storage.list_runs()}


def test_runs_page_filters_by_status(app: AppTest, storage: Storage, two_finished_runs: list[int]) -> None:
    services.submit_run(storage, "qnn", TINY_QNN)
    goto(app, "runs").run()
    app.multiselect(key="runs_statuses").set_value(["succeeded"]).run()
    _no_exceptions(app)
    assert set(app.dataframe[0].value["id"]) == set(two_finished_runs)


def test_compare_page_shows_differing_fields_and_exports(app: AppTest, storage: Storage,
                                                         two_finished_runs: list[int]) -> None:
    goto(app, "compare").run()
    _no_exceptions(app)
    assert set(app.multiselect(key="compare_runs").value) == set(two_finished_runs)
    results, specs = (next(f.value for f in app.dataframe if column in f.value.columns)
                      for column in ("quantity", "spec field"))
    # the results with unit and provenance; only the differing spec field is listed by default
    accuracy = results[results["quantity"] == "validation accuracy (fraction correct)"]
    assert list(accuracy["provenance"]) == ["simulated"]
    assert list(specs["spec field"]) == ["seed"]
    assert any("1 spec field(s) differ" in m.value for m in app.markdown)
    app.toggle(key="compare_only_diff").set_value(False).run()
    specs = next(f.value for f in app.dataframe if "spec field" in f.value.columns)
    assert "dataset" in set(specs["spec field"])
    assert len(app.get("download_button")) == 2


def test_sweeps_page_starts_a_preset_and_rejects_bad_input(app: AppTest, storage: Storage) -> None:
    goto(app, "sweeps").run()
    _no_exceptions(app)
    app.selectbox(key="sweep_preset").set_value("banknote_design_study").run()
    app.number_input(key="sweep_banknote_design_study_qnn_n").set_value(0).run()
    app.button(key="sweep_start").click().run()
    assert any("n_trials" in e.value for e in app.error)
    assert storage.list_sweeps() == []
    app.number_input(key="sweep_banknote_design_study_qnn_n").set_value(36).run()
    app.button(key="sweep_start").click().run()
    _no_exceptions(app)
    (sweep,) = storage.list_sweeps()
    assert set(sweep.definition["space"]) == {"encoding", "ansatz", "optimizer", "scaling"}
    assert len(storage.list_runs(sweep_id=sweep.id)) == 2  # one trial × 2 repeats while no worker is alive
    # the detail view: cancel, then resume
    app.button(key=f"sweep_cancel_{sweep.id}").click().run()
    _no_exceptions(app)
    assert storage.get_sweep(sweep.id).status == "cancelled"
    assert {r.status for r in storage.list_runs(sweep_id=sweep.id)} == {"cancelled"}
    app.button(key=f"sweep_resume_{sweep.id}").click().run()
    _no_exceptions(app)
    assert storage.get_sweep(sweep.id).status == "running"
    assert sum(r.status == "queued" for r in storage.list_runs(sweep_id=sweep.id)) == 2


def test_sweeps_page_analyses_a_finished_sweep(app: AppTest, storage: Storage, settings: Settings) -> None:
    from qmlapp import sweeps

    sweep = sweeps.create_sweep(storage, {
        "base": TINY_QNN, "space": {"encoding": ["angle", "z_feature_map", "reuploading"], "depth": [1, 2]},
        "sampler": "grid", "n_trials": 6, "objective": "val_accuracy"})
    worker = Worker(settings, storage)
    for _ in range(20):
        if worker.run_once() is None and storage.get_sweep(sweep.id).status != "running":
            break
    assert storage.get_sweep(sweep.id).status == "succeeded"
    goto(app, "sweeps").run()
    _no_exceptions(app)
    assert any("Which hyperparameters matter" in m.value for m in app.markdown)
    recommendation = [i.value for i in app.info if "encoding" in i.value or "depth" in i.value]
    assert recommendation, [i.value for i in app.info]
    assert len(app.get("plotly_chart")) >= 5  # importance, best configs, marginals, parallel, slice ...
    app.radio(key=f"sweep_an_{sweep.id}_method").set_value("ped_anova").run()
    _no_exceptions(app)


def test_a_read_only_database_shows_one_sentence_not_a_traceback(app: AppTest, storage: Storage, db_url: str,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """Every page, and the Run button, say what is wrong with the database instead of a server stack."""
    if not db_url.startswith("sqlite"):
        pytest.skip("an SQLite read-only URI; PostgreSQL read-only is covered in test_storage_errors")
    services.submit_run(storage, "qnn", TINY_QNN)
    path = sa.make_url(db_url).database
    monkeypatch.setenv("QMLAPP_DATABASE_URL", f"sqlite:///file:{path}?mode=ro&uri=true")
    for page in ("home", "runs", "sweeps", "compare"):
        goto(app, page).run()
        _no_exceptions(app)
    goto(app, "qnn").run()
    _no_exceptions(app)
    app.button[0].click().run()  # Run
    _no_exceptions(app)
    assert any("read-only" in e.value for e in app.error), [e.value for e in app.error]
    assert len(storage.list_runs()) == 1
