"""Sweeps: validation, Optuna samplers through ask/tell, trial bookkeeping, cancel/resume, CLI.

Most tests finish trial runs through the storage API exactly as a worker does (claim, finish with a
result), so that the sampler's behaviour is tested quickly and exactly; the end-to-end tests run the
real ``qnn`` kind on real worker processes.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from helpers import wait_for

from db import CANCELLED, RUNNING, SUCCEEDED, Storage
from qmlapp import sweeps
from qmlapp.specs import SpecError

TINY_BASE = {"dataset": "banknote", "n_qubits": 2, "depth": 1, "epochs": 1}


def _definition(**over: Any) -> dict[str, Any]:
    d: dict[str, Any] = {
        "base": dict(TINY_BASE),
        "space": {"learning_rate": {"low": 1e-3, "high": 0.5, "log": True},
                  "encoding": ["angle", "z_feature_map"], "depth": {"low": 1, "high": 3}},
        "sampler": "random", "n_trials": 6, "objective": "val_accuracy", "repeats": 1, "seed": 3,
    }
    d.update(over)
    return d


def _finish_queued(storage: Storage, sweep_id: int, value_of: Any = None) -> int:
    """Play the worker: claim each queued trial run and finish it with a deterministic objective."""
    done = 0
    while (run := storage.claim_next_run("test-worker", sweep_id=sweep_id)) is not None:
        value = value_of(run.spec) if value_of else 0.5 + 0.01 * (run.spec["depth"] or 0)
        storage.finish_run(run.id, "test-worker", SUCCEEDED, result={"val_accuracy": value, "val_loss": 1 - value})
        done += 1
    return done


def _drive(storage: Storage, sweep_id: int, workers: int = 1, value_of: Any = None) -> list[dict[str, Any]]:
    for _ in range(200):
        sweeps.advance_sweep(storage, sweep_id, workers=workers)
        if storage.get_sweep(sweep_id).status != sweeps.ACTIVE:
            break
        _finish_queued(storage, sweep_id, value_of)
    return [r.params for r in sweeps.trial_rows(storage, sweep_id)]


@pytest.mark.parametrize("sampler", ["random", "tpe"])
def test_sampler_proposals_are_deterministic_for_a_seed(storage: Storage, sampler: str) -> None:
    seqs = []
    for seed, workers in ((3, 1), (3, 3), (4, 1)):  # batching (workers) must not change the sequence
        sweep = sweeps.create_sweep(storage, _definition(sampler=sampler, seed=seed, n_trials=12), workers=workers)
        seqs.append(_drive(storage, sweep.id, workers=workers))
        assert storage.get_sweep(sweep.id).status == SUCCEEDED
    assert len(seqs[0]) == 12
    if sampler == "random":
        assert seqs[0] == seqs[1]
    else:  # TPE conditions on finished trials, so only its random start-up phase is batch-independent
        assert seqs[0][:3] == seqs[1][:3]
    assert seqs[0] != seqs[2]


def test_grid_runs_every_point_once_and_caps_the_budget(storage: Storage) -> None:
    d = _definition(sampler="grid", n_trials=50, space={"encoding": ["angle", "z_feature_map"],
                                                         "depth": {"low": 1, "high": 3}})
    spec = sweeps.SweepSpec.from_dict(d)
    assert spec.grid_size == 6 and spec.effective_trials() == 6
    sweep = sweeps.create_sweep(storage, spec, workers=2)
    params = _drive(storage, sweep.id, workers=2)
    assert sorted(map(json.dumps, params)) == sorted(map(json.dumps, sweeps.grid_product(spec)))
    doc = sweeps.sweep_json(storage, sweep.id)
    assert doc["status"] == SUCCEEDED and doc["n_trials"] == 6 and doc["n_succeeded"] == 6
    assert doc["best"]["params"]["depth"] == 3  # the objective used here grows with depth
    assert doc["importance"] and abs(sum(doc["importance"].values()) - 1) < 1e-6


def test_repeats_use_common_seeds_and_average(storage: Storage) -> None:
    d = _definition(n_trials=2, repeats=3, base={**TINY_BASE, "seed": 10})
    sweep = sweeps.create_sweep(storage, d)
    _drive(storage, sweep.id, value_of=lambda spec: spec["seed"] / 100)
    rows = sweeps.trial_rows(storage, sweep.id)
    for row in rows:
        seeds = sorted(storage.get_run(i).seed for i in row.run_ids)
        assert seeds == [10, 11, 12]
        assert row.value == pytest.approx((0.10 + 0.11 + 0.12) / 3)


def test_invalid_combinations_are_recorded_not_queued(storage: Storage) -> None:
    d = _definition(sampler="grid", base={"dataset": "iris", "n_qubits": 4, "epochs": 1},
                    space={"reduction": ["pca", "lda"]})
    sweep = sweeps.create_sweep(storage, d)
    _drive(storage, sweep.id)
    doc = sweeps.sweep_json(storage, sweep.id)
    assert doc["n_invalid"] == 1 and doc["n_succeeded"] == 1
    assert all(r.spec["reduction"] == "pca" for r in storage.list_runs(sweep_id=sweep.id))


def test_cancel_then_resume_reruns_cancelled_trials(storage: Storage) -> None:
    sweep = sweeps.create_sweep(storage, _definition(n_trials=5), workers=3)
    queued = storage.list_runs(sweep_id=sweep.id)
    assert len(queued) == 4  # one trial more than workers, so no worker waits for the sampler
    running = storage.claim_next_run("w", sweep_id=sweep.id)
    assert running is not None
    sweeps.cancel_sweep(storage, sweep.id)
    assert storage.get_sweep(sweep.id).status == CANCELLED
    states = {r.id: r.status for r in storage.list_runs(sweep_id=sweep.id)}
    assert states[running.id] == RUNNING and storage.get_run(running.id).cancel_requested
    assert sorted(s for i, s in states.items() if i != running.id) == [CANCELLED] * 3
    storage.finish_run(running.id, "w", CANCELLED)  # the worker honours the cancel
    sweeps.advance_sweep(storage, sweep.id)  # a cancelled sweep asks for nothing
    assert len(storage.list_runs(sweep_id=sweep.id)) == 4

    sweeps.resume_sweep(storage, sweep.id, workers=3)
    params_before = {r.number: r.params for r in sweeps.trial_rows(storage, sweep.id)}
    _drive(storage, sweep.id, workers=3)
    doc = sweeps.sweep_json(storage, sweep.id)
    assert doc["status"] == SUCCEEDED and doc["n_succeeded"] == 5
    rows = {r.number: r for r in sweeps.trial_rows(storage, sweep.id)}
    for number, params in params_before.items():  # resumed trials keep their configuration
        assert rows[number].params == params and rows[number].state == "complete"


@pytest.mark.parametrize(
    ("change", "field"),
    [({"space": {"n_qubits": [2, 0]}}, "space.n_qubits"),
     ({"space": {"nonsense": [1]}}, "space.nonsense"),
     ({"space": {"seed": [1, 2]}}, "space.seed"),
     ({"space": {"learning_rate": {"low": 0.5, "high": 0.1}}}, "space.learning_rate"),
     ({"space": {"learning_rate": {"low": 0.0, "high": 0.1, "log": True}}}, "space.learning_rate"),
     ({"space": {"encoding": {"low": 1, "high": 2}}}, "space.encoding"),
     ({"space": {}}, "space"),
     ({"sampler": "bayes"}, "sampler"),
     ({"sampler": "grid", "space": {"learning_rate": {"low": 0.01, "high": 0.1}}}, "space.learning_rate"),
     ({"n_trials": 0}, "n_trials"),
     ({"repeats": 99}, "repeats"),
     ({"objective": "accuracy"}, "objective"),
     ({"base": {"learning_rate": -1}}, "base.learning_rate"),
     ({"kind": "nope"}, "kind"),
     ({"extra": 1}, "extra")],
)
def test_bad_sweep_files_name_the_field(storage: Storage, change: dict[str, Any], field: str) -> None:
    with pytest.raises(SpecError) as err:
        sweeps.create_sweep(storage, _definition(**change))
    assert err.value.field == field
    assert storage.list_sweeps() == [] and storage.list_runs() == []


def test_sweep_file_round_trips(storage: Storage) -> None:
    spec = sweeps.SweepSpec.from_dict(_definition())
    again = sweeps.SweepSpec.from_dict(json.loads(json.dumps(spec.to_dict())))
    assert again == spec


@pytest.mark.slow  # a CLI process training trials; the hypernet CLI sweep in test_sweeps_kinds stays fast
def test_cli_sweep_wait_json_runs_real_trials(cli: Any, tmp_path: Path) -> None:
    path = tmp_path / "sweep.json"
    path.write_text(json.dumps({"base": TINY_BASE, "space": {"encoding": ["angle", "z_feature_map", "reuploading"]},
                                "sampler": "grid", "n_trials": 3, "objective": "val_accuracy", "seed": 0}))
    code, out, err = cli("sweep", "--spec", str(path), "--wait", "--json", timeout=300)
    assert code == 0, err
    doc = json.loads(out)
    assert {"id", "status", "n_trials", "n_succeeded", "best", "importance"} <= set(doc)
    assert doc["status"] == "succeeded" and doc["n_trials"] == 3 and doc["n_succeeded"] == 3
    assert doc["best"]["spec"]["encoding"] in ("angle", "z_feature_map", "reuploading")
    assert 0 <= doc["best"]["value"] <= 1
    assert set(doc["importance"]) == {"encoding"} and doc["importance"]["encoding"] == pytest.approx(1.0)


def test_cli_rejects_bad_sweep_without_storing(cli: Any, tmp_path: Path, storage: Storage) -> None:
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(_definition(space={"n_qubits": [0]})))
    code, out, err = cli("sweep", "--spec", str(path), "--json")
    assert code == 2 and out == "" and "space.n_qubits" in err and "Traceback" not in err
    assert storage.list_sweeps() == []


# A worker process; in-process, tests/test_kinds.py has a fresh Worker finish a stored sweep of every kind.
@pytest.mark.slow
def test_a_fresh_worker_picks_up_a_stored_sweep(storage: Storage, processes: Any) -> None:
    """Resume after a restart: the sweep lives in the database only; a new worker process finishes it."""
    sweep = sweeps.create_sweep(storage, _definition(n_trials=3, sampler="random",
                                                     space={"depth": {"low": 1, "high": 2}}))
    proc = processes.start("worker")
    wait_for(lambda: storage.get_sweep(sweep.id).status != sweeps.ACTIVE, 240, "the sweep to finish",
             interval=0.5, details=processes.logs)
    assert storage.get_sweep(sweep.id).status == SUCCEEDED
    assert proc.poll() is None


def test_cli_sweep_needs_one_source_and_a_known_preset(cli: Any, storage: Storage) -> None:
    code, out, err = cli("sweep", "--preset", "nope", "--json")
    assert code == 2 and out == "" and "preset" in err and "banknote_design_study" in err
    code, _, err = cli("sweep", "--json")
    assert code == 2 and "--spec" in err and "--preset" in err
    assert storage.list_sweeps() == []


def test_presets_are_valid_sweeps() -> None:
    """Every preset validates, every grid point of it is a valid run (nothing is recorded invalid), every
    kind has a study, and the studies of the other kinds say how long they take (≤ 15 min on 2 cores)."""
    import re

    from qmlapp.presets import PRESETS
    from qmlapp.registry import KINDS
    from qmlapp.resources import check_memory

    for preset in PRESETS.values():
        spec = sweeps.SweepSpec.from_dict(preset.definition)
        assert spec.kind == preset.definition["kind"] and preset.definition["objective"] == spec.objective
        if spec.kind == "qnn":  # the two design studies of the QNN page
            assert spec.effective_trials() >= 20 and len(spec.space) >= 4
            continue
        minutes = re.search(r"about (\d+) min on 2 cores", preset.description)
        assert minutes and 1 <= int(minutes[1]) <= 15, preset.name
        assert spec.sampler == "grid" and len(spec.space) >= 2
        for point in sweeps.grid_product(spec):
            for r in range(spec.repeats):
                check_memory(spec.trial_spec(point, r))
    assert {p.definition["kind"] for p in PRESETS.values()} == set(KINDS)
