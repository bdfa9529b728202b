"""Run store: the only channel between the UI, the CLI and the workers.

Contract:
- Reads return frozen plain records (``RunRecord``, ``MetricPoint`` ...), never ORM rows.
- One scoped-session helper (``_session``) owns commit / rollback / close.
- Run lifecycle: ``queued → running → succeeded | failed | cancelled``. A queued run is claimed with
  a compare-and-set on its status, so two workers never run the same run. Writes from a worker
  (progress, finish) only apply while that worker still owns the run.
- On PostgreSQL the claim is one transaction that locks the oldest queued row with
  ``FOR UPDATE SKIP LOCKED``, so competing workers never wait on each other's candidate row; on SQLite
  (no row locks) it is the compare-and-set above, retried on a lost race.
- A running run whose heartbeat is older than ``stale_after_s`` is requeued until it has been
  attempted ``max_attempts`` times, then failed with a reason (``recover_stale_runs``).
- Run and sweep ids are never reused, also after a delete (AUTOINCREMENT on SQLite, sequences on
  PostgreSQL), so exports and notes that name an id keep pointing at the same run.
- Worker writes into a run (progress, metrics, artifacts, finish) can be made conditional on the
  worker still owning it, checked in the writing transaction.
- Database failures surface as ``StorageError`` with a plain explanation (full disk, read-only
  database, unreachable server) and ``transient`` set when retrying later may help (``retrying``);
  URLs in messages have their password hidden (``redact_url``).
- Timestamps are timezone-aware UTC.
- Works on SQLite and PostgreSQL (``postgresql+psycopg://...``); Alembic migrations run on both.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import random
import re
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.orm import Session, sessionmaker

from db.models import ArtifactRow, Metric, Run, Sweep, SweepJournal, Worker, utcnow

QUEUED, RUNNING, SUCCEEDED, FAILED, CANCELLED = "queued", "running", "succeeded", "failed", "cancelled"
STATUSES = (QUEUED, RUNNING, SUCCEEDED, FAILED, CANCELLED)
FINISHED = (SUCCEEDED, FAILED, CANCELLED)
MIGRATIONS = Path(__file__).parent / "migrations"
# pg_advisory_xact_lock key that serialises ``migrate`` across processes on PostgreSQL ("qmlmigr").
PG_MIGRATION_LOCK = 0x716D6C6D696772
# pg_advisory_xact_lock key that serialises memory-checked claims ("qmlclaim"), so that each one sees
# the runs the previous one started.
PG_FIT_CLAIM_LOCK = 0x716D6C636C61696D
# How many of the oldest queued runs a memory-checked claim looks at.
FIT_SCAN_LIMIT = 50

log = logging.getLogger(__name__)
T = TypeVar("T")


class StorageError(Exception):
    """A request the store refuses (unknown run, wrong state) or a database failure, explained.

    ``transient`` is True when the same request may succeed later (server restarting, connection
    dropped, database locked, serialization failure); see :func:`retrying`.
    """

    def __init__(self, message: str, *, transient: bool = False) -> None:
        super().__init__(message)
        self.transient = transient


def redact_url(url: str | sa.URL) -> str:
    """The database URL with its password hidden (also a ``password=`` query parameter), for messages
    and logs; robust to strings SQLAlchemy cannot parse."""
    try:
        parsed = sa.make_url(url)
        # Unchanged when there is no password: SQLAlchemy's rendering would escape "file:" URIs.
        text = str(url) if parsed.password is None and isinstance(url, str) else \
            parsed.render_as_string(hide_password=True)
    except Exception:  # not a URL SQLAlchemy parses: still hide whatever sits between "user:" and "@"
        text = re.sub(r"(://[^:/@\s]*:)[^@\s]*@", r"\1***@", str(url))
    return re.sub(r"(?i)(\bpassword=)[^&\s]*", r"\1***", text)


# --- database error classification -------------------------------------------------------------
# SQLSTATE codes (PostgreSQL) worth retrying: serialization failure, deadlock, lock not available,
# too many connections, admin/crash shutdown, cannot connect now; class 08 is "connection exception".
# 25P03: the server ended a session left idle in a transaction (see make_engine); the next try reconnects.
_TRANSIENT_SQLSTATES = frozenset({"40001", "40P01", "55P03", "53300", "57P01", "57P02", "57P03", "25P03"})
_TRANSIENT_TEXT = (
    "database is locked", "database table is locked", "connection refused", "connection reset",
    "server closed the connection", "terminating connection due to administrator command",
    "the database system is starting up", "the database system is shutting down",
    "could not connect to server", "connection timed out", "connection is closed", "broken pipe",
    "could not serialize access", "deadlock detected", "too many clients",
    "ssl syscall error", "consuming input failed",
)
_DISK_FULL_TEXT = ("database or disk is full", "no space left on device", "disk full", "could not extend file")
_READ_ONLY_TEXT = ("attempt to write a readonly database", "read-only transaction", "readonly database")
_CANNOT_OPEN_TEXT = ("unable to open database file",)

TRANSIENT, DISK_FULL, READ_ONLY, CANNOT_OPEN, PERMANENT = (
    "transient", "disk_full", "read_only", "cannot_open", "permanent")


def _driver_error(exc: BaseException) -> BaseException:
    """The DBAPI exception underneath a SQLAlchemy one (or ``exc`` itself)."""
    orig = getattr(exc, "orig", None)
    return orig if isinstance(orig, BaseException) else exc


def _sqlstate(err: BaseException) -> str | None:
    code = getattr(err, "sqlstate", None) or getattr(err, "pgcode", None)  # psycopg 3 / psycopg2
    return code if isinstance(code, str) else None


def classify_error(exc: BaseException) -> str:
    """``"transient"``, ``"disk_full"``, ``"read_only"``, ``"cannot_open"`` or ``"permanent"`` for a
    SQLAlchemy/DBAPI exception (or a StorageError wrapping one); other exceptions are permanent."""
    if isinstance(exc, StorageError):
        cause = exc.__cause__
        if cause is not None and cause is not exc:
            return classify_error(cause)
        return TRANSIENT if exc.transient else PERMANENT
    from_db = type(exc).__module__.split(".")[0] in ("sqlite3", "psycopg", "psycopg2")  # a bare DBAPI error
    if not (from_db or isinstance(exc, sa.exc.DBAPIError | sa.exc.DisconnectionError)):
        return PERMANENT
    err = _driver_error(exc)
    state = _sqlstate(err) or ""
    text = str(err).lower()
    if state == "53100" or any(t in text for t in _DISK_FULL_TEXT):
        return DISK_FULL
    if state == "25006" or any(t in text for t in _READ_ONLY_TEXT):
        return READ_ONLY
    if any(t in text for t in _CANNOT_OPEN_TEXT):
        return CANNOT_OPEN
    if (state in _TRANSIENT_SQLSTATES or state.startswith("08") or any(t in text for t in _TRANSIENT_TEXT)
            or isinstance(exc, sa.exc.DisconnectionError) or getattr(exc, "connection_invalidated", False)):
        return TRANSIENT
    return PERMANENT


def is_transient(exc: BaseException) -> bool:
    """Whether retrying the same request later may succeed (see :func:`classify_error`)."""
    return classify_error(exc) == TRANSIENT


def explain_error(exc: BaseException, url: str | sa.URL, what: str | None = "the change") -> StorageError:
    """A StorageError that says in plain words what went wrong with the database at ``url`` (password
    hidden) and what to do; ``what`` names the data that was not stored (None for a read). Raise it
    ``from exc``, so that the driver's error stays attached."""
    where = redact_url(url)
    sqlite = _backend(url) == "sqlite"
    text = str(_driver_error(exc)).strip()
    detail = text.splitlines()[0] if text else type(exc).__name__
    lost = f": {what} was not stored" if what else ""
    kind = classify_error(exc)
    if kind == DISK_FULL:
        room = "(or raise the database's size limit)" if sqlite else "on the database server"
        return StorageError(f"the database is full ({where}){lost}; free disk space {room} and retry")
    if kind == READ_ONLY:
        hint = ("check the file's permissions (and its directory's: SQLite writes a journal next to it)" if sqlite
                else "the server only accepts reads (a standby, or default_transaction_read_only is on)")
        return StorageError(f"the database is read-only ({where}){lost}; {hint}")
    if kind == CANNOT_OPEN:
        return StorageError(f"the database file cannot be opened ({where}){lost}; check that its directory "
                            "exists and that the file and directory are writable")
    if kind == TRANSIENT:
        return StorageError(f"the database is unavailable for now ({where}): {detail}"
                            + (f"; {what} was not stored" if what else "") + "; retry later", transient=True)
    return StorageError(f"database error ({where}): {detail}")


