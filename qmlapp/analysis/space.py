"""Search spaces of sweeps: parsing the sweep JSON, Optuna distributions, and spaces inferred from runs.

JSON contract (the ``search_space`` of a sweep file), one entry per hyperparameter::

    {"encoding": ["angle", "zz_feature_map"],               # categorical: str / int / float / bool
     "depth": {"low": 1, "high": 6},                        # int range (both bounds JSON ints)
     "learning_rate": {"low": 1e-3, "high": 0.5, "log": true},
     "init_constant": {"low": -1.0, "high": 1.0, "step": 0.5}}

Invalid entries raise :class:`~qmlapp.specs.SpecError` naming the hyperparameter.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np
import optuna

from qmlapp.specs import SpecError

Choice = str | int | float | bool
SPACE_FIELD = "search_space"  # field name of errors about the whole mapping
_RANGE_KEYS = frozenset({"low", "high", "log", "step"})


def as_scalar(value: Any) -> Any:
    """Plain Python scalar for numpy scalars (stored params may come from numpy code)."""
    return value.item() if isinstance(value, np.generic) else value


def is_number(value: Any) -> bool:
    """A real number that is not a bool (``True`` is an ``int`` in Python)."""
    value = as_scalar(value)
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def choice_key(value: Any) -> tuple[str, Any] | None:
    """Type-aware identity of a categorical value: ``True``, ``1`` and ``"1"`` differ; ``1`` and ``1.0`` do not.

    Spec coercion turns a JSON ``1`` into ``1.0`` for float fields, so numbers compare by value.
    Returns None for values that cannot be a choice.
    """
    value = as_scalar(value)
    if isinstance(value, bool):
        return ("bool", value)
    if is_number(value):
        return ("num", float(value)) if math.isfinite(float(value)) else None
    if isinstance(value, str):
        return ("str", value)
    return None


@dataclass(frozen=True)
class Categorical:
    """A hyperparameter with a finite list of choices, in the order given."""

    name: str
    choices: tuple[Choice, ...]

    @cached_property
    def _index(self) -> dict[tuple[str, Any], int]:
        # Built once: analysis looks up every trial's value, and a scan per lookup is quadratic.
        index: dict[tuple[str, Any], int] = {}
        for i, choice in enumerate(self.choices):
            key = choice_key(choice)
            if key is not None:
                index.setdefault(key, i)
        return index

    def code(self, value: Any) -> int | None:
        """Index of ``value`` among the choices, or None if it is not one of them."""
        key = choice_key(value)
        return None if key is None else self._index.get(key)

    def labels(self) -> list[str]:
        """Display labels; ``repr`` only where ``str`` would make two choices look alike (1 vs "1")."""
        plain = [str(c) for c in self.choices]
        return plain if len(set(plain)) == len(plain) else [repr(c) for c in self.choices]

    def to_json(self) -> list[Choice]:
        return list(self.choices)


@dataclass(frozen=True)
class Range:
    """A numeric hyperparameter in ``[low, high]``; integers when ``is_int``; ``log`` = log-uniform."""

    name: str
    low: float
    high: float
    is_int: bool = False
    log: bool = False
    step: float | None = None

    def contains(self, value: Any) -> bool:
        value = as_scalar(value)
        if not is_number(value) or not math.isfinite(float(value)):
            return False
        if self.is_int and not float(value).is_integer():
            return False
        return self.low <= value <= self.high

    def to_axis(self, value: Any) -> float:
        """Position on the analysis axis: log10 for log ranges, so bins and plots are even in decades."""
        v = float(as_scalar(value))
        return math.log10(v) if self.log else v

    def axis_bounds(self) -> tuple[float, float]:
        return self.to_axis(self.low), self.to_axis(self.high)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"low": self.low, "high": self.high}
        if self.log:
            out["log"] = True
        if self.step is not None:
            out["step"] = self.step
        return out


Dimension = Categorical | Range


@dataclass(frozen=True)
class SearchSpace:
    """Ordered hyperparameters of a sweep (or of a hand-picked set of runs)."""

    dimensions: tuple[Dimension, ...] = ()

    def __post_init__(self) -> None:
        seen: set[str] = set()
        for d in self.dimensions:
            if d.name in seen:
                raise SpecError(d.name, "appears more than once in the search space")
            seen.add(d.name)

    @property
    def names(self) -> list[str]:
        return [d.name for d in self.dimensions]

    def __getitem__(self, name: str) -> Dimension:
        for d in self.dimensions:
            if d.name == name:
                return d
        raise KeyError(name)

    def __contains__(self, name: object) -> bool:
        return any(d.name == name for d in self.dimensions)

    def __iter__(self) -> Iterator[Dimension]:
        return iter(self.dimensions)

    def __len__(self) -> int:
        return len(self.dimensions)

    def contains(self, params: Mapping[str, Any]) -> bool:
        """Whether ``params`` sets every hyperparameter to an allowed value."""
        for d in self.dimensions:
            if d.name not in params:
                return False
            v = params[d.name]
            if (d.code(v) is None) if isinstance(d, Categorical) else not d.contains(v):
                return False
        return True

    @classmethod
    def from_json(cls, data: Any) -> SearchSpace:
        """Parse the sweep-file mapping (see module docstring); raises SpecError naming the field."""
        if not isinstance(data, Mapping):
            raise SpecError(SPACE_FIELD, f"must be a JSON object of hyperparameter → choices or range, "
                                         f"got {type(data).__name__}")
        dims: list[Dimension] = []
        for name, entry in data.items():
            if not isinstance(name, str) or not name:
                raise SpecError(SPACE_FIELD, f"hyperparameter names must be non-empty strings, got {name!r}")
            if isinstance(entry, Mapping):
                dims.append(_parse_range(name, entry))
            elif isinstance(entry, Sequence) and not isinstance(entry, str):
                dims.append(_parse_choices(name, entry))
            else:
                raise SpecError(name, f"must be a list of choices or an object with low/high, got {entry!r}")
        return cls(tuple(dims))

    def to_json(self) -> dict[str, Any]:
        return {d.name: d.to_json() for d in self.dimensions}


def _parse_choices(name: str, entry: Sequence[Any]) -> Categorical:
    if len(entry) == 0:
        raise SpecError(name, "needs at least one choice")
    # One dict lookup per choice (a scan of the earlier choices would be quadratic in their number).
    # Python's True == 1 == 1.0: Optuna's CategoricalDistribution maps such choices to one index, so
    # booleans are keyed with the numbers; choice_key already makes 1 and 1.0 one key.
    seen: dict[tuple[str, Any], Any] = {}
    for c in entry:
        key = choice_key(c)
        if key is None:
            raise SpecError(name, f"choices must be strings, finite numbers or booleans, got {c!r}")
        equality_key = ("num", float(key[1])) if key[0] == "bool" else key
        if equality_key in seen:
            raise SpecError(name, f"choices {seen[equality_key]!r} and {c!r} are indistinguishable (equal in "
                                  "Python); list each value once")
        seen[equality_key] = c
    return Categorical(name, tuple(as_scalar(c) for c in entry))


def _parse_range(name: str, entry: Mapping[str, Any]) -> Range:
    unknown = sorted(set(entry) - _RANGE_KEYS)
    if unknown:
        raise SpecError(name, f"unknown key {unknown[0]!r} in range; allowed: low, high, log, step")
    for key in ("low", "high"):
        if key not in entry:
            raise SpecError(name, f"range needs {key!r}")
        v = entry[key]
        if not is_number(v) or not math.isfinite(float(v)):
            raise SpecError(name, f"{key!r} must be a finite number, got {v!r}")
    low, high = as_scalar(entry["low"]), as_scalar(entry["high"])
    is_int = isinstance(low, int) and isinstance(high, int)
    log = entry.get("log", False)
    if not isinstance(log, bool):
        raise SpecError(name, f"'log' must be true or false, got {log!r}")
    if low > high:
        raise SpecError(name, f"'low' ({low}) must be ≤ 'high' ({high})")
    if log and low <= 0:
        raise SpecError(name, f"a log range needs 'low' > 0, got {low}")
    step = entry.get("step")
    if step is not None:
        if log:
            raise SpecError(name, "'step' cannot be combined with 'log' (Optuna refuses both)")
        if not is_number(step) or not math.isfinite(float(step)) or step <= 0:
            raise SpecError(name, f"'step' must be a positive number, got {step!r}")
        if is_int and not isinstance(as_scalar(step), int):
            raise SpecError(name, f"'step' of an integer range must be an integer, got {step!r}")
        # A step that does not divide high − low is allowed (grid samplers stop at the last point ≤ high;
        # Optuna's distributions do the same with a warning). Analysis ignores steps altogether.
        step = as_scalar(step)
    if is_int:
        return Range(name, int(low), int(high), is_int=True, log=log, step=None if step is None else int(step))
    return Range(name, float(low), float(high), log=log, step=None if step is None else float(step))


def to_optuna_distributions(space: SearchSpace) -> dict[str, optuna.distributions.BaseDistribution]:
    """Optuna distributions of a space, e.g. for ``optuna.trial.create_trial`` or a sampler's ``ask``."""
    out: dict[str, optuna.distributions.BaseDistribution] = {}
    for d in space:
        if isinstance(d, Categorical):
            out[d.name] = optuna.distributions.CategoricalDistribution(d.choices)
        elif d.is_int:
            out[d.name] = optuna.distributions.IntDistribution(int(d.low), int(d.high), log=d.log,
                                                               step=int(d.step or 1))
        else:
            out[d.name] = optuna.distributions.FloatDistribution(d.low, d.high, log=d.log, step=d.step)
    return out


