"""No sweep definition can take down a process: spaces are sized without being built, refused above
documented limits with the field named, and a sweep whose trials cannot be generated ends "failed" once.

Everything is real: SQLite files, Optuna's journal and samplers, the CLI in a subprocess.
"""

from __future__ import annotations

import contextlib
import json
import math
import signal
import tracemalloc
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import optuna
import pytest
import sqlalchemy as sa
from helpers import goto
from sqlalchemy.orm import Session

from db import SUCCEEDED, Storage
from db.models import Sweep
from qmlapp import sweeps
from qmlapp.analysis import Categorical
from qmlapp.specs import SpecError

TINY_BASE = {"dataset": "banknote", "n_qubits": 2, "depth": 1, "epochs": 1}
# 5000 × 1024 × 20 = 1.0e8 grid points: listing them (or Optuna's GridSampler) needs gigabytes.
HUGE_GRID = {"kind": "qnn", "base": TINY_BASE, "sampler": "grid", "n_trials": 20,
             "space": {"epochs": {"low": 1, "high": 5000}, "batch_size": {"low": 1, "high": 1024},
                       "depth": {"low": 1, "high": 20}}}
MB = 1024 * 1024


@contextlib.contextmanager
def peak_allocation() -> Iterator[list[int]]:
    """Peak bytes allocated by Python inside the block (tracemalloc), appended to the yielded list."""
    sweeps.SweepSpec.from_dict({"base": TINY_BASE, "space": {"depth": [1, 2]}})  # imports, caches: not counted
    out: list[int] = []
    tracemalloc.start()
    try:
        yield out
    finally:
        out.append(tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()


@contextlib.contextmanager
def deadline(seconds: int) -> Iterator[None]:
    """Fail (instead of hanging the suite) when the block runs longer than a generous bound."""
    def expired(*_: Any) -> None:
        raise TimeoutError(f"still running after {seconds} s: not linear")

    old = signal.signal(signal.SIGALRM, expired)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def test_a_huge_grid_is_refused_naming_a_field_without_being_built(storage: Storage) -> None:
    with peak_allocation() as peak, pytest.raises(SpecError) as err:
        sweeps.SweepSpec.from_dict(HUGE_GRID)
    assert err.value.field == "space.epochs"  # the field with the most values
    assert f"limit of {sweeps.MAX_GRID_POINTS}" in err.value.message and "1.0e+08 points" in err.value.message
    assert peak[0] < 2 * MB, f"sizing the grid allocated {peak[0] / MB:.1f} MB"
    with pytest.raises(SpecError):
        sweeps.create_sweep(storage, HUGE_GRID)
    assert storage.list_sweeps() == [] and storage.list_runs() == []


def test_grid_size_is_exact_at_the_limit_and_one_over_it_is_refused() -> None:
    at_limit = {**HUGE_GRID, "space": {"epochs": {"low": 1, "high": 5000}, "depth": {"low": 1, "high": 20}}}
    assert sweeps.SweepSpec.from_dict(at_limit).grid_size == sweeps.MAX_GRID_POINTS == 5000 * 20
    over = {**HUGE_GRID, "space": {"epochs": {"low": 1, "high": 5000, "step": 2},
                                   "depth": {"low": 1, "high": 20}, "encoding": ["angle", "z_feature_map"],
                                   "n_qubits": [2, 3, 4]}}
    with pytest.raises(SpecError) as err:  # 2500 × 20 × 2 × 3 = 300000
        sweeps.SweepSpec.from_dict(over)
    assert err.value.field == "space.epochs" and "= 300000 points" in err.value.message


@pytest.mark.parametrize(
    ("entry", "words"),
    [({"low": -10.0, "high": 10.0, "step": 1e-300}, "limit of 10000 per field"),
     ({"low": -10.0, "high": 10.0, "step": 5e-324}, "limit of 10000 per field"),  # (high - low) / step = inf
     ({"low": -10.0, "high": 10.0, "step": 1e-3}, "20001 values"),
     ({"low": -10.0, "high": 10.0, "step": 0.0}, "positive"),
     ({"low": -10.0, "high": 10.0, "step": -0.5}, "positive"),
     ({"low": -10.0, "high": 10.0, "step": math.nan}, "positive"),
     ({"low": math.nan, "high": 10.0, "step": 0.5}, "finite"),
     ({"low": -10.0, "high": math.inf, "step": 0.5}, "finite"),
     ({"low": -10.0, "high": 10.0}, "'step'")],
)
def test_a_float_grid_with_an_absurd_step_is_refused_at_once(entry: dict[str, Any], words: str) -> None:
    with peak_allocation() as peak, pytest.raises(SpecError) as err:
        sweeps.SweepSpec.from_dict({"base": TINY_BASE, "sampler": "grid", "space": {"init_constant": entry}})
    assert err.value.field == "space.init_constant" and words in err.value.message
    assert peak[0] < MB


def test_an_integer_range_over_the_per_field_limit_is_refused() -> None:
    with peak_allocation() as peak, pytest.raises(SpecError) as err:  # shots: 0 … 1,000,000
        sweeps.SweepSpec.from_dict({"base": TINY_BASE, "sampler": "grid",
                                    "space": {"shots": {"low": 0, "high": 1_000_000}}})
    assert err.value.field == "space.shots" and "1000001 values" in err.value.message
    assert peak[0] < MB
    # The same range is fine for samplers that draw from it instead of listing it.
    spec = sweeps.SweepSpec.from_dict({"base": TINY_BASE, "sampler": "random",
                                       "space": {"shots": {"low": 0, "high": 1_000_000}}})
    assert spec.effective_trials() == 20


def test_a_long_list_of_values_validates_in_linear_time() -> None:
    n = 100_000
    values = [round(1e-4 * (i + 1), 8) for i in range(n)]  # distinct learning rates
    with deadline(120):  # a pairwise duplicate check would take hours here
        spec = sweeps.SweepSpec.from_dict({"base": TINY_BASE, "sampler": "random", "n_trials": 10,
                                           "space": {"learning_rate": values}})
        dim = spec.space["learning_rate"]
        assert isinstance(dim, Categorical)
        assert len(dim.choices) == n == sweeps.MAX_CHOICES
        assert dim.code(values[-1]) == n - 1 and dim.code(20.0) is None
        with pytest.raises(SpecError) as err:  # a duplicate at the very end is still found
            sweeps.SweepSpec.from_dict({"base": TINY_BASE, "sampler": "random", "n_trials": 10,
                                        "space": {"learning_rate": [*values[:-1], values[0]]}})
    assert err.value.field == "space.learning_rate" and "indistinguishable" in err.value.message
    with peak_allocation() as peak, pytest.raises(SpecError) as err:  # one more is refused before any work
        sweeps.SweepSpec.from_dict({"base": TINY_BASE, "space": {"learning_rate": [*values, 0.5]}})
    assert err.value.field == "space.learning_rate" and f"limit of {sweeps.MAX_CHOICES}" in err.value.message
    assert peak[0] < MB
    # Optuna's journal stores every listed value with every trial: many values need few trials.
    with pytest.raises(SpecError) as err:
        sweeps.SweepSpec.from_dict({"base": TINY_BASE, "sampler": "random", "n_trials": 21,
                                    "space": {"learning_rate": values[:50_000]}})
    assert err.value.field == "space.learning_rate" and "trials" in err.value.message


def test_lazy_grid_keeps_optunas_grid_order() -> None:
    """Grid sweeps stored before (asked through Optuna's GridSampler) carry on with the same points."""
    spec = sweeps.SweepSpec.from_dict({"base": TINY_BASE, "sampler": "grid", "seed": 7, "space": {
        "encoding": ["angle", "z_feature_map", "reuploading"], "depth": {"low": 1, "high": 4},
        "init_constant": {"low": -1.0, "high": 1.0, "step": 0.5}}})
    grid = optuna.samplers.GridSampler({d.name: sweeps.grid_values(d) for d in spec.space}, seed=7)
    lazy = sweeps.LazyGridSampler(spec.space, 7)
    names = sorted(d.name for d in spec.space)
    assert spec.grid_size == 60
    assert [lazy.point(n) for n in range(60)] == [dict(zip(names, grid._all_grids[n], strict=True))
                                                  for n in range(60)]


def test_a_grid_at_the_limit_queues_its_first_trials_lazily(storage: Storage) -> None:
    definition = {**HUGE_GRID, "space": {"epochs": {"low": 1, "high": 5000}, "depth": {"low": 1, "high": 20}}}
    with peak_allocation() as peak:
        sweep = sweeps.create_sweep(storage, definition, workers=2)
    assert peak[0] < 20 * MB, f"creating the sweep allocated {peak[0] / MB:.1f} MB"
    runs = storage.list_runs(sweep_id=sweep.id)
    assert len(runs) == 3  # workers + 1, not the grid
    assert all(1 <= r.spec["epochs"] <= 5000 and 1 <= r.spec["depth"] <= 20 for r in runs)
    assert sweeps.sweep_json(storage, sweep.id)["n_trials"] == 20


def _set_definition(db_url: str, sweep_id: int, definition: dict[str, Any]) -> None:
    """Change a stored definition behind the app's back (as an older version or a hand edit would)."""
    engine = sa.create_engine(db_url)
    try:
        with Session(engine) as s:
            row = s.get(Sweep, sweep_id)
            assert row is not None
            row.definition = definition
            s.commit()
    finally:
        engine.dispose()


def _untouched_by_a_second_advance(storage: Storage, sweep_id: int) -> None:
    before = storage.get_sweep(sweep_id)
    journal, runs = len(storage.read_journal(sweep_id)), len(storage.list_runs(sweep_id=sweep_id))
    sweeps.advance_all(storage, workers=2)
    assert storage.get_sweep(sweep_id) == before
    assert len(storage.read_journal(sweep_id)) == journal and len(storage.list_runs(sweep_id=sweep_id)) == runs


@pytest.mark.parametrize("space", [HUGE_GRID["space"], {"nonsense": [1, 2]}])
def test_a_stored_definition_that_no_longer_validates_fails_once(storage: Storage, space: dict[str, Any]) -> None:
    sweep = storage.create_sweep("qnn", {**HUGE_GRID, "space": space}, name="stored by an older version")
    sweeps.advance_all(storage)
    record = storage.get_sweep(sweep.id)
    assert record.status == "failed" and record.finished_at is not None
    assert "invalid sweep definition" in record.message and "space." in record.message
    assert storage.list_runs(sweep_id=sweep.id) == []
    _untouched_by_a_second_advance(storage, sweep.id)
    doc = sweeps.sweep_json(storage, sweep.id)  # the CLI and the page can still list it
    assert doc["status"] == "failed" and doc["n_trials"] == 0


def test_a_sweep_whose_sampler_raises_fails_once(storage: Storage, db_url: str) -> None:
    sweep = sweeps.create_sweep(storage, {"base": TINY_BASE, "sampler": "random", "n_trials": 6, "seed": 1,
                                          "space": {"depth": {"low": 1, "high": 3}}})
    definition = dict(storage.get_sweep(sweep.id).definition)
    _set_definition(db_url, sweep.id, {**definition, "space": {"depth": [1, 2]}})  # valid, but not for Optuna
    while (run := storage.claim_next_run("test-worker", sweep_id=sweep.id)) is not None:
        storage.finish_run(run.id, "test-worker", SUCCEEDED, result={"val_accuracy": 0.5, "val_loss": 0.5})
    sweeps.advance_all(storage)
    record = storage.get_sweep(sweep.id)
    assert record.status == "failed"
    assert record.message.startswith("cannot generate trials: ValueError") and "distribution" in record.message
    _untouched_by_a_second_advance(storage, sweep.id)


def test_cli_refuses_a_huge_grid_without_storing(cli: Any, tmp_path: Path, storage: Storage) -> None:
    path = tmp_path / "huge.json"
    path.write_text(json.dumps(HUGE_GRID))
    code, out, err = cli("sweep", "--spec", str(path), "--json", timeout=120)
    assert code == 2 and out == "", err
    assert "space.epochs" in err and f"limit of {sweeps.MAX_GRID_POINTS}" in err and "Traceback" not in err
    assert storage.list_sweeps() == [] and storage.list_runs() == []


def test_sweeps_page_shows_a_sweep_whose_definition_no_longer_validates(app: Any, storage: Storage) -> None:
    sweep = storage.create_sweep("qnn", HUGE_GRID, name="stored by an older version")
    sweeps.advance_all(storage)
    goto(app, "sweeps").run()
    assert not app.exception, [e.value for e in app.exception]
    assert any("space.epochs" in e.value for e in app.error)
    app.button(key=f"sweep_delete_{sweep.id}").click().run()
    assert not app.exception, [e.value for e in app.exception]
    assert len(storage.list_sweeps()) == 1  # asked first
    app.button(key=f"sweep_delete_{sweep.id}_confirm").click().run()
    assert not app.exception, [e.value for e in app.exception]
    assert storage.list_sweeps() == []
