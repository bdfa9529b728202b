"""The hypernetwork page with Streamlit's AppTest: layout preview, validation, depth study, result sections."""

from __future__ import annotations

from typing import Any

from helpers import goto
from streamlit.testing.v1 import AppTest

from db import Storage
from qmlapp import services
from qmlapp.config import Settings
from qmlapp.worker import Worker

PAGE = "hypernet"
TINY = {"problem": "custom", "custom_dataset": "gaussian2d", "custom_hidden": 1, "n_points": 300, "depth": 2,
        "study_depths": [1], "restarts": 2, "max_iterations": 40, "eval_samples": 100, "seed": 2}


def _no_exceptions(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]


def _run_button(at: AppTest, text: str) -> Any:
    return next(b for b in at.button if b.label.startswith(text))


def test_page_shows_the_layout_and_states_the_depth_convention(app: AppTest, storage: Storage) -> None:
    goto(app, PAGE).run()
    _no_exceptions(app)
    assert any("One manuscript layer = two sub-layers" in i.value for i in app.info)
    assert any("18 bits = 18 qubits" in m.value for m in app.markdown)
    table = app.dataframe[0].value
    assert list(table["field"]) == ["W1", "W2", "b2", "b1", "activation"]
    assert list(table["bits"]) == ["0–7", "8–11", "12", "13–16", "17"]
    # a custom layout updates the preview live
    app.selectbox(key="hn_problem").set_value("custom").run()
    app.number_input(key="hn_custom_encoding_bits").set_value(2).run()
    _no_exceptions(app)
    assert any("11 bits" in m.value for m in app.markdown)
    assert "encoding" in set(app.dataframe[0].value["field"])


def test_too_many_bits_names_the_field_and_queues_nothing(app: AppTest, storage: Storage) -> None:
    goto(app, PAGE).run()
    app.selectbox(key="hn_problem").set_value("custom").run()
    app.selectbox(key="hn_custom_dataset").set_value("mnist01").run()
    app.number_input(key="hn_custom_hidden").set_value(3).run()
    _no_exceptions(app)
    assert any("custom_hidden" in e.value and "22" in e.value for e in app.error)
    _run_button(app, "Run").click().run()
    assert any("Nothing was queued" in e.value for e in app.error)
    assert storage.list_runs() == []


def test_depth_study_button_queues_every_depth(app: AppTest, storage: Storage) -> None:
    goto(app, PAGE).run()
    _run_button(app, "Run depth study").click().run()
    _no_exceptions(app)
    (run,) = storage.list_runs()
    assert run.kind == "hypernet" and run.spec["study_depths"] == [1, 2, 4, 6]
    assert run.spec["problem"] == "gaussian2d" and run.spec["depth"] == 4


def test_finished_run_shows_success_landscape_and_networks(app: AppTest, storage: Storage,
                                                           settings: Settings) -> None:
    run = services.submit_run(storage, "hypernet", TINY)
    assert Worker(settings, storage).run_once() == "succeeded", storage.get_run(run.id).error
    goto(app, "runs").run()
    _no_exceptions(app)
    headline = app.dataframe[0].value["result"][0]
    assert headline.startswith("success ") and "(simulated)" in headline and "(computed)" in headline
    texts = " ".join(m.value for m in app.markdown)
    assert "Landscape" in texts and "single-flip local minima" in texts
    titles = [c.proto.spec for c in app.get("plotly_chart")]
    joined = " ".join(titles)
    for needle in ("success vs circuit depth", "Training curves per restart", "Loss of every network",
                   "Walsh", "accuracy"):
        assert needle in joined, needle
    # decode a bitstring typed by the user; a malformed one is refused with the field named
    app.radio(key=f"hn_pick_{run.id}").set_value("decode a bitstring …").run()
    app.text_input(key=f"hn_bits_{run.id}").set_value("01").run()
    _no_exceptions(app)
    assert any("bitstring" in e.value for e in app.error)
    result = storage.get_run(run.id).result
    assert result is not None
    n = result["n_bits"]
    app.text_input(key=f"hn_bits_{run.id}").set_value("1" * n).run()
    _no_exceptions(app)
    assert any(("1" * n) in m.value for m in app.markdown)


def test_mnist_run_shows_the_weight_image_and_test_accuracy(app: AppTest, storage: Storage,
                                                            settings: Settings) -> None:
    run = services.submit_run(storage, "hypernet", {"problem": "mnist01", "depth": 2, "restarts": 1,
                                                    "max_iterations": 20, "eval_samples": 100})
    assert Worker(settings, storage).run_once() == "succeeded", storage.get_run(run.id).error
    goto(app, "runs").run()
    _no_exceptions(app)
    joined = " ".join(c.proto.spec for c in app.get("plotly_chart"))
    assert "Input weights of" in joined and "4\\u00d74 image" in joined  # × is JSON-escaped in the spec
    texts = " ".join(m.value for m in app.markdown)
    assert "logistic regression (no hidden layer)" in texts and "held-out test accuracy" in texts