def retrying(fn: Callable[[], T], *, attempts: int = 5, backoff: float = 0.5, max_backoff: float = 30.0,
             on_retry: Callable[[BaseException, int, float], None] | None = None,
             sleep: Callable[[float], None] = time.sleep) -> T:
    """Call ``fn()``; when it raises a transient database error (:func:`is_transient`), wait and call it
    again, up to ``attempts`` calls in all. Waits grow exponentially from ``backoff`` seconds (capped at
    ``max_backoff``, with jitter so that many workers do not retry in step). Permanent errors, and the
    last transient one, propagate. ``on_retry(error, attempt, delay)`` is called before each wait.

    Only wrap requests that are safe to repeat: a write whose commit reached the server just before
    the connection dropped is applied again (compare-and-set writes such as claims are safe).
    """
    if attempts < 1:
        raise ValueError(f"attempts must be >= 1, got {attempts}")
    for attempt in range(1, attempts + 1):
        try:
            return fn()
        except Exception as exc:
            if attempt == attempts or not is_transient(exc):
                raise
            delay = min(max_backoff, backoff * 2 ** (attempt - 1)) * random.uniform(0.5, 1.0)
            if on_retry is not None:
                on_retry(exc, attempt, delay)
            else:
                log.warning("transient database error (attempt %d of %d), retrying in %.2f s: %s",
                            attempt, attempts, delay, exc)
            sleep(delay)
    raise AssertionError("unreachable")  # pragma: no cover


