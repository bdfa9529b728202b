"""Helpers shared by the tests (imported as ``helpers``; pytest puts ``tests/`` on ``sys.path``).

Also holds the top-level functions that ``multiprocessing`` spawn children run, since those must be
importable by name in a fresh interpreter.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from qmlapp.context import LocalContext
from qmlapp.kinds.base import ExperimentKind
from qmlapp.specs import Spec

ROOT = Path(__file__).resolve().parents[1]

# Small intervals so that heartbeats, stale detection and queue polling take fractions of a test.
FAST_ENV = {"QMLAPP_HEARTBEAT_S": "0.5", "QMLAPP_STALE_AFTER_S": "3", "QMLAPP_POLL_S": "0.2"}

TINY_QNN: dict[str, Any] = {"dataset": "banknote", "n_qubits": 2, "depth": 1, "epochs": 1}
# Runs for many minutes unless it is cancelled, killed or stopped.
LONG_QNN: dict[str, Any] = {"dataset": "banknote", "n_qubits": 2, "depth": 1, "epochs": 5000}

CliResult = tuple[int, str, str]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def sqlite_url(path: Path) -> str:
    return f"sqlite:///{path}"


def postgres_admin_url() -> str | None:
    """The throwaway server's admin URL (``scripts/with-postgres.sh`` sets it), or None."""
    return os.environ.get("QMLAPP_TEST_POSTGRES_URL") or None


@contextlib.contextmanager
def postgres_database(admin_url: str) -> Iterator[str]:
    """CREATE a fresh database ``t_<uuid>`` on the server of ``admin_url``; DROP it (FORCE) afterwards."""
    import sqlalchemy as sa

    name = f"t_{uuid.uuid4().hex}"
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
        try:
            yield sa.make_url(admin_url).set(database=name).render_as_string(hide_password=False)
        finally:
            with admin.connect() as conn:  # FORCE: ends what subprocesses or cached engines left open
                conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        admin.dispose()


def cli_env(db_url: str, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ, QMLAPP_DATABASE_URL=db_url, PYTHONUNBUFFERED="1", **FAST_ENV)
    env.update(extra or {})
    return env


def run_cli(db_url: str, *args: str, timeout: float = 180, stdin: str | None = None,
            env: Mapping[str, str] | None = None) -> CliResult:
    """Run ``python -m qmlapp ARGS`` against ``db_url``; return (returncode, stdout, stderr)."""
    proc = subprocess.run([sys.executable, "-m", "qmlapp", *args], cwd=ROOT, env=cli_env(db_url, env),
                          input=stdin, capture_output=True, text=True, timeout=timeout)
    return proc.returncode, proc.stdout, proc.stderr


class Processes:
    """Starts long-lived CLI subprocesses (workers); none outlives its test (see ``cleanup``)."""

    def __init__(self, db_url: str, log_dir: Path) -> None:
        self.db_url, self.log_dir = db_url, log_dir
        self.procs: list[tuple[subprocess.Popen[bytes], Path]] = []

    def start(self, *args: str, env: Mapping[str, str] | None = None) -> subprocess.Popen[bytes]:
        log = self.log_dir / f"proc-{len(self.procs)}.log"
        with open(log, "wb") as fh:
            # Own process group, so that cleanup also reaches the worker children it spawns.
            proc = subprocess.Popen([sys.executable, "-m", "qmlapp", *args], cwd=ROOT, env=cli_env(self.db_url, env),
                                    stdout=fh, stderr=subprocess.STDOUT, start_new_session=True)
        self.procs.append((proc, log))
        return proc

    def logs(self) -> str:
        return "\n".join(f"--- pid {p.pid} rc={p.poll()} ---\n{path.read_text(errors='replace')[-4000:]}"
                         for p, path in self.procs)

    def cleanup(self) -> None:
        for p, _ in self.procs:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(p.pid, signal.SIGKILL)  # the group outlives a leader killed by a test
            if p.poll() is None:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    p.wait(timeout=10)


