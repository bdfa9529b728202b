"""Page tests with Streamlit's AppTest, driven through the real multipage entrypoint and database."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import TINY_QNN
from streamlit.testing.v1 import AppTest

from db import Storage
from qmlapp import services
from qmlapp.config import Settings
from qmlapp.worker import Worker

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def app(db_url: str, monkeypatch: pytest.MonkeyPatch) -> AppTest:
    monkeypatch.setenv("QMLAPP_DATABASE_URL", db_url)
    monkeypatch.chdir(ROOT)
    return AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)


def _no_exceptions(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]


def test_home_explains_app_and_reports_missing_worker(app: AppTest, storage: Storage) -> None:
    app.run()
    _no_exceptions(app)
    assert "QML Explorer" in app.title[0].value
    assert any("qnn" in m.value for m in app.markdown)
    assert any("No worker is running" in w.value for w in app.warning)


def test_qnn_default_form_queues_exactly_the_default_spec(app: AppTest, storage: Storage) -> None:
    app.switch_page("pages/1_QNN.py").run()
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
    app.switch_page("pages/1_QNN.py").run()
    app.number_input(key=widget).set_value(value)
    app.button[0].click().run()
    _no_exceptions(app)
    errors = [e.value for e in app.error]
    assert errors and field in errors[0] and "Nothing was queued" in errors[0]
    assert storage.list_runs() == []


def test_qnn_cross_field_error_names_field(app: AppTest, storage: Storage) -> None:
    app.switch_page("pages/1_QNN.py").run()
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
    app.switch_page("pages/2_Runs.py").run()
    _no_exceptions(app)
    table = app.dataframe[0].value
    assert set(table["id"]) == {*two_finished_runs, queued.id}
    # open a finished run
    app.selectbox(key="runs_select").set_value(two_finished_runs[0]).run()
    _no_exceptions(app)
    charts = [c for c in app.get("plotly_chart")]
    assert len(charts) >= 2  # learning curves + confusion matrix
    results = [d.value for d in app.dataframe if "quantity" in d.value.columns]
    assert results and "test accuracy" in set(results[0]["quantity"])
    provenance = set(results[0]["provenance"])
    assert "simulated" in provenance and provenance <= {"simulated", "computed", "estimated"}
    # cancel the queued run from the page
    app.selectbox(key="runs_select").set_value(queued.id).run()
    app.button(key="runs_cancel").click().run()
    _no_exceptions(app)
    assert storage.get_run(queued.id).status == "cancelled"
    # and delete it
    app.button(key="runs_delete").click().run()
    _no_exceptions(app)
    assert queued.id not in {r.id for r in storage.list_runs()}


def test_runs_page_filters_and_compares(app: AppTest, storage: Storage, two_finished_runs: list[int]) -> None:
    services.submit_run(storage, "qnn", TINY_QNN)
    app.switch_page("pages/2_Runs.py").run()
    app.multiselect(key="runs_statuses").set_value(["succeeded"]).run()
    _no_exceptions(app)
    assert set(app.dataframe[0].value["id"]) == set(two_finished_runs)
    compare = app.multiselect(key="runs_compare")
    assert set(compare.value) == set(two_finished_runs)
    side_by_side = app.dataframe[-1].value
    assert "spec.seed" in side_by_side.index  # the differing field is listed
