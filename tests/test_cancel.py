"""Every run can be stopped: cancel in long phases, hard kill of a run stuck in one native call, SIGTERM
to a worker mid-run, and the per-run time limit; all with real worker processes on a real database.
Also, per kind, that a large run checks for cancellation early (LocalContext)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from typing import Any

import pytest
from helpers import LONG_QNN, TINY_QNN, Processes, wait_for

from db import CANCELLED, FAILED, QUEUED, RUNNING, SUCCEEDED, RunRecord, Storage
from qmlapp import services
from qmlapp.context import LocalContext, RunCancelled
from qmlapp.registry import get_kind, parse_spec

# The reported run: 10^6 noisy trajectories per row; it spends its first hours in the initial evaluation.
HEAVY_SHOTS_QNN: dict[str, Any] = {"dataset": "banknote", "n_qubits": 4, "optimizer": "adam", "batch_size": 4,
                                   "noise_1q": 0.01, "shots": 1_000_000}
# A quick initial evaluation (few validation rows), then training steps of ~20 s each in one TFQ call
# (parameter shift over 10^4 noisy trajectories per circuit) that cannot check for a cancel.
STUCK_QNN: dict[str, Any] = {**HEAVY_SHOTS_QNN, "shots": 10_000, "validation_fraction": 0.02}


pytestmark = pytest.mark.slow  # real worker processes cancelled, killed and SIGTERMed: `make test-slow`

def running(storage: Storage, run_id: int, message_prefix: str = "") -> RunRecord | None:
    run = storage.get_run(run_id)
    if run.finished:
        pytest.fail(f"run {run_id} ended ({run.status}: {run.error}) before it could be interrupted")
    if run.status == RUNNING and run.message.startswith(message_prefix):
        return run
    return None


def group_gone(pgid: int) -> bool:
    """No process (worker, run process) of the worker's process group is left."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return True
    return False


def run_processes_started(processes: Processes) -> int:
    return len(re.findall(r"started run process", processes.logs()))


def test_cancel_while_preparing_the_reported_heavy_shots_run(storage: Storage, processes: Processes) -> None:
    processes.start("worker")
    run = services.submit_run(storage, "qnn", HEAVY_SHOTS_QNN)
    wait_for(lambda: running(storage, run.id, "preparing data"), 180, "the run to prepare its data",
             interval=0.1, details=processes.logs)
    time.sleep(3)  # well inside the initial evaluation of 275 rows × 10^6 shots
    assert storage.get_run(run.id).progress < 0.05
    storage.request_cancel(run.id)
    asked = time.monotonic()
    got = wait_for(lambda: (r := storage.get_run(run.id)).finished and r, 15, "the cancel to take effect",
                   interval=0.1, details=processes.logs)
    assert time.monotonic() - asked < 15
    assert (got.status, got.message, got.error, got.result) == (CANCELLED, "cancelled by user", None, None)
    # The worker goes on: the next run succeeds.
    after = services.submit_run(storage, "qnn", TINY_QNN)
    wait_for(lambda: storage.get_run(after.id).finished, 120, "the next run", details=processes.logs)
    assert storage.get_run(after.id).status == SUCCEEDED, storage.get_run(after.id).error


def test_run_stuck_in_one_long_call_is_killed_after_the_grace_period(storage: Storage,
                                                                    processes: Processes) -> None:
    processes.start("worker")
    run = services.submit_run(storage, "qnn", STUCK_QNN)
    wait_for(lambda: running(storage, run.id, "training"), 240, "the run to start training", interval=0.1,
             details=processes.logs)
    time.sleep(1)  # inside the first (uninterruptible) training step
    before = run_processes_started(processes)
    storage.request_cancel(run.id)
    asked = time.monotonic()
    got = wait_for(lambda: (r := storage.get_run(run.id)).finished and r, 15, "the hard cancel", interval=0.1,
                   details=processes.logs)
    assert time.monotonic() - asked < 15
    assert (got.status, got.message, got.error) == (CANCELLED, "cancelled by user", None)
    assert "did not stop within" in processes.logs()  # it was the kill, not a check
    # A fresh run process took over, and the worker runs the next queued run to success.
    after = services.submit_run(storage, "qnn", TINY_QNN)
    wait_for(lambda: storage.get_run(after.id).finished, 180, "the next run", details=processes.logs)
    assert storage.get_run(after.id).status == SUCCEEDED, storage.get_run(after.id).error
    assert run_processes_started(processes) == before + 1


@pytest.mark.parametrize("args", [(), ("--concurrency", "2")], ids=["single", "concurrency-2"])
def test_sigterm_mid_run_ends_the_worker_within_seconds(storage: Storage, processes: Processes,
                                                       args: tuple[str, ...]) -> None:
    proc = processes.start("worker", *args)
    run = services.submit_run(storage, "qnn", STUCK_QNN)
    wait_for(lambda: running(storage, run.id, "training"), 240, "the run to start training", interval=0.1,
             details=processes.logs)
    time.sleep(1)
    proc.send_signal(signal.SIGTERM)
    sent = time.monotonic()
    try:
        rc = proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        pytest.fail(f"worker still running 15 s after SIGTERM\n{processes.logs()}")
    took = time.monotonic() - sent
    limit = 5.0 if not args else 8.0  # the supervisor notices its signal within 1 s, then stops its workers
    assert took < limit, (took, processes.logs())
    assert rc == 0, processes.logs()
    wait_for(lambda: group_gone(proc.pid), 5, "the run process to be gone", details=processes.logs)
    got = storage.get_run(run.id)
    assert (got.status, got.worker_id, got.message) == (QUEUED, None, "requeued: worker was stopped during the run")


def test_time_limit_fails_a_long_run(storage: Storage, processes: Processes) -> None:
    processes.start("worker", env={"QMLAPP_RUN_TIME_LIMIT_S": "2"})
    long_run = services.submit_run(storage, "qnn", LONG_QNN)
    stuck = services.submit_run(storage, "qnn", STUCK_QNN)  # killed: its steps do not check
    wait_for(lambda: all(storage.get_run(r.id).finished for r in (long_run, stuck)), 300,
             "the runs to end", interval=0.2, details=processes.logs)
    for r in (long_run, stuck):
        got = storage.get_run(r.id)
        assert (got.status, got.error) == (FAILED, "time limit exceeded (2 s)"), got
    # The limit counts computing time: the first run also waited for the run process to warm up.
    got = storage.get_run(stuck.id)
    assert got.duration_s is not None and got.duration_s < 2 + 8, got


# --- cooperative checks per kind ----------------------------------------------------------------
# Large specs of each kind; each must reach its first cancel checks within seconds.
LARGE_SPECS: dict[str, dict[str, Any]] = {
    "qnn": HEAVY_SHOTS_QNN,
    "hypernet": {"n_points": 20_000, "restarts": 100, "max_iterations": 5000},
    "qnetwork": {"n_features": 2**16, "n_inputs": 1000},
    "qnewton": {"epochs": 200},  # with 128 hidden units one W1 solve alone takes a minute: killed, not checked
    "sparse_qgd": {"dense_epochs": 200, "hidden_units": 256},
}


@pytest.mark.parametrize("kind", list(LARGE_SPECS))
@pytest.mark.parametrize("checks", [0, 3])
def test_large_run_checks_for_cancel_early(kind: str, checks: int) -> None:
    spec = parse_spec(kind, LARGE_SPECS[kind])
    ctx = LocalContext(cancel_after_steps=checks)
    started = time.monotonic()
    with pytest.raises(RunCancelled):
        get_kind(kind).load_runner()(spec, ctx)
    assert time.monotonic() - started < 60
