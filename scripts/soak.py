"""Load and fault soak of the run store and workers (``make soak``; CI runs it small).

Six phases, all on real parts (SQLite files, ``python -m qmlapp worker`` processes, the real kinds):

1. load:     W worker processes drain R tiny runs (mostly ``qnn``, one of every other kind per 20) that
             two threads submit while a third reads the store as the web app does. Every run must end
             succeeded, exactly once, and no process may log "database is locked".
2. kill -9:  W workers run K longer runs while a killer SIGKILLs a random worker at random moments
             and starts a replacement. Every run must end succeeded, or failed with a reason; none
             may stay queued or running.
3. fuzz:     hypothesis-generated spec dicts for every kind go through the same validation as the
             form, the CLI and the API: each is accepted or refused with a SpecError naming a field.
4. memory:   specs whose simulation would not fit in memory are refused before queueing.
5. badinput: hostile inputs by class (huge integers, inf/NaN, 100k-deep JSON, non-UTF-8 files, bad
             run names, sweep spaces too large to list), each through the API (validate_spec,
             submit_run, create_sweep) and the CLI: tried / refused naming a field / crashed (anything
             else, including accepted), and nothing stored. On SQLite, and on PostgreSQL with
             --postgres-url (or QMLAPP_TEST_POSTGRES_URL, which scripts/with-postgres.sh sets).
6. faults:   faults injected into real processes with tiny runs in flight: kill -9 of ``serve`` (no
             orphans, its run recovered), SIGSTOP of a worker past the stale threshold, a PostgreSQL
             restart, a full disk and a read-only database under SQLite, Alembic down/up with data.
             Per fault: survived or not, runs lost, metric points lost or duplicated.

Prints the figures and a table, and exits non-zero when an invariant fails (a crash, a lost run or point).
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import math
import os
import random
import re
import select
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from db import FAILED, FINISHED, SUCCEEDED, Storage  # noqa: E402
from qmlapp import services  # noqa: E402
from qmlapp.registry import KINDS  # noqa: E402
from qmlapp.specs import SpecError  # noqa: E402

TINY: dict[str, dict[str, Any]] = {name: dict(kind.example) for name, kind in KINDS.items()}  # seconds each
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
            "QMLAPP_SIM_THREADS": "1", "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": str(ROOT)}


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

        def overlay(changes: dict[str, Any], base: dict[str, Any] = base) -> dict[str, Any]:
            return {**base, **changes}

        near = st.one_of(VALUES, st.integers(min_value=-3, max_value=70), st.floats(min_value=-1, max_value=1e5))
        both = st.one_of(st.dictionaries(st.sampled_from(fields), VALUES, max_size=6),
                         st.dictionaries(st.sampled_from(fields[:-3]), near, min_size=1, max_size=2).map(overlay),
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
    cases: dict[str, tuple[str, dict[str, Any], str]] = {
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


# --- badinput ----------------------------------------------------------------------------------
BAD_CLI_TIMEOUT_S = 120.0
BAD_API_TIMEOUT_S = 60.0
QNN_OK: dict[str, Any] = {"dataset": "iris", "n_qubits": 2, "readout": "mod_k", "epochs": 1}
SWEEP_OK: dict[str, Any] = {"kind": "qnn", "base": QNN_OK, "space": {"depth": [1, 2]}, "sampler": "grid",
                            "n_trials": 2}
# One point too many for any machine: 5000 × 1024 × 20 ≈ 1e8 grid points.
HUGE_GRID: dict[str, Any] = {**SWEEP_OK, "space": {"epochs": {"low": 1, "high": 5000},
                                                  "batch_size": {"low": 1, "high": 1024},
                                                  "depth": {"low": 1, "high": 20}}, "n_trials": 10}
TINY_STEP: dict[str, Any] = {**SWEEP_OK, "space": {"learning_rate": {"low": 0.001, "high": 0.1, "step": 1e-300}}}
DEEP = 100_000


@dataclass
class BadCase:
    """One hostile input through one path. ``api`` runs in a forked child with a Storage on the database;
    ``cli`` is the argv after ``python -m qmlapp`` with ``{spec}`` standing for a file of ``spec_bytes``."""

    cls: str
    path: str
    api: Callable[[Storage], Any] | None = None
    cli: list[str | bytes] | None = None
    spec_bytes: bytes = b""
    kind: str = "qnn"


def _deep_list(depth: int) -> list[Any]:
    out: list[Any] = []
    for _ in range(depth - 1):
        out = [out]
    return out


def _num_text(value: Any) -> str:
    """JSON text of a number as a hostile client writes it (Python's json reads Infinity, NaN, 1e400)."""
    return value if isinstance(value, str) else str(value)


def _bad_cases() -> list[BadCase]:
    from qmlapp import sweeps

    cases: list[BadCase] = []

    def spec_cases(cls: str, kind: str, base: dict[str, Any], field_name: str, api_value: Callable[[], Any],
                   json_text: str, label: str) -> None:
        data = lambda: {**base, field_name: api_value()}  # noqa: E731 - built in the child: no cost here
        cases.append(BadCase(cls, f"api validate_spec {label}", api=lambda st: services.validate_spec(kind, data()),
                             kind=kind))
        cases.append(BadCase(cls, f"api submit_run {label}", kind=kind,
                             api=lambda st: services.submit_run(st, kind, data(), name="badinput")))
        body = json.dumps(base)[:-1] + (", " if base else "") + f'"{field_name}": {json_text}}}'
        cases.append(BadCase(cls, f"cli submit {label}", cli=["submit", kind, "--spec", "{spec}"],
                             spec_bytes=body.encode(), kind=kind))

    # Factories, not lambdas in the loops below: each case keeps its own loop values.
    def validating(data: dict[str, Any]) -> Callable[[Storage], Any]:
        return lambda st: services.validate_spec("qnn", data)

    def submitting(data: dict[str, Any], name: str = "") -> Callable[[Storage], Any]:
        return lambda st: services.submit_run(st, "qnn", data, name=name)

    def creating_sweep(data: dict[str, Any]) -> Callable[[Storage], Any]:
        return lambda st: sweeps.create_sweep(st, data)

    def two_then(make: Callable[[], Any]) -> Callable[[], list[Any]]:
        return lambda: [2, make()]

    for digits in (400, 5000):
        for fld in ("epochs", "seed"):
            spec_cases(f"{digits}-digit integer", "qnn", QNN_OK, fld, partial(pow, 10, digits - 1),
                       "1" + "0" * (digits - 1), fld)
    nonfinite = [("inf", lambda: math.inf, "Infinity"), ("1e400", lambda: float("1e400"), "1e400"),
                 ("NaN", lambda: math.nan, "NaN")]
    for name, make, text in nonfinite:
        spec_cases("inf/1e400/NaN in int field", "qnn", QNN_OK, "epochs", make, text, f"epochs={name}")
        spec_cases("inf/1e400/NaN in float field", "qnn", QNN_OK, "learning_rate", make, text,
                   f"learning_rate={name}")
        spec_cases("inf/1e400/NaN in int list", "hypernet", TINY["hypernet"], "study_depths",
                   two_then(make), f"[2, {text}]", f"study_depths=[2, {name}]")
    spec_cases("100k-deep nested JSON", "qnn", QNN_OK, "epochs", lambda: _deep_list(DEEP),
               "[" * DEEP + "]" * DEEP, "epochs")
    spec_cases("100k-deep nested JSON", "hypernet", TINY["hypernet"], "study_depths", lambda: _deep_list(DEEP),
               "[" * DEEP + "]" * DEEP, "study_depths")
    cls = "non-UTF-8 spec file"
    for label, raw in [("0xff in a string", b'{"dataset": "\xff\xfe"}'),
                       ("latin-1 text", '{"dataset": "é"}'.encode("latin-1")), ("leading 0xff", b'\xff{"epochs": 1}')]:
        cases.append(BadCase(cls, f"cli submit {label}", cli=["submit", "qnn", "--spec", "{spec}"], spec_bytes=raw))
    # What an API client gets from such a file: bytes, or text decoded with surrogateescape.
    for label, val in [("bytes", b"\xff\xfe"), ("surrogateescape", b"\xff\xfe".decode("utf-8", "surrogateescape"))]:
        cases.append(BadCase(cls, f"api validate_spec dataset={label}",
                             api=validating({**QNN_OK, "dataset": val})))
        cases.append(BadCase(cls, f"api submit_run dataset={label}",
                             api=submitting({**QNN_OK, "dataset": val})))
    ok_spec = json.dumps(QNN_OK).encode()
    names: list[tuple[str, str, bytes | None]] = [
        ("lone surrogate in name", "run \ud800", b"run \xed\xa0\x80"),  # argv bytes decode to surrogates
        ("NUL in name", "run\x00name", None),  # argv cannot carry NUL: the CLI case is a sweep file's name
        ("201-character name", "x" * 201, b"x" * 201)]
    for cls, name, argv in names:
        cases.append(BadCase(cls, "api submit_run name", api=submitting(QNN_OK, name=name)))
        cases.append(BadCase(cls, "api create_sweep name", api=creating_sweep({**SWEEP_OK, "name": name})))
        if argv is not None:
            cases.append(BadCase(cls, "cli submit --name", cli=["submit", "qnn", "--spec", "{spec}", "--name", argv],
                                 spec_bytes=ok_spec))
        cases.append(BadCase(cls, "cli sweep --spec name", cli=["sweep", "--spec", "{spec}"],
                             spec_bytes=json.dumps({**SWEEP_OK, "name": name}).encode()))
    for cls, sweep in [("grid of 1e8 points", HUGE_GRID), ("float range step 1e-300", TINY_STEP)]:
        cases.append(BadCase(cls, "api create_sweep", api=creating_sweep(sweep)))
        cases.append(BadCase(cls, "cli sweep --spec", cli=["sweep", "--spec", "{spec}"],
                             spec_bytes=json.dumps(sweep).encode()))
    return cases


def _known_fields(kind: str) -> set[str]:
    from qmlapp.sweeps import SWEEP_KEYS

    params = set(KINDS[kind].spec_class.params()) | set(KINDS["qnn"].spec_class.params())
    return (params | {"kind", "schema_version", "spec", "name", "--spec", "--name", "sweep", "space", *SWEEP_KEYS}
            | {f"space.{p}" for p in params} | {f"base.{p}" for p in params})


def _in_fork(fn: Callable[[], Any], timeout: float) -> tuple[str, str]:
    """Run ``fn`` in a forked child, so that a hang, a blown C stack or a huge allocation is an outcome and
    not the end of the soak. Returns (outcome, detail): accepted, spec_error (field NUL message), exception,
    died or timeout."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns
        os.close(r)
        try:
            fn()
            out = ["accepted", ""]
        except SpecError as exc:
            out = ["spec_error", f"{exc.field}\x00{exc.message[:300]}"]
        except BaseException as exc:
            out = ["exception", f"{type(exc).__name__}: {show(exc)}"[:400]]
        try:
            os.write(w, json.dumps(out).encode())
        finally:
            os._exit(0)
    os.close(w)
    chunks: list[bytes] = []
    deadline = time.monotonic() + timeout
    try:
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([r], [], [], left)[0]:
                os.kill(pid, signal.SIGKILL)
                return "timeout", f"no answer within {timeout:g} s"
            chunk = os.read(r, 65536)
            if not chunk:
                break
            chunks.append(chunk)
    finally:
        os.close(r)
        _, status = os.waitpid(pid, 0)
    if not chunks:
        return "died", f"the process ended with status {status} and no answer"
    outcome, detail = json.loads(b"".join(chunks))
    return outcome, detail


def show(exc: BaseException) -> str:
    try:
        return str(exc)
    except Exception:
        return "(unprintable)"


def _stored(storage: Storage) -> tuple[int, int]:
    return sum(storage.count_runs().values()), len(storage.list_sweeps(limit=None))


def _clear(storage: Storage) -> None:
    """Delete what a wrongly accepted input stored, so that the next case starts from nothing."""
    for sw in storage.list_sweeps(limit=None):
        for r in storage.list_runs(sweep_id=sw.id, limit=None):
            if not r.finished:
                storage.request_cancel(r.id)
        with contextlib.suppress(Exception):
            storage.delete_sweep(sw.id)
    for r in storage.list_runs(limit=None):
        with contextlib.suppress(Exception):
            if r.status == "queued":
                storage.request_cancel(r.id)
            storage.delete_run(r.id)


def _field_of_cli_error(stderr: str) -> str | None:
    lines = [ln for ln in stderr.splitlines() if ln.startswith("error: ")]
    if not lines:
        return None
    head = lines[-1][len("error: "):]
    return head.split(":", 1)[0].strip() if ":" in head else None


def _try_case(case: BadCase, url: str, storage: Storage, workdir: Path) -> tuple[str, str]:
    """(verdict, detail): verdict is "refused" (naming a field) or "crashed" (anything else)."""
    known = _known_fields(case.kind)
    before = _stored(storage)
    if case.api is not None:
        api = case.api

        def call() -> Any:
            own = Storage(url, auto_migrate=False)
            return api(own)

        outcome, detail = _in_fork(call, BAD_API_TIMEOUT_S)
        if outcome == "spec_error":
            fld, _, message = detail.partition("\x00")
            verdict = "refused" if fld in known and message.strip() else "crashed"
            detail = f"{fld}: {message}"
        else:
            verdict = "crashed"
            detail = f"{outcome}: {detail}"
    else:
        assert case.cli is not None
        spec_file = workdir / "badinput-spec.json"
        spec_file.write_bytes(case.spec_bytes)
        argv = [str(spec_file) if a == "{spec}" else a for a in case.cli]
        env = {**_worker_env(), "QMLAPP_DATABASE_URL": url, "QMLAPP_EMBEDDED_WORKER": "0"}
        try:
            proc = subprocess.run([sys.executable, "-m", "qmlapp", *argv], cwd=ROOT, env=env, capture_output=True,
                                  timeout=BAD_CLI_TIMEOUT_S)
            err = proc.stderr.decode(errors="replace")
            named = _field_of_cli_error(err)
            ok = proc.returncode == 2 and "Traceback" not in err and named in known
            verdict = "refused" if ok else "crashed"
            tail = err.strip().splitlines()[-1] if err.strip() else "(no message)"
            detail = f"exit {proc.returncode}: {tail}"[:400]
        except subprocess.TimeoutExpired:
            verdict, detail = "crashed", f"timeout: no exit within {BAD_CLI_TIMEOUT_S:g} s"
    after = _stored(storage)
    if after != before:
        verdict = "crashed"
        detail = f"stored {after[0] - before[0]} run(s), {after[1] - before[1]} sweep(s); {detail}"
        _clear(storage)
    return verdict, detail.encode("utf-8", "backslashreplace").decode()  # printable: no lone surrogates


def _badinput_on(url: str, workdir: Path) -> dict[str, Any]:
    storage = Storage(url)
    per_class: dict[str, Counter[str]] = {}
    crashes: list[str] = []
    examples: dict[str, str] = {}
    try:
        for case in _bad_cases():
            verdict, detail = _try_case(case, url, storage, workdir)
            tally = per_class.setdefault(case.cls, Counter())
            tally["tried"] += 1
            tally[verdict] += 1
            examples.setdefault(case.cls, f"{case.path} -> {detail}"[:240])
            if verdict == "crashed":
                crashes.append(f"{case.cls} / {case.path}: {detail}"[:500])
        left = _stored(storage)
    finally:
        storage.close()
    classes = {c: {"tried": t["tried"], "refused": t["refused"], "crashed": t["crashed"]} for c, t in per_class.items()}
    return {"classes": classes, "examples": examples, "crashes": crashes,
            "left_stored": {"runs": left[0], "sweeps": left[1]},
            "ok": not crashes and left == (0, 0)}


def phase_badinput(workdir: Path, pg_url: str | None) -> dict[str, Any]:
    fig: dict[str, Any] = {"sqlite": _badinput_on(f"sqlite:///{workdir / 'badinput.db'}", workdir)}
    if pg_url:
        with _pg_database(pg_url) as url:
            fig["postgresql"] = _badinput_on(url, workdir)
    fig["ok"] = all(v["ok"] for v in fig.values() if isinstance(v, dict))
    return fig


@contextlib.contextmanager
def _pg_database(admin_url: str) -> Iterator[str]:
    sys.path.insert(0, str(ROOT / "tests"))
    from helpers import postgres_database

    with postgres_database(admin_url) as url:
        yield url


# --- faults ------------------------------------------------------------------------------------
# A few seconds of training after the run process has warmed up, so that faults land mid-run.
FAULT_RUN: dict[str, Any] = {"dataset": "iris", "n_qubits": 2, "readout": "mod_k", "epochs": 120}
FAULT_WAIT_S = 240.0  # bound on every wait for a run to start, be taken over or end
HOLD_S = 8.0  # how long a full disk / read-only database lasts: longer than the stale threshold (4 s)
ORPHAN_WAIT_S = 10.0
# Installed into worker and CLI processes of the disk-full fallback and the read-only fault: every SQLite
# connection checks a control file before each statement and switches PRAGMA query_only (read-only:
# SQLite's own "attempt to write a readonly database") or max_page_count (full: "database or disk is
# full") accordingly. chmod and remount cannot do this to a running worker: its descriptors stay open
# for writing (and root ignores chmod), and remounting read-only is refused while files are open to write.
SITECUSTOMIZE = '''
import os, sqlite3
_CONTROL = os.environ.get("QMLAPP_SOAK_SQLITE_FAULT")
if _CONTROL:
    def _apply(conn):
        try:
            with open(_CONTROL) as fh:
                state = fh.read().strip()
        except OSError:
            state = ""
        if state == getattr(conn, "_soak_state", ""):
            return
        conn._soak_state = state
        raw = sqlite3.Connection.execute
        raw(conn, "PRAGMA query_only=" + ("ON" if state == "readonly" else "OFF"))
        pages = raw(conn, "PRAGMA page_count").fetchone()[0] if state == "full" else 1073741823
        raw(conn, "PRAGMA max_page_count=%d" % pages)

    class _Cursor(sqlite3.Cursor):
        def execute(self, *a, **k):
            _apply(self.connection)
            return super().execute(*a, **k)

        def executemany(self, *a, **k):
            _apply(self.connection)
            return super().executemany(*a, **k)

    class _Connection(sqlite3.Connection):
        def cursor(self, factory=_Cursor):
            return super().cursor(factory)

    _connect = sqlite3.connect

    def connect(*a, **k):
        k.setdefault("factory", _Connection)
        return _connect(*a, **k)

    sqlite3.connect = sqlite3.dbapi2.connect = connect
'''


def _proc_stat(pid: int) -> tuple[str, int, int] | None:
    """(state, ppid, pgid) of a live process, None when gone."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = raw[raw.rindex(")") + 2:].split()
    return fields[0], int(fields[1]), int(fields[2])


