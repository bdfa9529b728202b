"""Cost enumeration of the quantum-hypernetwork problems: ``enumerate_costs`` vs a per-network NumPy loop.

The goal problem is gaussian2d (2 → 4 → 1 BNN with an activation bit, 18 bits = 262,144 networks) on
10,000 points: enumerate every C(σ) in ≤ 2 s on a 2-core machine and ≥ 20× faster than the straightforward
loop ``[network_cost(layout, data, σ) for σ in range(2^n)]``. The loop is timed on a random subset of
networks (the same process, right after the enumeration) and extrapolated to all 2ⁿ; its costs are also
compared with the enumeration. MNIST problems are timed for information.

Usage: python benchmarks/bench_hypernet_enum.py [--repeats 5] [--loop-networks 2000] [--quick]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from anywhere

from qmlapp.kinds.hypernet.layouts import make_layout
from qmlapp.kinds.hypernet.problems import enumerate_costs, load_problem_data, network_cost

GOAL_SECONDS = 2.0
GOAL_SPEEDUP = 20.0


def bench(problem: str, repeats: int, loop_networks: int, seed: int) -> dict[str, float]:
    """Median enumeration time, loop time per network and the largest |difference| on the loop's subset."""
    layout = make_layout(problem)
    data = load_problem_data(layout, n_points=10_000, seed=seed)
    costs = enumerate_costs(layout, data)  # warm-up (imports, caches)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        costs = enumerate_costs(layout, data)
        times.append(time.perf_counter() - start)
    subset = np.random.default_rng(seed).choice(2**layout.n_bits, size=loop_networks, replace=False)
    start = time.perf_counter()
    ref = np.array([network_cost(layout, data, int(i)) for i in subset])
    per_net = (time.perf_counter() - start) / loop_networks
    return {"n": layout.n_bits, "N": data.n_points, "enum_s": statistics.median(times), "enum_min_s": min(times),
            "loop_s": per_net * 2**layout.n_bits, "loop_ms_per_net": per_net * 1e3,
            "max_diff": float(np.abs(costs[subset] - ref).max()), "c_min": float(costs.min())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5, help="timed enumerations per problem; median reported")
    parser.add_argument("--loop-networks", type=int, default=2000, help="networks timed in the reference loop")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="3 repeats, 300 loop networks, gaussian2d + mnist01")
    args = parser.parse_args()
    problems = ["gaussian2d", "mnist01", "mnist37_encoding"]
    if args.quick:
        args.repeats, args.loop_networks, problems = 3, 300, problems[:2]

    rows = []
    for problem in problems:
        r = bench(problem, args.repeats, args.loop_networks, args.seed)
        rows.append((problem, r))
        print(f"  {problem} done: enumerate {r['enum_s']:.3f} s, loop ≈ {r['loop_s']:.1f} s", flush=True)

    print(f"\nEnumerating C(σ) for all 2^n networks; median of {args.repeats} runs; loop = network_cost per network "
          f"on {args.loop_networks} random networks, extrapolated to 2^n")
    head = (f"{'problem':<17} | {'bits':>4} | {'points':>6} | {'enumerate s':>11} | {'loop ms/net':>11} | "
            f"{'loop s (extrap.)':>16} | {'speed-up':>8} | {'max |Δ|':>8}")
    print(head)
    print("-+-".join("-" * len(h) for h in head.split(" | ")))
    for problem, r in rows:
        print(f"{problem:<17} | {r['n']:>4} | {r['N']:>6} | {r['enum_s']:>11.3f} | {r['loop_ms_per_net']:>11.3f} | "
              f"{r['loop_s']:>16.1f} | {r['loop_s'] / r['enum_s']:>7.0f}× | {r['max_diff']:>8.1e}")
    g = rows[0][1]
    speed = g["loop_s"] / g["enum_s"]
    print(f"\ngoal (gaussian2d, 2^18 networks, 10,000 points): ≤ {GOAL_SECONDS:g} s → {g['enum_s']:.3f} s "
          f"({'met' if g['enum_s'] <= GOAL_SECONDS else 'NOT met'}); ≥ {GOAL_SPEEDUP:g}× the loop → {speed:.0f}× "
          f"({'met' if speed >= GOAL_SPEEDUP else 'NOT met'})")


if __name__ == "__main__":
    main()
