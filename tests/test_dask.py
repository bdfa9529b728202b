"""Sweep trials on a real Dask cluster: a LocalCluster of two worker processes over TCP on loopback.

The cluster is shared by the module (each Dask worker imports TensorFlow once, ~10 s); every test has
its own database. No mocks: the trials are real ``qnn`` runs executed in the Dask worker processes.
"""

from __future__ import annotations

import dataclasses
import json
import os
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import distributed
import pytest
from helpers import TINY_QNN, sqlite_url, wait_for

from db import FAILED, QUEUED, SUCCEEDED, Storage
from qmlapp import sweeps
from qmlapp.config import Settings
from qmlapp.distributed import DaskDispatcher
from qmlapp.worker import Worker

pytestmark = pytest.mark.slow

GRID = {"base": dict(TINY_QNN), "space": {"learning_rate": [0.05, 0.2], "depth": [1, 2]},
        "sampler": "grid", "n_trials": 4, "objective": "val_accuracy", "seed": 0}

SLOW_STALE_S = 30.0


@pytest.fixture(scope="module")
def cluster() -> Iterator[Any]:
    with warnings.catch_warnings():
        # The scheduler's HTTP endpoint (health checks) moves off a busy :8787 even without a dashboard.
        warnings.filterwarnings("ignore", "Port .* is already in use", UserWarning)
        c = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, protocol="tcp",
                                     host="127.0.0.1", dashboard_address=None)
    with c:
        yield c


@pytest.fixture(scope="module")
def client(cluster: Any) -> Iterator[Any]:
    with distributed.Client(cluster, set_as_default=False) as c:
        yield c


@pytest.fixture
def dask_settings(settings: Settings, cluster: Any) -> Settings:
    # A generous stale threshold: importing TensorFlow on a loaded 2-core machine can starve heartbeats.
    return dataclasses.replace(settings, dask_address=cluster.scheduler_address, stale_after_s=SLOW_STALE_S)


def _dask_pids(client: Any) -> set[int]:
    return set(client.run(os.getpid).values())


def _executor_pids(storage: Storage, runs: list[Any]) -> set[int]:
    workers = {w.id: w for w in storage.list_workers()}
    return {workers[r.worker_id].pid for r in runs}


def test_sweep_trials_run_on_the_cluster_and_ordinary_runs_stay_local(
        storage: Storage, dask_settings: Settings, client: Any) -> None:
    ordinary = storage.create_run("qnn", dict(TINY_QNN), name="not a sweep trial")
    sweep = sweeps.create_sweep(storage, GRID, workers=2)
    # A local worker in Dask mode leaves the queued trials alone (it would take `ordinary`, so it is not run here).
    assert storage.list_runs(sweep_id=sweep.id, statuses=[QUEUED])
    dispatcher = DaskDispatcher(dask_settings, storage, client).start()
    try:
        wait_for(lambda: storage.get_sweep(sweep.id).status != sweeps.ACTIVE, 120, "the sweep to finish",
                 interval=0.2)
    finally:
        dispatcher.stop()
    doc = sweeps.sweep_json(storage, sweep.id)
    assert doc["status"] == SUCCEEDED and doc["n_succeeded"] == 4, doc
    runs = storage.list_runs(sweep_id=sweep.id)
    assert len(runs) == 4 and {r.status for r in runs} == {SUCCEEDED}
    assert all(r.worker_id and r.worker_id.startswith("dask-127.0.0.1-") for r in runs)
    assert all(r.result and 0 <= r.result["val_accuracy"] <= 1 for r in runs)
    pids = _executor_pids(storage, runs)
    assert pids <= _dask_pids(client) and os.getpid() not in pids
    assert len(pids) == 2  # both Dask workers took trials
    assert storage.get_run(ordinary.id).status == QUEUED  # the dispatcher takes sweep trials only


