"""Worker state machine with the real ``qnn`` kind: success, failure, cancel, lost ownership, a killed
worker's run recovered by another, graceful stop, and several worker processes."""

from __future__ import annotations

import os
import signal
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from helpers import LONG_QNN, TINY_QNN, Processes, wait_for

from db import CANCELLED, FAILED, QUEUED, RUNNING, SUCCEEDED, RunRecord, Storage
from qmlapp import services
from qmlapp.config import Settings
from qmlapp.context import RunCancelled
from qmlapp.registry import get_kind
from qmlapp.worker import DbRunContext, LostOwnership, Worker, WorkerStopping, execute_run

UTC = timezone.utc  # datetime.UTC needs Python 3.11

# A few seconds of training: long enough to be caught mid-run, short enough to finish on retry.
MEDIUM_QNN: dict[str, Any] = {**TINY_QNN, "epochs": 40}


def started_training(storage: Storage, run_id: int) -> RunRecord | None:
    """The run, once it is running and has logged at least one epoch; else None."""
    run = storage.get_run(run_id)
    if run.status == RUNNING and run.progress > 0 and storage.get_metrics(run_id):
        return run
    if run.finished:
        pytest.fail(f"run {run_id} ended ({run.status}: {run.error}) before it could be interrupted")
    return None


class RunThread:
    """``execute_run`` of a claimed run in a background thread, as a worker would."""

    def __init__(self, storage: Storage, run: RunRecord, worker_id: str, settings: Settings) -> None:
        self.outcome: list[Any] = []
        self.stop = threading.Event()

        def target() -> None:
            try:
                self.outcome.append(execute_run(storage, run, worker_id, settings, self.stop))
            except BaseException as exc:
                self.outcome.append(exc)

        self.thread = threading.Thread(target=target, daemon=True)
        self.thread.start()

    def join(self, timeout: float) -> Any:
        self.thread.join(timeout)
        assert not self.thread.is_alive(), f"execute_run still running after {timeout} s"
        return self.outcome[0]


# --- in-process: the state machine around execute_run ------------------------------------------
def test_worker_runs_a_tiny_qnn_run_to_success(storage: Storage, settings: Settings) -> None:
    run = services.submit_run(storage, "qnn", TINY_QNN)
    worker = Worker(settings, storage)
    assert worker.run_once() == SUCCEEDED
    got = storage.get_run(run.id)
    assert got.status == SUCCEEDED, got.error
    assert (got.progress, got.error, got.traceback, got.attempts, got.worker_id) == (1.0, None, None, 1, worker.id)
    assert got.finished_at is not None and got.started_at is not None and got.finished_at >= got.started_at
    assert got.result is not None
    for key in ("val_accuracy", "test_accuracy"):
        assert 0.0 <= got.result[key] <= 1.0
    assert got.result["wall_time_s"] > 0
    assert set(get_kind("qnn").summary_keys) <= set(services.summary(got))

    metrics = storage.get_metrics(run.id)
    assert {"train_loss", "val_accuracy"} <= {p.name for p in metrics}
    assert {a.name for a in storage.list_artifacts(run.id)} >= {"circuit.svg", "circuit.qasm"}
    svg = storage.get_artifact(run.id, "circuit.svg")
    qasm = storage.get_artifact(run.id, "circuit.qasm")
    assert svg is not None and svg.content is not None and b"<svg" in svg.content
    assert qasm is not None and qasm.content is not None and b"OPENQASM" in qasm.content
    for dist in ("python", "qmlapp", "tensorflow", "cirq-core", "numpy"):
        assert got.versions.get(dist) not in (None, "", "not installed"), (dist, got.versions)

    assert worker.run_once() is None  # queue is empty now


def _store_bypassing_validation(storage: Storage, kind: str, spec: dict[str, Any]) -> RunRecord:
    """A stored spec the current schema rejects, as one written by an older version would be."""
    return storage.create_run(kind, spec)


def test_invalid_stored_spec_fails_with_reason_and_traceback(storage: Storage, settings: Settings) -> None:
    run = _store_bypassing_validation(
        storage, "qnn", {"kind": "qnn", "schema_version": 1, "dataset": "banknote", "n_qubits": 0, "epochs": 1})
    later = services.submit_run(storage, "qnn", TINY_QNN)
    worker = Worker(settings, storage)
    assert worker.run_once() == FAILED
    got = storage.get_run(run.id)
    assert got.status == FAILED and got.finished_at is not None and got.result is None
    assert got.error is not None and "n_qubits" in got.error and got.error.startswith("invalid spec")
    assert got.traceback is not None and "SpecError" in got.traceback and "Traceback" in got.traceback
    assert got.versions.get("python")
    # The failure is confined to that run: the next one is still queued for the next claim.
    assert storage.get_run(later.id).status == QUEUED


