"""Trials (one run of a sweep, or a hand-picked run) and the objectives they are judged by."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple, Protocol

from qmlapp.analysis.space import Categorical, SearchSpace, as_scalar, is_number
from qmlapp.kinds.base import Direction, Objective
from qmlapp.registry import objective_info

__all__ = ["MIN_TRIALS", "AnalysisError", "Direction", "Objective", "Trial", "Usable", "objective_info",
           "trials_from_runs", "usable_trials"]

MIN_TRIALS = 3  # below this neither a forest nor a top-quantile split says anything


class AnalysisError(ValueError):
    """The trials cannot support the requested analysis (too few, nothing varies, ...)."""


@dataclass(frozen=True)
class Trial:
    """One evaluated configuration. ``params`` may hold the whole spec; the space picks what is analysed."""

    run_id: int | None
    params: dict[str, Any]
    value: float | None
    status: str = "succeeded"
    curves: Mapping[str, tuple[list[int], list[float]]] | None = None
    label: str = ""

    @property
    def display_label(self) -> str:
        return self.label or (f"run {self.run_id}" if self.run_id is not None else "trial")


def check_direction(direction: str) -> Direction:
    if direction not in ("maximize", "minimize"):
        raise ValueError(f"direction must be 'maximize' or 'minimize', got {direction!r}")
    return direction  # type: ignore[return-value]


class RunLike(Protocol):
    """What :func:`trials_from_runs` reads from a stored run (``db.RunRecord`` fits)."""

    id: int
    name: str
    spec: dict[str, Any]
    status: str
    result: dict[str, Any] | None


def trials_from_runs(runs: Iterable[RunLike], objective: str,
                     curves: Mapping[int, Mapping[str, tuple[list[int], list[float]]]] | None = None) -> list[Trial]:
    """Trials from stored runs: params = the spec, value = ``result[objective]`` (None if absent)."""
    out = []
    for run in runs:
        raw = (run.result or {}).get(objective)
        value = float(as_scalar(raw)) if is_number(raw) else None
        params = {k: v for k, v in run.spec.items() if k not in ("kind", "schema_version")}
        out.append(Trial(run.id, params, value, run.status, (curves or {}).get(run.id), run.name))
    return out


class Usable(NamedTuple):
    """Trials fit for analysis in a space, plus why the others were left out."""

    trials: list[Trial]
    skipped: dict[str, int]  # reason -> count

    @property
    def n_skipped(self) -> int:
        return sum(self.skipped.values())

    def values(self) -> list[float]:
        return [float(t.value) for t in self.trials]  # type: ignore[arg-type]


def usable_trials(trials: Sequence[Trial], space: SearchSpace) -> Usable:
    """Succeeded trials with a finite objective whose params lie in ``space``; the rest are counted by reason."""
    keep: list[Trial] = []
    skipped: Counter[str] = Counter()
    for t in trials:
        if t.status != "succeeded":
            skipped[f"status {t.status}"] += 1
        elif t.value is None or not is_number(t.value) or not math.isfinite(float(as_scalar(t.value))):
            skipped["no finite objective value"] += 1
        elif not space.contains(t.params):
            skipped["params outside the search space"] += 1
        else:
            keep.append(t)
    return Usable(keep, dict(skipped))


def require_trials(usable: Usable, what: str) -> None:
    if len(usable.trials) < MIN_TRIALS:
        why = ", ".join(f"{n} {reason}" for reason, n in usable.skipped.items())
        raise AnalysisError(f"{what} needs at least {MIN_TRIALS} succeeded trials with a finite objective inside "
                            f"the search space; got {len(usable.trials)}" + (f" (skipped: {why})" if why else ""))


def axis_position(space: SearchSpace, name: str, value: Any) -> float:
    """Code of a categorical value or axis position (log10 for log ranges) of a number."""
    d = space[name]
    if isinstance(d, Categorical):
        code = d.code(value)
        if code is None:
            raise ValueError(f"{name}: {value!r} is not one of {d.choices}")
        return float(code)
    return d.to_axis(value)
