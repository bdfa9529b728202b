"""Hyperparameter importance with Optuna's fANOVA and PED-ANOVA evaluators, plus its uncertainty.

The trials are copied into a throw-away in-memory Optuna study; nothing is stored. Encoding used for
the evaluators (differs from :func:`~qmlapp.analysis.space.to_optuna_distributions` on purpose):

- categoricals become the integer codes of the choices that were *observed*, so mixed-type choices
  (``1`` / ``True`` / ``"1"``) cannot collide in Optuna's ``choices.index`` and unseen choices do not
  enter fANOVA's marginalisation as extrapolated one-hot columns;
- log ranges become ``log10`` floats: Optuna's fANOVA builds its transform with ``transform_log=False``
  and so would average over a *linear* measure (A′ uses the log-uniform one);
- steps are dropped (fANOVA ignores them; trials of hand-picked runs need not lie on the grid);
- a hyperparameter with a single observed value is left out of the study and reported with share 0
  (listed in ``ImportanceResult.constant``).

Uncertainty (``std``):

- fANOVA: the trees are split into ``n_repeats`` forests with independent seeds; the point estimate is
  the mean raw fraction over all trees (what one forest of ``n_trees`` trees gives), ``std`` is the
  spread of the normalised shares between forests, i.e. the surrogate's instability.
- PED-ANOVA (deterministic given the data): ``std`` of the shares over ``n_repeats`` bootstrap
  resamples of the trials.
"""

from __future__ import annotations

import contextlib
import math
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import optuna
from optuna.distributions import BaseDistribution, CategoricalDistribution, FloatDistribution, IntDistribution

from qmlapp.analysis.space import Categorical, SearchSpace, choice_key
from qmlapp.analysis.trials import (
    AnalysisError,
    Direction,
    Trial,
    check_direction,
    require_trials,
    usable_trials,
)

Method = Literal["fanova", "ped_anova"]
METHODS: dict[str, str] = {"fanova": "fANOVA", "ped_anova": "PED-ANOVA"}
DEFAULT_REPEATS: dict[str, int] = {"fanova": 4, "ped_anova": 10}
# Optuna's PED-ANOVA docs ask for ≥ 5 trials above the target quantile; with few trials we widen it.
PED_MIN_TOP_TRIALS = 5


@dataclass(frozen=True)
class ImportanceResult:
    """Shares of importance per hyperparameter (descending, summing to 1) and how sure we are of them.

    ``shares`` are all 0 when the evaluator found no signal at all (PED-ANOVA: the top trials are
    spread like all trials). ``explained`` (fANOVA only) is the mean fraction of the surrogate's
    variance explained by single-hyperparameter main effects; the rest is interactions.
    """

    method: Method
    shares: dict[str, float]
    std: dict[str, float] | None  # None when n_repeats == 1
    n_trials: int
    direction: Direction
    seed: int
    n_repeats: int
    skipped: dict[str, int] = field(default_factory=dict)
    constant: tuple[str, ...] = ()
    explained: float | None = None
    settings: dict[str, float] = field(default_factory=dict)
    notes: tuple[str, ...] = ()

    @property
    def method_label(self) -> str:
        return METHODS[self.method]

    def ranked(self) -> list[tuple[str, float]]:
        return list(self.shares.items())

    def to_json(self) -> dict[str, Any]:
        return {"method": self.method, "shares": dict(self.shares), "std": None if self.std is None else dict(self.std),
                "n_trials": self.n_trials, "direction": self.direction, "seed": self.seed,
                "n_repeats": self.n_repeats, "skipped": dict(self.skipped), "constant": list(self.constant),
                "explained": self.explained, "settings": dict(self.settings), "notes": list(self.notes)}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ImportanceResult:
        return cls(data["method"], dict(data["shares"]), None if data["std"] is None else dict(data["std"]),
                   int(data["n_trials"]), data["direction"], int(data["seed"]), int(data["n_repeats"]),
                   dict(data.get("skipped", {})), tuple(data.get("constant", ())), data.get("explained"),
                   dict(data.get("settings", {})), tuple(data.get("notes", ())))


@contextlib.contextmanager
def _quiet_optuna() -> Iterator[list[str]]:
    """Silence the "new study created" log lines and collect Optuna's warnings as notes."""
    level = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    notes: list[str] = []
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            yield notes
        for w in caught:
            if not issubclass(w.category, optuna.exceptions.ExperimentalWarning | DeprecationWarning):
                msg = str(w.message)
                if msg not in notes:
                    notes.append(msg)
    finally:
        optuna.logging.set_verbosity(level)