def _plain(record: Any) -> dict[str, Any]:
    """A record's fields as JSON-ready values (datetimes as ISO 8601)."""
    return {k: v.isoformat() if isinstance(v, datetime) else v
            for k, v in ((k, getattr(record, k)) for k in record.__dataclass_fields__)}


@dataclass(frozen=True)
class RunRecord:
    id: int
    kind: str
    name: str
    spec: dict[str, Any]
    seed: int
    status: str
    progress: float
    message: str
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    heartbeat_at: datetime | None
    worker_id: str | None
    attempts: int
    cancel_requested: bool
    error: str | None
    traceback: str | None
    versions: dict[str, Any]
    result: dict[str, Any] | None
    sweep_id: int | None
    sweep_trial: int | None = None

    @property
    def finished(self) -> bool:
        return self.status in FINISHED

    @property
    def duration_s(self) -> float | None:
        if self.started_at is None:
            return None
        end = self.finished_at or utcnow()
        return (end - self.started_at).total_seconds()

    def to_dict(self) -> dict[str, Any]:
        return _plain(self)


@dataclass(frozen=True)
class MetricPoint:
    step: int
    name: str
    value: float


@dataclass(frozen=True)
class ArtifactRecord:
    name: str
    media_type: str
    size: int
    content: bytes | None = None


@dataclass(frozen=True)
class WorkerRecord:
    id: str
    hostname: str
    pid: int
    started_at: datetime
    heartbeat_at: datetime
    current_run_id: int | None
    stopped_at: datetime | None


@dataclass(frozen=True)
class SweepRecord:
    id: int
    name: str
    kind: str
    definition: dict[str, Any]
    status: str
    message: str
    created_at: datetime
    finished_at: datetime | None
    summary: dict[str, Any] | None

    def to_dict(self) -> dict[str, Any]:
        return _plain(self)


@dataclass(frozen=True)
class Heartbeat:
    owned: bool  # False when the run was taken away (recovered, deleted)
    cancel_requested: bool


@dataclass(frozen=True)
class Recovery:
    run_id: int
    action: str  # "requeued" | "failed" | "cancelled"
    reason: str


def _run_record(row: Run) -> RunRecord:
    return RunRecord(
        id=row.id, kind=row.kind, name=row.name, spec=dict(row.spec or {}), seed=row.seed,
        status=row.status, progress=row.progress, message=row.message, created_at=row.created_at,
        started_at=row.started_at, finished_at=row.finished_at, heartbeat_at=row.heartbeat_at,
        worker_id=row.worker_id, attempts=row.attempts, cancel_requested=row.cancel_requested,
        error=row.error, traceback=row.traceback, versions=dict(row.versions or {}),
        result=None if row.result is None else dict(row.result), sweep_id=row.sweep_id,
        sweep_trial=row.sweep_trial,
    )


def _sweep_record(row: Sweep) -> SweepRecord:
    return SweepRecord(row.id, row.name, row.kind, dict(row.definition), row.status, row.message,
                       row.created_at, row.finished_at, None if row.summary is None else dict(row.summary))


def _worker_record(row: Worker) -> WorkerRecord:
    return WorkerRecord(row.id, row.hostname, row.pid, row.started_at, row.heartbeat_at,
                        row.current_run_id, row.stopped_at)


def _sqlite_path(url: sa.URL) -> Path | None:
    if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
        return None
    if url.query.get("uri") in ("true", "1") and url.database.startswith("file:"):  # sqlite:///file:...?uri=true
        name = url.database.removeprefix("file:")
        return None if not name or name.startswith(":memory:") else Path(name)
    return Path(url.database)


PG_IDLE_IN_TRANSACTION_S = 15
PG_LOCK_TIMEOUT_S = 30


def make_engine(url: str) -> sa.Engine:
    """Engine with SQLite tuned for several processes: WAL, busy timeout, IMMEDIATE write txns."""
    parsed = sa.make_url(url)
    path = _sqlite_path(parsed)
    if parsed.get_backend_name() == "postgresql" and parsed.get_driver_name() == "psycopg":
        # A worker frozen inside a transaction (SIGSTOP, a suspended VM) would hold its row locks for
        # ever: recovery skips locked rows and claims would queue behind it. The server ends such a
        # session after PG_IDLE_IN_TRANSACTION_S, and no lock is waited on longer than PG_LOCK_TIMEOUT_S
        # (the waiter gets a transient error and retries). The app's transactions last milliseconds.
        options = (f"-c idle_in_transaction_session_timeout={PG_IDLE_IN_TRANSACTION_S * 1000} "
                   f"-c lock_timeout={PG_LOCK_TIMEOUT_S * 1000}")
        return sa.create_engine(url, pool_pre_ping=True, future=True, connect_args={"options": options})
    if parsed.get_backend_name() != "sqlite":
        return sa.create_engine(url, pool_pre_ping=True, future=True)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
    engine = sa.create_engine(url, connect_args={"timeout": 60, "check_same_thread": False})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Let SQLAlchemy (not pysqlite) emit BEGIN, so that writers can take the lock up front.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA busy_timeout=60000")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: sa.Connection) -> None:
        # BEGIN IMMEDIATE for writes avoids the deferred-lock upgrade deadlock ("database is
        # locked" despite busy_timeout); reads stay deferred so the UI never queues behind a worker.
        conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.get_execution_options().get("write") else "BEGIN")

    return engine