def _all_pids() -> list[int]:
    return [int(p) for p in os.listdir("/proc") if p.isdigit()]


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()[:160]
    except OSError:
        return "?"


def _family(root: int) -> set[int]:
    """``root``, its descendants, and every process of its process group (zombies excluded)."""
    stats = {pid: st for pid in _all_pids() if (st := _proc_stat(pid)) is not None and st[0] != "Z"}
    out = {p for p, st in stats.items() if st[2] == root}
    frontier = [root]
    while frontier:
        parent = frontier.pop()
        for pid, st in stats.items():
            if st[1] == parent and pid not in out:
                out.add(pid)
                frontier.append(pid)
    return out | ({root} if root in stats else set())


def _alive(pids: set[int]) -> set[int]:
    return {p for p in pids if (st := _proc_stat(p)) is not None and st[0] != "Z"}


def _killpg(pgid: int, sig: int = signal.SIGKILL) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_for(predicate: Callable[[], Any], timeout: float, interval: float = 0.3) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        with contextlib.suppress(Exception):  # a database that is down mid-fault is not the harness's failure
            value = predicate()
            if value:
                return value
        if time.monotonic() > deadline:
            return None
        time.sleep(interval)


def _running(storage: Storage, min_progress: float = 0.1) -> list[Any]:
    return [r for r in storage.list_runs(statuses=["running"], limit=None) if r.progress >= min_progress]


