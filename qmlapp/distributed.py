"""Sweep trials on a Dask cluster (``QMLAPP_DASK_ADDRESS``), with results in the same run database.

A :class:`DaskDispatcher` claims queued sweep trials from the database and submits each one as a Dask
task (:func:`run_on_dask`); the task executes the run on a Dask worker through ``execute_run``, so
progress, metrics, cancels and the result go to the database exactly as from a local worker.

The dispatcher (not the task) claims, because a claim is an atomic compare-and-set: any number of
dispatchers (several ``worker`` processes, a ``sweep --wait``) can run side by side and no run is
submitted twice, and the dispatcher always knows which run a failed task belonged to.

The Dask workers must be able to import ``qmlapp`` (install the package there) and reach the database
URL (PostgreSQL, or an SQLite file on a disk local to every process — never SQLite over NFS).
"""

from __future__ import annotations

import dataclasses
import logging
import os
import socket
import threading
import time
import traceback
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from db import CANCELLED, FAILED, RUNNING, Storage
from qmlapp.config import Settings, env_sim_threads
from qmlapp.worker_ids import DASK_PREFIX

if TYPE_CHECKING:
    from distributed import Client, Future

log = logging.getLogger("qmlapp.distributed")

CONNECT_TIMEOUT_S = 10.0
SWEEP_EVERY_S = 2.0  # advance active sweeps this often even when no trial finished (resume, cancels)


class DaskUnavailable(Exception):
    """The Dask scheduler named by QMLAPP_DASK_ADDRESS cannot be reached."""


def connect(address: str, timeout_s: float = CONNECT_TIMEOUT_S) -> Client:
    """A client of the scheduler at ``address``; :class:`DaskUnavailable` with a clear message if unreachable."""
    from distributed import Client

    try:
        return Client(address, timeout=timeout_s, set_as_default=False)
    except Exception as exc:  # OSError (refused, timed out), ValueError (malformed address), ...
        raise DaskUnavailable(
            f"QMLAPP_DASK_ADDRESS={address}: cannot reach a Dask scheduler there within {timeout_s:g} s "
            f"({type(exc).__name__}: {exc}). Start one (`dask scheduler`, then `dask worker {address}`) "
            "or unset QMLAPP_DASK_ADDRESS to run sweep trials on local workers.") from None


def absolute_database_url(url: str) -> str:
    """A relative SQLite path would resolve against each Dask worker's working directory; pin it here."""
    parsed = sa.make_url(url)
    db = parsed.database
    if parsed.get_backend_name() == "sqlite" and db and db != ":memory:" and not os.path.isabs(db):
        return parsed.set(database=os.path.abspath(db)).render_as_string(hide_password=False)
    return url


def without_password(url: str) -> str:
    """The URL as sent in Dask task arguments, which pass through the scheduler: no password."""
    parsed = sa.make_url(url)
    if not parsed.password:
        return url
    return parsed._replace(password=None).render_as_string(hide_password=False)  # set(password=None) keeps it


def _worker_side_url(sent: str) -> str:
    """The database URL on a Dask worker: its own ``QMLAPP_DATABASE_URL`` when that names the same
    database (it carries the password); else the URL as sent, and libpq takes the password from
    ``PGPASSWORD`` or ``~/.pgpass`` there."""
    own = os.environ.get("QMLAPP_DATABASE_URL")
    if own:
        try:
            if without_password(absolute_database_url(own)) == sent:
                return own
        except Exception:  # an unparseable local setting: use what was sent
            pass
    return sent


# --- the task body, executed on a Dask worker -----------------------------------------------------


def _watch_dask_worker(stop: threading.Event, done: threading.Event) -> None:
    """Set ``stop`` when the Dask worker shuts down (e.g. a SLURM job's walltime): the run is requeued."""
    from distributed import get_worker
    from distributed.core import Status

    try:
        worker = get_worker()
    except ValueError:  # called outside a Dask worker
        return
    closing = {Status.closing, Status.closing_gracefully, Status.closed, Status.failed}
    while not done.wait(1.0):
        if worker.status in closing:
            stop.set()
            return


