"""Storage contract (db/storage.py): records, lifecycle, compare-and-set claims, recovery, migrations.

Dialect-neutral: runs on SQLite, and on PostgreSQL under ``make test-pg`` (see conftest ``db_url``).
"""

from __future__ import annotations

import dataclasses
import threading
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from helpers import claim_loop, open_storage, race, sqlite_url

import db
from db import (
    CANCELLED,
    FAILED,
    QUEUED,
    RUNNING,
    SUCCEEDED,
    ArtifactRecord,
    MetricPoint,
    RunRecord,
    Storage,
    StorageError,
)
from db.storage import DEFAULT_DATABASE_URL, MIGRATIONS
from qmlapp.config import Settings

UTC = timezone.utc  # datetime.UTC needs Python 3.11

SPEC = {"dataset": "banknote", "n_qubits": 2}


def make_stale(storage: Storage, run_id: int, age_s: float = 3600) -> None:
    """Backdate a run's heartbeat, as if its worker had died ``age_s`` ago (stored as naive UTC)."""
    old = (datetime.now(UTC) - timedelta(seconds=age_s)).replace(tzinfo=None)
    with storage.engine.begin() as conn:
        conn.execute(sa.text("UPDATE runs SET heartbeat_at = :t WHERE id = :id"), {"t": old, "id": run_id})


def table_count(storage: Storage, table: str, run_id: int) -> int:
    with storage.engine.connect() as conn:
        query = sa.text(f"SELECT COUNT(*) FROM {table} WHERE run_id = :id")
        return int(conn.execute(query, {"id": run_id}).scalar_one())


# --- records -----------------------------------------------------------------------------------
def test_create_and_get_round_trip(storage: Storage) -> None:
    created = storage.create_run("qnn", SPEC, seed=7, name="first", versions={"numpy": "2.0"}, sweep_id=3)
    got = storage.get_run(created.id)
    assert got == created
    assert (got.kind, got.name, got.spec, got.seed, got.sweep_id) == ("qnn", "first", SPEC, 7, 3)
    assert got.status == QUEUED and got.progress == 0.0 and got.attempts == 0
    assert got.versions == {"numpy": "2.0"}
    assert got.worker_id is None and got.started_at is None and got.finished_at is None
    assert got.result is None and got.error is None and not got.cancel_requested
    assert not got.finished and got.duration_s is None


def test_get_unknown_run_raises(storage: Storage) -> None:
    with pytest.raises(StorageError, match="9999"):
        storage.get_run(9999)


def test_records_are_frozen_plain_dataclasses(storage: Storage) -> None:
    run = storage.create_run("qnn", SPEC)
    assert type(run) is RunRecord and dataclasses.is_dataclass(run)
    assert not hasattr(run, "_sa_instance_state")  # not an ORM row
    with pytest.raises(dataclasses.FrozenInstanceError):
        run.status = RUNNING  # type: ignore[misc]  # deliberate: must raise
    # The spec is a copy: mutating it does not touch the stored run.
    run.spec["n_qubits"] = 99
    assert storage.get_run(run.id).spec == SPEC

    storage.add_metrics(run.id, [(0, "loss", 1.0)])
    storage.save_artifact(run.id, "a.txt", "text/plain", b"x")
    storage.register_worker("w", "host", 1)
    for rec in (storage.get_metrics(run.id)[0], storage.list_artifacts(run.id)[0],
                storage.get_artifact(run.id, "a.txt"), storage.list_workers()[0]):
        assert dataclasses.is_dataclass(rec) and not hasattr(rec, "_sa_instance_state")
        with pytest.raises(dataclasses.FrozenInstanceError):
            rec.name = "changed"  # type: ignore[misc,union-attr]  # deliberate: must raise (WorkerRecord has no name)


