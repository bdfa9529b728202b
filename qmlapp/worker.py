"""Background worker: claims queued runs, executes them, streams progress, honours cancels.

One worker process runs one run at a time; ``--concurrency N`` starts N processes. A heartbeat
thread keeps the run's heartbeat fresh while the experiment computes, so a live but busy worker is
never mistaken for a dead one, and picks up cancel requests. Every worker also recovers runs whose
worker died (stale heartbeat), so a killed worker's run is retried once and then failed.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import socket
import threading
import time
import traceback
import uuid
from collections.abc import Callable
from typing import Any

from db import CANCELLED, FAILED, SUCCEEDED, RunRecord, Storage
from qmlapp.config import Settings
from qmlapp.context import RunCancelled, json_safe
from qmlapp.distributed import start_dispatcher
from qmlapp.registry import get_kind, parse_spec
from qmlapp.services import software_versions
from qmlapp.specs import SpecError

log = logging.getLogger("qmlapp.worker")
SWEEP_EVERY_S = 2.0  # idle workers advance running sweeps (resume after restarts, cancelled trials)


class WorkerStopping(RunCancelled):
    """Raised inside a run when its worker is shutting down; the run goes back to the queue."""


class LostOwnership(RunCancelled):
    """Raised when another process took the run over (it was recovered as stale)."""


class DbRunContext:
    """RunContext backed by the database; used by the worker and the CLI's inline mode."""

    def __init__(self, storage: Storage, run: RunRecord, worker_id: str, stop: threading.Event,
                 cancel_poll_s: float = 0.1, progress_every_s: float = 0.25) -> None:
        self.storage, self.run, self.worker_id, self.stop = storage, run, worker_id, stop
        self.seed = run.seed
        self._cancel_poll_s, self._progress_every_s = cancel_poll_s, progress_every_s
        self._last_cancel_check = 0.0
        self._last_progress = 0.0
        self.cancel_flag = threading.Event()  # set by the heartbeat thread or a DB poll
        self.lost = threading.Event()

    def progress(self, fraction: float, message: str = "") -> None:
        now = time.monotonic()
        if fraction < 1.0 and now - self._last_progress < self._progress_every_s:
            return
        self._last_progress = now
        if not self.storage.set_progress(self.run.id, self.worker_id, fraction, message):
            self.lost.set()

    def log_metrics(self, step: int, values: dict[str, float]) -> None:
        self.storage.add_metrics(self.run.id, [(step, k, float(v)) for k, v in values.items()])

    def check_cancelled(self) -> None:
        if self.stop.is_set():
            raise WorkerStopping("worker is shutting down")
        if self.lost.is_set():
            raise LostOwnership("run was taken over after a stale heartbeat")
        now = time.monotonic()
        if not self.cancel_flag.is_set() and now - self._last_cancel_check >= self._cancel_poll_s:
            self._last_cancel_check = now
            if self.storage.is_cancel_requested(self.run.id):
                self.cancel_flag.set()
        if self.cancel_flag.is_set():
            raise RunCancelled("cancelled by user")

    def save_artifact(self, name: str, content: str | bytes, media_type: str) -> None:
        data = content.encode() if isinstance(content, str) else content
        self.storage.save_artifact(self.run.id, name, media_type, data)


def _heartbeat_loop(storage: Storage, ctx: DbRunContext, every_s: float, done: threading.Event) -> None:
    while not done.wait(every_s):
        try:
            beat = storage.heartbeat(ctx.run.id, ctx.worker_id)
            storage.worker_heartbeat(ctx.worker_id, ctx.run.id)
        except Exception:  # a transient DB error must not kill the heartbeat
            log.exception("heartbeat failed for run %s", ctx.run.id)
            continue
        if beat.cancel_requested:
            ctx.cancel_flag.set()
        if not beat.owned:
            ctx.lost.set()


def _error_text(exc: BaseException) -> str:
    if isinstance(exc, SpecError):
        return f"invalid spec: {exc}"
    if isinstance(exc, MemoryError):
        return "out of memory: reduce n_qubits, batch_size or the dataset size"
    text = str(exc).strip() or "(no message)"
    return f"{type(exc).__name__}: {text}"


