"""Sweeps: a base spec + a search space + an Optuna sampler; every trial is ordinary runs.

The sampler state lives in the run database as an Optuna journal (``sweep_journal``), so any
process (a worker, the CLI, the web app) can advance a sweep and a sweep resumes after a restart.
``advance_sweep`` holds a per-sweep lease while it tells finished trials and asks new ones, so the
sampler is never driven by two processes at once.

Trials vs runs: one Optuna trial is one configuration; it is run ``repeats`` times with seeds
``base.seed + r`` (the same seeds for every configuration, so configurations are compared on equal
data splits and initial draws). Its objective value is the mean over the succeeded repeats.
"""

from __future__ import annotations

import itertools
import json
import logging
import math
import os
import socket
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import sqlalchemy.exc
from optuna.samplers import BaseSampler

from db import CANCELLED, FINISHED, QUEUED, RUNNING, SUCCEEDED, RunRecord, Storage, StorageError, SweepRecord
from qmlapp.analysis import Categorical, Dimension, Range, SearchSpace, to_optuna_distributions
from qmlapp.registry import KINDS, Objective, get_kind, objective_info
from qmlapp.resources import check_memory
from qmlapp.services import software_versions
from qmlapp.specs import Spec, SpecError, check_name, show_value

SAMPLERS = ("grid", "random", "tpe")
DEFAULT_KIND = "qnn"  # sweep files written before kinds existed name no kind


def kind_objectives(kind: str) -> dict[str, str]:
    """Objective name -> direction for sweeps over ``kind`` (the first is the default)."""
    return {o.name: o.direction for o in get_kind(kind).objectives}


def _allowed_objectives(kind: str) -> str:
    return ", ".join(f"{o.name!r} ({o.label}, {o.unit}, {o.direction})" for o in get_kind(kind).objectives)


SWEEP_KEYS = ("kind", "name", "base", "space", "sampler", "n_trials", "objective", "repeats", "seed")
MAX_TRIALS = 10_000
MAX_REPEATS = 20
# Spaces are sized arithmetically and refused above these limits before anything is stored, so that
# no sweep definition can make a process build a huge list (grid points are decoded one at a time).
MAX_GRID_POINTS = 100_000  # points of a whole grid (the product over all fields)
MAX_GRID_VALUES = 10_000  # grid points along one numeric range
MAX_CHOICES = 100_000  # values in one list
# Optuna's journal records every listed value with every trial (and each advance replays the journal),
# so the listed values times the trials are bounded too.
MAX_RECORDED_CHOICES = 1_000_000
MAX_EXTRA_ASKS = 50  # asks per advance beyond the in-flight target (invalid trials are not queued)
ACTIVE = "running"

log = logging.getLogger(__name__)


# --- definition ---------------------------------------------------------------------------------


def _count_text(n: float) -> str:
    return f"{n}" if isinstance(n, int) and n < 10**7 else f"{float(n):.1e}"


def grid_count(dimension: Dimension) -> int:
    """How many points a grid visits along one hyperparameter, computed in O(1) without listing them.

    Raises SpecError naming the field for a float range without a step and for a range with more than
    ``MAX_GRID_VALUES`` points."""
    where = f"space.{dimension.name}"
    if isinstance(dimension, Categorical):
        return len(dimension.choices)
    low, high = dimension.low, dimension.high
    if dimension.is_int:
        step = int(dimension.step or 1)
        if step < 1:
            raise SpecError(where, f"'step' must be a positive integer, got {step}")
        n: float = (int(high) - int(low)) // step + 1
    else:
        if dimension.step is None:
            raise SpecError(where, "the grid sampler needs a list of values or a 'step' for a float range")
        step_f = float(dimension.step)
        if not (math.isfinite(low) and math.isfinite(high) and math.isfinite(step_f) and step_f > 0):
            raise SpecError(where, f"a grid needs finite bounds and a positive finite 'step', got low={low!r}, "
                                   f"high={high!r}, step={dimension.step!r}")
        span = (high - low) / step_f  # may overflow to inf for a tiny step: refused below, never looped over
        n = math.floor(span + 1e-9) + 1 if math.isfinite(span) and span < 1e15 else span + 1
    if n > MAX_GRID_VALUES:
        count = "too many" if n == math.inf else _count_text(n)
        raise SpecError(where, f"a grid over [{low}, {high}] with step {dimension.step or 1} has {count} values, "
                               f"over the limit of {MAX_GRID_VALUES} per field; give a list of values or a "
                               "larger step")
    return int(n)