def test_timestamps_are_timezone_aware_utc(storage: Storage) -> None:
    before = datetime.now(UTC)
    run = storage.create_run("qnn", SPEC)
    claimed = storage.claim_run(run.id, "w1")
    assert claimed is not None
    storage.finish_run(run.id, "w1", SUCCEEDED, result={"acc": 1.0})
    storage.register_worker("w1", "host", 1)
    got = storage.get_run(run.id)
    worker = storage.list_workers()[0]
    stamps = [got.created_at, got.started_at, got.finished_at, got.heartbeat_at, worker.started_at,
              worker.heartbeat_at]
    for ts in stamps:
        assert ts is not None and ts.tzinfo is not None and ts.utcoffset() == timedelta(0)
        assert before - timedelta(seconds=1) <= ts <= datetime.now(UTC) + timedelta(seconds=1)
    assert got.duration_s is not None and got.duration_s >= 0
    assert isinstance(got.to_dict()["created_at"], str) and got.to_dict()["created_at"].endswith("+00:00")


def test_naive_datetime_is_refused(storage: Storage) -> None:
    from sqlalchemy.orm import Session

    from db.models import Worker

    with pytest.raises(sa.exc.StatementError, match="naive"), Session(storage.engine) as s:
        s.add(Worker(id="x", hostname="h", pid=1, started_at=datetime.now(), heartbeat_at=datetime.now()))
        s.commit()


def test_list_runs_newest_first_with_filters(storage: Storage) -> None:
    a = storage.create_run("qnn", SPEC)
    b = storage.create_run("other", SPEC, sweep_id=5)
    c = storage.create_run("qnn", SPEC, sweep_id=5)
    storage.claim_run(c.id, "w")
    assert [r.id for r in storage.list_runs()] == [c.id, b.id, a.id]
    assert [r.id for r in storage.list_runs(kinds=["qnn"])] == [c.id, a.id]
    assert [r.id for r in storage.list_runs(statuses=[QUEUED])] == [b.id, a.id]
    assert [r.id for r in storage.list_runs(statuses=[RUNNING], kinds=["qnn"])] == [c.id]
    assert [r.id for r in storage.list_runs(ids=[a.id, c.id])] == [c.id, a.id]
    assert storage.list_runs(ids=[]) == []
    assert [r.id for r in storage.list_runs(sweep_id=5)] == [c.id, b.id]
    assert [r.id for r in storage.list_runs(limit=2)] == [c.id, b.id]
    assert storage.count_runs() == {QUEUED: 2, RUNNING: 1}


# --- claiming ----------------------------------------------------------------------------------
def test_claim_next_run_takes_oldest_first_and_none_when_empty(storage: Storage) -> None:
    assert storage.claim_next_run("w") is None
    ids = [storage.create_run("qnn", SPEC).id for _ in range(3)]
    claimed = [storage.claim_next_run("w") for _ in range(3)]
    assert [r.id for r in claimed if r is not None] == ids
    first = claimed[0]
    assert first is not None
    assert first.status == RUNNING and first.worker_id == "w" and first.attempts == 1
    assert first.started_at is not None and first.heartbeat_at is not None
    assert storage.claim_next_run("w") is None


def test_claim_next_run_filters_by_kind(storage: Storage) -> None:
    other = storage.create_run("other", SPEC)
    qnn = storage.create_run("qnn", SPEC)
    got = storage.claim_next_run("w", kinds=["qnn"])
    assert got is not None and got.id == qnn.id
    assert storage.claim_next_run("w", kinds=["qnn"]) is None
    assert storage.get_run(other.id).status == QUEUED


def test_claim_next_run_filters_by_sweep(storage: Storage) -> None:
    loose = storage.create_run("qnn", SPEC)
    trial_a = storage.create_run("qnn", SPEC, sweep_id=1, sweep_trial=0)
    trial_b = storage.create_run("other", SPEC, sweep_id=2, sweep_trial=0)
    later_loose = storage.create_run("qnn", SPEC)
    got = storage.claim_next_run("w", sweep_id=2)
    assert got is not None and got.id == trial_b.id and got.sweep_id == 2
    assert storage.claim_next_run("w", sweep_id=2) is None
    got = storage.claim_next_run("w", in_sweep=True)
    assert got is not None and got.id == trial_a.id
    assert storage.claim_next_run("w", in_sweep=True) is None
    got = storage.claim_next_run("w", in_sweep=False, kinds=["qnn"])
    assert got is not None and got.id == loose.id
    got = storage.claim_next_run("w", in_sweep=False)
    assert got is not None and got.id == later_loose.id
    assert storage.claim_next_run("w") is None
    assert storage.count_runs() == {RUNNING: 4}