def _encode(space: SearchSpace, names: Sequence[str], trials: Sequence[Trial]
            ) -> tuple[dict[str, BaseDistribution], list[dict[str, Any]]]:
    """Analysis distributions and encoded params (see module docstring)."""
    dists: dict[str, BaseDistribution] = {}
    for name in names:
        d = space[name]
        if isinstance(d, Categorical):
            observed = sorted({d.code(t.params[name]) for t in trials})  # type: ignore[type-var]
            dists[name] = CategoricalDistribution(tuple(observed))
        elif d.log:
            lo, hi = d.axis_bounds()
            dists[name] = FloatDistribution(lo, hi)
        elif d.is_int:
            dists[name] = IntDistribution(int(d.low), int(d.high))
        else:
            dists[name] = FloatDistribution(float(d.low), float(d.high))
    encoded = []
    for t in trials:
        row: dict[str, Any] = {}
        for name in names:
            d = space[name]
            v = t.params[name]
            if isinstance(d, Categorical):
                row[name] = d.code(v)
            elif d.log:
                # Clip: log10 of the bounds can round past them, which create_trial would refuse.
                lo, hi = d.axis_bounds()
                row[name] = min(max(d.to_axis(v), lo), hi)
            else:
                row[name] = round(float(v)) if d.is_int else float(v)
        encoded.append(row)
    return dists, encoded


def _study(frozen: Sequence[optuna.trial.FrozenTrial], direction: Direction) -> optuna.Study:
    study = optuna.create_study(direction=direction)
    study.add_trials(frozen)
    return study


def _normalise(raw: np.ndarray) -> np.ndarray:
    total = float(raw.sum())
    return raw / total if total > 0 else np.zeros_like(raw)


def importance(trials: Sequence[Trial], space: SearchSpace, direction: str, method: Method = "fanova",
               seed: int = 0, *, n_repeats: int | None = None, n_trees: int = 64, max_depth: int = 64,
               target_quantile: float = 0.1, region_quantile: float = 1.0) -> ImportanceResult:
    """Importance share of each hyperparameter of ``space`` for the trials' objective.

    Args:
        trials: Trials; failed ones, those without a finite value or outside ``space`` are skipped.
        space: Hyperparameters to rank.
        direction: "maximize" or "minimize". fANOVA does not depend on it (variance is symmetric);
            PED-ANOVA looks at the *best* trials, so it must match the objective.
        method: "fanova" (random-forest surrogate, Hutter et al. 2014, as in A′) or "ped_anova"
            (Pearson divergence between the top trials' and all trials' Parzen densities).
        seed: Seeds the forests (fANOVA) and the bootstrap (PED-ANOVA); same seed → same result.
        n_repeats: Forests (fANOVA, default 4) or bootstrap resamples (PED-ANOVA, default 10).
        n_trees: fANOVA trees in total (Optuna's default 64), split over the forests.
        max_depth: fANOVA tree depth (Optuna's default 64).
        target_quantile: PED-ANOVA "top" fraction (γ′; Optuna's default 0.1), widened to at least
            5 trials (capped at half the region). Optuna ≥ 4.7 ignores the old ``baseline_quantile``.
        region_quantile: PED-ANOVA region compared against (γ; 1.0 = all trials).

    Raises:
        AnalysisError: fewer than 3 usable trials, a constant objective, or no varying hyperparameter.
    """
    direction = check_direction(direction)
    if method not in METHODS:
        raise ValueError(f"method must be one of {', '.join(METHODS)}, got {method!r}")
    repeats = DEFAULT_REPEATS[method] if n_repeats is None else n_repeats
    if repeats < 1:
        raise ValueError(f"n_repeats must be ≥ 1, got {repeats}")
    if method == "fanova" and n_trees < repeats:
        raise ValueError(f"n_trees ({n_trees}) must be ≥ n_repeats ({repeats}): each forest needs a tree")
    if method == "ped_anova" and not 0 < target_quantile < region_quantile <= 1:
        raise ValueError("PED-ANOVA needs 0 < target_quantile < region_quantile ≤ 1, "
                         f"got {target_quantile}, {region_quantile}")

    usable = usable_trials(trials, space)
    require_trials(usable, f"{METHODS[method]} importance")
    values = usable.values()
    if max(values) == min(values):
        raise AnalysisError(f"the objective is {values[0]:g} in all {len(values)} usable trials; "
                            "there is no variation to attribute to hyperparameters")
    varying = [d.name for d in space
               if len({choice_key(t.params[d.name]) for t in usable.trials}) > 1]
    constant = tuple(d.name for d in space if d.name not in varying)
    if not varying:
        raise AnalysisError("no hyperparameter of the search space takes more than one value in the "
                            f"{len(values)} usable trials")

    dists, encoded = _encode(space, varying, usable.trials)
    frozen = [optuna.trial.create_trial(params=p, distributions=dists, value=v)
              for p, v in zip(encoded, values, strict=True)]
    settings: dict[str, float]
    explained: float | None = None
    with _quiet_optuna() as notes:
        if method == "fanova":
            shares, spread, explained = _fanova(frozen, varying, direction, seed, repeats, n_trees, max_depth)
            settings = {"n_trees": n_trees, "max_depth": max_depth, "n_forests": repeats}
        else:
            n = len(frozen)
            q = max(target_quantile, min(PED_MIN_TOP_TRIALS / n, region_quantile / 2))
            shares, spread = _ped_anova(frozen, varying, direction, seed, repeats, q, region_quantile)
            settings = {"target_quantile": q, "region_quantile": region_quantile,
                        "n_top_trials": max(2, math.ceil(q * n))}

    order = sorted(range(len(varying)), key=lambda i: -shares[i])  # stable: ties keep the space order
    share_map = {varying[i]: float(shares[i]) for i in order} | dict.fromkeys(constant, 0.0)
    std_map = None if spread is None else {varying[i]: float(spread[i]) for i in order} | dict.fromkeys(constant, 0.0)
    if not any(share_map.values()):
        notes.append(f"{METHODS[method]} found no hyperparameter that separates better from worse trials")
    return ImportanceResult(method, share_map, std_map, len(values), direction, seed, repeats, usable.skipped,
                            constant, explained, settings, tuple(notes))