def _is_postgres(engine_or_url: sa.Engine | sa.URL) -> bool:
    url = engine_or_url.url if isinstance(engine_or_url, sa.Engine) else engine_or_url
    return url.get_backend_name() == "postgresql"


def _backend(url: str | sa.URL) -> str:
    try:
        return sa.make_url(url).get_backend_name()
    except Exception:
        return ""


def migrate(engine: sa.Engine) -> None:
    """Apply Alembic migrations up to head; idempotent, and serialised across processes (a file lock
    next to an SQLite database, a transaction-scoped advisory lock on PostgreSQL)."""
    from alembic import command
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    path = _sqlite_path(engine.url)
    lock_ctx: contextlib.AbstractContextManager[Any] = contextlib.nullcontext()
    if path is not None:
        lock_ctx = _file_lock(path.with_name(path.name + ".migrate.lock"))
    with lock_ctx, engine.connect() as conn:
        if _is_postgres(engine):
            # Held until the commit below, so a second process waits here and then sees the
            # migrated schema instead of racing to CREATE the same tables.
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": PG_MIGRATION_LOCK})
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")
        conn.commit()


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    with open(path, "a+") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


class Storage:
    """Storage API over one database URL. Safe to share between threads of one process."""

    def __init__(self, url: str, *, auto_migrate: bool = True) -> None:
        self.url = url
        try:
            self.engine = make_engine(url)
            if auto_migrate:
                migrate(self.engine)
        except sa.exc.DBAPIError as exc:
            raise explain_error(exc, url, None) from exc
        except OSError as exc:  # the SQLite file's directory cannot be created
            raise StorageError(f"the database directory cannot be created ({redact_url(url)}): "
                               f"{exc.strerror or exc}") from exc
        self._read = sessionmaker(self.engine, expire_on_commit=False)
        self._write = sessionmaker(self.engine.execution_options(write=True), expire_on_commit=False)
        self._postgres = _is_postgres(self.engine)

    def __repr__(self) -> str:
        return f"Storage({redact_url(self.url)!r})"

    @contextlib.contextmanager
    def _session(self, write: bool = False, what: str = "the change") -> Iterator[Session]:
        """One transaction; database failures leave it as a StorageError saying what was not stored."""
        session = (self._write if write else self._read)()
        try:
            yield session
            session.commit()
        except sa.exc.DBAPIError as exc:
            with contextlib.suppress(Exception):  # the connection may be gone; the error below matters
                session.rollback()
            raise explain_error(exc, self.url, what if write else None) from exc
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()

    def close(self) -> None:
        self.engine.dispose()

    # --- runs ----------------------------------------------------------------------------------
    def create_run(self, kind: str, spec: dict[str, Any], *, seed: int = 0, name: str = "",
                   versions: dict[str, Any] | None = None, sweep_id: int | None = None,
                   sweep_trial: int | None = None) -> RunRecord:
        with self._session(write=True, what="the run") as s:
            row = Run(kind=kind, name=name, spec=spec, seed=seed, status=QUEUED, progress=0.0,
                      message="queued", created_at=utcnow(), versions=versions or {}, attempts=0,
                      cancel_requested=False, sweep_id=sweep_id, sweep_trial=sweep_trial)
            s.add(row)
            s.flush()
            return _run_record(row)

    def get_run(self, run_id: int) -> RunRecord:
        with self._session() as s:
            row = s.get(Run, run_id)
            if row is None:
                raise StorageError(f"run {run_id} does not exist")
            return _run_record(row)

    def list_runs(self, *, kinds: Sequence[str] | None = None, statuses: Sequence[str] | None = None,
                  sweep_id: int | None = None, ids: Iterable[int] | None = None,
                  limit: int | None = 500) -> list[RunRecord]:
        """Newest first."""
        q = sa.select(Run).order_by(Run.id.desc())
        if kinds:
            q = q.where(Run.kind.in_(list(kinds)))
        if statuses:
            q = q.where(Run.status.in_(list(statuses)))
        if sweep_id is not None:
            q = q.where(Run.sweep_id == sweep_id)
        if ids is not None:
            q = q.where(Run.id.in_(list(ids)))
        if limit is not None:
            q = q.limit(limit)
        with self._session() as s:
            return [_run_record(r) for r in s.scalars(q)]

    def count_runs(self) -> dict[str, int]:
        with self._session() as s:
            rows = s.execute(sa.select(Run.status, sa.func.count()).group_by(Run.status)).all()
        return {status: int(n) for status, n in rows}

    def claim_next_run(self, worker_id: str, kinds: Sequence[str] | None = None,
                       sweep_id: int | None = None, in_sweep: bool | None = None, *,
                       fits: Callable[[RunRecord, list[RunRecord]], bool] | None = None) -> RunRecord | None:
        """Atomically move the oldest queued run to running for ``worker_id``; None if none is queued
        (on PostgreSQL also when every matching queued run is being claimed by another transaction
        at that moment: callers poll again, as they do on an empty queue).

        ``in_sweep`` True/False restricts the claim to sweep trials / to runs outside sweeps (sweep
        trials go to a Dask cluster when one is configured). On PostgreSQL one transaction locks
        the row with ``FOR UPDATE SKIP LOCKED`` (rows other claimers hold are skipped, not waited
        for) and moves it to running. On SQLite each lost compare-and-set race means another worker
        claimed that run, so the loop always makes progress.

        ``fits(candidate, running)`` (e.g. a memory check over the sum of what already runs) makes the
        claim take the oldest of the ``FIT_SCAN_LIMIT`` oldest matching queued runs it accepts, given
        every run running at that moment; None when it accepts none. Such claims are serialised
        (SQLite's write lock, an advisory lock on PostgreSQL), so two memory-checked claimers never
        both start runs that only fit one at a time.
        """
        conds = [Run.status == QUEUED]
        if kinds:
            conds.append(Run.kind.in_(list(kinds)))
        if sweep_id is not None:
            conds.append(Run.sweep_id == sweep_id)
        if in_sweep is not None:
            conds.append(Run.sweep_id.is_not(None) if in_sweep else Run.sweep_id.is_(None))
        if fits is not None:
            return self._claim_fitting(worker_id, conds, fits)
        q = sa.select(Run.id).where(*conds).order_by(Run.id).limit(1)
        if self._postgres:
            with self._session(write=True) as s:
                run_id = s.scalar(q.with_for_update(skip_locked=True))
                if run_id is None:
                    return None
                return self._claim_locked(s, run_id, worker_id)
        while True:
            with self._session() as s:
                run_id = s.scalar(q)
            if run_id is None:
                return None
            claimed = self.claim_run(run_id, worker_id)
            if claimed is not None:
                return claimed

    def _claim_fitting(self, worker_id: str, conds: list[Any],
                       fits: Callable[[RunRecord, list[RunRecord]], bool]) -> RunRecord | None:
        with self._session(write=True) as s:  # BEGIN IMMEDIATE on SQLite: no other writer until commit
            if self._postgres:
                # Held until commit: the next memory-checked claimer then sees this one's run as running.
                s.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": PG_FIT_CLAIM_LOCK})
            running = [_run_record(r) for r in s.scalars(sa.select(Run).where(Run.status == RUNNING)
                                                         .order_by(Run.id))]
            candidates = [_run_record(r) for r in s.scalars(sa.select(Run).where(*conds).order_by(Run.id)
                                                            .limit(FIT_SCAN_LIMIT))]
            for candidate in candidates:
                if not fits(candidate, running):
                    continue
                if self._postgres:
                    # A claimer that does not check memory may hold this row: skip it, do not wait.
                    locked = s.scalar(sa.select(Run.id).where(Run.id == candidate.id, Run.status == QUEUED)
                                      .with_for_update(skip_locked=True))
                    if locked is None:
                        continue
                claimed = self._claim_locked(s, candidate.id, worker_id)
                if claimed is not None:
                    return claimed
        return None

    def claim_run(self, run_id: int, worker_id: str) -> RunRecord | None:
        """Compare-and-set one specific run from queued to running; None if someone else got it."""
        with self._session(write=True) as s:
            return self._claim_locked(s, run_id, worker_id)

    @staticmethod
    def _claim_locked(s: Session, run_id: int, worker_id: str) -> RunRecord | None:
        """The compare-and-set UPDATE of a claim, in the caller's write session."""
        now = utcnow()
        res = s.execute(
            sa.update(Run)
            .where(Run.id == run_id, Run.status == QUEUED)
            .values(status=RUNNING, worker_id=worker_id, started_at=now, heartbeat_at=now,
                    attempts=Run.attempts + 1, progress=0.0, message="starting",
                    finished_at=None, error=None, traceback=None)
            .execution_options(synchronize_session=False)
        )
        if res.rowcount != 1:  # type: ignore[attr-defined]  # SQLAlchemy: DML returns CursorResult
            return None
        row = s.get(Run, run_id, populate_existing=True)
        assert row is not None
        return _run_record(row)

    def heartbeat(self, run_id: int, worker_id: str) -> Heartbeat:
        with self._session(write=True) as s:
            res = s.execute(
                sa.update(Run).where(Run.id == run_id, Run.worker_id == worker_id, Run.status == RUNNING)
                .values(heartbeat_at=utcnow())
            )
            owned = res.rowcount == 1  # type: ignore[attr-defined]  # SQLAlchemy: DML returns CursorResult
            flag = s.scalar(sa.select(Run.cancel_requested).where(Run.id == run_id))
        return Heartbeat(owned=owned, cancel_requested=bool(flag))

    def set_progress(self, run_id: int, worker_id: str, fraction: float, message: str = "") -> bool:
        fraction = min(max(float(fraction), 0.0), 1.0)
        with self._session(write=True) as s:
            res = s.execute(
                sa.update(Run).where(Run.id == run_id, Run.worker_id == worker_id, Run.status == RUNNING)
                .values(progress=fraction, message=message[:2000], heartbeat_at=utcnow())
            )
            return res.rowcount == 1  # type: ignore[attr-defined]  # SQLAlchemy: DML returns CursorResult

    def finish_run(self, run_id: int, worker_id: str, status: str, *, result: dict[str, Any] | None = None,
                   error: str | None = None, traceback: str | None = None, message: str = "",
                   versions: dict[str, Any] | None = None) -> bool:
        """Write the final state; only applies while ``worker_id`` still owns the running run."""
        if status not in FINISHED:
            raise StorageError(f"finish status must be one of {FINISHED}, got {status!r}")
        values: dict[str, Any] = {"status": status, "finished_at": utcnow(), "error": error,
                                  "traceback": traceback, "message": message or status}
        if versions is not None:
            values["versions"] = versions
        if status == SUCCEEDED:
            values["progress"] = 1.0
        if result is not None:
            values["result"] = result
        with self._session(write=True, what="the run's final state") as s:
            res = s.execute(
                sa.update(Run).where(Run.id == run_id, Run.worker_id == worker_id, Run.status == RUNNING)
                .values(**values)
            )
            return res.rowcount == 1  # type: ignore[attr-defined]  # SQLAlchemy: DML returns CursorResult

    def release_run(self, run_id: int, worker_id: str, message: str) -> bool:
        """Put a running run back in the queue (graceful worker shutdown); not counted as an attempt."""
        with self._session(write=True) as s:
            res = s.execute(
                sa.update(Run).where(Run.id == run_id, Run.worker_id == worker_id, Run.status == RUNNING)
                .values(status=QUEUED, worker_id=None, progress=0.0, message=message,
                        attempts=Run.attempts - 1, started_at=None)
            )
            if res.rowcount == 1:  # type: ignore[attr-defined]  # SQLAlchemy: DML returns CursorResult
                s.execute(sa.delete(Metric).where(Metric.run_id == run_id))
                return True
            return False

    def request_cancel(self, run_id: int) -> RunRecord:
        """Cancel a queued run at once; flag a running one (its worker stops within one step)."""
        with self._session(write=True) as s:
            row = s.get(Run, run_id, with_for_update=True)
            if row is None:
                raise StorageError(f"run {run_id} does not exist")
            if row.status == QUEUED:
                row.status, row.finished_at, row.message = CANCELLED, utcnow(), "cancelled before start"
                row.cancel_requested = True
            elif row.status == RUNNING:
                row.cancel_requested = True
                row.message = "cancel requested"
            s.flush()
            return _run_record(row)

    def is_cancel_requested(self, run_id: int) -> bool:
        with self._session() as s:
            return bool(s.scalar(sa.select(Run.cancel_requested).where(Run.id == run_id)))

    def delete_run(self, run_id: int) -> None:
        """Delete a run with its metrics and artifacts; a running run must be cancelled first."""
        with self._session(write=True) as s:
            row = s.get(Run, run_id, with_for_update=True)
            if row is None:
                raise StorageError(f"run {run_id} does not exist")
            if row.status == RUNNING:
                raise StorageError(f"run {run_id} is running; cancel it before deleting")
            s.execute(sa.delete(Metric).where(Metric.run_id == run_id))
            s.execute(sa.delete(ArtifactRow).where(ArtifactRow.run_id == run_id))
            s.delete(row)

    def recover_stale_runs(self, stale_after_s: float, max_attempts: int = 2) -> list[Recovery]:
        """Requeue (or, after ``max_attempts``, fail) running runs whose heartbeat went stale."""
        cutoff = utcnow() - timedelta(seconds=stale_after_s)
        out: list[Recovery] = []
        with self._session(write=True) as s:
            # Rows another transaction holds (a claim, a heartbeat) are skipped: not stale for long.
            rows = s.scalars(sa.select(Run).where(Run.status == RUNNING, Run.heartbeat_at < cutoff)
                             .order_by(Run.id).with_for_update(skip_locked=True)).all()
            for row in rows:
                who = row.worker_id or "unknown worker"
                if row.cancel_requested:
                    row.status, row.finished_at = CANCELLED, utcnow()
                    row.message = f"cancelled (worker {who} stopped responding)"
                    out.append(Recovery(row.id, "cancelled", row.message))
                elif row.attempts < max_attempts:
                    row.status, row.worker_id, row.progress, row.started_at = QUEUED, None, 0.0, None
                    row.message = (f"requeued: worker {who} stopped sending heartbeats "
                                   f"(attempt {row.attempts} of {max_attempts})")
                    out.append(Recovery(row.id, "requeued", row.message))
                else:
                    row.status, row.finished_at = FAILED, utcnow()
                    row.error = (f"worker {who} stopped sending heartbeats for more than "
                                 f"{stale_after_s:g} s on attempt {row.attempts} of {max_attempts}; "
                                 "the run was given up (the worker process probably died or was killed)")
                    row.message = "failed: worker died"
                    out.append(Recovery(row.id, "failed", row.error))
            # Metrics of an abandoned attempt would mix with the retry's.
            requeued = [r.run_id for r in out if r.action == "requeued"]
            if requeued:
                s.execute(sa.delete(Metric).where(Metric.run_id.in_(requeued)))
        return out

    # --- metrics -------------------------------------------------------------------------------
    @staticmethod
    def _owns(s: Session, run_id: int, worker_id: str) -> bool:
        """Whether ``worker_id`` owns the running run, in the caller's write transaction. On PostgreSQL
        the row is share-locked until commit, so a recovery or claim cannot take it over in between;
        SQLite's write transactions already exclude each other."""
        owner = s.scalar(sa.select(Run.id).where(Run.id == run_id, Run.worker_id == worker_id, Run.status == RUNNING)
                         .with_for_update(read=True))
        return owner is not None

    def add_metrics(self, run_id: int, points: Iterable[tuple[int, str, float]], *,
                    worker_id: str | None = None) -> bool:
        """Append metric points. With ``worker_id`` they are written only while that worker owns the
        running run (checked in the same transaction); False means not owned and nothing written."""
        now = utcnow()
        rows = [Metric(run_id=run_id, step=int(st), name=str(n), value=float(v), recorded_at=now)
                for st, n, v in points]
        if not rows and worker_id is None:
            return True
        with self._session(write=True, what="the batch of metrics") as s:
            if worker_id is not None and not self._owns(s, run_id, worker_id):
                return False
            s.add_all(rows)
        return True

    def get_metrics(self, run_id: int, names: Sequence[str] | None = None) -> list[MetricPoint]:
        q = sa.select(Metric.step, Metric.name, Metric.value).where(Metric.run_id == run_id)
        if names:
            q = q.where(Metric.name.in_(list(names)))
        q = q.order_by(Metric.name, Metric.step, Metric.id)
        with self._session() as s:
            return [MetricPoint(int(st), n, float(v)) for st, n, v in s.execute(q)]

    def get_metric_series(self, run_ids: Sequence[int], name: str) -> dict[int, tuple[list[int], list[float]]]:
        """One metric for many runs in one query: run id -> (steps, values)."""
        if not run_ids:
            return {}
        q = (sa.select(Metric.run_id, Metric.step, Metric.value)
             .where(Metric.run_id.in_(list(run_ids)), Metric.name == name)
             .order_by(Metric.run_id, Metric.step, Metric.id))
        out: dict[int, tuple[list[int], list[float]]] = {}
        with self._session() as s:
            for run_id, step, value in s.execute(q):
                steps, values = out.setdefault(int(run_id), ([], []))
                steps.append(int(step))
                values.append(float(value))
        return out

    # --- artifacts -----------------------------------------------------------------------------
    def save_artifact(self, run_id: int, name: str, media_type: str, content: bytes, *,
                      worker_id: str | None = None) -> bool:
        """Store (or replace) an artifact. With ``worker_id`` it is written only while that worker owns
        the running run (checked in the same transaction); False means not owned and nothing written."""
        with self._session(write=True, what=f"the artifact {name!r}") as s:
            if worker_id is not None and not self._owns(s, run_id, worker_id):
                return False
            s.execute(sa.delete(ArtifactRow).where(ArtifactRow.run_id == run_id, ArtifactRow.name == name))
            s.add(ArtifactRow(run_id=run_id, name=name, media_type=media_type, content=content,
                              created_at=utcnow()))
        return True

    def list_artifacts(self, run_id: int) -> list[ArtifactRecord]:
        q = (sa.select(ArtifactRow.name, ArtifactRow.media_type, sa.func.length(ArtifactRow.content))
             .where(ArtifactRow.run_id == run_id).order_by(ArtifactRow.name))
        with self._session() as s:
            return [ArtifactRecord(n, m, int(sz or 0)) for n, m, sz in s.execute(q)]

    def get_artifact(self, run_id: int, name: str) -> ArtifactRecord | None:
        with self._session() as s:
            row = s.scalar(sa.select(ArtifactRow).where(ArtifactRow.run_id == run_id, ArtifactRow.name == name))
            if row is None:
                return None
            return ArtifactRecord(row.name, row.media_type, len(row.content), bytes(row.content))

    # --- sweeps --------------------------------------------------------------------------------
    def create_sweep(self, kind: str, definition: dict[str, Any], name: str = "") -> SweepRecord:
        with self._session(write=True, what="the sweep") as s:
            row = Sweep(kind=kind, name=name, definition=definition, status="running", message="created",
                        created_at=utcnow())
            s.add(row)
            s.flush()
            return _sweep_record(row)

    def get_sweep(self, sweep_id: int) -> SweepRecord:
        with self._session() as s:
            row = s.get(Sweep, sweep_id)
            if row is None:
                raise StorageError(f"sweep {sweep_id} does not exist")
            return _sweep_record(row)

    def list_sweeps(self, statuses: Sequence[str] | None = None, limit: int | None = 200) -> list[SweepRecord]:
        q = sa.select(Sweep).order_by(Sweep.id.desc())
        if statuses:
            q = q.where(Sweep.status.in_(list(statuses)))
        if limit is not None:
            q = q.limit(limit)
        with self._session() as s:
            return [_sweep_record(r) for r in s.scalars(q)]

    def update_sweep(self, sweep_id: int, *, status: str | None = None, message: str | None = None,
                     summary: dict[str, Any] | None = None, finished: bool | None = None) -> SweepRecord:
        with self._session(write=True) as s:
            row = s.get(Sweep, sweep_id, with_for_update=True)
            if row is None:
                raise StorageError(f"sweep {sweep_id} does not exist")
            if status is not None:
                row.status = status
            if message is not None:
                row.message = message[:2000]
            if summary is not None:
                row.summary = summary
            if finished is not None:
                row.finished_at = utcnow() if finished else None
            s.flush()
            return _sweep_record(row)

    def acquire_sweep_lease(self, sweep_id: int, owner: str, seconds: float = 60.0) -> bool:
        """Compare-and-set lease so that one process at a time advances a sweep's sampler."""
        now = utcnow()
        with self._session(write=True) as s:
            res = s.execute(
                sa.update(Sweep)
                .where(Sweep.id == sweep_id,
                       sa.or_(Sweep.lease_until.is_(None), Sweep.lease_until < now, Sweep.lease_owner == owner))
                .values(lease_owner=owner, lease_until=now + timedelta(seconds=seconds))
            )
            return res.rowcount == 1  # type: ignore[attr-defined]  # SQLAlchemy: DML returns CursorResult

    def release_sweep_lease(self, sweep_id: int, owner: str) -> None:
        with self._session(write=True) as s:
            s.execute(sa.update(Sweep).where(Sweep.id == sweep_id, Sweep.lease_owner == owner)
                      .values(lease_owner=None, lease_until=None))

    def append_journal(self, sweep_id: int, payloads: Sequence[dict[str, Any]]) -> None:
        if not payloads:
            return
        with self._session(write=True) as s:
            s.add_all([SweepJournal(sweep_id=sweep_id, payload=p) for p in payloads])

    def read_journal(self, sweep_id: int, offset: int = 0) -> list[dict[str, Any]]:
        q = (sa.select(SweepJournal.payload).where(SweepJournal.sweep_id == sweep_id)
             .order_by(SweepJournal.id).offset(offset))
        with self._session() as s:
            return [dict(p) for p in s.scalars(q)]

    def delete_sweep(self, sweep_id: int) -> None:
        """Delete a sweep, its journal and its finished runs; running trials must be cancelled first."""
        with self._session(write=True) as s:
            if s.get(Sweep, sweep_id, with_for_update=True) is None:
                raise StorageError(f"sweep {sweep_id} does not exist")
            # Lock the trials so that none is claimed between this check and the delete.
            trials = s.execute(sa.select(Run.id, Run.status).where(Run.sweep_id == sweep_id)
                               .order_by(Run.id).with_for_update()).all()
            busy = sum(1 for _, status in trials if status == RUNNING)
            if busy:
                raise StorageError(f"sweep {sweep_id} has {busy} running trial(s); cancel it before deleting")
            ids = [run_id for run_id, _ in trials]
            if ids:
                s.execute(sa.delete(Metric).where(Metric.run_id.in_(ids)))
                s.execute(sa.delete(ArtifactRow).where(ArtifactRow.run_id.in_(ids)))
                s.execute(sa.delete(Run).where(Run.id.in_(ids)))
            s.execute(sa.delete(SweepJournal).where(SweepJournal.sweep_id == sweep_id))
            s.execute(sa.delete(Sweep).where(Sweep.id == sweep_id))

    # --- workers -------------------------------------------------------------------------------
    def register_worker(self, worker_id: str, hostname: str, pid: int) -> None:
        now = utcnow()
        with self._session(write=True) as s:
            s.merge(Worker(id=worker_id, hostname=hostname, pid=pid, started_at=now, heartbeat_at=now,
                           current_run_id=None, stopped_at=None))

    def worker_heartbeat(self, worker_id: str, current_run_id: int | None) -> None:
        with self._session(write=True) as s:
            s.execute(sa.update(Worker).where(Worker.id == worker_id)
                      .values(heartbeat_at=utcnow(), current_run_id=current_run_id))

    def stop_worker(self, worker_id: str) -> None:
        with self._session(write=True) as s:
            s.execute(sa.update(Worker).where(Worker.id == worker_id)
                      .values(stopped_at=utcnow(), current_run_id=None))

    def list_workers(self, alive_within_s: float | None = None) -> list[WorkerRecord]:
        q = sa.select(Worker).order_by(Worker.started_at.desc())
        if alive_within_s is not None:
            cutoff = utcnow() - timedelta(seconds=alive_within_s)
            q = q.where(Worker.stopped_at.is_(None), Worker.heartbeat_at >= cutoff)
        with self._session() as s:
            return [_worker_record(w) for w in s.scalars(q)]


DEFAULT_DATABASE_URL = "sqlite:///data/qmlapp.db"  # relative to the working directory


def default_database_url() -> str:
    """``QMLAPP_DATABASE_URL`` or an SQLite file under ``./data/``."""
    return os.environ.get("QMLAPP_DATABASE_URL") or DEFAULT_DATABASE_URL