def grid_size(space: SearchSpace) -> int:
    """Points of the grid over ``space`` (the product of the fields' counts), refused above MAX_GRID_POINTS
    with a SpecError naming the field with the most values."""
    counts = [(d.name, grid_count(d)) for d in space]  # each is bounded, so the exact product is cheap
    total = math.prod(n for _, n in counts)
    if total > MAX_GRID_POINTS:
        largest = max(counts, key=lambda c: c[1])[0]
        factors = " × ".join(f"{n} ({name})" for name, n in counts)
        raise SpecError(f"space.{largest}", f"a grid over {factors} values = {_count_text(total)} points is over "
                                            f"the limit of {MAX_GRID_POINTS} grid points; give fewer values, a "
                                            "larger step, or use the random or tpe sampler")
    return total


def grid_value(dimension: Dimension, i: int) -> Any:
    """The ``i``-th grid point along one hyperparameter (0 <= i < grid_count)."""
    if isinstance(dimension, Categorical):
        return dimension.choices[i]
    if dimension.is_int:
        return int(dimension.low) + i * int(dimension.step or 1)
    return round(dimension.low + i * float(dimension.step), 12)  # type: ignore[arg-type]


def grid_values(dimension: Dimension) -> list[Any]:
    """The points a grid sampler visits for one hyperparameter (at most MAX_GRID_VALUES or MAX_CHOICES)."""
    return [grid_value(dimension, i) for i in range(grid_count(dimension))]


def grid_point(space: SearchSpace, index: int) -> dict[str, Any]:
    """Point ``index`` of ``itertools.product`` over the fields sorted by name (Optuna's GridSampler
    order), by mixed-radix decoding: nothing else of the grid is built."""
    values: dict[str, Any] = {}
    for d in sorted(space, key=lambda d: d.name, reverse=True):  # the last name varies fastest
        index, i = divmod(index, grid_count(d))
        values[d.name] = grid_value(d, i)
    return {d.name: values[d.name] for d in space}


def _parse_space(raw: Any, base: Spec) -> SearchSpace:
    """The generic space parser plus what only the experiment's spec knows: which fields exist, their
    types and allowed values. Values are checked field by field; a value that clashes with another
    field (e.g. lda with too many qubits) may be fine combined with other swept values, so such
    trials are recorded as invalid at run time instead."""
    if not isinstance(raw, Mapping) or not raw:
        raise SpecError("space", "must be a non-empty object: field -> list of values or range")
    for name, entry in raw.items():  # refused before any per-value work
        if isinstance(entry, (list, tuple)) and len(entry) > MAX_CHOICES:
            raise SpecError(f"space.{name}", f"has {len(entry)} values, over the limit of {MAX_CHOICES}; give a "
                                             "range instead")
    try:
        space = SearchSpace.from_json(raw)
    except SpecError as exc:
        raise SpecError(exc.field if exc.field.startswith("space") else f"space.{exc.field}", exc.message) from None
    params = type(base).params()
    dims: list[Dimension] = []
    for d in space:
        where = f"space.{d.name}"
        if d.name not in params:
            raise SpecError(where, f"is not a field of {base.kind!r}; fields: {', '.join(params)}")
        if d.name == "seed":
            raise SpecError(where, "seeds are not searched; use 'repeats' for several seeds per configuration")
        default = params[d.name][0].default

        def check(value: Any, where: str = where, name: str = d.name) -> Any:
            try:
                return type(base).check_field(name, value)
            except SpecError as exc:
                raise SpecError(where, f"value {value!r} is invalid: {exc.message}") from None

        if isinstance(d, Categorical):
            dims.append(Categorical(d.name, tuple(check(v) for v in d.choices)))
            continue
        if isinstance(default, bool) or not isinstance(default, (int, float)):
            raise SpecError(where, f"is not numeric; give a list of values, e.g. [{default!r}]")
        low, high = check(d.low), check(d.high)
        if not low < high:
            raise SpecError(where, f"needs low < high, got low={low!r}, high={high!r}")
        is_int = isinstance(default, int)  # the spec's type decides, not how the JSON wrote the bounds
        step = None if d.step is None else (int(d.step) if is_int else float(d.step))
        dims.append(Range(d.name, low, high, is_int=is_int, log=d.log, step=step))
    return SearchSpace(tuple(dims))