def execute_run(storage: Storage, run: RunRecord, worker_id: str, settings: Settings,
                stop: threading.Event | None = None) -> str:
    """Run one claimed run to its final state; returns that state."""
    stop = stop or threading.Event()
    ctx = DbRunContext(storage, run, worker_id, stop)
    done = threading.Event()
    beat = threading.Thread(target=_heartbeat_loop, args=(storage, ctx, settings.heartbeat_s, done),
                            name=f"heartbeat-{run.id}", daemon=True)
    beat.start()
    versions = software_versions()
    try:
        kind = get_kind(run.kind)
        spec = parse_spec(run.kind, run.spec)
        ctx.progress(0.0, "loading simulator")
        runner = kind.load_runner()
        result = runner(spec, ctx)
    except WorkerStopping:
        storage.release_run(run.id, worker_id, "requeued: worker was stopped during the run")
        return "requeued"
    except LostOwnership:
        log.warning("run %s was taken over by another worker; abandoning", run.id)
        return "lost"
    except RunCancelled:
        storage.finish_run(run.id, worker_id, CANCELLED, message="cancelled by user", versions=versions)
        return CANCELLED
    except BaseException as exc:  # every failure must end the run with a reason
        storage.finish_run(run.id, worker_id, FAILED, error=_error_text(exc), traceback=traceback.format_exc(),
                           message="failed", versions=versions)
        if isinstance(exc, (KeyboardInterrupt, SystemExit)):
            raise
        return FAILED
    finally:
        done.set()
        beat.join(timeout=5)
    if not storage.finish_run(run.id, worker_id, SUCCEEDED, result=json_safe(result), message="done",
                              versions=versions):
        log.warning("run %s was taken over before its result could be stored; result dropped", run.id)
        return "lost"
    return SUCCEEDED


def new_worker_id(prefix: str = "worker") -> str:
    return f"{prefix}-{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


class Worker:
    """A single-process claim → execute loop."""

    def __init__(self, settings: Settings, storage: Storage | None = None, worker_id: str | None = None,
                 parent_pid: int | None = None) -> None:
        self.settings = settings
        self.storage = storage or Storage(settings.database_url)
        self.id = worker_id or new_worker_id()
        self.stop = threading.Event()
        self.parent_pid = parent_pid
        self._last_recovery = 0.0
        self._last_sweeps = 0.0

    def recover(self) -> None:
        for rec in self.storage.recover_stale_runs(self.settings.stale_after_s):
            log.warning("run %s %s: %s", rec.run_id, rec.action, rec.reason)

    def run_once(self) -> str | None:
        """Recover stale runs if due, then claim and execute at most one run."""
        now = time.monotonic()
        if now - self._last_recovery >= min(self.settings.stale_after_s / 3, 10.0):
            self._last_recovery = now
            self.recover()
        self.storage.worker_heartbeat(self.id, None)
        if now - self._last_sweeps >= SWEEP_EVERY_S:
            self._last_sweeps = now
            self._advance_sweeps(None)
        # With a Dask cluster configured, sweep trials are the cluster's (a DaskDispatcher submits them).
        run = self.storage.claim_next_run(self.id, in_sweep=False if self.settings.dask_address else None)
        if run is None:
            return None
        log.info("worker %s claimed run %s (%s)", self.id, run.id, run.kind)
        status = execute_run(self.storage, run, self.id, self.settings, self.stop)
        log.info("run %s ended %s", run.id, status)
        if run.sweep_id is not None:
            self._advance_sweeps(run.sweep_id)  # queue the next trial before claiming again
        return status

    def _advance_sweeps(self, sweep_id: int | None) -> None:
        """Tell finished trials / ask new ones. A sampler failure must never stop the worker."""
        from qmlapp import sweeps

        workers = max(1, len(self.storage.list_workers(alive_within_s=15.0)))
        try:
            if sweep_id is None:
                sweeps.advance_all(self.storage, workers=workers)
            else:
                sweeps.advance_sweep(self.storage, sweep_id, workers=workers, owner=self.id)
        except Exception:
            log.exception("advancing sweeps failed")

    def _watch_parent(self) -> None:
        while not self.stop.wait(1.0):
            if self.parent_pid is not None and os.getppid() != self.parent_pid:
                log.info("parent process %s is gone; stopping worker", self.parent_pid)
                self.stop.set()

    def serve(self, max_runs: int | None = None, idle_exit_s: float | None = None) -> int:
        """Loop until stopped (signal, parent gone) or ``max_runs`` runs were executed."""
        self.storage.register_worker(self.id, socket.gethostname(), os.getpid())
        if self.parent_pid is not None:
            threading.Thread(target=self._watch_parent, daemon=True).start()
        executed, idle_since = 0, time.monotonic()
        try:
            while not self.stop.is_set():
                if self.run_once() is None:
                    if idle_exit_s is not None and time.monotonic() - idle_since > idle_exit_s:
                        break
                    self.stop.wait(self.settings.poll_s)
                    continue
                executed += 1
                idle_since = time.monotonic()
                if max_runs is not None and executed >= max_runs:
                    break
        finally:
            self.storage.stop_worker(self.id)
        return executed

    def install_signal_handlers(self) -> None:
        def _stop(signum: int, _frame: Any) -> None:
            log.info("signal %s: stopping worker %s", signum, self.id)
            self.stop.set()

        signal.signal(signal.SIGTERM, _stop)
        signal.signal(signal.SIGINT, _stop)


