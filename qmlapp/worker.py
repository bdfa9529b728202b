"""Background worker: claims queued runs, executes them, streams progress, honours cancels.

One worker process runs one run at a time; ``--concurrency N`` starts N processes. A heartbeat
thread keeps the run's heartbeat fresh while the experiment computes, so a live but busy worker is
never mistaken for a dead one, and picks up cancel requests. Every worker also recovers runs whose
worker died (stale heartbeat), so a killed worker's run is retried once and then failed.

A serving worker executes each run in a warm child process (:class:`RunProcess`: spawned once, it
imports TensorFlow, TFQ and Cirq up front and then runs one run after another). Experiments stop
cooperatively at ``ctx.check_cancelled()``; a run stuck in one long native call cannot, so the worker,
which keeps the claim, the heartbeat and the cancel polling, kills the child after a grace period,
writes the run's final state itself and starts a fresh child. The same hard stop serves SIGTERM and
the optional per-run time limit.
"""

from __future__ import annotations

import dataclasses
import logging
import multiprocessing
import os
import queue
import signal
import socket
import threading
import time
import traceback
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any

from db import CANCELLED, FAILED, SUCCEEDED, RunRecord, Storage, StorageError, retrying
from qmlapp.config import Settings
from qmlapp.context import RunCancelled, json_safe
from qmlapp.distributed import start_dispatcher
from qmlapp.registry import KINDS, get_kind, parse_spec
from qmlapp.resources import memory_fits
from qmlapp.services import software_versions
from qmlapp.simulators import Simulators
from qmlapp.specs import SpecError

log = logging.getLogger("qmlapp.worker")
SWEEP_EVERY_S = 2.0  # idle workers advance running sweeps (resume after restarts, cancelled trials)
CANCEL_POLL_S = 0.5  # the worker's own cancel polling while a child computes (the heartbeat is slower)
STOP_GRACE_S = 1.5  # on SIGTERM the child gets this long to requeue the run itself before it is killed
KILL_WAIT_S = 2.0  # SIGTERM → SIGKILL escalation when killing a child
REQUEUED_ON_STOP = "requeued: worker was stopped during the run"
DB_BACKOFF_MAX_S = 30.0  # longest wait between retries while the database is unavailable


class WorkerStopping(RunCancelled):
    """Raised inside a run when its worker is shutting down; the run goes back to the queue."""


class LostOwnership(RunCancelled):
    """Raised when another process took the run over (it was recovered as stale)."""


class TimeLimitExceeded(RunCancelled):
    """Raised inside a run that computed longer than ``Settings.run_time_limit_s``; the run fails."""


def time_limit_text(limit_s: float) -> str:
    return f"time limit exceeded ({limit_s:g} s)"


class DbRunContext:
    """RunContext backed by the database; used by the worker, its run process and the CLI's inline mode.

    ``cancel_flag`` and ``lost`` may be shared with whoever watches the run from outside (the heartbeat
    thread, or the pipe from the worker in a run process). ``simulators`` defaults to QMLAPP_SIM_THREADS or
    every usable CPU; the worker passes the one its settings give (its share of the CPUs).
    """

    def __init__(self, storage: Storage, run: RunRecord, worker_id: str, stop: threading.Event,
                 cancel_poll_s: float = 0.1, progress_every_s: float = 0.25, *,
                 cancel_flag: threading.Event | None = None, lost: threading.Event | None = None,
                 time_limit_s: float = 0.0, simulators: Simulators | None = None) -> None:
        self.storage, self.run, self.worker_id, self.stop = storage, run, worker_id, stop
        self.seed = run.seed
        self.simulators = simulators if simulators is not None else Simulators.from_env()
        self._cancel_poll_s, self._progress_every_s = cancel_poll_s, progress_every_s
        self._last_cancel_check = 0.0
        self._last_progress = 0.0
        self.cancel_flag = cancel_flag or threading.Event()  # set by the heartbeat thread or a DB poll
        self.lost = lost or threading.Event()
        self.time_limit_s = time_limit_s
        self._deadline = time.monotonic() + time_limit_s if time_limit_s > 0 else None

    def progress(self, fraction: float, message: str = "") -> None:
        now = time.monotonic()
        if fraction < 1.0 and now - self._last_progress < self._progress_every_s:
            return
        self._last_progress = now
        if not self.storage.set_progress(self.run.id, self.worker_id, fraction, message):
            self.lost.set()

    def log_metrics(self, step: int, values: dict[str, float]) -> None:
        # Written only while this worker owns the run: a paused worker that resumes after another took
        # the run over must not add duplicate points to it.
        if not self.storage.add_metrics(self.run.id, [(step, k, float(v)) for k, v in values.items()],
                                        worker_id=self.worker_id):
            self.lost.set()

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
        if self._deadline is not None and now > self._deadline:
            raise TimeLimitExceeded(time_limit_text(self.time_limit_s))

    def save_artifact(self, name: str, content: str | bytes, media_type: str) -> None:
        data = content.encode() if isinstance(content, str) else content
        if not self.storage.save_artifact(self.run.id, name, media_type, data, worker_id=self.worker_id):
            self.lost.set()


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