def _dask_worker_slots() -> int:
    """Tasks this Dask worker runs at once (its threads): the runs that share its CPUs."""
    from distributed import get_worker

    try:
        return max(1, int(get_worker().state.nthreads))
    except ValueError:  # called outside a Dask worker
        return 1


def run_on_dask(database_url: str, run_id: int, worker_id: str, settings_dict: dict[str, Any]) -> str:
    """Execute run ``run_id`` (claimed for ``worker_id`` by a dispatcher) here; returns its final state.

    Module level so that Dask pickles it by reference: the Dask workers import ``qmlapp``. The simulator
    threads are this machine's: its own QMLAPP_SIM_THREADS, else its usable CPUs divided among the Dask
    worker's threads (several Dask worker processes on one machine should set QMLAPP_SIM_THREADS).
    """
    from qmlapp.worker import execute_run

    database_url = _worker_side_url(database_url)
    try:
        sim_threads = env_sim_threads()
    except SystemExit as exc:  # a task must fail with a reason, not end the Dask worker's thread
        raise ValueError(str(exc)) from None
    settings = Settings(**{**settings_dict, "database_url": database_url, "sim_threads": sim_threads,
                           "concurrent_runs": _dask_worker_slots()})
    storage = Storage(database_url, auto_migrate=False)
    done, stop = threading.Event(), threading.Event()
    registered = False
    try:
        run = storage.get_run(run_id)
        if run.status != RUNNING or run.worker_id != worker_id:
            return "lost"  # recovered, cancelled or requeued while it waited for a Dask worker
        # Start the attempt afresh: started_at becomes the real start (the dispatcher stops keeping the run
        # alive then), and a retry after a Dask worker died drops the dead attempt's metrics.
        if not storage.release_run(run_id, worker_id, "starting on a Dask worker"):
            return "lost"
        claimed = storage.claim_run(run_id, worker_id)
        if claimed is None:
            return "lost"  # another dispatcher or worker took it in between
        storage.register_worker(worker_id, socket.gethostname(), os.getpid())
        registered = True
        threading.Thread(target=_watch_dask_worker, args=(stop, done), name=f"dask-watch-{run_id}",
                         daemon=True).start()
        return execute_run(storage, claimed, worker_id, settings, stop)
    finally:
        done.set()
        if registered:
            storage.stop_worker(worker_id)
        storage.close()


# --- the dispatcher -------------------------------------------------------------------------------


@dataclass
class _InFlight:
    run_id: int
    sweep_id: int | None
    worker_id: str
    claimed_start: datetime | None  # started_at at claim time; it changes when the task starts
    future: Future


def _failure_text(exc: BaseException | None) -> str:
    name = type(exc).__name__
    if name == "KilledWorker":
        return (f"the Dask worker(s) running this trial died ({name}: {exc}); the trial may need more memory "
                "than a Dask worker has")
    if isinstance(exc, ModuleNotFoundError) and (exc.name or "").split(".")[0] in ("qmlapp", "db"):
        return f"the Dask workers cannot import qmlapp ({exc}); install the package on them"
    return f"the Dask task failed before the run could finish ({name}: {exc})"


