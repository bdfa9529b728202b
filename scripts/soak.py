"""Load and fault soak of the run store and workers (``make soak``; CI runs it small).

Four phases, all on real parts (SQLite files, ``python -m qmlapp worker`` processes, the real kinds):

1. load:    W worker processes drain R tiny runs (mostly ``qnn``, one of every other kind per 20) that
            two threads submit while a third reads the store as the web app does. Every run must end
            succeeded, exactly once, and no process may log "database is locked".
2. kill -9: W workers run K longer runs while a killer SIGKILLs a random worker at random moments
            and starts a replacement. Every run must end succeeded, or failed with a reason; none
            may stay queued or running.
3. fuzz:    hypothesis-generated spec dicts for every kind go through the same validation as the
            form, the CLI and the API: each is accepted or refused with a SpecError naming a field.
4. memory:  specs whose simulation would not fit in memory are refused before queueing.

Prints the figures and exits non-zero when an invariant fails.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from db import FAILED, FINISHED, SUCCEEDED, Storage  # noqa: E402
from qmlapp import services  # noqa: E402
from qmlapp.registry import KINDS  # noqa: E402
from qmlapp.specs import SpecError  # noqa: E402

TINY: dict[str, dict[str, Any]] = {
    "qnn": {"dataset": "banknote", "n_qubits": 2, "depth": 1, "epochs": 1},
    "qnetwork": {"n_features": 16, "layers": 1, "params_per_unitary": 4, "n_inputs": 2, "epsilon": 0.2,
                 "scaling_study": False},
    "hypernet": {"problem": "custom", "custom_hidden": 0, "n_points": 200, "depth": 2, "restarts": 1,
                 "max_iterations": 20, "eval_samples": 50, "study_depths": "2"},
    "qnewton": {"dataset": "digits_4x4", "hidden_units": 4, "epochs": 1, "batch_size": 512, "hhl_size": 2},
    "sparse_qgd": {"hidden_units": 8, "dense_epochs": 1, "sparse_epochs": 1, "window_steps": 5},
}
KILL_RUN: dict[str, Any] = {"dataset": "banknote", "n_qubits": 2, "depth": 1, "epochs": 15}  # a few seconds
LOCKED = "database is locked"


class Fleet:
    """Worker processes on one database, each its own ``python -m qmlapp worker`` (so kill -9 hits it)."""

    def __init__(self, url: str, logdir: Path, env: dict[str, str]) -> None:
        self.url, self.logdir, self.env = url, logdir, env
        self.procs: list[subprocess.Popen[bytes]] = []
        self.started = 0

    def start(self) -> subprocess.Popen[bytes]:
        self.started += 1
        log = open(self.logdir / f"worker{self.started}.log", "wb")
        proc = subprocess.Popen([sys.executable, "-m", "qmlapp", "worker"], cwd=ROOT, stdout=log,
                                stderr=subprocess.STDOUT, env={**self.env, "QMLAPP_DATABASE_URL": self.url},
                                start_new_session=True)
        self.procs.append(proc)
        return proc

    def alive(self) -> list[subprocess.Popen[bytes]]:
        return [p for p in self.procs if p.poll() is None]

    def stop(self) -> None:
        for p in self.alive():
            p.send_signal(signal.SIGTERM)
        for p in self.procs:
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()

    def log_count(self, needle: str) -> int:
        return sum(f.read_text(errors="replace").lower().count(needle) for f in self.logdir.glob("worker*.log"))


def _worker_env() -> dict[str, str]:
    return {**os.environ, "QMLAPP_HEARTBEAT_S": "0.5", "QMLAPP_STALE_AFTER_S": "4", "QMLAPP_POLL_S": "0.1",
            "QMLAPP_TF_THREADS": "1", "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": str(ROOT)}


def _wait_all_finished(storage: Storage, n: int, timeout: float, fleet: Fleet | None = None) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        counts = storage.count_runs()
        if sum(counts.get(s, 0) for s in FINISHED) >= n:
            return True
        if fleet is not None and not fleet.alive():
            fleet.start()  # never leave the queue without a worker
        time.sleep(0.5)
    return False


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


def phase_load(workdir: Path, n_runs: int, n_workers: int, timeout: float) -> dict[str, Any]:
    url = f"sqlite:///{workdir / 'load.db'}"
    storage = Storage(url)
    fleet = Fleet(url, workdir / "load", _worker_env())
    fleet.logdir.mkdir()
    errors: list[str] = []
    reads = 0
    done = threading.Event()
    others = [k for k in TINY if k != "qnn"]

    def submitter(indices: range) -> None:
        own = Storage(url, auto_migrate=False)
        for i in indices:
            kind = others[(i // 20) % len(others)] if i % 20 == 19 else "qnn"
            try:
                services.submit_run(own, kind, {**TINY[kind], "seed": i}, name=f"soak {i}")
            except Exception as exc:
                errors.append(f"submit {i}: {type(exc).__name__}: {exc}")
            time.sleep(random.uniform(0, 0.02))
        own.close()

    def reader() -> None:  # what the Runs page does every second, here as fast as it can
        nonlocal reads
        own = Storage(url, auto_migrate=False)
        while not done.is_set():
            try:
                runs = own.list_runs(limit=200)
                if runs:
                    own.get_metrics(runs[0].id)
                own.count_runs()
                reads += 1
            except Exception as exc:
                errors.append(f"read: {type(exc).__name__}: {exc}")
            time.sleep(0.05)
        own.close()

    t0 = time.monotonic()
    for _ in range(n_workers):
        fleet.start()
    half = n_runs // 2
    threads = [threading.Thread(target=submitter, args=(range(0, half),)),
               threading.Thread(target=submitter, args=(range(half, n_runs),)),
               threading.Thread(target=reader)]
    for t in threads:
        t.start()
    for t in threads[:2]:
        t.join()
    finished = _wait_all_finished(storage, n_runs, timeout)
    wall = time.monotonic() - t0
    done.set()
    threads[2].join()
    fleet.stop()
    runs = storage.list_runs(limit=None)
    status = Counter(r.status for r in runs)
    latencies = [(r.started_at - r.created_at).total_seconds() for r in runs if r.started_at]
    durations = [r.duration_s for r in runs if r.duration_s is not None]
    locked = fleet.log_count(LOCKED) + sum(LOCKED in e.lower() for e in errors)
    fig = {
        "workers": n_workers, "submitted": n_runs, "stored": len(runs), "by_status": dict(status),
        "by_kind": dict(Counter(r.kind for r in runs)),
        "executed_more_than_once": sum(r.attempts > 1 for r in runs),
        "not_finished": sum(r.status not in FINISHED for r in runs),
        "failed_reasons": sorted({r.error or "" for r in runs if r.status == FAILED})[:5],
        "database_is_locked": locked, "other_errors": [e for e in errors if LOCKED not in e.lower()][:5],
        "ui_reads": reads, "wall_s": round(wall, 1), "runs_per_min": round(60 * len(runs) / wall, 1),
        "queue_wait_s_p50": round(_percentile(latencies, 0.5), 2),
        "queue_wait_s_p95": round(_percentile(latencies, 0.95), 2),
        "run_s_p50": round(_percentile(durations, 0.5), 2),
    }
    fig["ok"] = (finished and len(runs) == n_runs and status.get(SUCCEEDED, 0) == n_runs and locked == 0
                 and not errors and fig["executed_more_than_once"] == 0)
    storage.close()
    return fig


def phase_kill(workdir: Path, n_runs: int, n_workers: int, n_kills: int, timeout: float, seed: int) -> dict[str, Any]:
    rng = random.Random(seed)
    url = f"sqlite:///{workdir / 'kill.db'}"
    storage = Storage(url)
    fleet = Fleet(url, workdir / "kill", _worker_env())
    fleet.logdir.mkdir()
    for i in range(n_runs):
        services.submit_run(storage, "qnn", {**KILL_RUN, "seed": i}, name=f"kill soak {i}")
    t0 = time.monotonic()
    for _ in range(n_workers):
        fleet.start()
    kills, mid_run = 0, 0
    while kills < n_kills and time.monotonic() - t0 < timeout / 2:
        time.sleep(rng.uniform(0.5, 4.0))
        alive = fleet.alive()
        if not alive:
            break
        # Prefer a worker that is executing a run right now (its pid is in the run's worker record).
        busy_pids = {w.pid for w in storage.list_workers(alive_within_s=10)
                     if w.current_run_id is not None
                     and storage.get_run(w.current_run_id).status == "running"}
        busy = [p for p in alive if p.pid in busy_pids]
        victim = rng.choice(busy or alive)
        os.killpg(victim.pid, signal.SIGKILL)
        victim.wait()
        kills += 1
        mid_run += bool(busy)
        fleet.start()  # a supervisor (systemd, compose, serve_workers) would restart it
    finished = _wait_all_finished(storage, n_runs, timeout, fleet)
    wall = time.monotonic() - t0
    fleet.stop()
    runs = storage.list_runs(limit=None)
    status = Counter(r.status for r in runs)
    failed_without_reason = [r.id for r in runs if r.status == FAILED and not (r.error or "").strip()]
    fig = {
        "workers": n_workers, "runs": n_runs, "kill_9": kills, "kills_while_runs_were_running": mid_run,
        "by_status": dict(status), "recovered_and_rerun": sum(r.attempts > 1 and r.status == SUCCEEDED for r in runs),
        "failed_reasons": dict(Counter((r.error or "")[:90] for r in runs if r.status == FAILED)),
        "failed_without_reason": failed_without_reason,
        "not_finished": [r.id for r in runs if r.status not in FINISHED],
        "database_is_locked": fleet.log_count(LOCKED), "wall_s": round(wall, 1),
    }
    fig["ok"] = (finished and not fig["not_finished"] and not failed_without_reason
                 and set(status) <= {SUCCEEDED, FAILED} and fig["database_is_locked"] == 0)
    storage.close()
    return fig


def phase_fuzz(examples: int, seed: int) -> dict[str, Any]:
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    sys.path.insert(0, str(ROOT / "tests"))
    from test_spec_fuzz import VALUES

    per_kind: dict[str, dict[str, int]] = {}
    crashes: list[str] = []
    for kind, k in KINDS.items():
        known = {*k.spec_class.params(), "kind", "schema_version", "spec", "unknown_field"}
        base = k.spec_class().to_dict()
        fields = [*k.spec_class.params(), "kind", "schema_version", "unknown_field"]
        tally: Counter[str] = Counter()
        near = st.one_of(VALUES, st.integers(min_value=-3, max_value=70), st.floats(min_value=-1, max_value=1e5))
        both = st.one_of(st.dictionaries(st.sampled_from(fields), VALUES, max_size=6),
                         st.dictionaries(st.sampled_from(fields[:-3]), near, min_size=1, max_size=2).map(
                             lambda changes, base=base: {**base, **changes}),
                         _in_range_specs(k.spec_class, base))

        check = _fuzz_check(kind, known, tally, crashes)
        settings(max_examples=examples, deadline=None, database=None, derandomize=True,
                 suppress_health_check=list(HealthCheck))(given(both)(check))()
        per_kind[kind] = dict(tally)
    return {"examples_per_kind": examples, "per_kind": per_kind, "problems": crashes[:10], "ok": not crashes}


def _in_range_specs(cls: Any, base: dict[str, Any]) -> Any:
    """Every field drawn from its own allowed values, so that cross-field rules and the memory check
    (not just per-field ranges) are what decides."""
    from hypothesis import strategies as st

    fields = {}
    for name, (f, p) in cls.params().items():
        typ = f.type if isinstance(f.type, str) else getattr(f.type, "__name__", "")
        if p.choices is not None:
            fields[name] = st.sampled_from(p.choices)
        elif typ == "bool":
            fields[name] = st.booleans()
        elif typ == "int" and p.low is not None and p.high is not None:
            fields[name] = st.integers(min_value=int(p.low), max_value=int(min(p.high, 2**40)))
        elif typ == "float" and p.low is not None and p.high is not None:
            fields[name] = st.floats(min_value=p.low, max_value=p.high, allow_nan=False)
    return st.fixed_dictionaries({}, optional=fields).map(lambda changes: {**base, **changes})


def _fuzz_check(kind: str, known: set[str], tally: Counter[str], crashes: list[str]) -> Any:
    def check(data: dict[str, Any]) -> None:
        try:
            services.validate_spec(kind, data)
            tally["accepted"] += 1
        except SpecError as exc:
            if exc.field in known and exc.message:
                tally["refused_naming_the_field"] += 1
            else:
                tally["refused_without_a_known_field"] += 1
                crashes.append(f"{kind}: field {exc.field!r}: {exc.message}")
        except Exception as exc:
            tally["crashed"] += 1
            crashes.append(f"{kind}: {type(exc).__name__}: {exc} for {data!r}"[:300])

    return check


def phase_memory(workdir: Path) -> dict[str, Any]:
    from qmlapp.resources import GIB, memory_limit_bytes

    storage = Storage(f"sqlite:///{workdir / 'memory.db'}")
    limit = memory_limit_bytes()
    cases = {
        "qnn 16 qubits, batch 1024, limit 1 GiB": ("qnn", {"dataset": "breast_cancer", "n_qubits": 16,
                                                            "batch_size": 1024}, "1"),
        "qnn 8 qubits with gate noise, batch 1024, limit 1 GiB": (
            "qnn", {"dataset": "breast_cancer", "n_qubits": 8, "noise_2q": 0.01, "batch_size": 1024}, "1"),
        f"qnetwork N = 2^20 with 1000 inputs, this machine's {limit / GIB:.1f} GiB": (
            "qnetwork", {"n_features": 2**20, "n_inputs": 1000}, ""),
        "qnetwork N = 2^20 with 1000 inputs, limit 4 GiB": ("qnetwork", {"n_features": 2**20, "n_inputs": 1000}, "4"),
    }
    out: dict[str, str] = {}
    refused = 0
    for label, (kind, spec, lim) in cases.items():
        old = os.environ.pop("QMLAPP_MEMORY_LIMIT_GB", None)
        if lim:
            os.environ["QMLAPP_MEMORY_LIMIT_GB"] = lim
        try:
            run = services.submit_run(storage, kind, spec)
            out[label] = f"accepted (run {run.id}, fits)"
            storage.delete_run(run.id)
        except SpecError as exc:
            refused += 1
            out[label] = f"refused: {exc.field}: {exc.message}"
        finally:
            os.environ.pop("QMLAPP_MEMORY_LIMIT_GB", None)
            if old is not None:
                os.environ["QMLAPP_MEMORY_LIMIT_GB"] = old
    stored = len(storage.list_runs(limit=None))
    storage.close()
    return {"cases": out, "refused": refused, "runs_stored": stored, "ok": refused >= 3 and stored == 0}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=200, help="tiny runs in the load phase")
    ap.add_argument("--workers", type=int, default=4)
    ap.add_argument("--kill-runs", type=int, default=40, help="runs in the kill -9 phase")
    ap.add_argument("--kills", type=int, default=12)
    ap.add_argument("--fuzz", type=int, default=1000, help="fuzzed specs per kind")
    ap.add_argument("--timeout", type=float, default=900, help="seconds per phase")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", type=Path, help="also write the figures here")
    ap.add_argument("--phases", default="load,kill,fuzz,memory", help="comma-separated subset to run")
    args = ap.parse_args()
    random.seed(args.seed)
    figures: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="qmlapp-soak-") as tmp:
        work = Path(tmp)
        for name, fn in [
            ("load", lambda: phase_load(work, args.runs, args.workers, args.timeout)),
            ("kill", lambda: phase_kill(work, args.kill_runs, args.workers, args.kills, args.timeout, args.seed)),
            ("fuzz", lambda: phase_fuzz(args.fuzz, args.seed)),
            ("memory", lambda: phase_memory(work)),
        ]:
            if name not in args.phases.split(","):
                continue
            t0 = time.monotonic()
            figures[name] = fn()
            figures[name]["phase_s"] = round(time.monotonic() - t0, 1)
            print(f"== {name}: {'ok' if figures[name]['ok'] else 'FAILED'} ==\n"
                  + json.dumps(figures[name], indent=2, default=str, ensure_ascii=False), flush=True)
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2, default=str))
    bad = [k for k, v in figures.items() if not v["ok"]]
    print("soak: " + ("all invariants held" if not bad else f"FAILED in {', '.join(bad)}"))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