def _start_heartbeat(storage: Storage, ctx: DbRunContext, every_s: float) -> Callable[[], None]:
    """Start the heartbeat thread of one run; returns the function that ends it."""
    done = threading.Event()
    beat = threading.Thread(target=_heartbeat_loop, args=(storage, ctx, every_s, done),
                            name=f"heartbeat-{ctx.run.id}", daemon=True)
    beat.start()

    def end() -> None:
        done.set()
        beat.join(timeout=5)

    return end


def _error_text(exc: BaseException) -> str:
    if isinstance(exc, SpecError):
        return f"invalid spec: {exc}"
    if isinstance(exc, MemoryError):
        return "out of memory: reduce n_qubits, batch_size or the dataset size"
    text = str(exc).strip() or "(no message)"
    return f"{type(exc).__name__}: {text}"


def _versions(ctx: DbRunContext) -> dict[str, str]:
    # The simulators' thread count is part of how a run was computed (its timings, float32 summation order).
    return {**software_versions(), "sim_threads": str(ctx.simulators.threads)}


def _run_to_end(storage: Storage, run: RunRecord, worker_id: str, ctx: DbRunContext) -> str:
    """Execute a claimed run with ``ctx`` and write its final state; returns that state."""
    versions = _versions(ctx)
    try:
        kind = get_kind(run.kind)
        spec = parse_spec(run.kind, run.spec)
        ctx.progress(0.0, "loading simulator")
        runner = kind.load_runner()
        result = runner(spec, ctx)
    except WorkerStopping:
        storage.release_run(run.id, worker_id, REQUEUED_ON_STOP)
        return "requeued"
    except LostOwnership:
        log.warning("run %s was taken over by another worker; abandoning", run.id)
        return "lost"
    except TimeLimitExceeded as exc:
        storage.finish_run(run.id, worker_id, FAILED, error=str(exc), message="failed", versions=versions)
        return FAILED
    except RunCancelled:
        storage.finish_run(run.id, worker_id, CANCELLED, message="cancelled by user", versions=versions)
        return CANCELLED
    except BaseException as exc:  # every failure must end the run with a reason
        storage.finish_run(run.id, worker_id, FAILED, error=_error_text(exc), traceback=traceback.format_exc(),
                           message="failed", versions=versions)
        if isinstance(exc, (KeyboardInterrupt, SystemExit)):
            raise
        return FAILED
    if not storage.finish_run(run.id, worker_id, SUCCEEDED, result=json_safe(result), message="done",
                              versions=versions):
        log.warning("run %s was taken over before its result could be stored; result dropped", run.id)
        return "lost"
    return SUCCEEDED


def execute_run(storage: Storage, run: RunRecord, worker_id: str, settings: Settings,
                stop: threading.Event | None = None) -> str:
    """Run one claimed run to its final state in this process; returns that state.

    Only cooperative: a cancel, ``stop`` or the time limit take effect at the run's next
    ``check_cancelled()``. A serving :class:`Worker` uses :class:`RunProcess` instead.
    """
    ctx = DbRunContext(storage, run, worker_id, stop or threading.Event(), time_limit_s=settings.run_time_limit_s,
                       simulators=Simulators.from_settings(settings))
    end_heartbeat = _start_heartbeat(storage, ctx, settings.heartbeat_s)
    try:
        return _run_to_end(storage, run, worker_id, ctx)
    finally:
        end_heartbeat()


# --- the run process ---------------------------------------------------------------------------
@dataclass
class _RunFlags:
    """What the worker tells a run in progress, set by the child's pipe reader."""

    stop: threading.Event = field(default_factory=threading.Event)
    cancel: threading.Event = field(default_factory=threading.Event)
    lost: threading.Event = field(default_factory=threading.Event)