@dataclass(frozen=True)
class SweepSpec:
    """A validated sweep file (public contract; see the README)."""

    kind: str
    base: Spec
    space: SearchSpace
    sampler: str = "tpe"
    n_trials: int = 20
    objective: str = ""  # "" = the kind's first objective
    repeats: int = 1
    seed: int = 0
    name: str = ""

    def __post_init__(self) -> None:
        if not self.objective and get_kind(self.kind).objectives:
            object.__setattr__(self, "objective", get_kind(self.kind).objectives[0].name)

    @property
    def direction(self) -> str:
        return kind_objectives(self.kind)[self.objective]

    @property
    def objective_info(self) -> Objective:
        """Label, unit, direction and provenance of the objective, as the kind declares them."""
        return get_kind(self.kind).objective(self.objective)

    @property
    def grid_size(self) -> int:
        return grid_size(self.space)

    @classmethod
    def from_dict(cls, data: Any) -> SweepSpec:
        if not isinstance(data, Mapping):
            raise SpecError("sweep", f"must be a JSON object, got {type(data).__name__}")
        unknown = sorted(set(data) - set(SWEEP_KEYS))
        if unknown:
            raise SpecError(unknown[0], f"unknown sweep field; known: {', '.join(SWEEP_KEYS)}")
        kind = data.get("kind", DEFAULT_KIND)
        if not isinstance(kind, str) or kind not in KINDS:
            raise SpecError("kind", f"unknown experiment kind {show_value(kind)}; known kinds: {', '.join(KINDS)}")
        base_raw = data.get("base", {})
        try:
            base = get_kind(kind).spec_class.from_dict(base_raw)
        except SpecError as exc:
            raise SpecError(f"base.{exc.field}", exc.message) from None
        space = _parse_space(data.get("space"), base)

        def integer(key: str, default: int, low: int, high: int) -> int:
            value = data.get(key, default)
            if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
                raise SpecError(key, f"must be an integer in [{low}, {high}], got {value!r}")
            return value

        sampler = data.get("sampler", "tpe")
        if sampler not in SAMPLERS:
            raise SpecError("sampler", f"must be one of {', '.join(map(repr, SAMPLERS))}, got {sampler!r}")
        allowed = kind_objectives(kind)
        if not allowed:
            raise SpecError("kind", f"{kind!r} runs cannot be swept (the kind names no objective)")
        objective = data.get("objective", next(iter(allowed)))
        if not isinstance(objective, str) or objective not in allowed:
            raise SpecError("objective", f"must be one of the {kind!r} objectives {_allowed_objectives(kind)}; "
                            f"got {show_value(objective)}")
        name = check_name("name", data.get("name", ""))  # stored as VARCHAR(200): no NUL, surrogates
        spec = cls(kind=kind, base=base, space=space, sampler=sampler,
                   n_trials=integer("n_trials", 20, 1, MAX_TRIALS), objective=objective,
                   repeats=integer("repeats", 1, 1, MAX_REPEATS), seed=integer("seed", 0, 0, 2**31 - 1),
                   name=name)
        if sampler == "grid":
            spec.grid_size  # noqa: B018 - raises a SpecError naming a range without a step or over the limits
        lists = [(d.name, len(d.choices)) for d in space if isinstance(d, Categorical)]
        listed = sum(n for _, n in lists)
        if listed * spec.effective_trials() > MAX_RECORDED_CHOICES:
            largest = max(lists, key=lambda c: c[1])[0]
            raise SpecError(f"space.{largest}", f"{listed} listed values × {spec.effective_trials()} trials = "
                                                f"{_count_text(listed * spec.effective_trials())} is over the "
                                                f"limit of {MAX_RECORDED_CHOICES} (the sampler records every "
                                                "listed value with every trial); give fewer values or trials")
        return spec

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "name": self.name, "base": self.base.to_dict(),
                "space": self.space.to_json(), "sampler": self.sampler,
                "n_trials": self.n_trials, "objective": self.objective, "repeats": self.repeats,
                "seed": self.seed}

    def effective_trials(self) -> int:
        """The trial budget; a grid is never asked for more points than it has."""
        return min(self.n_trials, self.grid_size) if self.sampler == "grid" else self.n_trials

    def trial_spec(self, params: Mapping[str, Any], repeat: int) -> Spec:
        """The run spec of one repeat of one configuration (raises SpecError for invalid combinations)."""
        return self.base.replace(**dict(params), seed=self.base_seed + repeat)

    @property
    def base_seed(self) -> int:
        """The base spec's seed (every kind's spec has one); repeat r runs with base_seed + r."""
        return int(self.base.seed)  # type: ignore[attr-defined]