def test_unknown_stored_kind_fails_naming_the_kind(storage: Storage, settings: Settings) -> None:
    run = _store_bypassing_validation(storage, "nosuchkind", {})
    assert Worker(settings, storage).run_once() == FAILED
    got = storage.get_run(run.id)
    assert got.error is not None and "kind" in got.error and "nosuchkind" in got.error


def test_cancel_stops_a_running_qnn_run(storage: Storage, settings: Settings) -> None:
    run = services.submit_run(storage, "qnn", LONG_QNN)
    claimed = storage.claim_run(run.id, "w-cancel")
    assert claimed is not None
    runner = RunThread(storage, claimed, "w-cancel", settings)
    wait_for(lambda: started_training(storage, run.id), 120, "training to start")

    storage.request_cancel(run.id)
    cancelled_at = time.monotonic()
    # Generous bound: the runner checks once per batch (~10 ms), the heartbeat every 0.2 s.
    assert runner.join(timeout=30) == CANCELLED
    assert time.monotonic() - cancelled_at < 30
    got = storage.get_run(run.id)
    assert got.status == CANCELLED and got.finished_at is not None and got.error is None
    assert got.result is None and got.progress < 0.5
    points = storage.get_metrics(run.id)
    assert max(p.step for p in points) < LONG_QNN["epochs"]
    # Nothing keeps writing after the end (e.g. a forgotten heartbeat or training thread).
    time.sleep(3 * settings.heartbeat_s)
    assert storage.get_metrics(run.id) == points
    assert storage.get_run(run.id) == got


def test_worker_abandons_a_run_taken_over_by_another(storage: Storage, settings: Settings) -> None:
    run = services.submit_run(storage, "qnn", LONG_QNN)
    claimed = storage.claim_run(run.id, "w-old")
    assert claimed is not None
    runner = RunThread(storage, claimed, "w-old", settings)
    wait_for(lambda: started_training(storage, run.id), 120, "training to start")
    # What recovery plus a claim by another worker does, in one step (the old heartbeat is fresh).
    with storage.engine.begin() as conn:
        conn.execute(sa.text("UPDATE runs SET worker_id = 'w-new', attempts = attempts + 1 WHERE id = :id"),
                     {"id": run.id})
    assert runner.join(timeout=30) == "lost"
    got = storage.get_run(run.id)
    # The old worker wrote no final state over the new owner's run.
    assert (got.status, got.worker_id, got.attempts, got.error) == (RUNNING, "w-new", 2, None)
    assert storage.finish_run(run.id, "w-new", CANCELLED)


def test_stopping_worker_releases_its_run_to_the_queue(storage: Storage, settings: Settings) -> None:
    run = services.submit_run(storage, "qnn", LONG_QNN)
    claimed = storage.claim_run(run.id, "w-stop")
    assert claimed is not None
    runner = RunThread(storage, claimed, "w-stop", settings)
    wait_for(lambda: started_training(storage, run.id), 120, "training to start")
    runner.stop.set()
    assert runner.join(timeout=30) == "requeued"
    got = storage.get_run(run.id)
    assert (got.status, got.worker_id, got.attempts) == (QUEUED, None, 0)
    assert storage.get_metrics(run.id) == []


def test_run_context_checks(storage: Storage) -> None:
    run = storage.create_run("qnn", TINY_QNN)
    claimed = storage.claim_run(run.id, "w")
    assert claimed is not None
    stop = threading.Event()
    ctx = DbRunContext(storage, claimed, "w", stop, cancel_poll_s=0.0, progress_every_s=0.0)
    ctx.check_cancelled()  # nothing requested
    ctx.progress(0.5, "half")
    assert (storage.get_run(run.id).progress, storage.get_run(run.id).message) == (0.5, "half")
    ctx.log_metrics(3, {"loss": 0.25})
    ctx.save_artifact("note.txt", "héllo", "text/plain")
    art = storage.get_artifact(run.id, "note.txt")
    assert art is not None and art.content == "héllo".encode()
    assert storage.get_metrics(run.id)[0].step == 3

    storage.request_cancel(run.id)
    with pytest.raises(RunCancelled):
        ctx.check_cancelled()
    stop.set()
    with pytest.raises(WorkerStopping):
        ctx.check_cancelled()
    stop.clear()
    storage.finish_run(run.id, "w", CANCELLED)
    ctx.progress(0.9)  # the run is no longer ours
    with pytest.raises(LostOwnership):
        ctx.check_cancelled()