def _warm_up(simulators: Simulators) -> None:
    """Import the simulation stack and every kind's runner, and start TensorFlow's runtime with one tiny
    expectation, so that no run pays for them. A failure here only costs the first run that time.
    TensorFlow's thread pool is sized here, once per process, by ``simulators``."""
    try:
        import cirq
        import numpy as np
        import sympy

        backend = simulators.tfq()  # before any runner's import can start TensorFlow's runtime
        for kind in KINDS.values():
            kind.load_runner()
        q, theta = cirq.LineQubit(0), sympy.Symbol("warm_up")
        z = cirq.PauliSum.from_pauli_strings([cirq.Z(q)])
        compiled = backend.compile(cirq.Circuit(cirq.ry(theta).on(q)), [theta], [z])
        compiled(np.array([[0.1]]))
    except Exception:
        log.exception("warm-up of the run process failed; runs will import what they need")


def _run_process_main(conn: Connection, settings: Settings) -> None:
    """Body of the run process: warm up, then execute the runs the worker sends, one at a time."""
    # The worker decides what Ctrl-C means for a run (requeue); a terminal's SIGINT reaches us too.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _configure_logging()
    simulators = Simulators.from_settings(settings)
    _warm_up(simulators)
    storage = Storage(settings.database_url, auto_migrate=False)
    jobs: queue.Queue[tuple[RunRecord, str, _RunFlags] | None] = queue.Queue()
    current: list[_RunFlags | None] = [None]

    def read() -> None:
        while True:
            try:
                msg = conn.recv()
            except (EOFError, OSError):
                os._exit(0)  # the worker is gone: its run is recovered through the stale heartbeat
            if msg[0] == "run":
                flags = current[0] = _RunFlags()
                jobs.put((msg[1], msg[2], flags))
            elif msg[0] == "exit":
                jobs.put(None)
                return
            elif current[0] is not None:
                getattr(current[0], msg[0]).set()  # "stop", "cancel" or "lost"

    threading.Thread(target=read, name="run-process-pipe", daemon=True).start()
    conn.send(("ready",))
    while (job := jobs.get()) is not None:
        run, worker_id, flags = job
        conn.send(("started",))
        ctx = DbRunContext(storage, run, worker_id, flags.stop, cancel_flag=flags.cancel, lost=flags.lost,
                           time_limit_s=settings.run_time_limit_s, simulators=simulators)
        error = ""
        try:
            status = _run_to_end(storage, run, worker_id, ctx)
        except BaseException as exc:  # recorded as failed, unless that write failed too: the worker retries it
            status, error = FAILED, _error_text(exc)
        conn.send(("done", status, error))
    storage.close()


