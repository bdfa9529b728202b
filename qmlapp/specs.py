"""Frozen, validated experiment specs with a tagged, versioned JSON form.

A spec is a frozen dataclass whose fields carry their own constraints (``param``). The same class
is used by the UI form, the CLI and the worker, so a run is reproducible from its stored spec.
Every invalid value raises :class:`SpecError` naming the field and what is allowed.
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
import reprlib
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from typing_extensions import Self  # typing.Self needs Python 3.11

# Limits on untrusted input, checked before any conversion that could overflow or recurse.
MAX_ABS_INT = 2**63 - 1  # 64-bit columns and numpy int64; larger integers are refused before float()/numpy
MAX_NUMBER_CHARS = 40  # a JSON number literal longer than this is refused by length, before int()/float()
MAX_JSON_DEPTH = 64  # nesting of JSON text and of container values (specs nest 2-3 levels)
MAX_LIST_ITEMS = 64  # items of one list value (the longest legitimate spec list has 8)
MAX_TEXT_CHARS = 1000  # free text parsed into a value (e.g. "1, 2, 4, 6")
MAX_NAME_CHARS = 200  # run and sweep names: the database columns are VARCHAR(200)


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


class _ShortRepr(reprlib.Repr):
    """repr for error messages: bounded length and nesting, and no int-to-decimal conversion of huge
    integers (Python refuses over 4300 digits, and the message would be unreadable anyway)."""

    def __init__(self) -> None:
        super().__init__()
        self.maxlevel, self.maxstring, self.maxother = 3, 60, 60
        self.maxlist = self.maxtuple = self.maxdict = self.maxset = 8

    def repr_int(self, x: int, level: int) -> str:
        if x.bit_length() > 128:
            digits = int(x.bit_length() * math.log10(2)) + 1
            return f"{'a negative' if x < 0 else 'an'} integer of about {digits} digits"
        return repr(x)


_short_repr = _ShortRepr()


def show_value(value: Any) -> str:
    """A short, printable repr of any input value, safe for huge, deep or non-UTF-8-encodable ones."""
    try:
        return _short_repr.repr(value)
    except Exception:  # an error message must never fail on a hostile __repr__
        return f"a {type(value).__name__}"


def check_name(field_name: str, value: Any, max_chars: int = MAX_NAME_CHARS) -> str:
    """A run or sweep name as stored: a string of at most ``max_chars`` characters without control
    characters (NUL breaks PostgreSQL text) or lone surrogates (not encodable as UTF-8)."""
    if not isinstance(value, str):
        raise SpecError(field_name, f"must be a string of at most {max_chars} characters, got {show_value(value)}")
    if len(value) > max_chars:
        raise SpecError(field_name, f"must be at most {max_chars} characters, got {len(value)}")
    for i, ch in enumerate(value):
        category = unicodedata.category(ch)
        if category == "Cs":
            raise SpecError(field_name, f"must be valid Unicode text, got a lone surrogate U+{ord(ch):04X} at "
                            f"position {i}")
        if category == "Cc":
            raise SpecError(field_name, f"must not contain control characters (NUL, tab, newline, ...), got "
                            f"U+{ord(ch):04X} at position {i}")
    return value


def check_nesting(field_name: str, value: Any) -> None:
    """Refuse containers nested deeper than MAX_JSON_DEPTH or longer than MAX_LIST_ITEMS, iteratively
    (a recursive walk, repr or comparison of a 100k-deep list raises RecursionError)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if not isinstance(item, (list, tuple, dict, set, frozenset)):
            continue
        if depth > MAX_JSON_DEPTH:
            raise SpecError(field_name, f"must not be nested deeper than {MAX_JSON_DEPTH} levels")
        if len(item) > MAX_LIST_ITEMS:
            raise SpecError(field_name, f"must have at most {MAX_LIST_ITEMS} items, got {len(item)}")
        stack.extend((x, depth + 1) for x in (item.values() if isinstance(item, dict) else item))


_JSON_STRING = re.compile(r'"(?:[^"\\]|\\.)*"', re.DOTALL)
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")


def json_depth(text: str) -> int:
    """Deepest bracket nesting of JSON text, outside strings; linear time and no recursion."""
    depth = deepest = 0
    for ch in _NOT_BRACKET.sub("", _JSON_STRING.sub("", text)):
        if ch in "[{":
            depth += 1
            deepest = max(deepest, depth)
        else:
            depth -= 1
    return deepest