def wait_for(predicate: Callable[[], Any], timeout: float, what: str, interval: float = 0.05,
             details: Callable[[], str] | None = None) -> Any:
    """Poll ``predicate`` until it returns something truthy; fail the test at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:g} s waiting for {what}\n{details() if details else ''}")
        time.sleep(interval)


# --- bodies of spawned processes ---------------------------------------------------------------
def claim_loop(url: str, worker_id: str, start: Any, out: Any) -> None:
    """Claim queued runs until none is left; report claimed ids, spurious Nones and errors.

    ``start`` is an Event or a Barrier (``wait(timeout=...)``): the race begins when it opens.
    """
    claimed: list[int] = []
    errors: list[str] = []
    spurious_none = 0
    try:
        from db import QUEUED, Storage

        storage = Storage(url, auto_migrate=False)
        start.wait(timeout=60)
        while True:
            run = storage.claim_next_run(worker_id)
            if run is not None:
                claimed.append(run.id)
                continue
            if not storage.list_runs(statuses=[QUEUED]):
                break
            spurious_none += 1  # lost 20 races in a row; runs are still queued, so keep going
        storage.close()
    except Exception as exc:
        errors.append(f"{type(exc).__name__}: {exc}")
    out.put((worker_id, claimed, spurious_none, errors))


def open_storage(url: str, start: Any, out: Any) -> None:
    """Open (and so migrate) a Storage concurrently with other processes (``start``: Event or Barrier)."""
    try:
        from db import Storage

        start.wait(timeout=60)
        storage = Storage(url)
        run = storage.create_run("qnn", {"x": os.getpid()})
        storage.close()
        out.put(("ok", run.id))
    except Exception as exc:
        out.put(("error", f"{type(exc).__name__}: {exc}"))


def race(target: Callable[..., None], args: list[tuple[Any, ...]], timeout: float = 180) -> list[Any]:
    """Run ``target(*a, start, out)`` for each ``a`` in its own spawned process; they all pass a barrier
    together (once each has imported and connected), then each puts one result on ``out``."""
    import multiprocessing

    mp = multiprocessing.get_context("spawn")
    start, out = mp.Barrier(len(args) + 1), mp.Queue()
    procs = [mp.Process(target=target, args=(*a, start, out)) for a in args]
    for p in procs:
        p.start()
    try:
        start.wait(timeout=120)
        return [out.get(timeout=timeout) for _ in procs]
    finally:
        for p in procs:
            p.join(timeout=30)
            if p.is_alive():
                p.kill()


def goto(app: Any, name: str) -> Any:
    """Open a page of the app's menu by name ("home", "runs", "sweeps", "compare" or a kind's name) in an
    AppTest, as a click in the menu does: by the hash of the page's URL path. Call ``.run()`` after."""
    from streamlit.util import calc_hash

    from qmlapp.ui.navigation import url_path

    app._page_hash = calc_hash(url_path(name))
    return app


@dataclass
class RecordingContext(LocalContext):
    """A LocalContext that notes how many metric points had been logged at each cancel check."""

    metrics_at_check: list[int] = field(default_factory=list)

    def check_cancelled(self) -> None:
        self.metrics_at_check.append(len(self.metrics))
        super().check_cancelled()


_EXAMPLES: dict[str, tuple[Spec, Mapping[str, Any], RecordingContext]] = {}


def example_run(kind: ExperimentKind) -> tuple[Spec, Mapping[str, Any], RecordingContext]:
    """The kind's example spec run once per test process with seed 0: the spec, the runner's result as
    returned (before storage makes it JSON) and its context. Shared by the generic and the golden tests."""
    if kind.name not in _EXAMPLES:
        spec = kind.example_spec()
        ctx = RecordingContext(seed=0)
        _EXAMPLES[kind.name] = (spec, kind.load_runner()(spec, ctx), ctx)
    return _EXAMPLES[kind.name]