def test_claim_run_is_compare_and_set(storage: Storage) -> None:
    run = storage.create_run("qnn", SPEC)
    assert storage.claim_run(run.id, "w1") is not None
    assert storage.claim_run(run.id, "w2") is None
    assert storage.get_run(run.id).worker_id == "w1"
    cancelled = storage.create_run("qnn", SPEC)
    storage.request_cancel(cancelled.id)
    assert storage.claim_run(cancelled.id, "w1") is None
    assert storage.claim_next_run("w1") is None


def test_competing_threads_claim_each_run_exactly_once(storage: Storage) -> None:
    ids = {storage.create_run("qnn", SPEC).id for _ in range(40)}
    start = threading.Barrier(6)
    claimed: dict[str, list[int]] = {}
    errors: list[BaseException] = []

    def loop(worker_id: str) -> None:
        mine: list[int] = []
        try:
            start.wait(timeout=30)
            while True:
                run = storage.claim_next_run(worker_id)
                if run is None:
                    if not storage.list_runs(statuses=[QUEUED]):
                        break
                    continue
                mine.append(run.id)
        except BaseException as exc:
            errors.append(exc)
        claimed[worker_id] = mine

    threads = [threading.Thread(target=loop, args=(f"t{i}",)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors
    all_claimed = [i for mine in claimed.values() for i in mine]
    assert sorted(all_claimed) == sorted(ids)  # each exactly once
    for worker_id, mine in claimed.items():
        for run_id in mine:
            run = storage.get_run(run_id)
            assert (run.status, run.worker_id, run.attempts) == (RUNNING, worker_id, 1)


@pytest.mark.slow  # several processes; threads race for claims in the fast tests
def test_competing_processes_claim_each_run_exactly_once(storage: Storage, db_url: str) -> None:
    ids = {storage.create_run("qnn", SPEC).id for _ in range(40)}
    results = race(claim_loop, [(db_url, f"p{i}") for i in range(4)], timeout=120)  # all four from one moment
    errors = [e for _, _, _, errs in results for e in errs]
    assert not errors, errors  # in particular no "database is locked"
    all_claimed = [i for _, mine, _, _ in results for i in mine]
    assert len(all_claimed) == len(set(all_claimed)), "a run was claimed twice"
    assert set(all_claimed) == ids
    for worker_id, mine, _, _ in results:
        for run_id in mine:
            run = storage.get_run(run_id)
            assert (run.status, run.worker_id, run.attempts) == (RUNNING, worker_id, 1)
    assert storage.count_runs() == {RUNNING: 40}


def test_claim_with_fits_skips_runs_that_do_not_fit_beside_the_running_ones(storage: Storage) -> None:
    def fits(candidate: RunRecord, running: list[RunRecord]) -> bool:
        return candidate.spec["gib"] + sum(r.spec["gib"] for r in running) <= 10

    big1, big2, small = (storage.create_run("qnn", {"gib": g}) for g in (6, 6, 3))
    other = storage.create_run("other", {"gib": 1})
    seen: list[tuple[int, list[int]]] = []

    def spy(candidate: RunRecord, running: list[RunRecord]) -> bool:
        seen.append((candidate.id, [r.id for r in running]))
        return fits(candidate, running)

    a = storage.claim_next_run("A", kinds=["qnn"], fits=spy)
    assert a is not None and a.id == big1.id and a.worker_id == "A"
    assert seen == [(big1.id, [])]
    b = storage.claim_next_run("B", kinds=["qnn"], fits=spy)  # big2 would make 12 > 10: the small one
    assert b is not None and b.id == small.id
    assert seen[1:] == [(big2.id, [big1.id]), (small.id, [big1.id])]
    assert storage.claim_next_run("C", kinds=["qnn"], fits=fits) is None  # 6 + 3 + 6 > 10
    assert storage.get_run(big2.id).status == QUEUED
    assert storage.finish_run(big1.id, "A", SUCCEEDED)
    c = storage.claim_next_run("C", fits=fits)  # 3 + 6 fits now
    assert c is not None and c.id == big2.id
    d = storage.claim_next_run("D", fits=fits)  # 3 + 6 + 1
    assert d is not None and d.id == other.id
    assert storage.claim_next_run("E", fits=fits) is None  # nothing queued


def test_claims_with_fits_are_serialised_so_the_sum_holds(storage: Storage) -> None:
    """Six workers claim at the same moment; runs of 6 units under a limit of 10: exactly one starts."""
    ids = [storage.create_run("qnn", {"gib": 6}).id for _ in range(4)]

    def fits(candidate: RunRecord, running: list[RunRecord]) -> bool:
        return candidate.spec["gib"] + sum(r.spec["gib"] for r in running) <= 10

    start = threading.Barrier(6)
    got: list[Any] = []

    def claim(worker_id: str) -> None:
        try:
            start.wait(timeout=30)
            got.append(storage.claim_next_run(worker_id, fits=fits))
        except BaseException as exc:
            got.append(exc)

    threads = [threading.Thread(target=claim, args=(f"t{i}",)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not [g for g in got if isinstance(g, BaseException)], got
    claimed = [g.id for g in got if g is not None]
    assert claimed == [ids[0]], got
    assert storage.count_runs() == {RUNNING: 1, QUEUED: 3}


# --- worker writes -----------------------------------------------------------------------------
def test_progress_and_finish_apply_only_for_the_owner(storage: Storage) -> None:
    run = storage.create_run("qnn", SPEC)
    storage.claim_run(run.id, "owner")
    assert storage.set_progress(run.id, "intruder", 0.9, "nope") is False
    assert storage.finish_run(run.id, "intruder", SUCCEEDED, result={"x": 1}) is False
    assert storage.heartbeat(run.id, "intruder").owned is False
    got = storage.get_run(run.id)
    assert (got.status, got.progress, got.result) == (RUNNING, 0.0, None)

    assert storage.set_progress(run.id, "owner", 0.5, "half way") is True
    assert storage.set_progress(run.id, "owner", 7.0) is True  # clamped
    assert storage.get_run(run.id).progress == 1.0
    assert storage.set_progress(run.id, "owner", 0.5, "half way") is True
    assert (storage.get_run(run.id).progress, storage.get_run(run.id).message) == (0.5, "half way")
    assert storage.heartbeat(run.id, "owner").owned is True

    assert storage.finish_run(run.id, "owner", SUCCEEDED, result={"acc": 0.9}, versions={"v": "1"}) is True
    done = storage.get_run(run.id)
    assert (done.status, done.progress, done.result, done.versions) == (SUCCEEDED, 1.0, {"acc": 0.9}, {"v": "1"})
    assert done.finished and done.finished_at is not None
    # Finished runs accept no more writes, even from their former owner.
    assert storage.finish_run(run.id, "owner", FAILED, error="late") is False
    assert storage.set_progress(run.id, "owner", 0.1) is False
    assert storage.get_run(run.id).status == SUCCEEDED


def test_metrics_and_artifacts_of_a_worker_that_lost_the_run_are_refused(storage: Storage) -> None:
    """Worker A pauses, its run is recovered as stale and claimed by B; A's late writes change nothing."""
    run = storage.create_run("qnn", SPEC)
    assert storage.claim_run(run.id, "worker-A") is not None
    assert storage.add_metrics(run.id, [(0, "loss", 1.0)], worker_id="worker-A") is True
    assert storage.save_artifact(run.id, "a.txt", "text/plain", b"from A", worker_id="worker-A") is True
    make_stale(storage, run.id)
    assert [r.action for r in storage.recover_stale_runs(stale_after_s=60, max_attempts=3)] == ["requeued"]
    taken = storage.claim_next_run("worker-B")
    assert taken is not None and taken.id == run.id and taken.worker_id == "worker-B"
    assert storage.add_metrics(run.id, [(0, "loss", 0.9)], worker_id="worker-B") is True

    assert storage.add_metrics(run.id, [(0, "loss", 5.0), (1, "loss", 4.0)], worker_id="worker-A") is False
    assert storage.save_artifact(run.id, "a.txt", "text/plain", b"late A", worker_id="worker-A") is False
    assert storage.save_artifact(run.id, "b.txt", "text/plain", b"late A", worker_id="worker-A") is False
    assert storage.get_metrics(run.id) == [MetricPoint(0, "loss", 0.9)]
    assert storage.list_artifacts(run.id) == [ArtifactRecord("a.txt", "text/plain", len(b"from A"))]
    assert storage.add_metrics(run.id, [], worker_id="worker-A") is False  # nothing to write, still not owned

    # Once the run is finished even its last owner cannot append to it.
    assert storage.finish_run(run.id, "worker-B", SUCCEEDED)
    assert storage.add_metrics(run.id, [(9, "loss", 0.1)], worker_id="worker-B") is False
    assert storage.save_artifact(run.id, "c.txt", "text/plain", b"", worker_id="worker-B") is False
    # Without a worker id the write happens as it always did (inline runs, tools).
    assert storage.add_metrics(run.id, [(9, "loss", 0.1)]) is True
    assert storage.save_artifact(run.id, "c.txt", "text/plain", b"c") is True
    assert len(storage.get_metrics(run.id)) == 2 and storage.get_artifact(run.id, "c.txt") is not None
    # An unknown run is not owned either.
    assert storage.add_metrics(run.id + 100, [(0, "loss", 1.0)], worker_id="worker-B") is False


def test_finish_run_refuses_non_final_status(storage: Storage) -> None:
    run = storage.create_run("qnn", SPEC)
    storage.claim_run(run.id, "w")
    with pytest.raises(StorageError, match="finish status"):
        storage.finish_run(run.id, "w", QUEUED)
    assert storage.get_run(run.id).status == RUNNING


def test_failed_run_keeps_error_and_traceback(storage: Storage) -> None:
    run = storage.create_run("qnn", SPEC)
    storage.claim_run(run.id, "w")
    storage.finish_run(run.id, "w", FAILED, error="ValueError: boom", traceback="Traceback ...")
    got = storage.get_run(run.id)
    assert (got.status, got.error, got.traceback, got.result) == (FAILED, "ValueError: boom", "Traceback ...", None)


# --- cancel / delete ---------------------------------------------------------------------------
def test_request_cancel_queued_is_immediate(storage: Storage) -> None:
    run = storage.create_run("qnn", SPEC)
    got = storage.request_cancel(run.id)
    assert got.status == CANCELLED and got.cancel_requested and got.finished_at is not None
    assert storage.get_run(run.id).status == CANCELLED


def test_request_cancel_running_sets_flag(storage: Storage) -> None:
    run = storage.create_run("qnn", SPEC)
    storage.claim_run(run.id, "w")
    assert storage.is_cancel_requested(run.id) is False
    assert storage.heartbeat(run.id, "w").cancel_requested is False
    got = storage.request_cancel(run.id)
    assert got.status == RUNNING and got.cancel_requested
    assert storage.is_cancel_requested(run.id) is True
    beat = storage.heartbeat(run.id, "w")
    assert beat.owned and beat.cancel_requested
    # The worker acknowledges by finishing it.
    assert storage.finish_run(run.id, "w", CANCELLED) is True
    assert storage.get_run(run.id).status == CANCELLED


def test_request_cancel_finished_run_changes_nothing(storage: Storage) -> None:
    run = storage.create_run("qnn", SPEC)
    storage.claim_run(run.id, "w")
    storage.finish_run(run.id, "w", SUCCEEDED, result={"a": 1})
    assert storage.request_cancel(run.id).status == SUCCEEDED
    with pytest.raises(StorageError):
        storage.request_cancel(12345)


def test_delete_refuses_running_and_removes_metrics_and_artifacts(storage: Storage) -> None:
    run = storage.create_run("qnn", SPEC)
    keep = storage.create_run("qnn", SPEC)
    for r in (run, keep):
        storage.add_metrics(r.id, [(0, "loss", 1.0), (1, "loss", 0.5)])
        storage.save_artifact(r.id, "circuit.svg", "image/svg+xml", b"<svg/>")
    storage.claim_run(run.id, "w")
    with pytest.raises(StorageError, match="running"):
        storage.delete_run(run.id)
    assert storage.get_run(run.id).status == RUNNING

    storage.finish_run(run.id, "w", SUCCEEDED)
    storage.delete_run(run.id)
    with pytest.raises(StorageError):
        storage.get_run(run.id)
    assert table_count(storage, "metrics", run.id) == 0
    assert table_count(storage, "artifacts", run.id) == 0
    # Other runs keep theirs.
    assert len(storage.get_metrics(keep.id)) == 2 and storage.get_artifact(keep.id, "circuit.svg") is not None
    with pytest.raises(StorageError):
        storage.delete_run(run.id)


def test_ids_are_never_reused_after_deleting_the_newest(storage: Storage) -> None:
    """Exports and notes name runs by id: a deleted run's id must not come back for a new run."""
    first = storage.create_run("qnn", SPEC)
    newest = storage.create_run("qnn", SPEC)
    storage.delete_run(newest.id)
    again = storage.create_run("qnn", SPEC)
    assert again.id > newest.id > first.id
    storage.delete_run(again.id)
    storage.delete_run(first.id)  # an empty table still remembers
    assert storage.create_run("qnn", SPEC).id > again.id

    sweep = storage.create_sweep("qnn", {"n_trials": 1})
    newer = storage.create_sweep("qnn", {"n_trials": 2})
    storage.delete_sweep(newer.id)
    assert storage.create_sweep("qnn", {"n_trials": 3}).id > newer.id > sweep.id


def test_delete_queued_run(storage: Storage) -> None:
    run = storage.create_run("qnn", SPEC)
    storage.delete_run(run.id)
    assert storage.list_runs() == []


# --- recovery / release ------------------------------------------------------------------------
def test_recover_stale_requeues_once_then_fails_naming_the_worker(storage: Storage) -> None:
    run = storage.create_run("qnn", SPEC)
    storage.claim_run(run.id, "worker-A")
    storage.add_metrics(run.id, [(0, "loss", 1.0)])
    make_stale(storage, run.id)

    recs = storage.recover_stale_runs(stale_after_s=30, max_attempts=2)
    assert [(r.run_id, r.action) for r in recs] == [(run.id, "requeued")]
    assert "worker-A" in recs[0].reason
    got = storage.get_run(run.id)
    assert (got.status, got.worker_id, got.attempts, got.progress) == (QUEUED, None, 1, 0.0)
    assert got.started_at is None and got.duration_s is None  # a queued run has not started
    assert "worker-A" in got.message
    assert storage.get_metrics(run.id) == []  # the abandoned attempt's metrics would mix with the retry's
    # The dead worker, if it comes back, owns nothing any more.
    assert storage.set_progress(run.id, "worker-A", 0.5) is False
    assert storage.finish_run(run.id, "worker-A", SUCCEEDED) is False
    assert storage.heartbeat(run.id, "worker-A").owned is False

    again = storage.claim_next_run("worker-B")
    assert again is not None and again.id == run.id and again.attempts == 2
    assert storage.recover_stale_runs(stale_after_s=30) == []  # fresh heartbeat: left alone
    make_stale(storage, run.id)
    recs = storage.recover_stale_runs(stale_after_s=30, max_attempts=2)
    assert [(r.run_id, r.action) for r in recs] == [(run.id, "failed")]
    got = storage.get_run(run.id)
    assert got.status == FAILED and got.finished_at is not None
    assert got.error is not None and "worker-B" in got.error and "heartbeat" in got.error
    assert storage.recover_stale_runs(stale_after_s=30) == []


def test_recover_leaves_fresh_and_other_runs_untouched(storage: Storage) -> None:
    stale = storage.create_run("qnn", SPEC)
    fresh = storage.create_run("qnn", SPEC)
    done = storage.create_run("qnn", SPEC)
    queued = storage.create_run("qnn", SPEC)
    for r, w in ((stale, "w1"), (fresh, "w2"), (done, "w3")):
        storage.claim_run(r.id, w)
    storage.finish_run(done.id, "w3", SUCCEEDED, result={"a": 1})
    make_stale(storage, stale.id)
    make_stale(storage, done.id)  # finished runs are never recovered, however old
    before = {r.id: r for r in storage.list_runs()}

    recs = storage.recover_stale_runs(stale_after_s=60)
    assert [r.run_id for r in recs] == [stale.id]
    after = {r.id: r for r in storage.list_runs()}
    for run_id in (fresh.id, done.id, queued.id):
        assert after[run_id] == before[run_id]


def test_recover_stale_run_with_cancel_request_is_cancelled(storage: Storage) -> None:
    run = storage.create_run("qnn", SPEC)
    storage.claim_run(run.id, "w1")
    storage.request_cancel(run.id)
    make_stale(storage, run.id)
    recs = storage.recover_stale_runs(stale_after_s=60)
    assert [(r.run_id, r.action) for r in recs] == [(run.id, CANCELLED)]
    assert storage.get_run(run.id).status == CANCELLED


def test_release_run_requeues_without_counting_an_attempt(storage: Storage) -> None:
    run = storage.create_run("qnn", SPEC)
    storage.claim_run(run.id, "w1")
    storage.add_metrics(run.id, [(0, "loss", 1.0)])
    assert storage.release_run(run.id, "intruder", "stop") is False
    assert storage.release_run(run.id, "w1", "worker stopped") is True
    got = storage.get_run(run.id)
    assert (got.status, got.worker_id, got.attempts, got.message) == (QUEUED, None, 0, "worker stopped")
    assert got.started_at is None
    assert storage.get_metrics(run.id) == []
    assert storage.release_run(run.id, "w1", "again") is False  # no longer running
    again = storage.claim_next_run("w2")
    assert again is not None and again.id == run.id and again.attempts == 1


# --- metrics, artifacts, workers ---------------------------------------------------------------
def test_metrics_are_ordered_by_name_then_step(storage: Storage) -> None:
    run = storage.create_run("qnn", SPEC)
    storage.add_metrics(run.id, [(2, "loss", 0.2), (0, "loss", 1.0), (1, "val_accuracy", 0.7)])
    storage.add_metrics(run.id, [(1, "loss", 0.5), (0, "val_accuracy", 0.5)])
    storage.add_metrics(run.id, [])
    assert storage.get_metrics(run.id) == [
        MetricPoint(0, "loss", 1.0), MetricPoint(1, "loss", 0.5), MetricPoint(2, "loss", 0.2),
        MetricPoint(0, "val_accuracy", 0.5), MetricPoint(1, "val_accuracy", 0.7),
    ]
    assert [p.step for p in storage.get_metrics(run.id, names=["val_accuracy"])] == [0, 1]
    assert storage.get_metrics(run.id, names=["nope"]) == []


def test_artifact_overwrite_keeps_one_latest_copy(storage: Storage) -> None:
    run = storage.create_run("qnn", SPEC)
    assert storage.get_artifact(run.id, "circuit.qasm") is None
    storage.save_artifact(run.id, "circuit.qasm", "text/plain", b"OPENQASM 2.0;")
    storage.save_artifact(run.id, "b.bin", "application/octet-stream", bytes(range(256)))
    storage.save_artifact(run.id, "circuit.qasm", "text/x-qasm", b"OPENQASM 3.0;\nqubit q;")
    assert storage.list_artifacts(run.id) == [
        ArtifactRecord("b.bin", "application/octet-stream", 256),
        ArtifactRecord("circuit.qasm", "text/x-qasm", len(b"OPENQASM 3.0;\nqubit q;")),
    ]
    art = storage.get_artifact(run.id, "circuit.qasm")
    assert art is not None and art.content == b"OPENQASM 3.0;\nqubit q;" and art.media_type == "text/x-qasm"
    b = storage.get_artifact(run.id, "b.bin")
    assert b is not None and b.content == bytes(range(256))


def test_worker_registry(storage: Storage) -> None:
    storage.register_worker("w1", "host", 11)
    storage.register_worker("w2", "host", 12)
    storage.worker_heartbeat("w1", 5)
    workers = {w.id: w for w in storage.list_workers()}
    assert set(workers) == {"w1", "w2"} and workers["w1"].current_run_id == 5 and workers["w1"].pid == 11
    storage.stop_worker("w2")
    assert [w.id for w in storage.list_workers(alive_within_s=60)] == ["w1"]
    assert storage.list_workers(alive_within_s=-1) == []  # heartbeat not in the future
    stopped = {w.id: w for w in storage.list_workers()}["w2"]
    assert stopped.stopped_at is not None and stopped.current_run_id is None


# --- migrations and configuration --------------------------------------------------------------
def test_migrations_are_idempotent_and_at_head(db_url: str) -> None:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    url = db_url
    first = Storage(url)
    run = first.create_run("qnn", SPEC)
    first.close()
    second = Storage(url)  # migrating an up-to-date database is a no-op and keeps the data
    assert second.get_run(run.id).spec == SPEC
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    head = ScriptDirectory.from_config(cfg).get_current_head()
    assert head is not None
    with second.engine.connect() as conn:
        assert conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalars().all() == [head]
        tables = set(sa.inspect(conn).get_table_names())
    assert {"runs", "metrics", "artifacts", "workers", "alembic_version"} <= tables
    second.close()


@pytest.mark.slow  # three processes migrating one new database at once
def test_concurrent_first_open_migrates_once(empty_db_url: str) -> None:
    url = empty_db_url  # no schema yet: all three processes find it unmigrated
    results: list[tuple[str, Any]] = race(open_storage, [(url,)] * 3, timeout=120)  # all three open at once
    assert [r[0] for r in results] == ["ok"] * 3, results
    assert sorted(r[1] for r in results) == [1, 2, 3]


def test_database_url_from_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    url = sqlite_url(tmp_path / "env.db")
    monkeypatch.setenv("QMLAPP_DATABASE_URL", url)
    assert db.default_database_url() == url
    assert Settings.from_env().database_url == url
    monkeypatch.delenv("QMLAPP_DATABASE_URL")
    assert db.default_database_url() == DEFAULT_DATABASE_URL
    monkeypatch.setenv("QMLAPP_DATABASE_URL", "")
    assert db.default_database_url() == DEFAULT_DATABASE_URL


def test_settings_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QMLAPP_HEARTBEAT_S", "0.5")
    monkeypatch.setenv("QMLAPP_STALE_AFTER_S", "3")
    monkeypatch.setenv("QMLAPP_POLL_S", "0.2")
    s = Settings.from_env()
    assert (s.heartbeat_s, s.stale_after_s, s.poll_s) == (0.5, 3.0, 0.2)
    monkeypatch.setenv("QMLAPP_STALE_AFTER_S", "soon")
    with pytest.raises(SystemExit, match="QMLAPP_STALE_AFTER_S"):
        Settings.from_env()


def test_get_metric_series_reads_one_metric_of_many_runs(storage: Storage) -> None:
    a = storage.create_run("qnn", {})
    b = storage.create_run("qnn", {})
    c = storage.create_run("qnn", {})
    storage.add_metrics(a.id, [(2, "val_accuracy", 0.6), (1, "val_accuracy", 0.5), (1, "train_loss", 9.0)])
    storage.add_metrics(b.id, [(1, "val_accuracy", 0.7)])
    storage.add_metrics(c.id, [(1, "val_accuracy", 0.1)])
    series = storage.get_metric_series([a.id, b.id], "val_accuracy")
    assert series == {a.id: ([1, 2], [0.5, 0.6]), b.id: ([1], [0.7])}
    assert storage.get_metric_series([], "val_accuracy") == {}
