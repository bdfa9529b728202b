"""PostgreSQL-only behaviour of the run store; the rest of the contract runs on both dialects
(tests/test_storage.py, test_migrations.py ... under ``make test-pg``).

Needs a real server: ``scripts/with-postgres.sh`` starts a throwaway one and sets
``QMLAPP_TEST_POSTGRES_URL``; without it these tests are skipped.
"""

from __future__ import annotations

import threading
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
import sqlalchemy as sa
from helpers import claim_loop, open_storage, postgres_admin_url, race

from db import QUEUED, RUNNING, Storage, StorageError, classify_error, is_transient, retrying

UTC = timezone.utc  # datetime.UTC needs Python 3.11

pytestmark = [
    pytest.mark.db,
    pytest.mark.skipif(postgres_admin_url() is None,
                       reason="QMLAPP_TEST_POSTGRES_URL is not set: run `make test-pg` (scripts/with-postgres.sh "
                              "starts a throwaway PostgreSQL server)"),
]

SPEC = {"dataset": "banknote", "n_qubits": 2}


@pytest.fixture
def pg(storage: Storage) -> Storage:
    assert storage.engine.dialect.name == "postgresql", storage.url
    return storage


def test_many_processes_claim_disjoint_runs_each_exactly_once(pg: Storage, db_url: str) -> None:
    ids = {pg.create_run("qnn", SPEC).id for _ in range(150)}
    # A barrier, not an event: all eight have imported and connected before any claims.
    results = race(claim_loop, [(db_url, f"p{i}") for i in range(8)])
    assert not [e for _, _, _, errs in results for e in errs]
    claimed = [i for _, mine, _, _ in results for i in mine]
    assert len(claimed) == len(set(claimed)), "a run was claimed twice"
    assert set(claimed) == ids
    owner = {run_id: worker for worker, mine, _, _ in results for run_id in mine}
    for run in pg.list_runs(limit=None):
        assert (run.status, run.worker_id, run.attempts) == (RUNNING, owner[run.id], 1)
    # Each process claimed in increasing id order (oldest first).
    for _, mine, _, _ in results:
        assert mine == sorted(mine)


def claim_in_thread(storage: Storage, **filters: Any) -> tuple[threading.Thread, list[Any]]:
    got: list[Any] = []

    def body() -> None:
        try:
            got.append(storage.claim_next_run("w-fast", **filters))
        except BaseException as exc:
            got.append(exc)

    thread = threading.Thread(target=body, daemon=True)
    thread.start()
    return thread, got


def test_claim_skips_a_row_locked_by_another_transaction(pg: Storage) -> None:
    first, second, third = (pg.create_run("qnn", SPEC) for _ in range(3))
    holder = pg.engine.connect()
    try:
        # Another transaction (say a worker in the middle of claiming it) holds the oldest queued row.
        locked = holder.execute(sa.text("SELECT id FROM runs WHERE id = :id FOR UPDATE"), {"id": first.id}).scalar()
        assert locked == first.id
        thread, got = claim_in_thread(pg)
        thread.join(timeout=10)
        assert not thread.is_alive(), "claim_next_run blocked on the locked row instead of skipping it"
        assert got and not isinstance(got[0], BaseException), got
        assert got[0] is not None and got[0].id == second.id and got[0].status == RUNNING

        # Only locked rows left for a filter: None at once, not a wait.
        thread, got = claim_in_thread(pg, kinds=["qnn"], in_sweep=False)
        thread.join(timeout=10)
        assert not thread.is_alive()
        assert got[0] is not None and got[0].id == third.id
        thread, got = claim_in_thread(pg)
        thread.join(timeout=10)
        assert not thread.is_alive() and got == [None]
        assert pg.get_run(first.id).status == QUEUED
    finally:
        holder.rollback()
        holder.close()
    again = pg.claim_next_run("w-later")
    assert again is not None and again.id == first.id and again.worker_id == "w-later"


