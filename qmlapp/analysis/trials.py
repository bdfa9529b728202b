"""Trials (one run of a sweep, or a hand-picked run) and the objectives they are judged by."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple, Protocol

from qmlapp.analysis.space import Categorical, SearchSpace, as_scalar, is_number

Direction = Literal["maximize", "minimize"]
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


class Objective(NamedTuple):
    name: str
    label: str  # axis text without unit
    unit: str
    direction: Direction
    provenance: str  # simulated / computed / estimated (DESIGN honesty rule)

    @property
    def title(self) -> str:
        return f"{self.label} ({self.unit})" if self.unit else self.label


OBJECTIVES: dict[str, Objective] = {
    "val_accuracy": Objective("val_accuracy", "validation accuracy", "fraction correct", "maximize", "simulated"),
    "val_f1": Objective("val_f1", "validation F1, weighted", "0–1", "maximize", "simulated"),
    "val_loss": Objective("val_loss", "validation loss", "cross-entropy, nats", "minimize", "simulated"),
    "success_probability": Objective("success_probability", "share of restarts reaching the optimum", "0–1",
                                     "maximize", "simulated"),
    "born_mass_optimal": Objective("born_mass_optimal", "Born mass on the optimal set", "probability", "maximize",
                                   "simulated"),
    "advantage_ratio": Objective("advantage_ratio", "classical bits ÷ qubits communicated", "ratio", "maximize",
                                 "computed"),
    "loss_exact": Objective("loss_exact", "model output / loss", "exact", "minimize", "simulated"),
    "final_accuracy": Objective("final_accuracy", "test accuracy", "fraction correct", "maximize", "computed"),
    "final_loss": Objective("final_loss", "test loss", "cross-entropy, nats", "minimize", "computed"),
    "speedup_vs_sgd": Objective("speedup_vs_sgd", "time speed-up vs SGD", "ratio", "maximize", "estimated"),
    "estimated_speedup_at_target": Objective("estimated_speedup_at_target", "estimated speed-up at the target size",
                                             "ratio", "maximize", "estimated"),
    "final_test_accuracy": Objective("final_test_accuracy", "test accuracy", "fraction correct", "maximize",
                                     "computed"),
    "best_loss": Objective("best_loss", "loss of the best network found", "training loss", "minimize", "computed"),
}


def objective_info(name: str) -> Objective:
    """Labels of a known objective; other metric names get a neutral label and no provenance claim."""
    if name in OBJECTIVES:
        return OBJECTIVES[name]
    direction: Direction = "minimize" if name.endswith(("loss", "error", "time_s")) else "maximize"
    return Objective(name, name.replace("_", " "), "", direction, "")


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
        value = float(raw) if is_number(raw) else None
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