def _losses(storage: Storage, ids: list[int]) -> dict[str, Any]:
    """Runs lost (vanished, not finished, failed without a reason) and metric points lost or duplicated."""
    runs = {r.id: r for r in storage.list_runs(ids=ids, limit=None)}
    lost = {i: "vanished" for i in ids if i not in runs}
    lost.update({r.id: f"stuck {r.status}" for r in runs.values() if not r.finished})
    lost.update({r.id: "failed without a reason" for r in runs.values()
                 if r.status == FAILED and not (r.error or "").strip()})
    dup = missing = 0
    for r in runs.values():
        points = storage.get_metrics(r.id)
        counts = Counter((p.step, p.name) for p in points)
        dup += sum(n - 1 for n in counts.values())
        if r.status == SUCCEEDED and points:
            epochs = int(r.spec.get("epochs", 0))
            first = min(p.step for p in points)
            for name in {p.name for p in points}:
                have = {s for s, n in counts if n == name}
                missing += len(set(range(first, epochs + 1)) - have)
    return {"by_status": dict(Counter(r.status for r in runs.values())),
            "failed_reasons": sorted({(r.error or "")[:160] for r in runs.values() if r.status == FAILED})[:4],
            "runs_lost": len(lost), "lost": {str(k): v for k, v in lost.items()},
            "points_lost": missing, "points_duplicated": dup}