def infer_space(param_dicts: Iterable[Mapping[str, Any]], *, exclude: Iterable[str] = ("seed",),
                max_categories: int = 6) -> SearchSpace:
    """The space spanned by hand-picked runs: only fields whose values differ across them.

    Fields missing from some runs, holding None or non-scalar values are left out (nothing to compare),
    as is ``seed``, which distinguishes repeats rather than configurations. Strings and booleans become
    categoricals; numbers become categoricals up to ``max_categories`` distinct values, else a range
    over the observed min/max, log-scaled when all are > 0 and max/min ≥ 100.
    """
    dicts = [dict(p) for p in param_dicts]
    if not dicts:
        return SearchSpace()
    skip = set(exclude)
    names = [k for k in dicts[0] if k not in skip and all(k in p for p in dicts[1:])]
    dims: list[Dimension] = []
    for name in names:
        values = [as_scalar(p[name]) for p in dicts]
        if any(choice_key(v) is None for v in values):
            continue
        distinct: dict[tuple[str, Any], Choice] = {}
        for v in values:
            key = choice_key(v)
            assert key is not None  # values without a key were skipped above
            distinct.setdefault(key, v)
        if len(distinct) < 2:
            continue
        numeric = all(is_number(v) for v in distinct.values())
        if numeric and len(distinct) > max_categories:
            nums = [v for v in distinct.values() if not isinstance(v, str)]  # all of them: numeric
            lo, hi = min(nums), max(nums)
            is_int = all(isinstance(v, int) for v in nums)
            log = lo > 0 and hi / lo >= 100
            dims.append(Range(name, int(lo), int(hi), is_int=True, log=log) if is_int
                        else Range(name, float(lo), float(hi), log=log))
        else:
            # Sorted for a stable order whatever order the runs came in: bools, numbers, then strings.
            rank = {"bool": 0, "num": 1, "str": 2}
            ordered = sorted(distinct.items(), key=lambda kv: (rank[kv[0][0]], kv[0][1]))
            dims.append(Categorical(name, tuple(v for _, v in ordered)))
    return SearchSpace(tuple(dims))