def test_claim_sql_uses_skip_locked(pg: Storage) -> None:
    pg.create_run("qnn", SPEC)
    statements: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement)

    sa.event.listen(pg.engine, "before_cursor_execute", record)
    try:
        assert pg.claim_next_run("w", kinds=["qnn"], in_sweep=False) is not None
    finally:
        sa.event.remove(pg.engine, "before_cursor_execute", record)
    selects = [st for st in statements if st.lstrip().upper().startswith("SELECT") and "FOR UPDATE" in st]
    assert len(selects) == 1 and "SKIP LOCKED" in selects[0] and "LIMIT" in selects[0], statements


def test_timestamps_do_not_depend_on_the_server_time_zone(pg: Storage, db_url: str) -> None:
    """Stored as naive UTC: a session time zone far from UTC changes nothing."""
    with pg.engine.connect() as conn:
        conn.execute(sa.text(f'ALTER DATABASE "{sa.make_url(db_url).database}" SET timezone = \'Pacific/Kiritimati\''))
        conn.commit()
    other = Storage(db_url)  # new connections pick up the setting
    try:
        with other.engine.connect() as conn:
            assert conn.execute(sa.text("SHOW timezone")).scalar() == "Pacific/Kiritimati"
        before = datetime.now(UTC)
        run = other.create_run("qnn", SPEC)
        claimed = other.claim_next_run("w")
        assert claimed is not None
        for ts in (run.created_at, claimed.started_at, claimed.heartbeat_at):
            assert ts is not None and ts.utcoffset() == timedelta(0)
            assert abs(ts - before) < timedelta(seconds=30)
        assert other.recover_stale_runs(stale_after_s=60) == []  # not 14 hours stale
        assert [w.id for w in other.list_workers(alive_within_s=60)] == []
    finally:
        other.close()


def test_concurrent_migrations_of_an_empty_database(db_url: str) -> None:
    """Six processes open (and so migrate) the same empty database at once: the advisory lock
    serialises them, none fails on a duplicate table, and each then writes."""
    results = race(open_storage, [(db_url,)] * 6)  # all six have imported before any opens
    assert [r[0] for r in results] == ["ok"] * 6, results
    storage = Storage(db_url, auto_migrate=False)
    try:
        assert len(storage.list_runs()) == 6
    finally:
        storage.close()


def test_claim_with_fits_skips_a_row_locked_by_another_transaction(pg: Storage) -> None:
    first, second = (pg.create_run("qnn", SPEC) for _ in range(2))
    holder = pg.engine.connect()
    try:
        holder.execute(sa.text("SELECT id FROM runs WHERE id = :id FOR UPDATE"), {"id": first.id})
        thread, got = claim_in_thread(pg, fits=lambda _c, _r: True)
        thread.join(timeout=10)
        assert not thread.is_alive(), "a memory-checked claim waited on a locked row"
        assert got and got[0] is not None and not isinstance(got[0], BaseException), got
        assert got[0].id == second.id
    finally:
        holder.rollback()
        holder.close()


def test_sequences_never_hand_out_a_deleted_id_again(pg: Storage) -> None:
    ids = [pg.create_run("qnn", SPEC).id for _ in range(3)]
    for run_id in ids:
        pg.delete_run(run_id)
    other = Storage(pg.url)  # a fresh engine and connections: the sequence lives in the server
    try:
        assert other.create_run("qnn", SPEC).id > max(ids)
    finally:
        other.close()


def test_a_terminated_connection_is_transient_and_the_pool_recovers(pg: Storage, db_url: str) -> None:
    pg.create_run("qnn", SPEC)
    victim = pg.engine.connect()
    pid = victim.execute(sa.text("SELECT pg_backend_pid()")).scalar()
    victim.commit()
    with pg.engine.connect() as admin:  # what a server restart or an admin does to every session
        admin.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
    with pytest.raises(sa.exc.OperationalError) as err:
        victim.execute(sa.text("SELECT 1"))
    victim.close()
    assert is_transient(err.value), err.value
    # pool_pre_ping: the next request gets a live connection instead of the dead one.
    assert len(retrying(pg.list_runs, attempts=3, backoff=0.01)) == 1


