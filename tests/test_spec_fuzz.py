"""Fuzzed specs for every kind: each is accepted or refused with a SpecError naming a field, never a crash."""

from __future__ import annotations

import json
import math
import os
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from qmlapp.kinds.hypernet.spec import HypernetSpec
from qmlapp.registry import KINDS, parse_spec
from qmlapp.specs import SpecError

# Examples per kind and test, the same ones on every run (derandomized: the suite must not pass or fail by
# chance); the soak script's fuzz phase draws thousands of fresh ones (`make soak`), and
# QMLAPP_FUZZ_EXAMPLES raises this count for a long local search.
FUZZ_EXAMPLES = int(os.environ.get("QMLAPP_FUZZ_EXAMPLES", "100"))

SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=12),
)
VALUES = st.one_of(SCALARS, st.lists(SCALARS, max_size=4), st.dictionaries(st.text(max_size=5), SCALARS, max_size=2))


def _spec_dicts(kind: str) -> st.SearchStrategy[dict[str, Any]]:
    fields = [*KINDS[kind].spec_class.params(), "kind", "schema_version", "unknown_field"]
    return st.dictionaries(st.sampled_from(fields), VALUES, max_size=6)


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_fuzzed_specs_are_accepted_or_refused_naming_a_field(kind: str) -> None:
    known = {*KINDS[kind].spec_class.params(), "kind", "schema_version", "spec"}

    @settings(max_examples=FUZZ_EXAMPLES, derandomize=True, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(_spec_dicts(kind))
    def check(data: dict[str, Any]) -> None:
        try:
            parse_spec(kind, data)
        except SpecError as exc:
            assert exc.field in known or exc.field == "unknown_field", exc.field
            assert exc.message

    check()


def _allowed(cls: Any, name: str) -> st.SearchStrategy[Any]:
    """Values the field's own constraints allow (a choice, or a number in its range): with them a change
    often passes the field's check, so the cross-field checks are reached too."""
    f, p = cls.params()[name]
    if p.choices is not None:
        return st.sampled_from(list(p.choices))
    if isinstance(f.default, bool) or not isinstance(f.default, (int, float)):
        return st.just(f.default)
    low = p.low if p.low is not None else -1e6
    high = p.high if p.high is not None else 1e6
    if isinstance(f.default, int):
        return st.integers(min_value=math.ceil(low), max_value=min(math.floor(high), math.ceil(low) + 64))
    return st.floats(min_value=low, max_value=high, allow_nan=False)


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_defaults_with_fuzzed_fields_are_accepted_or_refused_naming_a_field(kind: str) -> None:
    """Start from the valid default and change one or two fields, so cross-field checks are reached too."""
    cls = KINDS[kind].spec_class
    base = cls().to_dict()
    fields = list(cls.params())
    near = st.one_of(VALUES, st.integers(min_value=-3, max_value=70), st.floats(min_value=-1, max_value=1e5))
    change = st.sampled_from(fields).flatmap(
        lambda name: st.tuples(st.just(name), st.one_of(near, _allowed(cls, name))))
    accepted = []

    @settings(max_examples=FUZZ_EXAMPLES, derandomize=True, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(st.lists(change, min_size=1, max_size=2).map(dict))
    def check(changes: dict[str, Any]) -> None:
        try:
            spec = parse_spec(kind, {**base, **changes})
        except SpecError as exc:
            assert exc.field in fields, exc.field
            assert exc.message
        else:
            accepted.append(spec)
            assert parse_spec(kind, spec.to_dict()) == spec  # what is accepted round-trips

    check()
    assert accepted  # the strategy reaches valid specs, not only refusals


# --- hostile input: huge numbers, non-finite floats, deep or long containers, unstorable text -------

def _deep_list(levels: int) -> list[Any]:
    value: list[Any] = []
    for _ in range(levels):  # built iteratively: hypothesis would take ages to generate this
        value = [value]
    return value


DEEP = _deep_list(100_000)


class Deep:
    """Stands for DEEP in explicit examples: hypothesis pretty-prints example arguments recursively."""

    def __repr__(self) -> str:
        return "<list nested 100000 deep>"


def _unwrap(value: Any) -> Any:
    if isinstance(value, Deep):
        return DEEP
    if isinstance(value, list) and value and isinstance(value[0], Deep):
        return [DEEP]
    return value
HUGE_INTS = st.builds(lambda digits, sign, tail: sign * (10 ** (digits - 1) + tail),
                      st.integers(min_value=400, max_value=5000), st.sampled_from([1, -1]), st.integers(0, 9))
DIGIT_STRINGS = st.builds(lambda digits, sign: sign + "9" * digits, st.integers(min_value=400, max_value=5000),
                          st.sampled_from(["", "-", "+"]))
NON_FINITE = st.sampled_from([math.inf, -math.inf, math.nan, float("1e400"), 1e308, -1e308, 2.0**63])
NON_FINITE_TEXT = st.sampled_from(["inf", "-inf", "nan", "NaN", "Infinity", "1e400", "-1e400", "1, 2, inf",
                                   "1; nan", "4 1e400"])
UNSTORABLE_TEXT = st.text(alphabet=st.characters(categories=["Cs", "Cc", "Nd", "Ll", "Zs"]), max_size=12)
LONG_TEXT = st.builds(lambda n, c: c * n, st.integers(min_value=201, max_value=5000), st.sampled_from("x1,é🧪\x00"))
LONG_LISTS = st.builds(lambda n, v: [v] * n, st.integers(min_value=65, max_value=100_000), st.sampled_from([1, "1"]))
HOSTILE_SCALARS = st.one_of(HUGE_INTS, DIGIT_STRINGS, NON_FINITE, NON_FINITE_TEXT, UNSTORABLE_TEXT, LONG_TEXT)
HOSTILE = st.one_of(HOSTILE_SCALARS, st.lists(st.one_of(HOSTILE_SCALARS, st.integers(1, 12)), max_size=4),
                    LONG_LISTS)


def _assert_clean_refusal(exc: SpecError, known: set[str]) -> None:
    """Names a known field, says something, is short and can be printed, stored and sent as UTF-8."""
    assert exc.field in known, exc.field
    assert exc.message
    assert len(str(exc)) <= 400, str(exc)[:500]
    str(exc).encode("utf-8")


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_hostile_values_are_accepted_or_refused_naming_the_field(kind: str) -> None:
    cls = KINDS[kind].spec_class
    base = cls().to_dict()
    fields = list(cls.params())

    @settings(max_examples=FUZZ_EXAMPLES, derandomize=True, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(st.sampled_from(fields), HOSTILE)
    @example(fields[0], Deep())
    @example(fields[-1], Deep())
    @example(fields[0], [Deep()])
    def check(name: str, value: Any) -> None:
        value = _unwrap(value)
        try:
            spec = parse_spec(kind, {**base, name: value})
        except SpecError as exc:
            _assert_clean_refusal(exc, set(fields))
        else:
            assert parse_spec(kind, json.loads(spec.to_json())) == spec  # accepted values round-trip
            spec.to_json().encode("utf-8")

    check()


def test_hostile_depth_study_text_and_lists() -> None:
    @settings(max_examples=FUZZ_EXAMPLES, derandomize=True, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(st.one_of(HOSTILE, st.lists(st.sampled_from(["1", "2", "inf", "nan", "1e400", "9" * 5000, "12", "-1",
                                                        "2.0", "1e1"]), max_size=6).map(", ".join)))
    @example("1, 2, inf")
    @example(Deep())
    def check(value: Any) -> None:
        value = _unwrap(value)
        try:
            spec = parse_spec("hypernet", {"study_depths": value})
        except SpecError as exc:
            _assert_clean_refusal(exc, {"study_depths"})
        else:
            assert isinstance(spec, HypernetSpec)
            assert all(1 <= d <= 12 for d in spec.study_depths) and len(spec.study_depths) <= 8

    check()


JSON_LITERALS = st.one_of(
    DIGIT_STRINGS, st.sampled_from(["1e400", "-1e400", "NaN", "Infinity", "-Infinity", "1e-400", "[1, 2, 1e400]"]),
    UNSTORABLE_TEXT.map(json.dumps),  # lone surrogates arrive as \ud800 escapes, control characters as \u0000
    st.integers(min_value=65, max_value=100_000).map(lambda n: "[" * n + "]" * n),
    st.integers(min_value=1, max_value=64).map(lambda n: "[" * n + "1" + "]" * n),
)


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_hostile_json_text_is_accepted_or_refused_naming_a_field(kind: str) -> None:
    """The JSON layer shared by the API (Spec.from_json) and the CLI: huge literals, 1e400, NaN, deep nesting."""
    cls = KINDS[kind].spec_class
    fields = list(cls.params())

    @settings(max_examples=FUZZ_EXAMPLES, derandomize=True, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(st.sampled_from(fields), JSON_LITERALS)
    def check(name: str, literal: str) -> None:
        text = '{"' + name + '": ' + literal + "}"
        try:
            spec = cls.from_json(text)
        except SpecError as exc:
            _assert_clean_refusal(exc, {*fields, "spec"})
        else:
            assert cls.from_json(spec.to_json()) == spec

    check()


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_hostile_spec_file_bytes_are_refused_naming_the_option_or_a_field(kind: str) -> None:
    """The CLI's spec reader on arbitrary bytes (non-UTF-8, BOMs, truncated sequences) and hostile JSON."""
    from qmlapp.cli import CliError, parse_spec_bytes

    fields = set(KINDS[kind].spec_class.params())
    spec_files = st.one_of(
        st.binary(max_size=40),
        st.builds(lambda lit, junk, at: (lit.encode("utf-8", "surrogatepass") + junk)[:at] + junk,
                  JSON_LITERALS.map(lambda lit: '{"seed": ' + lit + "}"), st.binary(min_size=1, max_size=4),
                  st.integers(0, 60)),
    )

    @settings(max_examples=FUZZ_EXAMPLES, derandomize=True, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(spec_files)
    @example(b'{"e\xff": 1}')
    @example(b"\xef\xbb\xbf{}")
    @example(b'{"seed": "\xed\xa0\x80"}')  # a surrogate encoded as UTF-8 bytes is not UTF-8
    def check(raw: bytes) -> None:
        try:
            data = parse_spec_bytes(raw, "spec.json")
            spec = parse_spec(kind, data)
        except CliError as exc:
            assert str(exc).startswith("--spec: "), str(exc)
            str(exc).encode("utf-8")
        except SpecError as exc:
            _assert_clean_refusal(exc, {*fields, "--spec", "spec"})
        else:
            assert parse_spec(kind, spec.to_dict()) == spec

    check()
    with pytest.raises(CliError, match=r"^--spec: the file is not valid UTF-8 \(byte 0xff at offset 3\)$"):
        parse_spec_bytes(b'{"e\xff": 1}', "spec.json")
