"""Settings, read once from the environment at an entry point and passed down."""

from __future__ import annotations

import os
from dataclasses import dataclass

from db.storage import DEFAULT_DATABASE_URL

SIM_THREADS_ENV = "QMLAPP_SIM_THREADS"


def usable_cpus() -> int:
    """CPUs this process may run on (its affinity mask: taskset, cgroup cpusets, SLURM allocations)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # no affinity API on this platform
        return max(1, os.cpu_count() or 1)


def cpu_share(concurrent_runs: int) -> int:
    """Threads per run when ``concurrent_runs`` runs share this process's CPUs (at least 1)."""
    return max(1, usable_cpus() // max(1, int(concurrent_runs)))


def env_sim_threads() -> int | None:
    """``QMLAPP_SIM_THREADS`` as an integer from 1 to the machine's CPU count; None when unset."""
    raw = os.environ.get(SIM_THREADS_ENV, "").strip()
    if not raw:
        return None
    top = max(os.cpu_count() or 1, usable_cpus())
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if not 1 <= value <= top:
        raise SystemExit(f"{SIM_THREADS_ENV}: must be an integer from 1 to {top} (the CPUs of this machine), "
                         f"got {raw!r}")
    return value


def _env_float(name: str, default: float) -> float:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return float(raw)
    except ValueError:
        raise SystemExit(f"{name}: must be a number of seconds, got {raw!r}") from None


@dataclass(frozen=True)
class Settings:
    database_url: str = DEFAULT_DATABASE_URL
    heartbeat_s: float = 2.0  # how often a worker proves it is alive
    stale_after_s: float = 30.0  # a running run with an older heartbeat is recovered
    poll_s: float = 0.5  # idle worker's queue polling interval
    embedded_worker: bool = True
    dask_address: str | None = None  # scheduler address: sweep trials run on that Dask cluster
    run_time_limit_s: float = 0.0  # a run computing longer than this fails (0 = no limit)
    # A worker executes runs in a warm child process it can kill (hard cancel, stop, time limit);
    # False runs them in the worker's own process, where only cooperative checks can stop them.
    run_in_child: bool = True
    cancel_grace_s: float = 3.0  # after a cancel, how long the run may take to stop before it is killed
    # Threads of each run's simulators (qsim, TFQ and TensorFlow's intra-op pool); None = this process's
    # share of the usable CPUs, since busy threads beyond the cores slow every run down.
    sim_threads: int | None = None
    concurrent_runs: int = 1  # runs executing at once on these CPUs (`worker --concurrency N` sets N)

    def __post_init__(self) -> None:
        if self.sim_threads is not None and self.sim_threads < 1:
            raise ValueError(f"sim_threads must be ≥ 1, got {self.sim_threads}")
        if self.concurrent_runs < 1:
            raise ValueError(f"concurrent_runs must be ≥ 1, got {self.concurrent_runs}")

    @property
    def threads_per_run(self) -> int:
        """The simulator thread count of one run: ``sim_threads``, else the CPUs divided among the runs."""
        return self.sim_threads if self.sim_threads is not None else cpu_share(self.concurrent_runs)

    @classmethod
    def from_env(cls) -> Settings:
        return cls(
            database_url=os.environ.get("QMLAPP_DATABASE_URL") or DEFAULT_DATABASE_URL,
            heartbeat_s=_env_float("QMLAPP_HEARTBEAT_S", cls.heartbeat_s),
            stale_after_s=_env_float("QMLAPP_STALE_AFTER_S", cls.stale_after_s),
            poll_s=_env_float("QMLAPP_POLL_S", cls.poll_s),
            embedded_worker=os.environ.get("QMLAPP_EMBEDDED_WORKER", "1").lower() not in ("0", "false", "no"),
            dask_address=os.environ.get("QMLAPP_DASK_ADDRESS") or None,
            run_time_limit_s=max(0.0, _env_float("QMLAPP_RUN_TIME_LIMIT_S", cls.run_time_limit_s)),
            run_in_child=os.environ.get("QMLAPP_RUN_IN_CHILD", "1").lower() not in ("0", "false", "no"),
            cancel_grace_s=max(0.0, _env_float("QMLAPP_CANCEL_GRACE_S", cls.cancel_grace_s)),
            sim_threads=env_sim_threads(),
        )
