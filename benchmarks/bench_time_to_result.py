"""Time to result: submit → succeeded seconds of a tiny qnn run on a running worker, in-process vs run process.

For each mode (QMLAPP_RUN_IN_CHILD=0: the worker executes runs itself; 1: in its warm child process) a
fresh worker is started on a throw-away SQLite database; the first run after the start and the
following ones are timed. Modes alternate A/B/A/B. Ratios are printed, never asserted.

    python benchmarks/bench_time_to_result.py [--rounds 2] [--runs 4]
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from db import Storage  # noqa: E402
from qmlapp import services  # noqa: E402

SPEC = {"dataset": "iris", "n_qubits": 2, "epochs": 2, "readout": "mod_k"}  # 3 classes on 2 qubits


def time_runs(in_child: bool, runs: int, workdir: Path) -> list[float]:
    """Start a worker, then submit ``runs`` runs one after another; submit→succeeded seconds of each."""
    db = workdir / f"bench-{int(in_child)}-{time.monotonic_ns()}.db"
    url = f"sqlite:///{db}"
    storage = Storage(url)
    env = dict(os.environ, QMLAPP_DATABASE_URL=url, QMLAPP_RUN_IN_CHILD=str(int(in_child)), QMLAPP_POLL_S="0.1")
    proc = subprocess.Popen([sys.executable, "-m", "qmlapp", "worker"], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    times = []
    try:
        deadline = time.monotonic() + 120
        while not services.alive_workers(storage):  # the worker process is up (not yet warm)
            if time.monotonic() > deadline:
                raise RuntimeError("worker did not start")
            time.sleep(0.1)
        for _ in range(runs):
            submitted = time.perf_counter()
            run = services.submit_run(storage, "qnn", SPEC)
            while not (got := storage.get_run(run.id)).finished:
                time.sleep(0.02)
            if got.status != "succeeded":
                raise RuntimeError(f"run {run.id} {got.status}: {got.error}")
            times.append(time.perf_counter() - submitted)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
        storage.close()
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2, help="A/B pairs")
    parser.add_argument("--runs", type=int, default=4, help="runs per worker start")
    args = parser.parse_args()
    results: dict[bool, list[list[float]]] = {False: [], True: []}
    with tempfile.TemporaryDirectory() as tmp:
        for rnd in range(args.rounds):
            for in_child in (False, True):
                load = os.getloadavg()
                times = time_runs(in_child, args.runs, Path(tmp))
                results[in_child].append(times)
                print(f"round {rnd + 1} {'child     ' if in_child else 'in-process'}: "
                      f"first {times[0]:6.2f} s, then {' '.join(f'{t:.2f}' for t in times[1:])} s "
                      f"(load avg {load[0]:.2f} {load[1]:.2f} {load[2]:.2f})", flush=True)
    for label, idx in (("first run", slice(0, 1)), ("later runs", slice(1, None))):
        a = statistics.median(t for times in results[False] for t in times[idx])
        b = statistics.median(t for times in results[True] for t in times[idx])
        print(f"{label:>10}: median in-process {a:.2f} s, child {b:.2f} s, child/in-process {b / a:.2f}")
    print(f"load average now {' '.join(f'{x:.2f}' for x in os.getloadavg())} on {os.cpu_count()} CPUs")


if __name__ == "__main__":
    main()
