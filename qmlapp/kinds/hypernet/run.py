"""Training of a quantum hypernetwork: restarts × depths, success metrics, landscape, noisy evaluation.

The pipeline of one run:
1. build the problem's data and enumerate C(σ) for all 2^n networks (computed, exact);
2. for every code depth and restart: θ ~ U[0, 2π), minimise the objective on the simulated state vector
   (exact adjoint gradients; the sampled objective uses shot-estimated losses and the parameter-shift rule);
3. evaluate each trained circuit: expected loss, Born mass on the ε-optimal set (exact), Born samples
   drawn on qsim, optionally noisy Monte-Carlo trajectories on qsim;
4. summarise per depth (both success metrics with uncertainties) and decode the best network found.

The optimisers are in :mod:`qmlapp.kinds.hypernet.optimizers`; this module orchestrates and builds the result.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import cast

import numpy as np

from qmlapp.context import RunContext
from qmlapp.kinds.hypernet.circuit import HypernetCircuit
from qmlapp.kinds.hypernet.landscape import landscape_summary, optimal_set
from qmlapp.kinds.hypernet.layouts import BitLayout, bit_reverse_permutation, bits_to_str, index_to_bits, to_qubit_order
from qmlapp.kinds.hypernet.optimizers import GTOL, CurveLog, train_restart
from qmlapp.kinds.hypernet.problems import (
    describe_network,
    enumerate_costs,
    load_mnist_test,
    load_problem_data,
    network_accuracy,
)
from qmlapp.kinds.hypernet.result import (
    DepthSummary,
    HypernetResult,
    Landscape,
    LayoutRow,
    NetworkSummary,
    OptimizerSettings,
    RestartEvaluation,
    RestartRow,
)
from qmlapp.kinds.hypernet.spec import HypernetSpec
from qmlapp.simulators import Simulators

LOG_POINTS = 150  # curve points per restart at most (every k-th iteration is logged)


def wilson_interval(successes: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """95 % Wilson score interval of a binomial proportion (sensible at 0/n and n/n, unlike ±√(p(1−p)/n))."""
    if n == 0:
        return (0.0, 1.0)
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return (max(0.0, centre - half), min(1.0, centre + half))


@dataclass
class _Logger:
    """Buffers curve points so a run with many restarts does not write the database every iteration."""

    ctx: RunContext
    every: int
    buffer: dict[int, dict[str, float]]
    last_flush: float = 0.0

    def add(self, step: int, values: dict[str, float], *, force: bool = False) -> None:
        if step % self.every == 0 or force:
            self.buffer.setdefault(step, {}).update(values)
        if force or time.monotonic() - self.last_flush > 1.0:
            self.flush()

    def flush(self) -> None:
        for step, values in sorted(self.buffer.items()):
            self.ctx.log_metrics(step, values)
        self.buffer.clear()
        self.last_flush = time.monotonic()


def _curve_log(spec: HypernetSpec, costs_q: np.ndarray, opt_mask_q: np.ndarray, prefix: str, logger: _Logger,
               report: Callable[[float], None]) -> CurveLog:
    """The curve points of one restart: expected loss and Born mass on the ε-optimal set, per iteration."""

    def log(it: int, p: np.ndarray, force: bool = False) -> None:
        logger.add(it, {f"{prefix}_loss": float(p @ costs_q), f"{prefix}_optimal_mass": float(p[opt_mask_q].sum())},
                   force=force)
        report(min(1.0, it / spec.max_iterations))

    return log


def _to_layout_index(idx_q: np.ndarray | int, n: int, order: str) -> np.ndarray:
    idx = np.asarray(idx_q, dtype=np.int64)
    return bit_reverse_permutation(n)[idx] if order == "authors" else idx


def _evaluate(spec: HypernetSpec, layout: BitLayout, circuit: HypernetCircuit,
              theta: np.ndarray, costs: np.ndarray, costs_q: np.ndarray, opt_mask_q: np.ndarray, c_min: float,
              seed: int, simulators: Simulators) -> RestartEvaluation:
    n = layout.n_bits
    p = circuit.probabilities(theta)
    expected = float(p @ costs_q)
    mass = float(p[opt_mask_q].sum())
    entropy = float(-(p[p > 0] @ np.log(p[p > 0])))
    mode_q = int(np.argmax(p))
    samples_q = circuit.sample_qsim(theta, spec.eval_samples, seed, simulators=simulators)
    samples = _to_layout_index(samples_q, n, spec.qubit_order)
    sample_costs = costs[samples]
    best_sample = int(samples[int(np.argmin(sample_costs))])
    mode = int(_to_layout_index(mode_q, n, spec.qubit_order))
    in_opt = opt_mask_q[samples_q]
    out: RestartEvaluation = {
        "final_loss": expected,
        "success": bool(expected <= c_min + spec.tolerance),
        "born_mass_optimal": mass,
        "born_mass_optimal_sampled": float(in_opt.mean()),
        "born_mass_optimal_sampled_se": float(math.sqrt(max(in_opt.mean() * (1 - in_opt.mean()), 0.0)
                                                        / len(in_opt))),
        "entropy_nats": entropy,
        "mode_bitstring": bits_to_str(index_to_bits(mode, n)),
        "mode_probability": float(p[mode_q]),
        "mode_loss": float(costs[mode]),
        "best_sampled_bitstring": bits_to_str(index_to_bits(best_sample, n)),
        "best_sampled_loss": float(costs[best_sample]),
        "sampled_loss_mean": float(sample_costs.mean()),
        "distinct_samples": int(np.unique(samples).size),
    }
    if spec.noise > 0:
        traj = circuit.noisy_trajectories(theta, spec.noise, spec.noise_trajectories, seed,
                                          [costs_q, opt_mask_q.astype(float)], simulators=simulators)
        k = traj.shape[0]
        out.update({
            "noisy_loss": float(traj[:, 0].mean()),
            "noisy_loss_se": float(traj[:, 0].std(ddof=1) / math.sqrt(k)) if k > 1 else None,
            "noisy_born_mass_optimal": float(traj[:, 1].mean()),
            "noisy_born_mass_optimal_se": float(traj[:, 1].std(ddof=1) / math.sqrt(k)) if k > 1 else None,
        })
    return out


def _depth_summary(depth: int, rows: list[RestartRow], spec: HypernetSpec) -> DepthSummary:
    r = len(rows)
    wins = sum(row["success"] for row in rows)
    lo, hi = wilson_interval(wins, r)
    masses = np.array([row["born_mass_optimal"] for row in rows])
    losses = np.array([row["final_loss"] for row in rows])
    out: DepthSummary = {
        "depth": depth, "layers": depth / 2, "restarts": r,
        "n_params": 2 * depth * spec.n_bits,
        "success_fraction": wins / r, "success_ci_low": lo, "success_ci_high": hi,
        "born_mass_mean": float(masses.mean()),
        "born_mass_se": float(masses.std(ddof=1) / math.sqrt(r)) if r > 1 else None,
        "final_loss_mean": float(losses.mean()), "final_loss_min": float(losses.min()),
        "best_sampled_loss": float(min(row["best_sampled_loss"] for row in rows)),
    }
    if spec.noise > 0:
        noisy = np.array([row["noisy_born_mass_optimal"] for row in rows])
        out["noisy_born_mass_mean"] = float(noisy.mean())
        out["noisy_born_mass_se"] = float(noisy.std(ddof=1) / math.sqrt(r)) if r > 1 else None
        out["noisy_loss_mean"] = float(np.mean([row["noisy_loss"] for row in rows]))
    return out


def run(spec: HypernetSpec, ctx: RunContext) -> HypernetResult:
    """Run a hypernetwork search (see the module docstring). Raises RunCancelled via ``ctx``."""
    t_start = time.perf_counter()
    layout = spec.layout()
    n = layout.n_bits
    ctx.progress(0.0, f"building data for {layout.problem} ({n} bits)")
    data = load_problem_data(layout, n_points=spec.n_points, seed=spec.seed)
    ctx.check_cancelled()
    ctx.progress(0.01, f"enumerating C(σ) for all 2^{n} = {2**n:,} networks")
    t0 = time.perf_counter()

    def enumeration_progress(fraction: float) -> None:
        ctx.progress(0.01 + 0.04 * fraction, "enumerating networks")
        ctx.check_cancelled()  # 2^n networks × n_points can take minutes

    costs = enumerate_costs(layout, data, progress=enumeration_progress)
    enum_s = time.perf_counter() - t0
    ctx.check_cancelled()
    landscape = cast(Landscape, landscape_summary(costs, n, spec.tolerance))
    c_min = float(landscape["global_min_loss"])
    opt_idx = optimal_set(costs, spec.tolerance)
    opt_mask = np.zeros(2**n, dtype=bool)
    opt_mask[opt_idx] = True
    costs_q = np.ascontiguousarray(to_qubit_order(costs, n, spec.qubit_order), dtype=np.float64)
    opt_mask_q = to_qubit_order(opt_mask, n, spec.qubit_order)
    ctx.save_artifact("costs.npy", _npy(costs.astype(np.float32)), "application/octet-stream")

    depths = spec.depths
    total = len(depths) * spec.restarts
    logger = _Logger(ctx, every=max(1, spec.max_iterations // LOG_POINTS), buffer={})
    rows: list[RestartRow] = []
    params_out: dict[str, list[float]] = {}
    train_s = 0.0
    done = 0
    for depth in depths:
        circuit = HypernetCircuit(n, depth, spec.ansatz)
        depth_rows: list[RestartRow] = []
        for r in range(spec.restarts):
            seq = np.random.SeedSequence([spec.seed, depth, r])
            rng = np.random.default_rng(seq)
            theta0 = rng.uniform(0.0, 2 * math.pi, size=circuit.n_params)
            prefix = f"D{depth}_r{r}"

            def report(frac: float, _done: int = done, _d: int = depth, _r: int = r) -> None:
                ctx.progress(0.05 + 0.93 * (_done + frac) / total,
                             f"depth D={_d} ({_d / 2:g} layers), restart {_r + 1}/{spec.restarts}")

            t0 = time.perf_counter()
            log = _curve_log(spec, costs_q, opt_mask_q, prefix, logger, report)
            theta, facts = train_restart(spec, circuit, costs_q, theta0, rng, log, ctx)
            train_s += time.perf_counter() - t0
            eval_seed = int(np.random.SeedSequence([spec.seed, depth, r, 1]).generate_state(1)[0] % (2**31))
            ev = _evaluate(spec, layout, circuit, theta, costs, costs_q, opt_mask_q, c_min, eval_seed,
                           ctx.simulators)
            row: RestartRow = {"depth": depth, "layers": depth / 2, "restart": r, **facts, **ev}
            depth_rows.append(row)
            params_out[prefix] = [float(x) for x in theta]
            done += 1
        rows.extend(depth_rows)
    logger.flush()

    study = [_depth_summary(d, [row for row in rows if row["depth"] == d], spec) for d in depths]
    main = [row for row in rows if row["depth"] == spec.depth]
    main_summary = next(s for s in study if s["depth"] == spec.depth)
    # The network the search found: the lowest-cost bitstring among every Born sample and mode at `depth`.
    candidates = [(row["best_sampled_loss"], row["best_sampled_bitstring"]) for row in main]
    candidates += [(row["mode_loss"], row["mode_bitstring"]) for row in main]
    best_loss, best_bits = min(candidates)
    best = cast(NetworkSummary, describe_network(layout, data, best_bits))
    optimum = cast(NetworkSummary, describe_network(layout, data, landscape["optimal_bitstrings"][0]))
    test_acc = _test_accuracy(layout, best_bits)
    ctx.save_artifact("parameters.json", json.dumps({"parameter_order": "per sub-layer d: Ry θ_{d,0..n-1} then "
                                                     "Rz φ_{d,0..n-1}", "restarts": params_out}),
                      "application/json")
    ctx.progress(1.0, f"done · success {main_summary['success_fraction']:.0%} at D={spec.depth}")
    optimizer: OptimizerSettings = (
        {"name": spec.optimizer, "method": "scipy L-BFGS-B", "gtol": GTOL, "maxiter": spec.max_iterations}
        if spec.optimizer == "lbfgs" else
        {"name": spec.optimizer, "learning_rate": spec.learning_rate, "iterations": spec.max_iterations})
    result: HypernetResult = {
        "best_loss": float(best_loss),
        "best_bitstring": best_bits,
        "global_min_loss": c_min,
        "n_optimal_bitstrings": int(landscape["n_optimal_bitstrings"]),
        "success_probability": main_summary["success_fraction"],
        "success_probability_ci": [main_summary["success_ci_low"], main_summary["success_ci_high"]],
        "born_mass_optimal": main_summary["born_mass_mean"],
        "best_accuracy": float(network_accuracy(layout, data, best_bits)),
        "best_test_accuracy": test_acc,
        "n_bits": n, "depth": spec.depth, "layers": spec.depth / 2, "n_params": 2 * spec.depth * n,
        "tolerance": spec.tolerance,
        "layout": cast(list[LayoutRow], layout.table()), "layout_notes": list(layout.notes), "loss_kind": layout.loss,
        "dataset": data.name, "n_points": len(data.y),
        "depth_study": study,
        "restarts": rows,
        "landscape": landscape,
        "best_network": best,
        "optimal_network": optimum,
        "optimizer": optimizer,
        "enumeration_time_s": enum_s,
        "train_time_s": train_s,
        "wall_time_s": time.perf_counter() - t_start,
        "labels": {
            "best_loss": "computed", "global_min_loss": "computed", "n_optimal_bitstrings": "computed",
            "success_probability": "simulated", "born_mass_optimal": "simulated", "best_accuracy": "computed",
            "best_test_accuracy": "computed", "noisy": "simulated",
        },
        "label_notes": {
            "best_loss": "exact training loss of the decoded network",
            "global_min_loss": "exhaustive enumeration",
            "n_optimal_bitstrings": "exhaustive enumeration",
            "success_probability": "share of restarts whose expected loss ≤ C_min + ε",
            "born_mass_optimal": "exact Born probability on the ε-optimal set, mean over restarts",
            "best_accuracy": "training accuracy of the decoded network",
            "best_test_accuracy": "held-out MNIST test accuracy of the decoded network",
            "noisy": "the noisy_* values of each restart: qsim Monte-Carlo trajectories",
        },
    }
    return result


def _test_accuracy(layout: BitLayout, bits: str) -> float | None:
    if not layout.dataset.startswith("mnist"):
        return None  # the synthetic sets train and evaluate on the same points (as in the paper)
    return float(network_accuracy(layout, load_mnist_test(layout), bits))


def _npy(array: np.ndarray) -> bytes:
    import io

    buf = io.BytesIO()
    np.save(buf, array)
    return buf.getvalue()