# --- Optuna plumbing ----------------------------------------------------------------------------


class LazyGridSampler(BaseSampler):
    """Trial ``n`` gets point ``n`` of the grid in a seeded shuffled order, decoded from its index.

    The order is the one of Optuna's ``GridSampler(space, seed)`` (numpy's shuffle of the product), so
    grid sweeps stored before keep their sequence; unlike GridSampler, the product is never listed: only
    a permutation of the point indices (at most MAX_GRID_POINTS integers) is drawn.
    """

    def __init__(self, space: SearchSpace, seed: int) -> None:
        self._space = space
        self._seed = seed
        self._size = grid_size(space)
        self._order: np.ndarray | None = None
        self._points: dict[int, dict[str, Any]] = {}

    def point(self, number: int) -> dict[str, Any]:
        if not 0 <= number < self._size:
            raise ValueError(f"trial {number} is beyond the grid's {self._size} points")
        if number not in self._points:
            if self._order is None:  # GridSampler's list shuffle draws the same swaps as this permutation
                self._order = np.random.RandomState(self._seed).permutation(self._size)
            self._points[number] = grid_point(self._space, int(self._order[number]))
        return self._points[number]

    def infer_relative_search_space(self, study: Any, trial: Any) -> dict[str, Any]:
        return {}

    def sample_relative(self, study: Any, trial: Any, search_space: dict[str, Any]) -> dict[str, Any]:
        return {}

    def sample_independent(self, study: Any, trial: Any, param_name: str, param_distribution: Any) -> Any:
        return self.point(trial.number)[param_name]