def _cli_clean(url: str, env: dict[str, str], *argv: str) -> dict[str, Any]:
    """A CLI command during a fault: any exit code, but a message and no traceback."""
    try:
        proc = subprocess.run([sys.executable, "-m", "qmlapp", *argv], cwd=ROOT, capture_output=True, timeout=120,
                              env={**env, "QMLAPP_DATABASE_URL": url})
    except subprocess.TimeoutExpired:
        return {"ok": False, "rc": None, "said": "timeout after 120 s"}
    err = proc.stderr.decode(errors="replace")
    said = (err.strip().splitlines() or [f"(stdout) {proc.stdout.decode(errors='replace')[:120]}"])[-1][:240]
    return {"ok": "Traceback" not in err and (proc.returncode == 0 or err.startswith("error:")
                                              or "\nerror:" in err), "rc": proc.returncode, "said": said}


def _ended_lines(fleet: Fleet, run_id: int) -> int:
    """How many times a worker logged the final state of ``run_id`` (lost/requeued are not ends)."""
    pat = re.compile(rf"run {run_id} ended (succeeded|failed|cancelled)\b")
    return sum(len(pat.findall(f.read_text(errors="replace"))) for f in fleet.logdir.glob("worker*.log"))


def _fault_env(control: Path | None = None) -> dict[str, str]:
    env = _worker_env()
    if control is not None:
        env["QMLAPP_SOAK_SQLITE_FAULT"] = str(control)
        env["PYTHONPATH"] = f"{control.parent}{os.pathsep}{ROOT}"
    return env


def _accepts(port: int) -> bool:
    """True once something accepts TCP connections on ``port`` (raises until then)."""
    with socket.create_connection(("127.0.0.1", port), 1):
        return True


