"""Sweep throughput with 1 vs 2 worker processes on the same SQLite database (goal: ≥ 1.7×).

Both measurements run the same grid sweep of small real QNN trainings in this session, each on a
fresh database, with workers started and warm (TensorFlow imported) before the sweep is created, so
the ratio compares steady-state trial throughput. Run: ``.venv/bin/python benchmarks/bench_sweep_throughput.py``.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from db import Storage  # noqa: E402
from qmlapp import sweeps  # noqa: E402

SWEEP = {
    "base": {"dataset": "banknote", "n_qubits": 4, "depth": 2, "epochs": 3},
    "space": {"encoding": ["angle", "z_feature_map", "zz_feature_map", "reuploading"],
              "ansatz": ["hardware_efficient", "real_amplitudes", "efficient_su2"]},
    "sampler": "grid", "n_trials": 12, "objective": "val_accuracy", "repeats": 1, "seed": 0,
}


def measure(n_workers: int, n_trials: int) -> tuple[float, int]:
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{tmp}/bench.db"
        storage = Storage(url)
        env = dict(os.environ, QMLAPP_DATABASE_URL=url, QMLAPP_POLL_S="0.1", QMLAPP_HEARTBEAT_S="1",
                   QMLAPP_SIM_THREADS=str(max(1, (os.cpu_count() or 1) // n_workers)))
        procs = [subprocess.Popen([sys.executable, "-m", "qmlapp", "worker"], cwd=ROOT, env=env,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for _ in range(n_workers)]
        try:
            deadline = time.monotonic() + 120
            while len(storage.list_workers(alive_within_s=15)) < n_workers:
                if time.monotonic() > deadline:
                    raise SystemExit("workers did not start")
                time.sleep(0.2)
            # one warm-up run per worker so that TensorFlow and TFQ are loaded everywhere
            warm = sweeps.create_sweep(storage, {**SWEEP, "n_trials": n_workers}, workers=n_workers)
            while storage.get_sweep(warm.id).status == "running":
                time.sleep(0.2)
            t0 = time.perf_counter()
            sweep = sweeps.create_sweep(storage, {**SWEEP, "n_trials": n_trials, "seed": 1}, workers=n_workers)
            while storage.get_sweep(sweep.id).status == "running":
                time.sleep(0.1)
            elapsed = time.perf_counter() - t0
            done = sweeps.sweep_json(storage, sweep.id)["n_succeeded"]
        finally:
            for p in procs:
                p.terminate()
            for p in procs:
                p.wait(timeout=60)
        return elapsed, done


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--trials", type=int, default=12)
    args = parser.parse_args()
    print(f"cpu cores: {os.cpu_count()}; sweep: {args.trials} trials of banknote, 4 qubits, depth 2, 3 epochs")
    t1, n1 = measure(1, args.trials)
    t2, n2 = measure(2, args.trials)
    print(f"{'workers':>8} | {'wall s':>7} | {'trials':>6} | {'trials/min':>10}")
    for n, t, k in ((1, t1, n1), (2, t2, n2)):
        print(f"{n:>8} | {t:7.1f} | {k:>6} | {60 * k / t:10.2f}")
    print(f"throughput ratio 2 vs 1 workers: {(n2 / t2) / (n1 / t1):.2f}x (goal >= 1.7x)")


if __name__ == "__main__":
    main()