def test_a_serialization_failure_is_transient(pg: Storage) -> None:
    run = pg.create_run("qnn", SPEC)
    first, second = pg.engine.connect(), pg.engine.connect()
    try:
        first.execute(sa.text("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ"))
        first.execute(sa.text("SELECT progress FROM runs WHERE id = :id"), {"id": run.id}).scalar()
        second.execute(sa.text("UPDATE runs SET progress = 0.5 WHERE id = :id"), {"id": run.id})
        second.commit()
        with pytest.raises(sa.exc.OperationalError) as err:
            first.execute(sa.text("UPDATE runs SET progress = 0.7 WHERE id = :id"), {"id": run.id})
        assert classify_error(err.value) == "transient" and "serialize" in str(err.value)
    finally:
        first.rollback()
        first.close()
        second.close()


def test_a_read_only_database_is_explained_without_the_password(pg: Storage, db_url: str) -> None:
    run = pg.create_run("qnn", SPEC)
    with pg.engine.connect() as conn:
        conn.execute(sa.text(f'ALTER DATABASE "{sa.make_url(db_url).database}" SET default_transaction_read_only = on'))
        conn.commit()
    url = sa.make_url(db_url).set(password="s3cret-pw").render_as_string(hide_password=False)
    reader = Storage(url, auto_migrate=False)  # trust auth: the password is not checked, only shown
    try:
        assert reader.get_run(run.id).id == run.id
        with pytest.raises(StorageError) as err:
            reader.create_run("qnn", SPEC)
        message = str(err.value)
        assert message.startswith("the database is read-only (") and "the run was not stored" in message
        assert "s3cret-pw" not in message and ":***@" in message and not err.value.transient
    finally:
        reader.close()
        with pg.engine.connect() as conn:  # back to writable, so the fixture can drop it
            conn.execute(sa.text("SET default_transaction_read_only = off"))
            conn.execute(sa.text(f'ALTER DATABASE "{sa.make_url(db_url).database}" '
                                 "SET default_transaction_read_only = off"))
            conn.commit()


def test_a_frozen_worker_transaction_does_not_block_recovery_for_ever(pg: Storage) -> None:
    """A worker stopped (SIGSTOP) inside a transaction that holds its run's row: the server ends that
    session after PG_IDLE_IN_TRANSACTION_S, so the stale run is recovered and claimed by another worker."""
    import time

    from db.storage import PG_IDLE_IN_TRANSACTION_S

    run = pg.create_run("qnn", SPEC)
    assert pg.claim_run(run.id, "w-frozen") is not None
    with pg.engine.begin() as conn:  # its heartbeat is long stale
        conn.execute(sa.text("UPDATE runs SET heartbeat_at = :t WHERE id = :id"),
                     {"t": datetime.now(UTC) - timedelta(minutes=10), "id": run.id})
    frozen = pg.engine.connect()
    frozen.execute(sa.text("SELECT id FROM runs WHERE id = :id FOR SHARE"), {"id": run.id})  # mid-write
    assert pg.recover_stale_runs(30.0) == []  # the frozen session's lock: skipped, not waited on
    deadline = time.monotonic() + PG_IDLE_IN_TRANSACTION_S + 20
    recovered: list[Any] = []
    while not recovered and time.monotonic() < deadline:
        time.sleep(1.0)
        recovered = pg.recover_stale_runs(30.0)
    assert [r.run_id for r in recovered] == [run.id]
    again = pg.claim_next_run("w-other")
    assert again is not None and again.id == run.id
    with pytest.raises(sa.exc.DBAPIError) as ended:  # the frozen session was ended by the server
        frozen.execute(sa.text("SELECT 1"))
    assert is_transient(ended.value)  # so a resumed worker retries on a fresh connection
    frozen.invalidate()