def _sampler(spec: SweepSpec, trial_number: int) -> Any:
    """A fresh sampler per ask, seeded by (sweep seed, trial number): the sequence of proposals
    then does not depend on how asks were batched across processes."""
    import optuna

    seed = (spec.seed * 1_000_003 + trial_number) % 2**31
    if spec.sampler == "grid":
        return LazyGridSampler(spec.space, spec.seed)
    if spec.sampler == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    return optuna.samplers.TPESampler(seed=seed, n_startup_trials=min(10, max(2, spec.n_trials // 4)))


def _journal_backend(storage: Storage, sweep_id: int) -> Any:
    from optuna.storages.journal import BaseJournalBackend

    class DbJournal(BaseJournalBackend):
        """Optuna journal records kept in the run database, so a sweep resumes from any process."""

        def read_logs(self, log_number_from: int) -> Iterable[dict[str, Any]]:
            return storage.read_journal(sweep_id, log_number_from)

        def append_logs(self, logs: list[dict[str, Any]]) -> None:
            storage.append_journal(sweep_id, logs)

    return DbJournal()


def _study(storage: Storage, sweep_id: int, spec: SweepSpec) -> Any:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    journal = optuna.storages.JournalStorage(_journal_backend(storage, sweep_id))
    return optuna.create_study(study_name=f"sweep-{sweep_id}", storage=journal, direction=spec.direction,
                               load_if_exists=True, sampler=_sampler(spec, 0))


# --- lifecycle ----------------------------------------------------------------------------------


_LOADED: dict[str, SweepSpec] = {}
_LOADED_LOCK = threading.Lock()  # the web app loads specs from several script threads


def load_spec(sweep: SweepRecord) -> SweepSpec:
    """The validated spec of a stored sweep. Workers and pages load the same definitions again and again,
    and validating a long list of values takes a while, so recent ones are kept (keyed by content)."""
    key = json.dumps(sweep.definition, sort_keys=True, default=str)
    with _LOADED_LOCK:
        spec = _LOADED.get(key)
    if spec is None:
        spec = SweepSpec.from_dict(sweep.definition)
        with _LOADED_LOCK:
            if len(_LOADED) >= 16:
                _LOADED.pop(next(iter(_LOADED)))
            _LOADED[key] = spec
    return spec


def create_sweep(storage: Storage, data: Mapping[str, Any] | SweepSpec, *, workers: int = 1) -> SweepRecord:
    """Validate (nothing is stored when invalid), store the sweep and queue its first trials."""
    spec = data if isinstance(data, SweepSpec) else SweepSpec.from_dict(data)
    sweep = storage.create_sweep(spec.kind, spec.to_dict(), name=spec.name or _default_name(spec))
    advance_sweep(storage, sweep.id, workers=workers)
    return storage.get_sweep(sweep.id)


def _default_name(spec: SweepSpec) -> str:
    dims = ", ".join(d.name for d in spec.space)
    return f"{spec.kind} · {spec.sampler} over {dims} · {spec.effective_trials()} trials × {spec.repeats}"


def _objective_value(run: RunRecord, objective: str) -> float | None:
    value = (run.result or {}).get(objective)
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    return None


def _latest_per_repeat(runs: Iterable[RunRecord]) -> dict[int, RunRecord]:
    latest: dict[int, RunRecord] = {}
    for run in sorted(runs, key=lambda r: r.id):
        latest[run.seed] = run
    return latest


def advance_sweep(storage: Storage, sweep_id: int, *, workers: int = 1, owner: str | None = None) -> bool:
    """Tell finished trials, ask new ones up to the in-flight target, finish the sweep when done.

    Returns False when another process holds the sweep's lease (it is advancing it right now). A running
    sweep whose trials cannot be generated (its stored definition no longer validates, the sampler
    raises, memory runs out) ends "failed" with the reason, so that no process retries it forever;
    database errors propagate (they are transient: the next advance retries).
    """
    owner = owner or f"{socket.gethostname()}-{os.getpid()}"
    if not storage.acquire_sweep_lease(sweep_id, owner):
        return False
    try:
        sweep = storage.get_sweep(sweep_id)
        try:
            _advance(storage, sweep, workers)
        except (StorageError, sqlalchemy.exc.SQLAlchemyError):  # the database's trouble, not the sweep's
            raise
        except Exception as exc:  # MemoryError included
            if sweep.status != ACTIVE:  # only finished trials were being told; its status stays
                log.warning("sweep %s (%s) cannot be advanced: %s", sweep_id, sweep.status, _failure_reason(exc))
                return True
            log.exception("sweep %s cannot generate trials; marking it failed", sweep_id)
            storage.update_sweep(sweep_id, status="failed", message=_failure_reason(exc), finished=True)
        return True
    finally:
        storage.release_sweep_lease(sweep_id, owner)


def _failure_reason(exc: BaseException) -> str:
    if isinstance(exc, SpecError):
        return f"invalid sweep definition: {exc}"
    return f"cannot generate trials: {type(exc).__name__}: {exc}".rstrip(": ")[:1000]


def _advance(storage: Storage, sweep: SweepRecord, workers: int) -> None:
    import optuna
    from optuna.trial import TrialState

    sweep_id = sweep.id
    spec = load_spec(sweep)
    study = _study(storage, sweep_id, spec)
    runs_by_trial: dict[int, list[RunRecord]] = {}
    for run in storage.list_runs(sweep_id=sweep_id, limit=None):
        if run.sweep_trial is not None:
            runs_by_trial.setdefault(run.sweep_trial, []).append(run)
    active = sweep.status == ACTIVE
    in_flight = 0
    # Tells need no sampler logic (a grid point is fixed at ask time).
    study.sampler = optuna.samplers.RandomSampler(seed=spec.seed)
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        latest = _latest_per_repeat(runs_by_trial.get(trial.number, []))
        pending = [r for r in latest.values() if r.status not in FINISHED]
        cancelled = [r for r in latest.values() if r.status == CANCELLED]
        if pending:
            in_flight += 1
            continue
        if cancelled:
            if active:  # resumed: run the cancelled repeats again
                for run in cancelled:
                    _submit_repeat(storage, sweep_id, spec, trial.number, trial.params, run.seed - spec.base_seed)
                in_flight += 1
            continue  # a cancelled sweep keeps the trial open for a later resume
        values = [v for r in latest.values() if (v := _objective_value(r, spec.objective)) is not None]
        if values:
            study.tell(trial.number, sum(values) / len(values))
        else:  # the runs keep the reasons; trial_rows shows them
            study.tell(trial.number, state=TrialState.FAIL)
    if active:
        distributions = to_optuna_distributions(spec.space)
        target = max(1, math.ceil((max(workers, 1) + 1) / spec.repeats))
        total = len(study.trials)
        asks = 0  # bounded: a space of mostly invalid combinations must not keep one call busy
        while in_flight < target and total < spec.effective_trials() and asks < target + MAX_EXTRA_ASKS:
            asks += 1
            study.sampler = _sampler(spec, total)
            trial = study.ask(distributions)
            total += 1
            try:
                for r in range(spec.repeats):  # validate every repeat (memory too) before queueing any
                    check_memory(spec.trial_spec(trial.params, r))
            except SpecError as exc:
                trial.set_user_attr("invalid", f"{exc.field}: {exc.message}")
                study.sampler = optuna.samplers.RandomSampler(seed=spec.seed)
                study.tell(trial, state=TrialState.FAIL)
                continue
            for r in range(spec.repeats):
                _submit_repeat(storage, sweep_id, spec, trial.number, trial.params, r)
            in_flight += 1
        if in_flight == 0 and total >= spec.effective_trials():
            _finish(storage, sweep_id, spec, study)


def _submit_repeat(storage: Storage, sweep_id: int, spec: SweepSpec, number: int, params: Mapping[str, Any],
                   repeat: int) -> RunRecord:
    run_spec = spec.trial_spec(params, repeat)
    label = ", ".join(f"{k}={_fmt(v)}" for k, v in params.items())
    name = f"sweep {sweep_id} · trial {number}" + (f" · rep {repeat}" if spec.repeats > 1 else "") + f" · {label}"
    return storage.create_run(spec.kind, run_spec.to_dict(), seed=run_spec.seed,  # type: ignore[attr-defined]
                              name=name[:200], versions=software_versions(), sweep_id=sweep_id,
                              sweep_trial=number)


def _fmt(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _finish(storage: Storage, sweep_id: int, spec: SweepSpec, study: Any) -> None:
    summary = compute_summary(storage, sweep_id, spec, study, with_importance=True)
    status = SUCCEEDED if summary["n_succeeded"] > 0 else "failed"
    message = (f"{summary['n_succeeded']} of {summary['n_trials']} trials succeeded" if status == SUCCEEDED
               else "no trial succeeded")
    storage.update_sweep(sweep_id, status=status, message=message, summary=summary, finished=True)


# --- reading ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TrialRow:
    """One configuration of a sweep with its repeats (plain data for tables and analysis)."""

    number: int
    params: dict[str, Any]
    state: str  # running | complete | failed | invalid
    value: float | None
    run_ids: tuple[int, ...]
    values: tuple[float, ...] = ()
    note: str = ""
    curves: dict[str, tuple[list[int], list[float]]] = field(default_factory=dict)


def trial_rows(storage: Storage, sweep_id: int, spec: SweepSpec | None = None) -> list[TrialRow]:
    """Trials of a sweep from its runs (works while the sweep runs; does not touch the sampler)."""
    spec = spec or load_spec(storage.get_sweep(sweep_id))
    runs_by_trial: dict[int, list[RunRecord]] = {}
    for run in storage.list_runs(sweep_id=sweep_id, limit=None):
        if run.sweep_trial is not None:
            runs_by_trial.setdefault(run.sweep_trial, []).append(run)
    names = [d.name for d in spec.space]
    rows = []
    for number, runs in sorted(runs_by_trial.items()):
        latest = _latest_per_repeat(runs)
        first = next(iter(latest.values()))
        params = {n: first.spec.get(n) for n in names}
        values = tuple(v for r in latest.values() if (v := _objective_value(r, spec.objective)) is not None)
        if any(r.status not in FINISHED for r in latest.values()):
            state = "running"
        elif any(r.status == CANCELLED for r in latest.values()):
            state = "cancelled"
        else:
            state = "complete" if values else "failed"
        errors = sorted({r.error for r in latest.values() if r.error})
        rows.append(TrialRow(number, params, state, sum(values) / len(values) if values else None,
                             tuple(sorted(r.id for r in latest.values())), values, "; ".join(errors)[:300]))
    return rows


def compute_summary(storage: Storage, sweep_id: int, spec: SweepSpec, study: Any | None = None, *,
                    with_importance: bool = False, rows: list[TrialRow] | None = None) -> dict[str, Any]:
    """Counts, the best configuration and, when asked (it takes seconds on big sweeps), fANOVA importance.
    Pass ``rows`` when the caller already has :func:`trial_rows`."""
    rows = trial_rows(storage, sweep_id, spec) if rows is None else rows
    complete = [r for r in rows if r.state == "complete" and r.value is not None]
    invalid = 0
    if study is not None:
        invalid = sum(1 for t in study.trials if "invalid" in t.user_attrs)
    summary: dict[str, Any] = {
        "n_trials": spec.effective_trials(), "n_created": len(rows) + invalid,
        "n_succeeded": len(complete), "n_failed": sum(r.state == "failed" for r in rows),
        "n_invalid": invalid, "n_running": sum(r.state == "running" for r in rows),
        "n_runs": sum(len(r.run_ids) for r in rows), "objective": spec.objective, "direction": spec.direction,
        "best": None, "importance": {}, "importance_method": None,
    }
    if complete:
        pick = max if spec.direction == "maximize" else min
        best = pick(complete, key=lambda r: r.value)  # type: ignore[arg-type,return-value]
        summary["best"] = {"trial": best.number, "value": best.value, "params": best.params,
                           "spec": spec.trial_spec(best.params, 0).to_dict(), "run_ids": list(best.run_ids),
                           "repeat_values": list(best.values)}
    if with_importance:
        importance, note = sweep_importance(spec, complete)
        summary["importance"] = importance or {}
        summary["importance_method"] = "fanova" if importance else None
        summary["importance_note"] = note
    return summary


def sweep_importance(spec: SweepSpec, complete: list[TrialRow]) -> tuple[dict[str, float] | None, str]:
    """fANOVA importance share per hyperparameter, or None and the reason it cannot be computed."""
    from qmlapp import analysis

    if len(complete) < analysis.MIN_TRIALS:
        return None, f"importance needs at least {analysis.MIN_TRIALS} complete trials, got {len(complete)}"
    trials = [analysis.Trial(run_id=r.run_ids[0], params=r.params, value=r.value) for r in complete]
    try:
        result = analysis.importance(trials, spec.space, spec.direction, method="fanova", seed=spec.seed)
    except analysis.AnalysisError as exc:
        return None, str(exc)
    return dict(result.shares), "fANOVA on a random-forest surrogate (approximate)"


def active_sweep_ids(storage: Storage) -> list[int]:
    return [s.id for s in storage.list_sweeps(statuses=[ACTIVE])]


def advance_all(storage: Storage, *, workers: int = 1) -> None:
    for sweep_id in active_sweep_ids(storage):
        advance_sweep(storage, sweep_id, workers=workers)


def cancel_sweep(storage: Storage, sweep_id: int) -> SweepRecord:
    """Stop asking for trials and cancel the sweep's queued and running runs (they stop within a step)."""
    sweep = storage.get_sweep(sweep_id)
    if sweep.status != ACTIVE:
        raise SpecError("sweep", f"sweep {sweep_id} is {sweep.status}; only a running sweep can be cancelled")
    storage.update_sweep(sweep_id, status=CANCELLED, message="cancelled by user", finished=True)
    for run in storage.list_runs(sweep_id=sweep_id, statuses=[QUEUED, RUNNING], limit=None):
        storage.request_cancel(run.id)
    return storage.get_sweep(sweep_id)


def resume_sweep(storage: Storage, sweep_id: int, *, workers: int = 1) -> SweepRecord:
    """Continue a cancelled (or failed) sweep: cancelled repeats run again, then new trials are asked."""
    sweep = storage.get_sweep(sweep_id)
    if sweep.status == ACTIVE:
        return sweep
    if sweep.status == SUCCEEDED:
        raise SpecError("sweep", f"sweep {sweep_id} already finished all its trials")
    storage.update_sweep(sweep_id, status=ACTIVE, message="resumed", finished=False)
    advance_sweep(storage, sweep_id, workers=workers)
    return storage.get_sweep(sweep_id)


def sweep_json(storage: Storage, sweep_id: int, rows: list[TrialRow] | None = None) -> dict[str, Any]:
    """The CLI's ``sweep --json`` object: id, kind, status, counts, the objective with its label, unit,
    provenance and direction, the best configuration and the importance shares."""
    sweep = storage.get_sweep(sweep_id)
    try:
        spec: SweepSpec | None = load_spec(sweep)
    except SpecError:  # a stored definition that no longer validates (it ends failed): list it all the same
        spec = None
    if sweep.summary:
        summary = sweep.summary
    elif spec is not None:
        summary = compute_summary(storage, sweep_id, spec, rows=rows)
    else:
        summary = {"n_trials": 0, "n_succeeded": 0, "n_failed": 0}
    best = summary.get("best")
    objective = spec.objective if spec is not None else str(sweep.definition.get("objective", ""))
    info = objective_info(objective, sweep.kind)
    return {"id": sweep.id, "kind": sweep.kind, "name": sweep.name, "status": sweep.status,
            "message": sweep.message, "n_trials": summary["n_trials"], "n_succeeded": summary["n_succeeded"],
            "n_failed": summary["n_failed"], "n_invalid": summary.get("n_invalid", 0),
            "objective": objective, "objective_label": info.label, "objective_unit": info.unit,
            "objective_provenance": info.provenance, "direction": info.direction,
            "best": None if best is None else {"spec": best["spec"], "value": best["value"],
                                               "params": best["params"], "run_ids": best["run_ids"]},
            "importance": summary.get("importance", {})}


def grid_product(spec: SweepSpec) -> list[dict[str, Any]]:
    """All grid points of a validated spec (at most MAX_GRID_POINTS; for display and tests)."""
    names = [d.name for d in spec.space]
    return [dict(zip(names, combo, strict=True)) for combo in itertools.product(*(grid_values(d) for d in spec.space))]