def _fault_serve_kill(work: Path) -> dict[str, Any]:
    url = f"sqlite:///{work / 'serve.db'}"
    storage = Storage(url)
    ids = [services.submit_run(storage, "qnn", {**FAULT_RUN, "seed": i}, name=f"serve {i}").id for i in range(2)]
    port = _free_port()
    log = open(work / "serve.log", "wb")
    env = {**_fault_env(), "QMLAPP_DATABASE_URL": url}
    serve = subprocess.Popen([sys.executable, "-m", "qmlapp", "serve", "--port", str(port)], cwd=ROOT, env=env,
                             stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    fleet = Fleet(url, work / "serve-fleet", _fault_env())
    fleet.logdir.mkdir()
    fig: dict[str, Any] = {"injected": False}
    try:
        def serving_a_run() -> bool:
            fam = _family(serve.pid)
            busy = {w.pid for w in storage.list_workers(alive_within_s=10) if w.current_run_id is not None}
            return bool(busy & fam) and bool(_running(storage, 0.05))

        fig["run_started"] = bool(_wait_for(serving_a_run, FAULT_WAIT_S))
        fig["app_listening"] = bool(_wait_for(lambda: _accepts(port), 60))
        family = _family(serve.pid) - {serve.pid}
        fig["children_before"] = sorted(_cmdline(p) for p in family)
        serve.kill()
        serve.wait()
        fig["injected"] = True
        _wait_for(lambda: not _alive(family), ORPHAN_WAIT_S, 0.2)
        orphans = _alive(family) | (_family(serve.pid) - {serve.pid})
        fig["orphans_after_10s"] = [f"{p}: {_cmdline(p)}" for p in sorted(orphans)]
        _killpg(serve.pid)  # whatever survived, so that it cannot take the run back
        for p in orphans:
            with contextlib.suppress(ProcessLookupError):
                os.kill(p, signal.SIGKILL)
        fleet.start()  # "another worker later"
        _wait_all_finished(storage, len(ids), FAULT_WAIT_S, fleet)
        fig.update(_losses(storage, ids))
        fig["survived"] = fig["run_started"] and not orphans and fig["runs_lost"] == 0
    finally:
        _killpg(serve.pid)
        fleet.stop()
        for proc in fleet.procs:
            _killpg(proc.pid)
        log.close()
        storage.close()
    return fig


def _sqlite_write_locked(path: Path) -> bool:
    """Whether another process holds the SQLite database's write lock right now."""
    import sqlite3

    con = sqlite3.connect(str(path), timeout=2.0, isolation_level=None)
    try:
        con.execute("BEGIN IMMEDIATE")
        con.execute("ROLLBACK")
        return False
    except sqlite3.OperationalError as exc:
        return "locked" in str(exc)
    finally:
        con.close()


def _fault_sigstop(work: Path, pg_url: str | None = None) -> dict[str, Any]:
    """SIGSTOP a busy worker past the stale threshold, then SIGCONT. On PostgreSQL another worker must take
    the run over (a session frozen inside a transaction is ended by the server). On SQLite a worker frozen
    while it holds the write lock stops every writer until it resumes (no process can break another's
    lock): then nobody can take over, and what must hold is that the resumed worker carries on with
    nothing lost or written twice."""
    if pg_url:
        with _pg_database(pg_url) as url:
            return _sigstop_on(url, work / "sigstop-pg", None)
    return _sigstop_on(f"sqlite:///{work / 'sigstop.db'}", work / "sigstop", work / "sigstop.db")


def _sigstop_on(url: str, logdir: Path, sqlite_file: Path | None) -> dict[str, Any]:
    storage = Storage(url)
    run_id = services.submit_run(storage, "qnn", {**FAULT_RUN, "epochs": 200}, name="sigstop").id
    fleet = Fleet(url, logdir, _fault_env())
    fleet.logdir.mkdir()
    stale = float(_worker_env()["QMLAPP_STALE_AFTER_S"])
    fig: dict[str, Any] = {"injected": False, "database": "sqlite" if sqlite_file else "postgresql"}
    victim = fleet.start()
    stopped = False
    try:
        first = _wait_for(lambda: [r for r in _running(storage, 0.15) if r.id == run_id], FAULT_WAIT_S)
        if not first:
            fig.update(_losses(storage, [run_id]), survived=False, note="the run never got going")
            return fig
        owner = first[0].worker_id
        _killpg(victim.pid, signal.SIGSTOP)  # the worker and its run process, like a frozen host
        stopped, fig["injected"] = True, True
        t0 = time.monotonic()
        fig["points_before_stop"] = len(storage.get_metrics(run_id))
        fleet.start()
        taken = write_locked = False
        while time.monotonic() - t0 < FAULT_WAIT_S:
            got = storage.get_run(run_id)
            if got.worker_id not in (None, owner) or got.finished:
                taken = True
                break
            if sqlite_file is not None and time.monotonic() - t0 > stale + 15 and _sqlite_write_locked(sqlite_file):
                write_locked = True
                break
            time.sleep(0.5)
        time.sleep(max(0.0, stale + 1 - (time.monotonic() - t0)))
        fig["stopped_s"] = round(time.monotonic() - t0, 1)
        fig["taken_over"] = taken and storage.get_run(run_id).worker_id != owner
        fig["frozen_holding_write_lock"] = write_locked
        _killpg(victim.pid, signal.SIGCONT)
        stopped = False
        _wait_for(lambda: storage.get_run(run_id).finished, FAULT_WAIT_S)
        time.sleep(3)  # the resumed worker's last writes, if any, land now
        fig.update(_losses(storage, [run_id]))
        fig["final_states_logged"] = _ended_lines(fleet, run_id)
        fig["survived"] = ((fig["taken_over"] or write_locked) and fig["runs_lost"] == 0
                           and fig["points_duplicated"] == 0 and fig["points_lost"] == 0
                           and fig["final_states_logged"] == 1)
        if write_locked:
            fig["note"] = ("frozen while holding SQLite's write lock: writers waited until it resumed, then it "
                           "carried on")
    finally:
        if stopped:
            _killpg(victim.pid, signal.SIGCONT)
        fleet.stop()
        for p in fleet.procs:
            _killpg(p.pid)
        storage.close()
    return fig


def _pg_ctl(*args: str) -> subprocess.CompletedProcess[str]:
    bindir = os.environ["QMLAPP_TEST_POSTGRES_BINDIR"]
    cmd = [f"{bindir}/pg_ctl", "-D", os.environ["QMLAPP_TEST_POSTGRES_DATA"], *args]
    if os.getuid() == 0:  # the server runs as postgres (initdb and postgres refuse root)
        cmd = ["runuser", "-u", "postgres", "--", *cmd]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120)


