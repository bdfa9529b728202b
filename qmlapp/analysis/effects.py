"""Descriptive statistics of trials: per-value (or per-bin) marginal effects and the best configurations."""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import pairwise
from typing import Any, Literal

import numpy as np

from qmlapp.analysis.space import Categorical, Dimension, Range, SearchSpace, as_scalar
from qmlapp.analysis.trials import Trial, check_direction, usable_trials

N_BINS = 6  # numeric ranges: bins per axis (log-spaced for log ranges)
MAX_INT_VALUES = 10  # integer ranges with at most this many values get one bin per value


def _fmt(v: float) -> str:
    return f"{v:.3g}"


@dataclass(frozen=True)
class Binning:
    """How one hyperparameter's values are grouped: one group per choice, per integer value, or per bin.

    ``positions`` are on the analysis axis (choice code, value, or log10 value for log ranges);
    ``edges`` are in parameter units (None when each group is one value).
    """

    name: str
    labels: list[str]
    positions: list[float]
    edges: list[float] | None
    dimension: Dimension

    def index(self, value: Any) -> int:
        d = self.dimension
        if isinstance(d, Categorical):
            code = d.code(value)
            if code is None:
                raise ValueError(f"{self.name}: {value!r} is not one of {d.choices}")
            return code
        x = float(as_scalar(value))
        if self.edges is None:
            return int(np.argmin([abs(d.to_axis(x) - p) for p in self.positions]))
        axis_edges = [d.to_axis(e) for e in self.edges]
        return int(np.clip(np.searchsorted(axis_edges, d.to_axis(x), side="right") - 1, 0, len(self.labels) - 1))


def binning(dimension: Dimension, n_bins: int = N_BINS) -> Binning:
    """Groups of a hyperparameter for marginal effects and contour grids (bins span the space, not the data)."""
    d = dimension
    if isinstance(d, Categorical):
        return Binning(d.name, d.labels(), [float(i) for i in range(len(d.choices))], None, d)
    if d.is_int:
        step = int(d.step or 1)
        n_values = (int(d.high) - int(d.low)) // step + 1
        if n_values <= max(MAX_INT_VALUES, n_bins):
            values = [int(d.low) + i * step for i in range(n_values)]
            return Binning(d.name, [str(v) for v in values], [d.to_axis(v) for v in values], None, d)
        lo, hi = d.axis_bounds()
        raw = np.linspace(lo, hi, n_bins + 1)
        cuts = sorted({round(10**e if d.log else e) for e in raw})
        cuts[-1] = int(d.high) + 1  # integer bins are [a, b−1] with the top one closed at high
        edges = [float(c) for c in cuts]
        labels = [f"{a}–{b - 1}" if b - 1 > a else str(a) for a, b in pairwise(cuts)]
        positions = [(d.to_axis(a) + d.to_axis(max(a, b - 1))) / 2 for a, b in pairwise(cuts)]
        return Binning(d.name, labels, positions, edges, d)
    if d.low == d.high:
        return Binning(d.name, [_fmt(d.low)], [d.to_axis(d.low)], None, d)
    lo, hi = d.axis_bounds()
    axis_edges = np.linspace(lo, hi, n_bins + 1)
    edges = [float(10**e) if d.log else float(e) for e in axis_edges]
    edges[0], edges[-1] = float(d.low), float(d.high)  # exact bounds despite 10**log10 rounding
    labels = [f"[{_fmt(a)}, {_fmt(b)}" + ("]" if i == n_bins - 1 else ")")
              for i, (a, b) in enumerate(pairwise(edges))]
    positions = [float((a + b) / 2) for a, b in pairwise(axis_edges)]
    return Binning(d.name, labels, positions, edges, d)


@dataclass(frozen=True)
class MarginalInfo:
    """Objective statistics per choice / bin of one hyperparameter (other hyperparameters pooled).

    ``stds`` are sample standard deviations (ddof = 1), None with fewer than 2 trials; ``means``,
    ``mins``, ``maxs`` are None for empty groups.
    """

    name: str
    kind: Literal["categorical", "range"]
    log: bool
    labels: list[str]
    positions: list[float]
    edges: list[float] | None
    counts: list[int]
    means: list[float | None]
    stds: list[float | None]
    mins: list[float | None]
    maxs: list[float | None]

    def best(self, direction: str) -> list[int]:
        """Indices of non-empty groups, best mean first."""
        sign = -1.0 if check_direction(direction) == "maximize" else 1.0
        filled = [i for i, c in enumerate(self.counts) if c > 0]
        return sorted(filled, key=lambda i: (sign * self.means[i], -self.counts[i]))  # type: ignore[operator]