# --- processes ---------------------------------------------------------------------------------
def _stop_process(proc: Any, timeout: float = 60) -> int:
    proc.send_signal(signal.SIGTERM)
    return int(proc.wait(timeout=timeout))


@pytest.mark.slow
def test_killed_worker_run_is_recovered_by_a_fresh_worker(storage: Storage, processes: Processes) -> None:
    first = processes.start("worker")
    victim = services.submit_run(storage, "qnn", MEDIUM_QNN)
    running = wait_for(lambda: started_training(storage, victim.id), 120, "the first worker to train",
                       details=processes.logs)
    dead_worker = running.worker_id
    os.kill(first.pid, signal.SIGKILL)
    first.wait(timeout=30)
    other = services.submit_run(storage, "qnn", TINY_QNN)
    got = storage.get_run(victim.id)
    assert (got.status, got.worker_id, got.attempts) == (RUNNING, dead_worker, 1)  # nobody noticed yet

    second = processes.start("worker")

    def both_finished() -> bool:
        return all(storage.get_run(r.id).finished for r in (victim, other))

    wait_for(both_finished, 120, "both runs to finish on the fresh worker", interval=0.2, details=processes.logs)
    v, o = storage.get_run(victim.id), storage.get_run(other.id)
    assert v.attempts == 2, v  # requeued once after the kill, then run again
    assert v.worker_id != dead_worker
    assert v.status in (SUCCEEDED, FAILED)
    if v.status == FAILED:
        assert v.error
    else:
        assert v.result is not None and "test_accuracy" in v.result
        # Metrics of the killed attempt were dropped: one point per epoch of the retry.
        steps = [p.step for p in storage.get_metrics(victim.id, names=["train_loss"])]
        assert steps == list(range(1, MEDIUM_QNN["epochs"] + 1))
    assert (o.status, o.attempts, o.error) == (SUCCEEDED, 1, None)
    assert o.worker_id == v.worker_id
    assert storage.list_runs(statuses=[RUNNING]) == []
    assert _stop_process(second) == 0


def test_worker_recovery_requeues_once_then_fails(storage: Storage, settings: Settings) -> None:
    """The second death of the same run's worker fails it with a reason instead of retrying forever."""
    run = storage.create_run("qnn", TINY_QNN)
    hour_ago = (datetime.now(UTC) - timedelta(hours=1)).replace(tzinfo=None)  # stored as naive UTC
    for attempt, dead in ((1, "dead-1"), (2, "dead-2")):
        claimed = storage.claim_next_run(dead)
        assert claimed is not None and claimed.attempts == attempt
        with storage.engine.begin() as conn:  # its worker died an hour ago
            conn.execute(sa.text("UPDATE runs SET heartbeat_at = :t WHERE id = :id"), {"t": hour_ago, "id": run.id})
        Worker(settings, storage).recover()
        if attempt == 1:
            requeued = storage.get_run(run.id)
            assert (requeued.status, requeued.attempts) == (QUEUED, 1) and "dead-1" in requeued.message
    got = storage.get_run(run.id)
    assert got.status == FAILED and got.error is not None and "dead-2" in got.error
    assert Worker(settings, storage).run_once() is None


@pytest.mark.slow
def test_sigterm_puts_the_running_run_back_in_the_queue(storage: Storage, processes: Processes) -> None:
    proc = processes.start("worker")
    run = services.submit_run(storage, "qnn", LONG_QNN)
    running = wait_for(lambda: started_training(storage, run.id), 120, "the worker to train",
                       details=processes.logs)
    assert _stop_process(proc) == 0, processes.logs()
    got = storage.get_run(run.id)
    assert (got.status, got.worker_id, got.attempts, got.started_at) == (QUEUED, None, 0, None)
    assert "requeued" in got.message
    assert storage.get_metrics(run.id) == []
    worker = next(w for w in storage.list_workers() if w.id == running.worker_id)
    assert worker.stopped_at is not None and worker.pid == proc.pid


