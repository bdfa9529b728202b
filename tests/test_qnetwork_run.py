"""qnetwork runs end to end: inference at real sizes, training with TFQ, page."""

from __future__ import annotations

from typing import Any

import pytest
from helpers import goto
from streamlit.testing.v1 import AppTest

from db import Storage
from qmlapp import services
from qmlapp.config import Settings
from qmlapp.context import LocalContext
from qmlapp.kinds.qnetwork.result import QnetworkResult
from qmlapp.kinds.qnetwork.run import run
from qmlapp.kinds.qnetwork.spec import QnetworkSpec
from qmlapp.registry import get_kind
from qmlapp.specs import SpecError
from qmlapp.worker import Worker

SMALL = {"n_features": 256, "layers": 2, "params_per_unitary": 8, "n_inputs": 3, "epsilon": 0.1}


@pytest.fixture(scope="module")
def inference() -> tuple[QnetworkSpec, QnetworkResult]:
    spec = QnetworkSpec.from_dict(SMALL)
    return spec, run(spec, LocalContext())


def test_inference_counts_what_crosses_the_cut(inference: tuple[QnetworkSpec, dict[str, Any]]) -> None:
    spec, result = inference
    for key in get_kind("qnetwork").summary_keys:
        assert result[key] is not None, key
    K, n = spec.copies, 8
    assert result["rounds"] == 3 and [t["from"] for t in result["transfers"]] == ["alice", "bob", "alice"]
    assert result["qubits_communicated"] == K * 3 * n
    assert result["classical_bits_data"] == 256 * 32 and result["classical_bits_model"] == 2 * 8 * 32
    assert result["advantage_ratio"] == pytest.approx(min(256 * 32, 2 * 8 * 32) / (K * 3 * n))
    assert result["holevo_bound_bits"] == K * 3 * n
    # the shot estimate agrees with the exact value within 4 standard errors, for every input
    for r in result["protocol_runs"]:
        assert abs(r["loss_estimate"] - r["loss_exact"]) <= 4 * r["loss_se"] + 1e-12
    assert all(v.split()[0] in ("simulated", "computed", "estimated") for v in result["labels"].values())


def test_scaling_study_runs_every_size_and_linear_case_has_no_gap(
        inference: tuple[QnetworkSpec, dict[str, Any]]) -> None:
    spec, result = inference
    sizes = [p["n_features"] for p in result["scaling"]]
    assert sizes == [2**n for n in range(2, 9)]
    for p in result["scaling"]:
        assert p["qubits_per_inference"] == spec.copies * 3 * p["n_qubits"]
    assert 0.1 <= result["linear"]["ratio"] <= 10  # the same order: no exponential advantage for linear models
    expr = {(p["layers"], p["data_layers"]): p["degree"] for p in result["expressivity"]}
    assert all(expr[(L, False)] <= 2 for L in range(1, 5))
    assert expr[(4, True)] > expr[(1, True)] > 2


def test_training_mode_trains_and_counts_gradient_communication() -> None:
    spec = QnetworkSpec.from_dict({"mode": "training", "dataset": "digits", "n_features": 64, "layers": 1,
                                   "params_per_unitary": 12, "epochs": 3, "train_size": 96, "batch_size": 32,
                                   "learning_rate": 0.1, "n_inputs": 2, "scaling_study": False, "epsilon": 0.1})
    ctx = LocalContext()
    result = run(spec, ctx)
    losses = ctx.series("train_loss")
    assert len(losses) == 4 and losses[-1] < losses[0]
    assert result["test_accuracy"] > 0.6
    assert result["loss_exact"] == result["test_loss"]
    tc = result["training_communication"]
    assert tc["parameter_shift_qubits"] > 0 and tc["shadow_bound_qubits"] > 0
    assert result["qubits_communicated"] == result["communication"]["gradient_qubits_parameter_shift"]
    assert result["advantage_ratio"] == pytest.approx((64 * 32 + 2 * 1 * 12 * 32) / result["qubits_communicated"])
    assert result["labels"]["test_accuracy"].startswith("simulated")


@pytest.mark.parametrize(
    ("change", "field"),
    [({"n_features": 1}, "n_features"), ({"n_features": 2**21}, "n_features"),
     ({"dataset": "digits", "n_features": 100}, "n_features"), ({"mode": "training", "n_features": 1024}, "n_features"),
     ({"epsilon": 0}, "epsilon"), ({"layers": 0}, "layers"), ({"bits_per_number": 8}, "bits_per_number"),
     ({"n_features": 2, "observable": "zz01"}, "observable"),
     ({"mode": "training", "n_features": 64, "train_size": 16, "batch_size": 32}, "batch_size")],
)
def test_bad_specs_name_the_field(change: dict[str, Any], field: str) -> None:
    with pytest.raises(SpecError) as err:
        QnetworkSpec.from_dict(change)
    assert err.value.field == field


def test_page_queues_the_default_and_shows_a_finished_run(app: AppTest, storage: Storage,
                                                          settings: Settings) -> None:
    goto(app, "qnetwork").run()
    assert not app.exception, [e.value for e in app.exception]
    app.number_input(key="qn_n_features").set_value(100)
    app.selectbox(key="qn_dataset").set_value("digits")
    app.button[0].click().run()
    assert any("n_features" in e.value and "64" in e.value for e in app.error)
    assert storage.list_runs() == []
    run_rec = services.submit_run(storage, "qnetwork", {**SMALL, "n_features": 64})
    assert Worker(settings, storage).run_once() == "succeeded", storage.get_run(run_rec.id).error
    goto(app, "runs").run()
    assert not app.exception, [e.value for e in app.exception]
    joined = " ".join(c.proto.spec for c in app.get("plotly_chart"))
    for needle in ("cost per inference", "linear classifier", "vs parameters per unitary", "copies", "Holevo"):
        assert needle in joined, needle
    metrics = {m.label: m.value for m in app.metric}
    result = storage.get_run(run_rec.id).result
    assert result is not None
    assert metrics["qubits (quantum protocol)"] == f"{result['qubits_communicated']:,}"
    app.radio(key=f"qn_growth_{run_rec.id}").set_value("P = N (dense model)").run()
    assert not app.exception, [e.value for e in app.exception]
