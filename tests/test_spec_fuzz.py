"""Fuzzed specs for every kind: each is accepted or refused with a SpecError naming a field, never a crash."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from qmlapp.registry import KINDS, parse_spec
from qmlapp.specs import SpecError

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

    @settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(_spec_dicts(kind))
    def check(data: dict[str, Any]) -> None:
        try:
            parse_spec(kind, data)
        except SpecError as exc:
            assert exc.field in known or exc.field == "unknown_field", exc.field
            assert exc.message

    check()


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_defaults_with_fuzzed_fields_are_accepted_or_refused_naming_a_field(kind: str) -> None:
    """Start from the valid default and change one or two fields, so cross-field checks are reached too."""
    cls = KINDS[kind].spec_class
    base = cls().to_dict()
    fields = list(cls.params())
    near = st.one_of(VALUES, st.integers(min_value=-3, max_value=70), st.floats(min_value=-1, max_value=1e5))
    accepted = []

    @settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(st.dictionaries(st.sampled_from(fields), near, min_size=1, max_size=2))
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