def _stats(values: Sequence[float]) -> tuple[float | None, float | None, float | None, float | None]:
    if not values:
        return None, None, None, None
    arr = np.asarray(values, dtype=float)
    std = float(arr.std(ddof=1)) if arr.size > 1 else None
    return float(arr.mean()), std, float(arr.min()), float(arr.max())


def marginal_effects(trials: Sequence[Trial], space: SearchSpace, *, n_bins: int = N_BINS) -> dict[str, MarginalInfo]:
    """Per hyperparameter, per choice or bin: mean, std, count, min and max of the objective.

    Uses the same trials as :func:`~qmlapp.analysis.importance` (succeeded, finite value, inside the space).
    These are raw marginals: other hyperparameters are pooled, not held fixed.
    """
    usable = usable_trials(trials, space).trials
    out: dict[str, MarginalInfo] = {}
    for d in space:
        b = binning(d, n_bins)
        groups: list[list[float]] = [[] for _ in b.labels]
        for t in usable:
            groups[b.index(t.params[d.name])].append(float(t.value))  # type: ignore[arg-type]
        stats = [_stats(g) for g in groups]
        out[d.name] = MarginalInfo(
            d.name, "categorical" if isinstance(d, Categorical) else "range", isinstance(d, Range) and d.log,
            b.labels, b.positions, b.edges, [len(g) for g in groups],
            [s[0] for s in stats], [s[1] for s in stats], [s[2] for s in stats], [s[3] for s in stats])
    return out


@dataclass(frozen=True)
class ConfigGroup:
    """Trials that share every param except the excluded ones (repeats with different seeds)."""

    params: dict[str, Any]
    run_ids: tuple[int | None, ...]
    labels: tuple[str, ...]
    values: tuple[float, ...]
    mean: float
    std: float | None  # ddof = 1; None for a single trial
    min: float
    max: float

    @property
    def n(self) -> int:
        return len(self.values)


def config_groups(trials: Sequence[Trial], *, exclude: Iterable[str] = ("seed",),
                  space: SearchSpace | None = None) -> list[ConfigGroup]:
    """Group usable trials by params (minus ``exclude``), in order of first appearance."""
    skip = set(exclude)
    grouped: dict[str, list[Trial]] = {}
    for t in usable_trials(trials, space or SearchSpace()).trials:
        key = json.dumps({k: as_scalar(v) for k, v in t.params.items() if k not in skip}, sort_keys=True, default=str)
        grouped.setdefault(key, []).append(t)
    out = []
    for members in grouped.values():
        values = tuple(float(t.value) for t in members)  # type: ignore[arg-type]
        mean, std, lo, hi = _stats(values)
        params = {k: v for k, v in members[0].params.items() if k not in skip}
        out.append(ConfigGroup(params, tuple(t.run_id for t in members), tuple(t.display_label for t in members),
                               values, mean, std, lo, hi))  # type: ignore[arg-type]
    return out


def best_configurations(trials: Sequence[Trial], direction: str, *, k: int = 10, exclude: Iterable[str] = ("seed",),
                        space: SearchSpace | None = None) -> list[ConfigGroup]:
    """Top ``k`` configurations by mean objective over their repeats (more repeats win ties)."""
    sign = -1.0 if check_direction(direction) == "maximize" else 1.0
    groups = config_groups(trials, exclude=exclude, space=space)
    return sorted(groups, key=lambda g: (sign * g.mean, -g.n))[:k]


def repeat_noise(groups: Sequence[ConfigGroup]) -> float | None:
    """Pooled within-configuration std of the objective (seed-to-seed noise); None without repeats."""
    dof = sum(g.n - 1 for g in groups if g.n > 1)
    if dof == 0:
        return None
    ss = sum((g.n - 1) * g.std**2 for g in groups if g.n > 1 and g.std is not None)
    return math.sqrt(ss / dof)