@pytest.mark.slow
def test_concurrency_starts_that_many_worker_processes(storage: Storage, processes: Processes) -> None:
    parent = processes.start("worker", "--concurrency", "2")

    def two_alive() -> list[Any]:
        alive = storage.list_workers(alive_within_s=30)
        return alive if len(alive) == 2 else []

    workers = wait_for(two_alive, 60, "two workers to register", interval=0.1, details=processes.logs)
    pids = {w.pid for w in workers}
    assert len(pids) == 2 and parent.pid not in pids
    assert len({w.id for w in workers}) == 2
    assert _stop_process(parent) == 0, processes.logs()
    stopped = {w.pid: w for w in storage.list_workers()}
    assert all(stopped[pid].stopped_at is not None for pid in pids), stopped
    assert storage.list_workers(alive_within_s=30) == []


def test_a_resumed_worker_writes_no_points_into_a_run_taken_over(storage: Storage) -> None:
    """A paused worker that wakes up after another took its run over adds nothing to that run."""
    run = storage.create_run("qnn", TINY_QNN)
    claimed = storage.claim_run(run.id, "w-paused")
    assert claimed is not None
    ctx = DbRunContext(storage, claimed, "w-paused", threading.Event(), cancel_poll_s=0.0, progress_every_s=0.0)
    ctx.log_metrics(0, {"loss": 1.0})
    with storage.engine.begin() as conn:  # recovered as stale and claimed by another worker meanwhile
        conn.execute(sa.text("UPDATE runs SET worker_id = 'w-new', attempts = attempts + 1 WHERE id = :id"),
                     {"id": run.id})
    ctx.log_metrics(0, {"loss": 1.0})  # the same step again, as the resumed worker would write it
    ctx.save_artifact("late.txt", "x", "text/plain")
    assert [(p.step, p.name) for p in storage.get_metrics(run.id)] == [(0, "loss")]
    assert storage.get_artifact(run.id, "late.txt") is None
    with pytest.raises(LostOwnership):
        ctx.check_cancelled()


def test_worker_claims_nothing_that_would_overflow_memory_with_the_running_runs(
        storage: Storage, settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    """With room for one such run, a second worker on the machine leaves the second one queued."""
    from qmlapp.resources import estimated_bytes

    spec = services.validate_spec("qnn", {**TINY_QNN, "n_qubits": 4})
    monkeypatch.setenv("QMLAPP_MEMORY_LIMIT_GB", str(1.5 * estimated_bytes(spec) / 2**30))
    first, second = (services.submit_run(storage, "qnn", spec) for _ in range(2))
    busy = Worker(settings, storage=storage)
    assert storage.claim_run(first.id, busy.id) is not None  # running on this machine
    other = Worker(settings, storage=storage)
    assert other.storage.claim_next_run(other.id, fits=other._fits) is None
    assert storage.get_run(second.id).status == QUEUED
    storage.finish_run(first.id, busy.id, CANCELLED)
    assert other.run_once() is not None and storage.get_run(second.id).finished


@pytest.mark.slow
def test_worker_keeps_serving_while_its_database_is_unusable(tmp_path: Any, settings: Settings) -> None:
    """A database that fails every request (here: its file replaced by garbage) is retried with a
    growing wait; once it is back, the worker runs what was queued."""
    import dataclasses
    import shutil

    if not settings.database_url.startswith("sqlite"):
        pytest.skip("replaces the SQLite file; PostgreSQL outages are the soak's PostgreSQL restart")
    db_file = Path(sa.make_url(settings.database_url).database or "")
    storage = Storage(settings.database_url)
    backup = tmp_path / "good.db"
    storage.close()
    shutil.copy(db_file, backup)
    db_file.write_bytes(b"this is not a database" * 100)
    fast = dataclasses.replace(settings, poll_s=0.05)
    worker = Worker(fast, storage=Storage(settings.database_url, auto_migrate=False))
    served = threading.Thread(target=worker.serve, kwargs={"max_runs": 1}, daemon=True)
    served.start()
    time.sleep(2.0)
    assert served.is_alive()  # still retrying, not crashed
    shutil.copy(backup, db_file)
    run = services.submit_run(Storage(settings.database_url), "qnn", TINY_QNN)
    served.join(timeout=120)
    assert not served.is_alive()
    assert Storage(settings.database_url).get_run(run.id).status == SUCCEEDED