class DaskDispatcher:
    """Claims queued sweep trials and executes them on a Dask cluster, at most one per worker thread.

    Run :meth:`start` for a background thread (stopped by :meth:`stop`), or call :meth:`step` in a loop.
    ``sweep_id`` keeps the dispatcher to one sweep (``sweep --wait``); ``worker_database_url`` is the
    database URL as the Dask workers must spell it, when it differs from this process's.
    """

    def __init__(self, settings: Settings, storage: Storage | None = None,
                 client_or_address: Client | str | None = None, *, sweep_id: int | None = None,
                 worker_database_url: str | None = None) -> None:
        self.settings = settings
        self.storage = storage or Storage(settings.database_url)
        target = client_or_address if client_or_address is not None else settings.dask_address
        if target is None:
            raise ValueError("DaskDispatcher needs a client or a scheduler address (QMLAPP_DASK_ADDRESS)")
        self.client: Client | None = None if isinstance(target, str) else target
        self._owns_client = isinstance(target, str)
        if isinstance(target, str):
            self.address = target
        elif target.scheduler is None:  # a closed client
            raise ValueError("the Dask client is not connected to a scheduler")
        else:
            self.address = str(target.scheduler.address)
        self.sweep_id = sweep_id
        self.database_url = without_password(absolute_database_url(worker_database_url or settings.database_url))
        self._task_settings = {**dataclasses.asdict(settings), "database_url": self.database_url}
        self.id = f"dask-dispatcher-{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"  # sweep leases
        self.capacity = 1  # Dask worker threads; refreshed every step
        self.stopped = threading.Event()
        self._inflight: dict[str, _InFlight] = {}
        self._thread: threading.Thread | None = None
        self._last_recovery = self._last_sweeps = self._last_beat = 0.0

    # -- lifecycle --
    def start(self) -> DaskDispatcher:
        self._thread = threading.Thread(target=self._loop, name="qmlapp-dask-dispatcher", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 30.0) -> None:
        self.stopped.set()
        if self._thread is not None:
            self._thread.join(timeout)
        else:
            self._shutdown()

    def _loop(self) -> None:
        delay = self.settings.poll_s
        try:
            while not self.stopped.is_set():
                try:
                    self.step()
                    delay = self.settings.poll_s
                except DaskUnavailable as exc:
                    log.error("%s; retrying", exc)
                    delay = min(60.0, max(delay, 1.0) * 2)
                except Exception:  # a DB or scheduler hiccup must not end the dispatcher
                    log.exception("Dask dispatcher step failed; retrying")
                    delay = min(60.0, max(delay, 1.0) * 2)
                self.stopped.wait(delay)
        finally:
            self._shutdown()

    def _shutdown(self) -> None:
        """Put trials that have not started on a Dask worker back in the queue; started ones finish there
        (a running task is not interrupted when its client goes away, and it writes its own result)."""
        for key, t in list(self._inflight.items()):
            try:
                if not t.future.done() and not self._started(t):
                    t.future.cancel()
                    self.storage.release_run(t.run_id, t.worker_id, "requeued: the Dask dispatcher stopped")
            except Exception:  # the run is then recovered through its stale heartbeat
                log.exception("could not requeue run %s", t.run_id)
            self._inflight.pop(key, None)
        if self._owns_client and self.client is not None:
            self.client.close()
            self.client = None

    # -- one pass --
    def step(self) -> int:
        """Reap finished tasks, keep waiting trials alive, recover, advance sweeps, submit; returns #submitted."""
        client = self._client()
        self.capacity = max(1, sum(client.nthreads().values()))  # ≥ 1 so that an adaptive cluster scales up
        touched = self._reap()
        now = time.monotonic()
        if now - self._last_beat >= self.settings.heartbeat_s:
            self._last_beat = now
            self._keep_waiting_alive()
        if now - self._last_recovery >= min(self.settings.stale_after_s / 3, 10.0):
            self._last_recovery = now
            for rec in self.storage.recover_stale_runs(self.settings.stale_after_s):
                log.warning("run %s %s: %s", rec.run_id, rec.action, rec.reason)
        if touched or now - self._last_sweeps >= SWEEP_EVERY_S:
            self._last_sweeps = now
            self._advance_sweeps()
        return self._submit(client)

    def _client(self) -> Client:
        if self.client is None or (self._owns_client and self.client.status in ("closing", "closed")):
            if self.client is not None:
                self.client.close()
            self.client = connect(self.address)
        return self.client

    def _advance_sweeps(self) -> None:
        from qmlapp import sweeps

        ids = [self.sweep_id] if self.sweep_id is not None else sweeps.active_sweep_ids(self.storage)
        for sweep_id in ids:
            try:  # own lease owner: a Worker thread in this process advances sweeps under another name
                sweeps.advance_sweep(self.storage, sweep_id, workers=self.capacity, owner=self.id)
            except Exception:
                log.exception("advancing sweep %s failed", sweep_id)

    def _submit(self, client: Client) -> int:
        host = (socket.gethostname() if self.address.startswith("inproc") else _host(self.address))[:60]
        submitted = 0
        while len(self._inflight) < self.capacity and not self.stopped.is_set():
            worker_id = f"{DASK_PREFIX}{host}-{uuid.uuid4().hex[:6]}"
            run = self.storage.claim_next_run(worker_id, sweep_id=self.sweep_id, in_sweep=True)
            if run is None:
                break
            key = f"qmlapp-run-{run.id}-{uuid.uuid4().hex[:8]}"
            try:
                future = client.submit(run_on_dask, self.database_url, run.id, worker_id, self._task_settings,
                                       key=key, pure=False)
            except BaseException:
                self.storage.release_run(run.id, worker_id, "requeued: could not submit it to the Dask cluster")
                raise
            self.storage.set_progress(run.id, worker_id, 0.0, f"waiting for a Dask worker at {self.address}")
            self._inflight[key] = _InFlight(run.id, run.sweep_id, worker_id, run.started_at, future)
            log.info("run %s submitted to Dask (%s) as %s", run.id, self.address, worker_id)
            submitted += 1
        return submitted

    def _reap(self) -> bool:
        """Handle finished tasks; True when one did (its sweep can queue the next trial now)."""
        finished = [key for key, t in self._inflight.items() if t.future.done()]
        for key in finished:
            t = self._inflight.pop(key)
            status = t.future.status
            if status == "finished":
                log.info("run %s ended %s on Dask", t.run_id, t.future.result())
            elif status == "error":
                exc, tb = t.future.exception(), t.future.traceback()
                tb = "".join(traceback.format_tb(tb)) if tb is not None else None
                if self.storage.finish_run(t.run_id, t.worker_id, FAILED, error=_failure_text(exc), traceback=tb,
                                           message="failed on the Dask cluster"):
                    log.warning("run %s failed on Dask: %s", t.run_id, exc)
            else:  # cancelled / lost (scheduler restarted, connection lost): not the run's fault
                self.storage.release_run(t.run_id, t.worker_id, f"requeued: its Dask task was {status}")
            t.future.release()
        return bool(finished)

    def _started(self, t: _InFlight) -> bool:
        run = self.storage.get_run(t.run_id)
        return not (run.status == RUNNING and run.worker_id == t.worker_id and run.started_at == t.claimed_start)

    def _keep_waiting_alive(self) -> None:
        """Heartbeat trials queued on the cluster but not started (e.g. SLURM jobs still pending), so they are
        not recovered as dead; once a task starts, its own heartbeat thread takes over."""
        waiting = {t.run_id: t for t in self._inflight.values() if not t.future.done()}
        if not waiting:
            return
        for run in self.storage.list_runs(ids=list(waiting), limit=None):
            t = waiting[run.id]
            if run.status != RUNNING or run.worker_id != t.worker_id or run.started_at != t.claimed_start:
                continue
            beat = self.storage.heartbeat(run.id, t.worker_id)
            if beat.cancel_requested:
                t.future.cancel()
                self.storage.finish_run(run.id, t.worker_id, CANCELLED,
                                        message="cancelled before it started on the Dask cluster")


def _host(address: str) -> str:
    from distributed.comm import get_address_host

    try:
        return str(get_address_host(address))
    except Exception:  # unparsable addresses still get a usable worker id
        return address.rsplit("/", 1)[-1].split(":")[0] or "cluster"


def start_dispatcher(settings: Settings, storage: Storage | None = None) -> DaskDispatcher | None:
    """The dispatcher that a worker process runs when QMLAPP_DASK_ADDRESS is set (None otherwise).

    It connects in its own thread and retries while the scheduler is unreachable, so local workers keep
    serving ordinary runs through a cluster outage.
    """
    if not settings.dask_address:
        return None
    return DaskDispatcher(settings, storage).start()
