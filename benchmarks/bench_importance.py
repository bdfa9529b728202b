"""Importance analysis (fANOVA, PED-ANOVA) and the full study bundle on synthetic stored QNN runs.

Generates stored-run records (spec, status, result, curves) over a realistic 8-hyperparameter QNN space,
turns them into trials with ``trials_from_runs`` and times, each against a baseline measured in the same run:

- fANOVA (64 trees in 4 seeded forests) vs fitting a plain sklearn ``RandomForestRegressor`` with the
  same 64 trees on the same encoded data, and vs Optuna's ``get_param_importances`` with one 64-tree
  ``FanovaImportanceEvaluator`` (our wrapper's overhead);
- PED-ANOVA (point estimate + 10 bootstrap resamples) vs one plain Optuna PED-ANOVA evaluation;
- the bundle (importance + marginals + every plot info + recommendation) vs its importance step alone,
  plus the plotly figures of that bundle.

Usage: python benchmarks/bench_importance.py [--trials 1000] [--rounds 1] [--cheap-rounds 5] [--seed 0]
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any, TypeVar

import numpy as np
import optuna
import plotly.graph_objects as go
from sklearn.ensemble import RandomForestRegressor

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from anywhere

from qmlapp.analysis import SearchSpace, Trial, importance, marginal_effects, trials_from_runs
from qmlapp.analysis.importance import _encode  # the baselines get exactly the evaluator's encoding
from qmlapp.plots import (
    plot_best_configs,
    plot_contour,
    plot_importance,
    plot_marginal_effect,
    plot_parallel_coordinates,
    plot_slice,
    plot_trial_curves,
    study_report,
)

SPACE_JSON: dict[str, Any] = {
    "encoding": ["angle", "z_feature_map", "zz_feature_map", "reuploading"],
    "ansatz": ["hardware_efficient", "real_amplitudes", "efficient_su2"],
    "entanglement": ["linear", "circular", "full", "pairwise", "sca"],
    "optimizer": ["adam", "sgd", "cobyla", "nelder_mead", "spsa"],
    "scaling": ["none", "minmax", "minmax_pi", "standard"],
    "init": ["uniform", "normal", "zeros", "beta", "constant"],
    "depth": {"low": 1, "high": 10},
    "learning_rate": {"low": 1e-4, "high": 0.5, "log": True},
}
EPOCHS = 20
T = TypeVar("T")


def synthetic_runs(n: int, seed: int) -> list[SimpleNamespace]:
    """Stored-run-like records; accuracy follows A′-style effects (learning rate ≫ optimizer > scaling, depth)."""
    rng = np.random.default_rng(seed)
    runs = []
    for i in range(n):
        spec: dict[str, Any] = {"kind": "qnn", "schema_version": 1, "dataset": "banknote", "n_qubits": 4,
                                "readout": "z_per_class", "epochs": EPOCHS, "batch_size": 32, "shots": 0,
                                "seed": int(rng.integers(0, 5))}
        for name, entry in SPACE_JSON.items():
            if isinstance(entry, list):
                spec[name] = entry[int(rng.integers(len(entry)))]
        spec["depth"] = int(rng.integers(1, 11))
        spec["learning_rate"] = float(10 ** rng.uniform(-4, math.log10(0.5)))
        lr_term = 0.25 * math.exp(-((math.log10(spec["learning_rate"]) + 1.5) ** 2) / 0.8)
        if spec["optimizer"] in ("cobyla", "nelder_mead"):
            lr_term = 0.12  # gradient-free: learning rate ignored
        acc = (0.5 + lr_term + {"adam": 0.08, "sgd": 0.03, "spsa": 0.02}.get(spec["optimizer"], 0.0)
               + (0.03 if spec["scaling"] == "minmax_pi" else 0.0) + 0.004 * min(spec["depth"], 5)
               + float(rng.normal(0, 0.02)))
        acc = min(max(acc, 0.0), 1.0)
        failed = rng.random() < 0.05
        steps = list(range(1, EPOCHS + 1))
        curve = [acc - (acc - 0.5) * math.exp(-s / 4) + float(rng.normal(0, 0.005)) for s in steps]
        loss = [1.1 - 0.6 * (c - 0.5) / 0.5 for c in curve]
        runs.append(SimpleNamespace(
            id=i + 1, name=f"trial {i}", spec=spec, status="failed" if failed else "succeeded",
            result=None if failed else {"val_accuracy": acc, "val_loss": loss[-1]},
            curves={"val_accuracy": (steps, curve), "val_loss": (steps, loss)}))
    return runs


def timed(fn: Callable[[], T], rounds: int) -> tuple[float, T]:
    """Median seconds over ``rounds`` (≥ 1) calls, and the last result."""
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=1, help="timing rounds of the fANOVA measurements (median)")
    parser.add_argument("--cheap-rounds", type=int, default=5, help="timing rounds of the sub-second measurements")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)

    space = SearchSpace.from_json(SPACE_JSON)
    runs = synthetic_runs(args.trials, args.seed)
    t_conv, trials = timed(lambda: trials_from_runs(runs, "val_accuracy",
                                                     curves={r.id: r.curves for r in runs}), args.cheap_rounds)
    ok: list[Trial] = [t for t in trials if t.status == "succeeded"]
    print(f"{len(runs)} stored runs ({len(ok)} succeeded), {len(space)} hyperparameters; "
          f"records → trials {t_conv * 1e3:.1f} ms", flush=True)

    # Baseline inputs: the same encoded data Optuna's fANOVA sees (one-hot categoricals, log10 learning rate).
    dists, encoded = _encode(space, space.names, ok)
    values = [float(t.value) for t in ok if t.value is not None]  # succeeded: all set (zip below is strict)
    frozen = [optuna.trial.create_trial(params=p, distributions=dists, value=v)
              for p, v in zip(encoded, values, strict=True)]
    study = optuna.create_study(direction="maximize")
    study.add_trials(frozen)
    trans = optuna._transform._SearchSpaceTransform(dists, transform_log=False, transform_step=False)
    x = np.array([trans.transform(p) for p in encoded])
    y = np.array(values)

    def rf() -> RandomForestRegressor:
        return RandomForestRegressor(n_estimators=64, max_depth=64, random_state=0).fit(x, y)

    def optuna_fanova() -> dict[str, float]:
        return optuna.importance.get_param_importances(
            study, evaluator=optuna.importance.FanovaImportanceEvaluator(n_trees=64, max_depth=64, seed=0))

    def optuna_ped() -> dict[str, float]:
        return optuna.importance.get_param_importances(
            study, evaluator=optuna.importance.PedAnovaImportanceEvaluator())

    secs: dict[str, float] = {}

    def measure(key: str, fn: Callable[[], T], rounds: int) -> T:
        secs[key], out = timed(fn, rounds)
        print(f"  {key}: {secs[key]:.3f} s", flush=True)
        return out

    # Baselines and measurements interleave so that machine load drifts hit both alike.
    measure("sklearn RandomForestRegressor fit, 64 trees", rf, args.cheap_rounds)
    fanova = measure("fANOVA importance, 64 trees in 4 forests", lambda: importance(ok, space, "maximize", "fanova"),
                     args.rounds)
    measure("optuna fANOVA, 1 forest of 64 trees", optuna_fanova, args.rounds)
    measure("optuna PED-ANOVA, 1 evaluation", optuna_ped, args.cheap_rounds)
    ped = measure("PED-ANOVA importance + 10 bootstraps", lambda: importance(ok, space, "maximize", "ped_anova"),
                  args.cheap_rounds)
    measure("marginal effects", lambda: marginal_effects(trials, space), args.cheap_rounds)
    report = measure("bundle with PED-ANOVA", lambda: study_report(trials, space, method="ped_anova",
                                                                    curve_metric="val_loss"), args.cheap_rounds)
    measure("bundle with fANOVA", lambda: study_report(trials, space, method="fanova", curve_metric="val_loss"),
            args.rounds)

    def figures() -> list[go.Figure]:
        r = report
        figs = [plot_importance(r.importance_plot), plot_parallel_coordinates(r.parallel), plot_slice(r.slices),
                plot_best_configs(r.best), *(plot_marginal_effect(m) for m in r.marginal_plots)]
        if r.contour is not None:
            figs.append(plot_contour(r.contour))
        if r.curves is not None:
            figs.append(plot_trial_curves(r.curves))
        return figs

    measure("plotly figures of the bundle", figures, args.cheap_rounds)

    rows = [  # (measurement, baseline)
        ("fANOVA importance, 64 trees in 4 forests", "sklearn RandomForestRegressor fit, 64 trees"),
        ("fANOVA importance, 64 trees in 4 forests", "optuna fANOVA, 1 forest of 64 trees"),
        ("PED-ANOVA importance + 10 bootstraps", "optuna PED-ANOVA, 1 evaluation"),
        ("marginal effects", "sklearn RandomForestRegressor fit, 64 trees"),
        ("bundle with PED-ANOVA", "PED-ANOVA importance + 10 bootstraps"),
        ("bundle with fANOVA", "fANOVA importance, 64 trees in 4 forests"),
        ("plotly figures of the bundle", "sklearn RandomForestRegressor fit, 64 trees"),
    ]
    print(f"\n{len(ok)} usable trials, {len(space)} hyperparameters, optuna {optuna.__version__}; "
          f"median of {args.rounds} (fANOVA) / {args.cheap_rounds} (others) rounds")
    print(f"{'measurement':<40} | {'s':>7} | {'baseline':<44} | {'s':>7} | {'ratio':>6}")
    print(f"{'-' * 40}-+-{'-' * 7}-+-{'-' * 44}-+-{'-' * 7}-+-{'-' * 6}")
    for label, base in rows:
        print(f"{label:<40} | {secs[label]:>7.3f} | {base:<44} | {secs[base]:>7.3f} | {secs[label] / secs[base]:>6.2f}")
    for name, res in (("fANOVA", fanova), ("PED-ANOVA", ped)):
        std = res.std or {}
        top = ", ".join(f"{k} {v:.2f}±{std.get(k, 0.0):.2f}" for k, v in list(res.shares.items())[:4])
        print(f"{name} top shares: {top}")
    pair = f"{report.contour.x_param} × {report.contour.y_param}" if report.contour else "none"
    print(f"contour pair: {pair}; recommendation:\n{report.recommendation}")


if __name__ == "__main__":
    main()