def test_worker_command_sends_trials_to_the_cluster_and_runs_ordinary_runs_itself(
        storage: Storage, processes: Any, cluster: Any, client: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QMLAPP_DASK_ADDRESS", cluster.scheduler_address)
    sweep = sweeps.create_sweep(storage, {**GRID, "n_trials": 2, "space": {"depth": [1, 2]}}, workers=1)
    ordinary = storage.create_run("qnn", dict(TINY_QNN), name="not a sweep trial")
    # one local worker process + its DaskDispatcher thread
    proc = processes.start("worker", env={"QMLAPP_STALE_AFTER_S": str(SLOW_STALE_S)})
    wait_for(lambda: storage.get_sweep(sweep.id).status != sweeps.ACTIVE and storage.get_run(ordinary.id).finished,
             150, "the sweep and the ordinary run to finish", interval=0.3, details=processes.logs)
    assert storage.get_sweep(sweep.id).status == SUCCEEDED, processes.logs()
    runs = storage.list_runs(sweep_id=sweep.id)
    assert len(runs) == 2 and all(r.worker_id and r.worker_id.startswith("dask-") for r in runs)
    assert _executor_pids(storage, runs) <= _dask_pids(client)
    local = storage.get_run(ordinary.id)
    assert local.status == SUCCEEDED and local.worker_id and local.worker_id.startswith("worker-")
    assert _executor_pids(storage, [local]) == {proc.pid}


def test_local_worker_in_dask_mode_claims_no_sweep_trial(storage: Storage, dask_settings: Settings) -> None:
    sweep = sweeps.create_sweep(storage, GRID, workers=2)
    queued = {r.id for r in storage.list_runs(sweep_id=sweep.id, statuses=[QUEUED])}
    assert Worker(dask_settings, storage).run_once() is None
    assert {r.id for r in storage.list_runs(sweep_id=sweep.id, statuses=[QUEUED])} >= queued


def test_a_task_that_cannot_reach_the_database_fails_its_run_with_a_reason(
        storage: Storage, dask_settings: Settings, client: Any, tmp_path: Path) -> None:
    sweep = sweeps.create_sweep(storage, {**GRID, "n_trials": 1, "space": {"depth": [1]}})
    # The Dask workers get a URL of an empty database: the task fails before execute_run can end the run.
    broken = sqlite_url(tmp_path / "elsewhere" / "empty.db")
    dispatcher = DaskDispatcher(dask_settings, storage, client, worker_database_url=broken).start()
    try:
        wait_for(lambda: storage.get_sweep(sweep.id).status != sweeps.ACTIVE, 60, "the sweep to end", interval=0.2)
    finally:
        dispatcher.stop()
    (run,) = storage.list_runs(sweep_id=sweep.id)
    assert run.status == FAILED and run.error and "Dask task failed" in run.error and "no such table" in run.error
    assert storage.get_sweep(sweep.id).status == "failed"


def test_cli_sweep_wait_runs_the_trials_on_the_cluster(cli: Any, storage: Storage, cluster: Any, client: Any,
                                                        tmp_path: Path) -> None:
    path = tmp_path / "sweep.json"
    path.write_text(json.dumps(GRID))
    code, out, err = cli("sweep", "--spec", str(path), "--wait", "--json", timeout=180,
                         env={"QMLAPP_DASK_ADDRESS": cluster.scheduler_address,
                              "QMLAPP_STALE_AFTER_S": str(SLOW_STALE_S)})
    assert code == 0, err
    doc = json.loads(out)
    assert doc["status"] == SUCCEEDED and doc["n_succeeded"] == 4, doc
    runs = storage.list_runs(sweep_id=doc["id"])
    assert len(runs) == 4 and all(r.worker_id and r.worker_id.startswith("dask-") for r in runs)
    assert _executor_pids(storage, runs) <= _dask_pids(client)


def test_cli_names_an_unreachable_scheduler(cli: Any, storage: Storage, tmp_path: Path) -> None:
    path = tmp_path / "sweep.json"
    path.write_text(json.dumps(GRID))
    code, out, err = cli("sweep", "--spec", str(path), "--wait", "--json",
                         env={"QMLAPP_DASK_ADDRESS": "tcp://127.0.0.1:1"})
    assert code == 2 and out == "", err
    assert "QMLAPP_DASK_ADDRESS=tcp://127.0.0.1:1" in err and "Traceback" not in err
    assert storage.list_sweeps() == []  # nothing stored