def _fanova(frozen: Sequence[optuna.trial.FrozenTrial], names: Sequence[str], direction: Direction, seed: int,
            repeats: int, n_trees: int, max_depth: int) -> tuple[np.ndarray, np.ndarray | None, float]:
    study = _study(frozen, direction)
    sizes = [n_trees // repeats + (1 if i < n_trees % repeats else 0) for i in range(repeats)]
    seeds = np.random.SeedSequence(seed).generate_state(repeats)
    raws = np.empty((repeats, len(names)))
    for r, (size, forest_seed) in enumerate(zip(sizes, seeds, strict=True)):
        evaluator = optuna.importance.FanovaImportanceEvaluator(n_trees=size, max_depth=max_depth,
                                                                seed=int(forest_seed))
        try:
            raw = evaluator.evaluate(study, params=list(names))  # raw Var(f_j)/Var(f̂), not renormalised
        except RuntimeError as exc:  # "zero total variance in all trees"
            raise AnalysisError(f"fANOVA surrogate is flat: {exc}") from None
        raws[r] = [raw[n] for n in names]
    # Weight each forest by its tree count so the point estimate is the mean over all trees.
    mean_raw = np.average(raws, axis=0, weights=sizes)
    per_forest = np.array([_normalise(row) for row in raws])
    spread = per_forest.std(axis=0, ddof=1) if repeats > 1 else None
    return _normalise(mean_raw), spread, float(mean_raw.sum())


def _ped_anova(frozen: Sequence[optuna.trial.FrozenTrial], names: Sequence[str], direction: Direction, seed: int,
               repeats: int, target_quantile: float, region_quantile: float) -> tuple[np.ndarray, np.ndarray | None]:
    def evaluate(subset: Sequence[optuna.trial.FrozenTrial]) -> np.ndarray:
        evaluator = optuna.importance.PedAnovaImportanceEvaluator(target_quantile=target_quantile,
                                                                  region_quantile=region_quantile)
        raw = evaluator.evaluate(_study(subset, direction), params=list(names))  # direction: from the study
        return _normalise(np.array([raw.get(n, 0.0) for n in names]))

    point = evaluate(frozen)
    if repeats == 1:
        return point, None
    rng = np.random.default_rng(seed)
    boot = np.array([evaluate([frozen[i] for i in rng.integers(0, len(frozen), len(frozen))])
                     for _ in range(repeats)])
    return point, boot.std(axis=0, ddof=1)