class RunProcess:
    """A warm child process ("spawn": TensorFlow is not fork-safe) that executes runs for one worker."""

    def __init__(self, settings: Settings) -> None:
        mp = multiprocessing.get_context("spawn")
        self._conn, child_end = mp.Pipe()
        # Daemonic: it dies with an exiting worker even if nobody closes it.
        self.process = mp.Process(target=_run_process_main, args=(child_end, settings), name="qmlapp-run",
                                  daemon=True)
        self.process.start()
        child_end.close()

    @property
    def pid(self) -> int | None:
        return self.process.pid

    def alive(self) -> bool:
        return self.process.is_alive()

    def send(self, *msg: Any) -> bool:
        try:
            self._conn.send(msg)
            return True
        except (OSError, ValueError):  # the child is gone
            return False

    def receive(self, timeout: float) -> tuple[Any, ...] | None:
        """The child's next message within ``timeout`` s; ("dead",) once it has exited."""
        try:
            if self._conn.poll(timeout):
                return tuple(self._conn.recv())
        except (EOFError, OSError):
            self.process.join(timeout=KILL_WAIT_S)
            return ("dead",)
        return None if self.process.is_alive() else ("dead",)

    def kill(self) -> None:
        """SIGTERM, then SIGKILL if it is still alive after ``KILL_WAIT_S``."""
        if self.process.is_alive():
            self.process.terminate()
            self.process.join(timeout=KILL_WAIT_S)
        if self.process.is_alive():
            self.process.kill()
            self.process.join(timeout=KILL_WAIT_S)
        self._conn.close()

    def close(self) -> None:
        """Let an idle child exit on its own, else kill it."""
        if self.process.is_alive() and self.send("exit"):
            self.process.join(timeout=1.0)
        self.kill()


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
        # Runs go to a child process once start_run_process() was called (serve() does with run_in_child);
        # a bare run_once() (tests, scripts) executes them in this process.
        self.run_process: RunProcess | None = None
        self._isolate = False
        # A run is claimed only if its memory estimate plus those of the runs on this machine fit the limit.
        host_prefix = f"-{socket.gethostname()}-"
        self._fits = memory_fits(running_filter=lambda r: host_prefix in (r.worker_id or ""))

    def start_run_process(self) -> None:
        """Execute runs in a warm child process from now on (started now, so that it warms up while idle)."""
        self._isolate = True
        if self.run_process is None or not self.run_process.alive():
            self.run_process = RunProcess(self.settings)
            log.info("worker %s started run process %s", self.id, self.run_process.pid)

    def close(self) -> None:
        """End the run process, if any."""
        if self.run_process is not None:
            self.run_process.close()
            self.run_process = None

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
        run = self.storage.claim_next_run(self.id, in_sweep=False if self.settings.dask_address else None,
                                          fits=self._fits)
        if run is None:
            return None
        log.info("worker %s claimed run %s (%s)", self.id, run.id, run.kind)
        if self._isolate:
            status = self._execute_in_child(run)
        else:
            status = execute_run(self.storage, run, self.id, self.settings, self.stop)
        log.info("run %s ended %s", run.id, status)
        if run.sweep_id is not None:
            self._advance_sweeps(run.sweep_id)  # queue the next trial before claiming again
        return status

    def _execute_in_child(self, run: RunRecord) -> str:
        """Execute a claimed run in the run process; this process keeps the heartbeat, watches for cancel,
        stop, lost ownership and the time limit, and kills the child when the run does not end in time."""
        self.start_run_process()
        child = self.run_process
        assert child is not None
        # Flags set by the heartbeat and the polling; the run itself computes in the child.
        ctx = DbRunContext(self.storage, run, self.id, self.stop, simulators=Simulators.from_settings(self.settings))
        end_heartbeat = _start_heartbeat(self.storage, ctx, self.settings.heartbeat_s)
        try:
            reason, status = self._supervise(child, run, ctx)
            if reason == "done":
                return self._ensure_finished(run, str(status[0]), str(status[1]))
            child.kill()
            self.run_process = None
            status = self._settle_killed_run(run, ctx, reason, child.process.exitcode)
        finally:
            end_heartbeat()
        if not self.stop.is_set():
            self.start_run_process()  # the replacement warms up while this worker goes on
        return status

    def _supervise(self, child: RunProcess, run: RunRecord, ctx: DbRunContext) -> tuple[str, Any]:
        """Wait until the child reports the run's end ("done", status) or must be killed (reason, None)."""
        limit = self.settings.run_time_limit_s
        sent: set[str] = set()
        started: float | None = None
        kill_at = float("inf")
        last_poll = 0.0
        if not child.send("run", run, self.id):
            return "died", None
        while True:
            msg = child.receive(0.1)
            now = time.monotonic()
            if msg is not None:
                if msg[0] == "started":
                    started = now
                elif msg[0] == "done":
                    return "done", (msg[1], msg[2] if len(msg) > 2 else "")
                elif msg[0] == "dead":
                    return "died", None
            if self.stop.is_set() and "stop" not in sent:
                sent.add("stop")
                child.send("stop")
                kill_at = min(kill_at, now + STOP_GRACE_S)
            if ctx.lost.is_set() and "lost" not in sent:
                sent.add("lost")
                child.send("lost")
                kill_at = min(kill_at, now + self.settings.cancel_grace_s)
            if now - last_poll >= CANCEL_POLL_S and not ctx.cancel_flag.is_set():
                last_poll = now
                try:
                    if self.storage.is_cancel_requested(run.id):
                        ctx.cancel_flag.set()
                except Exception:  # a transient DB error: the heartbeat or the next poll will see it
                    log.exception("cancel poll failed for run %s", run.id)
            if ctx.cancel_flag.is_set() and "cancel" not in sent:
                sent.add("cancel")
                child.send("cancel")
                kill_at = min(kill_at, now + self.settings.cancel_grace_s)
            # The child fails the run itself at the limit when it reaches a check; a moment later it is killed.
            if limit > 0 and started is not None and now - started > limit + min(1.0, self.settings.cancel_grace_s):
                return "time", None
            if now >= kill_at:
                return "kill", None

    def _ensure_finished(self, run: RunRecord, status: str, error: str) -> str:
        """The child said the run ended; if its final write failed (database full, read-only, gone), the
        run is still "running" here: write the failure from this process, retrying while that helps."""
        if not error:
            return status
        log.error("run %s: %s", run.id, error)
        try:
            got = retrying(lambda: self.storage.get_run(run.id), attempts=4, backoff=1.0)
            if got.finished or got.worker_id != self.id:
                return got.status if got.finished else "lost"
            ok = retrying(lambda: self.storage.finish_run(
                run.id, self.id, FAILED, error=f"the run could not be stored: {error}", message="failed",
                versions=software_versions()), attempts=4, backoff=1.0)
        except StorageError as exc:  # its heartbeat stops now, so recovery ends it later with that reason
            log.error("run %s: its failure could not be stored either: %s", run.id, exc)
            return FAILED
        return FAILED if ok else "lost"

    def _settle_killed_run(self, run: RunRecord, ctx: DbRunContext, reason: str, exitcode: int | None) -> str:
        """Write the final state of a run whose process was killed (or died); returns that state."""
        if reason == "died":
            time.sleep(0.3)  # a SIGTERM to the whole process group reaches this process's handler too
        if ctx.lost.is_set():
            log.warning("run %s was taken over by another worker; its process was killed", run.id)
            return "lost"
        versions = _versions(ctx)
        if ctx.cancel_flag.is_set():
            log.warning("run %s did not stop within %g s of its cancel; its process was killed", run.id,
                        self.settings.cancel_grace_s)
            ok = self.storage.finish_run(run.id, self.id, CANCELLED, message="cancelled by user", versions=versions)
            status = CANCELLED
        elif reason == "time":
            log.warning("run %s exceeded the time limit; its process was killed", run.id)
            ok = self.storage.finish_run(run.id, self.id, FAILED, error=time_limit_text(self.settings.run_time_limit_s),
                                         message="failed", versions=versions)
            status = FAILED
        elif self.stop.is_set() or exitcode == -signal.SIGTERM:
            ok = self.storage.release_run(run.id, self.id, REQUEUED_ON_STOP)
            status = "requeued"
        else:
            how = f"was killed by signal {-exitcode}" if exitcode is not None and exitcode < 0 else \
                f"exited with code {exitcode}"
            hint = " (out of memory?)" if exitcode == -signal.SIGKILL else ""
            log.error("run process of run %s %s", run.id, how)
            ok = self.storage.finish_run(run.id, self.id, FAILED, error=f"the run's process {how}{hint}",
                                         message="failed", versions=versions)
            status = FAILED
        if ok:
            return status
        got = self.storage.get_run(run.id)  # the child wrote the final state just before it was killed
        return got.status if got.finished and got.worker_id == self.id else "lost"

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
        """Loop until stopped (signal, parent gone) or ``max_runs`` runs were executed. Database errors
        (server restarting, disk full, read-only file) are logged and retried with a growing wait."""
        while not self.stop.is_set():
            try:
                self.storage.register_worker(self.id, socket.gethostname(), os.getpid())
                break
            except StorageError as exc:
                log.warning("cannot register worker %s, retrying in %.0f s: %s", self.id, DB_BACKOFF_MAX_S / 6, exc)
                self.stop.wait(DB_BACKOFF_MAX_S / 6)
        if self.settings.run_in_child:
            self.start_run_process()
        if self.parent_pid is not None:
            threading.Thread(target=self._watch_parent, daemon=True).start()
        executed, idle_since = 0, time.monotonic()
        outage = 0  # consecutive database failures: the worker waits longer each time and keeps serving
        try:
            while not self.stop.is_set():
                try:
                    status = self.run_once()
                except StorageError as exc:
                    outage += 1
                    delay = min(DB_BACKOFF_MAX_S, self.settings.poll_s * 2 ** min(outage, 10))
                    log.warning("database error (%d in a row), retrying in %.1f s: %s", outage, delay, exc)
                    self.stop.wait(delay)
                    continue
                if outage:
                    log.info("database reachable again after %d failed attempt(s)", outage)
                    outage = 0
                if status is None:
                    if idle_exit_s is not None and time.monotonic() - idle_since > idle_exit_s:
                        break
                    self.stop.wait(self.settings.poll_s)
                    continue
                executed += 1
                idle_since = time.monotonic()
                if max_runs is not None and executed >= max_runs:
                    break
        finally:
            self.close()
            try:
                self.storage.stop_worker(self.id)
            except StorageError as exc:  # the record ages out as not alive
                log.warning("could not mark worker %s stopped: %s", self.id, exc)
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
    # Each process's runs get their share of the cores (unless QMLAPP_SIM_THREADS says otherwise):
    # oversubscribed qsim and TensorFlow thread pools slow everyone down.
    settings = dataclasses.replace(settings, concurrent_runs=concurrency)

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
    for p in procs:
        if p.is_alive():  # never hang on exit: its run is recovered through the stale heartbeat
            p.kill()