def _fault_pg_restart(work: Path, pg_url: str) -> dict[str, Any]:
    if not os.environ.get("QMLAPP_TEST_POSTGRES_DATA") or not os.environ.get("QMLAPP_TEST_POSTGRES_BINDIR"):
        return {"injected": False, "survived": None, "note": "QMLAPP_TEST_POSTGRES_DATA/_BINDIR not set (run "
                "under scripts/with-postgres.sh)"}
    fig: dict[str, Any] = {"injected": False}
    log = os.environ.get("QMLAPP_TEST_POSTGRES_LOG", str(work / "pg-restart.log"))
    with _pg_database(pg_url) as url:
        storage = Storage(url)
        ids = [services.submit_run(storage, "qnn", {**FAULT_RUN, "seed": i}, name=f"pg {i}").id for i in range(3)]
        fleet = Fleet(url, work / "pg-restart", _fault_env())
        fleet.logdir.mkdir()
        down = False
        try:
            for _ in range(2):
                fleet.start()
            fig["run_started"] = bool(_wait_for(lambda: _running(storage, 0.15), FAULT_WAIT_S))
            stop = _pg_ctl("-m", "immediate", "-w", "stop")
            down = stop.returncode == 0
            fig["injected"] = down
            fig["stop"] = (stop.stdout + stop.stderr).strip()[-200:]
            time.sleep(5)  # down for longer than a heartbeat and a poll
            fig["cli_runs_while_down"] = _cli_clean(url, _fault_env(), "runs")
            # restart reuses the options of the last start (port, socket directory) from postmaster.opts
            start = _pg_ctl("-l", log, "-w", "-t", "60", "restart")
            down = start.returncode != 0
            fig["restart"] = "ok" if not down else (start.stdout + start.stderr).strip()[-300:]
            def both_stay_up() -> bool:  # both workers alive, and still both 5 s later
                if len(fleet.alive()) != 2:
                    return False
                time.sleep(5)
                return len(fleet.alive()) == 2

            alive_after = _wait_for(both_stay_up, 15)
            fig["workers_died"] = [p.returncode for p in fleet.procs if p.poll() is not None]
            _wait_all_finished(storage, len(ids), FAULT_WAIT_S, fleet)
            fig["workers_started"] = fleet.started
            fig.update(_losses(storage, ids))
            fig["survived"] = (bool(fig["run_started"]) and bool(alive_after) and not fig["workers_died"]
                               and fig["runs_lost"] == 0 and fig["cli_runs_while_down"]["ok"])
        finally:
            if down:
                _pg_ctl("-l", log, "-w", "-t", "60", "restart")
            fleet.stop()
            for p in fleet.procs:
                _killpg(p.pid)
            storage.close()
    return fig