def _worker_process(settings: Settings, parent_pid: int | None) -> None:
    _configure_logging()
    w = Worker(settings, parent_pid=parent_pid)
    w.install_signal_handlers()
    w.serve()


def _configure_logging() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s[%(process)d] %(levelname)s %(message)s")


def serve_workers(settings: Settings, concurrency: int = 1, parent_pid: int | None = None,
                  on_started: Callable[[], None] | None = None) -> None:
    """Run ``concurrency`` worker processes until SIGTERM/SIGINT (or the parent process exits).

    With QMLAPP_DASK_ADDRESS set the workers take only ordinary runs, and one DaskDispatcher sends the
    sweep trials to that cluster.
    """
    _configure_logging()
    Storage(settings.database_url).close()  # migrate once before the workers race to do it
    if concurrency <= 1:
        w = Worker(settings, parent_pid=parent_pid)
        w.install_signal_handlers()
        dispatcher = start_dispatcher(settings, w.storage)
        if on_started:
            on_started()
        try:
            w.serve()
        finally:
            if dispatcher is not None:
                dispatcher.stop()
        return
    mp = multiprocessing.get_context("spawn")  # TF is not fork-safe
    # Each process gets its share of the cores; oversubscribed TF thread pools slow everyone down.
    os.environ.setdefault("QMLAPP_TF_THREADS", str(max(1, (os.cpu_count() or 1) // concurrency)))

    def spawn(i: int) -> multiprocessing.process.BaseProcess:
        proc = mp.Process(target=_worker_process, args=(settings, os.getpid()), name=f"qmlapp-worker-{i}")
        proc.start()
        return proc

    procs = [spawn(i) for i in range(concurrency)]
    stop = threading.Event()

    def _stop(signum: int, _frame: Any) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    # One dispatcher per worker group, in this supervisor: it outlives crashed worker processes and does
    # not compete for the GIL with TensorFlow there.
    dispatcher = start_dispatcher(settings)
    if on_started:
        on_started()
    restarts = 0
    while not stop.wait(1.0):
        if parent_pid is not None and os.getppid() != parent_pid:
            break
        for i, p in enumerate(procs):
            if not p.is_alive() and restarts < 20 * concurrency:
                # A crashed or killed child is replaced; its run is recovered through its heartbeat.
                restarts += 1
                log.warning("worker process %s exited with %s; restarting it", p.pid, p.exitcode)
                procs[i] = spawn(i)
    if dispatcher is not None:
        dispatcher.stop()
    for p in procs:
        if p.is_alive():
            p.terminate()
    for p in procs:
        p.join(timeout=30)
