"""Frozen, validated experiment specs with a tagged, versioned JSON form.

A spec is a frozen dataclass whose fields carry their own constraints (``param``). The same class
is used by the UI form, the CLI and the worker, so a run is reproducible from its stored spec.
Every invalid value raises :class:`SpecError` naming the field and what is allowed.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Self


class SpecError(ValueError):
    """An invalid spec value; ``field`` names the offending field."""

    def __init__(self, field_name: str, message: str) -> None:
        super().__init__(f"{field_name}: {message}")
        self.field = field_name
        self.message = message


@dataclass(frozen=True)
class Param:
    """Constraints and UI hints of one spec field."""

    help: str = ""
    choices: tuple[Any, ...] | None = None
    low: float | None = None
    high: float | None = None
    low_inclusive: bool = True
    high_inclusive: bool = True
    log: bool = False
    label: str | None = None

    def describe(self) -> str:
        """Human-readable allowed values, used in error messages and help texts."""
        if self.choices is not None:
            return "one of " + ", ".join(repr(c) for c in self.choices)
        lo = "-inf" if self.low is None else f"{self.low:g}"
        hi = "inf" if self.high is None else f"{self.high:g}"
        left = "[" if self.low_inclusive and self.low is not None else "("
        right = "]" if self.high_inclusive and self.high is not None else ")"
        return f"in {left}{lo}, {hi}{right}"


def param(default: Any, **constraints: Any) -> Any:
    """A dataclass field with a default and validation constraints (see :class:`Param`)."""
    return field(default=default, metadata={"param": Param(**constraints)})


def _coerce(name: str, value: Any, typ: type, p: Param) -> Any:
    """Coerce JSON-ish input to the field type, refusing lossy or surprising conversions."""
    if typ is bool:
        if isinstance(value, bool):
            return value
        raise SpecError(name, f"must be true or false, got {value!r}")
    if typ is int:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise SpecError(name, f"must be an integer {p.describe()}, got {value!r}")
        if isinstance(value, float) and not value.is_integer():
            raise SpecError(name, f"must be an integer {p.describe()}, got {value!r}")
        return int(value)
    if typ is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise SpecError(name, f"must be a number {p.describe()}, got {value!r}")
        value = float(value)
        if not math.isfinite(value):
            raise SpecError(name, f"must be a finite number {p.describe()}, got {value!r}")
        return value
    if typ is str:
        if not isinstance(value, str):
            raise SpecError(name, f"must be a string ({p.describe()}), got {value!r}")
        return value
    return value


_SCALARS: dict[str, type] = {"int": int, "float": float, "str": str, "bool": bool}


@dataclass(frozen=True)
class Spec:
    """Base class of experiment specs. Subclasses set ``kind`` and ``schema_version``."""

    kind: ClassVar[str] = ""
    schema_version: ClassVar[int] = 1

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            object.__setattr__(self, f.name, self.check_field(f.name, getattr(self, f.name)))
        self.validate()

    @classmethod
    def check_field(cls, name: str, value: Any) -> Any:
        """Coerce and check one field on its own (type, choices, range); cross-field rules are in
        :meth:`validate`. Returns the coerced value."""
        f, p = cls.params()[name]
        typ = _SCALARS.get(f.type if isinstance(f.type, str) else getattr(f.type, "__name__", ""))
        if typ is not None:
            value = _coerce(name, value, typ, p)
        if p.choices is not None and value not in p.choices:
            raise SpecError(name, f"must be {p.describe()}, got {value!r}")
        if p.low is not None and (value < p.low or (value == p.low and not p.low_inclusive)):
            raise SpecError(name, f"must be {p.describe()}, got {value!r}")
        if p.high is not None and (value > p.high or (value == p.high and not p.high_inclusive)):
            raise SpecError(name, f"must be {p.describe()}, got {value!r}")
        return value

    def validate(self) -> None:
        """Cross-field checks; override in subclasses and raise :class:`SpecError`."""

    def memory_estimate(self) -> Any:
        """Peak simulator memory as a ``qmlapp.resources.MemoryEstimate``; None when always small."""
        return None

    # --- (de)serialisation -------------------------------------------------------------------
    @classmethod
    def params(cls) -> dict[str, tuple[dataclasses.Field[Any], Param]]:
        """Field name -> (dataclass field, constraints), in declaration order."""
        return {f.name: (f, f.metadata.get("param", Param())) for f in dataclasses.fields(cls)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Self:
        """Build from a plain mapping; omitted fields take their defaults, unknown ones are refused."""
        if not isinstance(data, Mapping):
            raise SpecError("spec", f"must be a JSON object, got {type(data).__name__}")
        payload = dict(data)
        kind = payload.pop("kind", cls.kind)
        if kind != cls.kind:
            raise SpecError("kind", f"must be {cls.kind!r} for this spec, got {kind!r}")
        version = payload.pop("schema_version", cls.schema_version)
        if isinstance(version, bool) or not isinstance(version, int) or not 1 <= version <= cls.schema_version:
            raise SpecError(
                "schema_version", f"must be an integer in [1, {cls.schema_version}] for {cls.kind!r}, got {version!r}"
            )
        if version < cls.schema_version:
            payload = cls.upgrade(payload, version)
        known = cls.params()
        unknown = sorted(set(payload) - set(known))
        if unknown:
            raise SpecError(unknown[0], f"unknown field for {cls.kind!r}; known fields: {', '.join(known)}")
        return cls(**payload)

    @classmethod
    def upgrade(cls, payload: dict[str, Any], from_version: int) -> dict[str, Any]:
        """Turn a stored spec of an older ``schema_version`` into current fields.

        The default suits additive changes: fields added since then take their defaults, which must
        reproduce the old behaviour. Override when a field was renamed or changed meaning.
        """
        return payload

    @classmethod
    def from_json(cls, text: str) -> Self:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise SpecError("spec", f"malformed JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})") from None
        return cls.from_dict(data)

    def to_dict(self) -> dict[str, Any]:
        """Tagged, versioned plain dict (JSON-ready)."""
        out: dict[str, Any] = {"kind": self.kind, "schema_version": self.schema_version}
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            out[f.name] = list(v) if isinstance(v, tuple) else v
        return out

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent, sort_keys=False)

    def replace(self, **changes: Any) -> Self:
        return dataclasses.replace(self, **changes)


def check_sequence(name: str, values: Sequence[Any], allowed: Sequence[Any]) -> None:
    """Raise unless every item of ``values`` is in ``allowed``."""
    for v in values:
        if v not in allowed:
            raise SpecError(name, f"items must be one of {', '.join(map(repr, allowed))}, got {v!r}")