def load_json(text: str, field_name: str = "spec", where: str = "") -> Any:
    """``json.loads`` for untrusted spec text: refuses deep nesting (RecursionError in the parser or
    later) and overlong number literals (int() of over 4300 digits raises ValueError) with a SpecError
    naming ``field_name``. ``where`` (e.g. " in spec.json") is added to malformed-JSON messages."""
    if json_depth(text) > MAX_JSON_DEPTH:
        raise SpecError(field_name, f"JSON nested deeper than {MAX_JSON_DEPTH} levels")

    def number(parse: type) -> Any:
        def hook(literal: str) -> Any:
            if len(literal) > MAX_NUMBER_CHARS:
                raise SpecError(field_name, f"number literal {literal[:12]}... has {len(literal)} characters; "
                                f"at most {MAX_NUMBER_CHARS} are allowed")
            return parse(literal)
        return hook

    try:
        return json.loads(text, parse_int=number(int), parse_float=number(float))
    except json.JSONDecodeError as exc:
        raise SpecError(field_name, f"malformed JSON{where}: {exc.msg} (line {exc.lineno}, column {exc.colno})"
                        ) from None
    except RecursionError:  # the pre-scan should make this unreachable
        raise SpecError(field_name, f"JSON nested deeper than {MAX_JSON_DEPTH} levels") from None


def param(default: Any, **constraints: Any) -> Any:
    """A dataclass field with a default and validation constraints (see :class:`Param`)."""
    return field(default=default, metadata={"param": Param(**constraints)})


def _coerce(name: str, value: Any, typ: type, p: Param) -> Any:
    """Coerce JSON-ish input to the field type, refusing lossy or surprising conversions. Magnitudes are
    bounded before int()/float(), so huge integers never overflow a conversion."""
    if typ is bool:
        if isinstance(value, bool):
            return value
        raise SpecError(name, f"must be true or false, got {show_value(value)}")
    if typ is int:
        if (isinstance(value, bool) or not isinstance(value, (int, float))
                or (isinstance(value, float) and not value.is_integer()) or abs(value) > MAX_ABS_INT):
            raise SpecError(name, f"must be an integer {p.describe()}, got {show_value(value)}")
        return int(value)
    if typ is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise SpecError(name, f"must be a number {p.describe()}, got {show_value(value)}")
        if isinstance(value, int) and abs(value) > MAX_ABS_INT:
            raise SpecError(name, f"must be a number {p.describe()}, got {show_value(value)}")
        value = float(value)
        if not math.isfinite(value):
            raise SpecError(name, f"must be a finite number {p.describe()}, got {show_value(value)}")
        return value
    if typ is str:
        if not isinstance(value, str):
            raise SpecError(name, f"must be a string ({p.describe()}), got {show_value(value)}")
        return value
    return value


_SCALARS: dict[str, type] = {"int": int, "float": float, "str": str, "bool": bool}
_PARAMS: dict[type, dict[str, tuple[dataclasses.Field[Any], Param]]] = {}


@dataclass(frozen=True)
class Spec:
    """Base class of experiment specs. Subclasses set ``kind`` and ``schema_version``."""

    kind: ClassVar[str] = ""
    schema_version: ClassVar[int] = 1

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            check_nesting(f.name, value)
            object.__setattr__(self, f.name, self.check_field(f.name, value))
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
            raise SpecError(name, f"must be {p.describe()}, got {show_value(value)}")
        if p.low is not None and (value < p.low or (value == p.low and not p.low_inclusive)):
            raise SpecError(name, f"must be {p.describe()}, got {show_value(value)}")
        if p.high is not None and (value > p.high or (value == p.high and not p.high_inclusive)):
            raise SpecError(name, f"must be {p.describe()}, got {show_value(value)}")
        return value

    def validate(self) -> None:
        """Cross-field checks; override in subclasses and raise :class:`SpecError`."""

    def memory_estimate(self) -> Any:
        """Peak simulator memory as a ``qmlapp.resources.MemoryEstimate``; None when always small."""
        return None

    # --- (de)serialisation -------------------------------------------------------------------
    @classmethod
    def params(cls) -> dict[str, tuple[dataclasses.Field[Any], Param]]:
        """Field name -> (dataclass field, constraints), in declaration order (built once per class:
        a sweep checks every listed value through it)."""
        table = _PARAMS.get(cls)
        if table is None:
            table = _PARAMS[cls] = {f.name: (f, f.metadata.get("param", Param())) for f in dataclasses.fields(cls)}
        return table

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Self:
        """Build from a plain mapping; omitted fields take their defaults, unknown ones are refused."""
        if not isinstance(data, Mapping):
            raise SpecError("spec", f"must be a JSON object, got {type(data).__name__}")
        payload = dict(data)
        odd = next((k for k in payload if not isinstance(k, str)), None)
        if odd is not None:
            raise SpecError("spec", f"field names must be strings, got {show_value(odd)}")
        kind = payload.pop("kind", cls.kind)
        if not isinstance(kind, str) or kind != cls.kind:
            raise SpecError("kind", f"must be {cls.kind!r} for this spec, got {show_value(kind)}")
        version = payload.pop("schema_version", cls.schema_version)
        if isinstance(version, bool) or not isinstance(version, int) or not 1 <= version <= cls.schema_version:
            raise SpecError("schema_version", f"must be an integer in [1, {cls.schema_version}] for {cls.kind!r}, "
                            f"got {show_value(version)}")
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
        return cls.from_dict(load_json(text))

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
            raise SpecError(name, f"items must be one of {', '.join(map(repr, allowed))}, got {show_value(v)}")