def _sqlite_fault(work: Path, name: str, mode: str) -> dict[str, Any]:
    """Disk full (``mode`` "full") or read-only database ("readonly") for HOLD_S seconds mid-run."""
    inject = work / f"{name}-inject"
    inject.mkdir()
    (inject / "sitecustomize.py").write_text(SITECUSTOMIZE)
    control = inject / "state"
    dbdir = work / name
    dbdir.mkdir()
    fig: dict[str, Any] = {"injected": False}
    mounted = False
    if mode == "full":
        # a real full file system: the database on a small tmpfs that a filler file fills up
        res = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(dbdir)], capture_output=True,
                             text=True)
        mounted = res.returncode == 0
        fig["how"] = ("tmpfs of 16 MiB filled by a file" if mounted else
                      f"PRAGMA max_page_count in every connection (mount refused: {res.stderr.strip()[:120]})")
    else:
        fig["how"] = "PRAGMA query_only in every connection of the workers and the CLI"
    url = f"sqlite:///{dbdir / 'faults.db'}"
    env = _fault_env(control)
    storage = Storage(url)
    ids = [services.submit_run(storage, "qnn", {**FAULT_RUN, "seed": i}, name=f"{name} {i}").id for i in range(3)]
    fleet = Fleet(url, work / f"{name}-fleet", env)
    fleet.logdir.mkdir()
    filler = dbdir / "filler"
    try:
        for _ in range(2):
            fleet.start()
        fig["run_started"] = bool(_wait_for(lambda: _running(storage, 0.15), FAULT_WAIT_S))
        if mounted:
            with open(filler, "wb") as fh, contextlib.suppress(OSError):
                while True:  # until ENOSPC
                    fh.write(b"\0" * 2**20)
                    fh.flush()
        else:
            control.write_text(mode)
        fig["injected"] = True
        time.sleep(HOLD_S / 2)
        fig["cli_runs_during"] = _cli_clean(url, env, "runs")
        fig["cli_submit_during"] = _cli_clean(url, env, "submit", "qnn", "--spec", str(_spec_file(work)))
        time.sleep(max(0.0, HOLD_S / 2 - 2))
        fig["workers_died_during"] = [p.returncode for p in fleet.procs if p.poll() is not None]
        filler.unlink(missing_ok=True)
        control.write_text("")
        # the runs queued here and the CLI's, if it got in
        _wait_all_finished(storage, sum(storage.count_runs().values()), FAULT_WAIT_S, fleet)
        fig["workers_died"] = [p.returncode for p in fleet.procs if p.poll() is not None]
        fig["workers_started"] = fleet.started
        fig.update(_losses(storage, ids))
        fig["log_tracebacks"] = fleet.log_count("traceback")
        fig["survived"] = (bool(fig["run_started"]) and not fig["workers_died"] and fig["runs_lost"] == 0
                           and fig["cli_runs_during"]["ok"] and fig["cli_submit_during"]["ok"])
    finally:
        filler.unlink(missing_ok=True)
        with contextlib.suppress(OSError):
            control.write_text("")
        fleet.stop()
        for p in fleet.procs:
            _killpg(p.pid)
        storage.close()
        if mounted and subprocess.run(["umount", str(dbdir)], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", str(dbdir)], capture_output=True)
    return fig


def _spec_file(work: Path) -> Path:
    path = work / "fault-spec.json"
    path.write_text(json.dumps({**FAULT_RUN, "epochs": 2}))
    return path


def _table_digest(conn: Any, table: str, blank: set[str]) -> tuple[int, str, list[str]]:
    """(rows, sha256 of every value ordered by id, columns) of one table; columns in ``blank`` read as NULL."""
    import sqlalchemy as sa

    cols = sorted(c["name"] for c in sa.inspect(conn).get_columns(table))
    rows = conn.execute(sa.text(f"SELECT {', '.join(cols)} FROM {table} ORDER BY id")).all()
    h = hashlib.sha256()
    for row in rows:
        h.update(repr(tuple(None if c in blank else _canon(v) for c, v in zip(cols, row, strict=True))).encode())
    return len(rows), h.hexdigest()[:16], cols


def _canon(v: Any) -> Any:
    if isinstance(v, (bytes, memoryview)):
        return bytes(v)
    if isinstance(v, str) and v[:1] in "{[":  # JSON columns come back as text on SQLite, parsed on PostgreSQL
        with contextlib.suppress(ValueError):
            return json.dumps(json.loads(v), sort_keys=True)
    if isinstance(v, (dict, list)):
        return json.dumps(v, sort_keys=True)
    if isinstance(v, datetime):
        return v.replace(tzinfo=None).isoformat()
    return v


def _fill_for_migration(url: str) -> None:
    storage = Storage(url)
    try:
        sweep = storage.create_sweep("qnn", {"space": {"depth": [1, 2]}}, name="study")
        storage.append_journal(sweep.id, [{"op": 1, "x": [1, 2]}, {"op": 2}])
        for i in range(6):
            trial = i < 3
            run = storage.create_run("qnn", {"n_qubits": 2 + i, "nested": {"a": [i, "é"]}}, seed=i, name=f"r{i}",
                                     sweep_id=sweep.id if trial else None, sweep_trial=i if trial else None)
            storage.add_metrics(run.id, [(s, "loss", 1.0 / (s + 1)) for s in range(5)] + [(0, "acc", 0.5 + i)])
            storage.save_artifact(run.id, "circuit.svg", "image/svg+xml", b"<svg/>" * (i + 1))
            storage.save_artifact(run.id, "weights.bin", "application/octet-stream", bytes(range(256)))
            if i % 2 == 0 and storage.claim_run(run.id, "w1") is not None:
                storage.finish_run(run.id, "w1", SUCCEEDED, result={"accuracy": 0.9, "i": i})
        storage.register_worker("w1", "host", 42)
    finally:
        storage.close()


def _migration_round_trip(url: str) -> dict[str, Any]:
    """Down one revision at a time to the first, then up to head, checking every table at every step."""
    import sqlalchemy as sa
    from alembic import command
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    from db.storage import MIGRATIONS, make_engine

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    revisions = [s.revision for s in ScriptDirectory.from_config(cfg).walk_revisions("base", "heads")][::-1]
    tables = ("runs", "metrics", "artifacts", "workers", "sweeps", "sweep_journal")
    _fill_for_migration(url)
    engine = make_engine(url)
    steps: list[str] = []
    mismatches: list[str] = []
    dropped_tables: set[str] = set()  # dropped by a downgrade: their rows cannot come back
    dropped_cols: set[str] = set()
    try:
        with engine.connect() as conn:
            have = set(sa.inspect(conn).get_table_names())
            original = {t: _table_digest(conn, t, set()) for t in tables if t in have}
            conn.commit()

            def check(rev: str) -> None:
                now = set(sa.inspect(conn).get_table_names())
                for t, (_, _, cols0) in original.items():
                    if t not in now:
                        dropped_tables.add(t)
                        continue
                    cols = [c["name"] for c in sa.inspect(conn).get_columns(t)]
                    dropped_cols.update(f"{t}.{c}" for c in cols0 if c not in cols)
                    blank = {c.split(".", 1)[1] for c in dropped_cols if c.startswith(f"{t}.")}
                    if t in dropped_tables:
                        n, _, _ = _table_digest(conn, t, blank)
                        if n:
                            mismatches.append(f"{rev}: {t} has {n} rows after being dropped")
                        continue
                    # the original projected onto the columns present now, dropped ones blank
                    expect = _projected_digest(conn, t, original_rows[t], cols, blank)
                    got = _table_digest(conn, t, blank | (set(cols) - set(cols0)))
                    if got[:2] != expect:
                        mismatches.append(f"{rev}: {t} {got[0]} rows (checksum {got[1]}), expected {expect[0]} "
                                          f"({expect[1]})")
                conn.commit()

            original_rows = {t: _rows(conn, t) for t in original}
            conn.commit()

            def go(action: str, rev: str) -> None:
                cfg.attributes["connection"] = conn
                getattr(command, action)(cfg, rev)
                conn.commit()
                steps.append(f"{action} {rev}")
                check(rev)

            for rev in reversed(revisions[:-1]):
                go("downgrade", rev)
            for rev in revisions[1:]:
                go("upgrade", rev)
    finally:
        engine.dispose()
    return {"revisions": revisions, "steps": steps, "rows": {t: n for t, (n, _, _) in original.items()},
            "dropped_by_design": sorted(dropped_tables | dropped_cols), "mismatches": mismatches[:8]}


def _rows(conn: Any, table: str) -> tuple[list[str], list[tuple[Any, ...]]]:
    import sqlalchemy as sa

    cols = sorted(c["name"] for c in sa.inspect(conn).get_columns(table))
    return cols, [tuple(r) for r in conn.execute(sa.text(f"SELECT {', '.join(cols)} FROM {table} ORDER BY id"))]


def _projected_digest(conn: Any, table: str, original: tuple[list[str], list[tuple[Any, ...]]], cols: list[str],
                      blank: set[str]) -> tuple[int, str]:
    have, rows = original
    cols = sorted(cols)
    h = hashlib.sha256()
    for row in rows:
        h.update(repr(tuple(None if (c in blank or c not in have) else _canon(row[have.index(c)])
                            for c in cols)).encode())
    return len(rows), h.hexdigest()[:16]


def _fault_migration(work: Path, pg_url: str | None) -> dict[str, Any]:
    fig: dict[str, Any] = {"injected": True, "sqlite": _migration_round_trip(f"sqlite:///{work / 'migrate.db'}")}
    if pg_url:
        with _pg_database(pg_url) as url:
            fig["postgresql"] = _migration_round_trip(url)
    mism = [m for k in ("sqlite", "postgresql") if k in fig for m in fig[k]["mismatches"]]
    fig.update(runs_lost=0, points_lost=0, points_duplicated=0, rows_changed_or_lost=len(mism), survived=not mism)
    return fig


FAULTS = ("serve_kill_9", "sigstop_worker", "sigstop_worker_pg", "postgres_restart", "sqlite_disk_full",
          "sqlite_read_only", "migrations")


def phase_faults(workdir: Path, pg_url: str | None, kill_fig: dict[str, Any] | None, only: set[str]) -> dict[str, Any]:
    work = workdir / "faults"
    work.mkdir()
    out: dict[str, Any] = {}
    if kill_fig is not None:  # worker kill -9 is phase kill's: its figures, not a second run
        out["worker_kill_9"] = {"injected": kill_fig["kill_9"], "survived": kill_fig["ok"],
                                "runs_lost": len(kill_fig["not_finished"]) + len(kill_fig["failed_without_reason"]),
                                "points_lost": 0, "points_duplicated": 0, "note": "figures of phase kill"}
    else:
        out["worker_kill_9"] = {"injected": 0, "survived": None, "note": "phase kill did not run (--phases kill,...)"}
    runners: dict[str, Callable[[], dict[str, Any]]] = {
        "serve_kill_9": lambda: _fault_serve_kill(work),
        "sigstop_worker": lambda: _fault_sigstop(work),
        "sigstop_worker_pg": lambda: (_fault_sigstop(work, pg_url) if pg_url else
                                      {"injected": False, "survived": None, "note": "no PostgreSQL URL given"}),
        "postgres_restart": lambda: (_fault_pg_restart(work, pg_url) if pg_url else
                                     {"injected": False, "survived": None, "note": "no PostgreSQL URL given"}),
        "sqlite_disk_full": lambda: _sqlite_fault(work, "full", "full"),
        "sqlite_read_only": lambda: _sqlite_fault(work, "readonly", "readonly"),
        "migrations": lambda: _fault_migration(work, pg_url),
    }
    for name, fn in runners.items():
        if only and name not in only:
            continue
        t0 = time.monotonic()
        try:
            out[name] = fn()
        except Exception as exc:  # the harness's own failure is reported, never hidden
            out[name] = {"injected": False, "survived": False, "error": f"{type(exc).__name__}: {exc}"[:500],
                         "trace": traceback.format_exc()[-1500:]}
        out[name]["fault_s"] = round(time.monotonic() - t0, 1)
        print(f"   fault {name}: survived={out[name].get('survived')} ({out[name]['fault_s']} s)", flush=True)
    out["ok"] = all(v.get("survived") is not False and not v.get("runs_lost") and not v.get("points_lost")
                    and not v.get("points_duplicated") for v in out.values() if isinstance(v, dict))
    return out


def print_table(figures: dict[str, Any]) -> None:
    bad = figures.get("badinput")
    if bad:
        print(f"{'bad input class':<32} {'database':<10} {'tried':>5} {'refused':>7} {'crashed':>7}")
        for db_name in ("sqlite", "postgresql"):
            for cls, t in bad.get(db_name, {}).get("classes", {}).items():
                print(f"{cls:<32} {db_name:<10} {t['tried']:>5} {t['refused']:>7} {t['crashed']:>7}")
    faults = figures.get("faults")
    if faults:
        print(f"\n{'fault':<20} {'injected':>8} {'survived':>8} {'runs lost':>9} {'points lost':>11} {'dup':>4}")
        for name, f in faults.items():
            if not isinstance(f, dict):
                continue
            surv = {True: "yes", False: "NO", None: "-"}[f.get("survived")]
            print(f"{name:<20} {f.get('injected')!s:>8} {surv:>8} {f.get('runs_lost', '-')!s:>9} "
                  f"{f.get('points_lost', '-')!s:>11} {f.get('points_duplicated', '-')!s:>4}")


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
    ap.add_argument("--phases", default="load,kill,fuzz,memory,badinput,faults",
                    help="comma-separated subset to run: load, kill, fuzz, memory, badinput, faults")
    ap.add_argument("--faults", default="", help=f"comma-separated subset of the faults ({', '.join(FAULTS)})")
    ap.add_argument("--postgres-url", default=os.environ.get("QMLAPP_TEST_POSTGRES_URL") or None,
                    help="admin URL of a throwaway PostgreSQL server: badinput and faults run there too "
                         "(default: QMLAPP_TEST_POSTGRES_URL, which scripts/with-postgres.sh sets)")
    args = ap.parse_args()
    random.seed(args.seed)
    phases = args.phases.split(",")
    only_faults = {f for f in args.faults.split(",") if f}
    figures: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="qmlapp-soak-") as tmp:
        work = Path(tmp)
        for name, fn in [
            ("load", lambda: phase_load(work, args.runs, args.workers, args.timeout)),
            ("kill", lambda: phase_kill(work, args.kill_runs, args.workers, args.kills, args.timeout, args.seed)),
            ("fuzz", lambda: phase_fuzz(args.fuzz, args.seed)),
            ("memory", lambda: phase_memory(work)),
            ("badinput", lambda: phase_badinput(work, args.postgres_url)),
            ("faults", lambda: phase_faults(work, args.postgres_url, figures.get("kill"), only_faults)),
        ]:
            if name not in phases:
                continue
            t0 = time.monotonic()
            figures[name] = fn()
            figures[name]["phase_s"] = round(time.monotonic() - t0, 1)
            print(f"== {name}: {'ok' if figures[name]['ok'] else 'FAILED'} ==\n"
                  + json.dumps(figures[name], indent=2, default=str, ensure_ascii=False), flush=True)
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2, default=str))
    print_table(figures)
    bad = [k for k, v in figures.items() if not v["ok"]]
    print("soak: " + ("all invariants held" if not bad else f"FAILED in {', '.join(bad)}"))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
