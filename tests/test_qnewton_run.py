"""qnewton runs end to end: scheduled Newton vs baselines, time accounting, scenarios, HHL, CLI."""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

import pytest
from helpers import run_cli

from qmlapp.context import LocalContext
from qmlapp.kinds.qnewton.result import QnewtonResult
from qmlapp.kinds.qnewton.run import run
from qmlapp.kinds.qnewton.spec import QnewtonSpec
from qmlapp.registry import get_kind
from qmlapp.specs import SpecError

SMALL = {"dataset": "digits_4x4", "hidden_units": 4, "epochs": 2, "batch_size": 512, "gate_time_s": 1e-15,
         "hhl_size": 2}


@pytest.fixture(scope="module")
def small() -> tuple[QnewtonSpec, QnewtonResult, LocalContext]:
    spec = QnewtonSpec.from_dict(SMALL)
    ctx = LocalContext()
    return spec, run(spec, ctx), ctx


def test_summary_keys_and_provenance(small: tuple[QnewtonSpec, dict[str, Any], LocalContext]) -> None:
    _, result, ctx = small
    for key in get_kind("qnewton").summary_keys:
        assert result[key] is not None, key
    assert all(v.split()[0] in ("simulated", "computed", "estimated") for v in result["labels"].values())
    assert ctx.series("test_accuracy")


def test_every_block_of_every_step_is_scheduled_and_timed(
        small: tuple[QnewtonSpec, dict[str, Any], LocalContext]) -> None:
    spec, result, _ = small
    records = result["records"]
    steps = {r["step"] for r in records}
    assert len(records) == 4 * len(steps) and {r["layer"] for r in records} == {"W1", "b1", "W2", "b2"}
    assert result["n_quantum_solves"] + result["n_classical_solves"] == len(records)
    for r in records:
        assert r["choice"] in ("quantum", "classical")
        if r["kappa_exact"] > spec.kappa_threshold:
            assert r["choice"] == "classical"
        assert r["kappa_bound"] >= r["kappa_exact"] * (1 - 1e-9)
    # Q-Newton and classical Newton take the same steps (only the solver's time differs)
    q, n = result["optimizers"]["qnewton"]["steps"], result["optimizers"]["newton"]["steps"]
    assert [s["batch_loss"] for s in q] == pytest.approx([s["batch_loss"] for s in n], rel=1e-9)
    assert set(result["optimizers"]) == {"qnewton", "newton", "sgd", "adam"}
    assert result["speedup_vs_sgd"] == pytest.approx(result["sgd_time_s"] / result["total_time_estimated_s"])


def test_gate_time_scenarios_are_monotone(small: tuple[QnewtonSpec, dict[str, Any], LocalContext]) -> None:
    _, result, _ = small
    curve = sorted(result["gate_time_curve"], key=lambda p: p["gate_time_s"])
    totals = [p["total_time_s"] for p in curve]
    assert all(a <= b + 1e-12 for a, b in itertools.pairwise(totals))
    assert [s["gate_time_s"] for s in result["scenarios"]] == [1e-9, 1e-18]
    assert result["scenarios"][1]["n_quantum"] >= result["scenarios"][0]["n_quantum"]


def test_hhl_demo_rows(small: tuple[QnewtonSpec, dict[str, Any], LocalContext]) -> None:
    _, result, _ = small
    rows = result["hhl"]
    assert {r["clock_qubits"] for r in rows} == {3, 4, 5}
    assert all(0.0 <= r["fidelity"] <= 1.0 + 1e-9 and 0.0 < r["success_probability"] <= 1.0 for r in rows)


@pytest.mark.parametrize(
    ("change", "field"),
    [({"gate_time_s": 1e-3}, "gate_time_s"), ({"gate_time_s": 1e-20}, "gate_time_s"),
     ({"prune_ratio": 0}, "prune_ratio"),
     ({"dataset": "digits", "hidden_units": 64}, "hidden_units"), ({"epsilon_norm": 0}, "epsilon_norm"),
     ({"optimizer": "lbfgs"}, "optimizer"), ({"hhl_size": 3}, "hhl_size")],
)
def test_bad_specs_name_the_field(change: dict[str, Any], field: str) -> None:
    with pytest.raises(SpecError) as err:
        QnewtonSpec.from_dict(change)
    assert err.value.field == field


@pytest.mark.slow  # a CLI process trains; tests/test_cli.py covers `submit --wait` in the fast suite
def test_cli_submit_wait_json(db_url: str, tmp_path: Path) -> None:
    spec_file = tmp_path / "spec.json"
    spec_file.write_text(json.dumps({**SMALL, "epochs": 1, "baselines": False, "hhl_demo": False}))
    code, out, err = run_cli(db_url, "submit", "qnewton", "--spec", str(spec_file), "--wait", "--json", timeout=300)
    assert code == 0, err
    result = json.loads(out)["result"]
    assert set(get_kind("qnewton").summary_keys) <= set(result)
    assert result["sgd_time_s"] is None  # no baselines asked for
