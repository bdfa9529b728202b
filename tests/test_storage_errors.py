"""Database failures reach callers as explained StorageErrors; transient ones can be retried.

Real databases and real driver errors throughout: an unreachable PostgreSQL port, an SQLite file
locked by another connection, an SQLite database capped with ``PRAGMA max_page_count`` (a full disk
without filling one), and an SQLite file opened read-only (``mode=ro``: permission bits do not stop
root, which runs these tests in CI). PostgreSQL-server cases are in test_postgres.py.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from helpers import free_port, sqlite_url

from db import Storage, StorageError, classify_error, is_transient, redact_url, retrying

SPEC = {"dataset": "banknote", "n_qubits": 2}


def unreachable_url() -> str:
    """A PostgreSQL URL with a password, on a local port nothing listens on."""
    return f"postgresql+psycopg://alice:s3cret-pw@127.0.0.1:{free_port()}/qml?connect_timeout=5"


def test_redact_url_hides_passwords_and_survives_garbage() -> None:
    assert redact_url("postgresql+psycopg://alice:s3cret@db:5432/qml") == "postgresql+psycopg://alice:***@db:5432/qml"
    assert redact_url(sa.make_url("postgresql://a:b@h/d")) == "postgresql://a:***@h/d"
    assert redact_url("sqlite:////data/qmlapp.db") == "sqlite:////data/qmlapp.db"
    assert redact_url("sqlite:///file:/d/q.db?mode=ro&uri=true") == "sqlite:///file:/d/q.db?mode=ro&uri=true"
    garbled = redact_url("::not a url://bob:hunter2@host")
    assert "hunter2" not in garbled and "bob" in garbled
    assert redact_url("") == ""
    assert redact_url("postgresql://bob@h/d?password=pw1&sslmode=require") == \
        "postgresql://bob@h/d?password=***&sslmode=require"


def test_unreachable_server_is_transient_and_named_without_its_password() -> None:
    url = unreachable_url()
    with pytest.raises(StorageError) as err:
        Storage(url)
    assert err.value.transient and is_transient(err.value)
    message = str(err.value)
    assert "s3cret-pw" not in message and "alice:***@127.0.0.1" in message
    assert message.startswith("the database is unavailable for now") and "retry later" in message
    assert isinstance(err.value.__cause__, sa.exc.OperationalError)  # the driver's error stays attached


def test_retrying_waits_longer_each_time_then_gives_up() -> None:
    url = unreachable_url()
    waits: list[float] = []
    seen: list[int] = []
    with pytest.raises(StorageError) as err:
        retrying(lambda: Storage(url), attempts=4, backoff=0.5, sleep=waits.append,
                 on_retry=lambda exc, attempt, delay: seen.append(attempt))
    assert err.value.transient
    assert seen == [1, 2, 3] and len(waits) == 3
    for k, wait in enumerate(waits):  # exponential, with jitter in [half, full]
        assert 0.5 * 2**k * 0.5 <= wait <= 0.5 * 2**k


def test_retrying_returns_once_the_database_answers(tmp_path: Path) -> None:
    urls = iter([unreachable_url(), unreachable_url(), sqlite_url(tmp_path / "q.db")])
    waits: list[float] = []
    storage = retrying(lambda: Storage(next(urls)), attempts=5, backoff=0.01, sleep=waits.append)
    try:
        assert len(waits) == 2 and storage.create_run("qnn", SPEC).id == 1
    finally:
        storage.close()


def test_retrying_does_not_repeat_permanent_errors(tmp_path: Path) -> None:
    storage = Storage(sqlite_url(tmp_path / "q.db"))
    calls: list[int] = []

    def read() -> Any:
        calls.append(1)
        return storage.get_run(999)

    try:
        with pytest.raises(StorageError, match="999") as err:
            retrying(read, attempts=5, backoff=0.01, sleep=lambda _s: None)
        assert calls == [1] and not err.value.transient
        with pytest.raises(ValueError):
            retrying(read, attempts=0)
    finally:
        storage.close()


def test_a_locked_sqlite_database_is_transient_and_retried(tmp_path: Path) -> None:
    path = tmp_path / "q.db"
    Storage(sqlite_url(path)).close()
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # another process in the middle of a write
    impatient = sa.create_engine(sqlite_url(path), connect_args={"timeout": 0})

    def write() -> None:
        with impatient.begin() as conn:
            conn.execute(sa.text("INSERT INTO workers (id, hostname, pid, started_at, heartbeat_at) "
                                 "VALUES ('w', 'h', 1, '2026-01-01', '2026-01-01')"))

    try:
        with pytest.raises(sa.exc.OperationalError, match="database is locked") as err:
            write()
        assert is_transient(err.value) and classify_error(err.value) == "transient"
        # The holder commits while the caller waits: the second attempt gets through.
        def commit(*_: object) -> None:
            holder.execute("COMMIT")

        retrying(write, attempts=3, backoff=0.01, on_retry=commit)
        assert holder.execute("SELECT id FROM workers").fetchall() == [("w",)]
    finally:
        holder.close()
        impatient.dispose()


def test_a_full_sqlite_database_is_explained_and_keeps_what_it_had(tmp_path: Path) -> None:
    url = sqlite_url(tmp_path / "q.db")
    storage = Storage(url)
    run = storage.create_run("qnn", SPEC)
    storage.add_metrics(run.id, [(0, "loss", 1.0)])

    # A size cap SQLite enforces like a full disk: the file may not grow past its current pages.
    @sa.event.listens_for(storage.engine, "connect")
    def _cap(dbapi_conn: Any, _record: Any) -> None:
        pages = dbapi_conn.execute("PRAGMA page_count").fetchone()[0]
        dbapi_conn.execute(f"PRAGMA max_page_count={pages + 2}")

    storage.engine.dispose()
    try:
        with pytest.raises(StorageError) as err:
            storage.save_artifact(run.id, "big.bin", "application/octet-stream", bytes(1_000_000))
        message = str(err.value)
        assert message.startswith(f"the database is full ({url}): the artifact 'big.bin' was not stored")
        assert "free disk space" in message and not err.value.transient
        assert classify_error(err.value) == "disk_full"
        with pytest.raises(StorageError, match=r"the database is full .*: the run was not stored"):
            for _ in range(200):
                storage.create_run("qnn", {"padding": "x" * 2000})
        assert storage.get_artifact(run.id, "big.bin") is None
        assert storage.get_metrics(run.id)[0].value == 1.0  # what was there stays readable
    finally:
        storage.close()
    roomy = Storage(url)  # the cap lifted (space freed): writes go through again
    try:
        roomy.save_artifact(run.id, "big.bin", "application/octet-stream", bytes(1_000_000))
        assert roomy.list_artifacts(run.id)[0].size == 1_000_000
    finally:
        roomy.close()


def test_a_read_only_sqlite_database_is_explained(tmp_path: Path) -> None:
    path = tmp_path / "q.db"
    writer = Storage(sqlite_url(path))
    run = writer.create_run("qnn", SPEC)
    writer.close()
    url = f"sqlite:///file:{path}?mode=ro&uri=true"
    reader = Storage(url, auto_migrate=False)
    try:
        assert reader.get_run(run.id).spec == SPEC  # reads work
        with pytest.raises(StorageError) as err:
            reader.create_run("qnn", SPEC)
        assert str(err.value) == (f"the database is read-only ({url}): the run was not stored; check the file's "
                                  "permissions (and its directory's: SQLite writes a journal next to it)")
        assert not err.value.transient and classify_error(err.value) == "read_only"
        with pytest.raises(StorageError, match=r"read-only .*: the batch of metrics was not stored"):
            reader.add_metrics(run.id, [(0, "loss", 1.0)])
    finally:
        reader.close()


def test_an_sqlite_path_that_cannot_exist_is_explained(tmp_path: Path) -> None:
    (tmp_path / "a-file").write_text("")
    with pytest.raises(StorageError, match="the database directory cannot be created"):
        Storage(sqlite_url(tmp_path / "a-file" / "q.db"))
    with pytest.raises(StorageError, match="the database file cannot be opened") as err:
        Storage(sqlite_url(tmp_path))  # a directory, not a file
    assert not err.value.transient


def test_postgres_error_codes_are_classified() -> None:
    """The SQLSTATEs PostgreSQL reports for each case (psycopg's own exception classes)."""
    import psycopg

    cases = {
        psycopg.errors.SerializationFailure("could not serialize access due to concurrent update"): "transient",
        psycopg.errors.DeadlockDetected("deadlock detected"): "transient",
        psycopg.errors.AdminShutdown("terminating connection due to administrator command"): "transient",
        psycopg.errors.CannotConnectNow("the database system is starting up"): "transient",
        psycopg.OperationalError("connection failed: Connection refused"): "transient",
        psycopg.errors.DiskFull('could not extend file "base/1/2": No space left on device'): "disk_full",
        psycopg.errors.ReadOnlySqlTransaction("cannot execute INSERT in a read-only transaction"): "read_only",
        psycopg.errors.UniqueViolation("duplicate key value"): "permanent",
        psycopg.OperationalError('connection to server at "db" failed: FATAL:  password authentication failed'):
            "permanent",
    }
    for err, kind in cases.items():
        wrapped = sa.exc.OperationalError("INSERT ...", {}, err)
        assert (classify_error(err), classify_error(wrapped)) == (kind, kind), err
    assert classify_error(ValueError("database is locked")) == "permanent"  # not from a database
