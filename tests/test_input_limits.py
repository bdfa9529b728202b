"""Names and free text that a database cannot store, through the API (services, sweeps) and the pages.

Every test here uses the ``storage``/``app`` fixtures, so ``scripts/with-postgres.sh`` runs them on
PostgreSQL too, where a 201-character name, a NUL or a lone surrogate fail the write itself.
"""

from __future__ import annotations

from typing import Any

import pytest
from helpers import TINY_QNN, goto
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from streamlit.testing.v1 import AppTest

from db import Storage
from qmlapp import services, sweeps
from qmlapp.specs import SpecError

SWEEP = {"kind": "qnn", "base": TINY_QNN, "space": {"epochs": [1, 2]}, "sampler": "grid"}

BAD_NAMES = [
    pytest.param("x" * 201, "name: must be at most 200 characters, got 201", id="201 characters"),
    pytest.param("🧪" * 201, "got 201", id="201 emoji"),
    pytest.param("run\x00one", "name: must not contain control characters (NUL, tab, newline, ...), got U+0000 at "
                               "position 3", id="NUL"),
    pytest.param("a\u0085b", "U+0085", id="C1 control"),
    pytest.param("ok \ud800", "name: must be valid Unicode text, got a lone surrogate U+D800 at position 3",
                 id="lone surrogate"),
    pytest.param("\udfff" * 300, "at most 200 characters", id="long surrogates"),
]


def _total(storage: Storage) -> int:
    return sum(storage.count_runs().values())


@pytest.mark.parametrize(("name", "message"), BAD_NAMES)
def test_bad_run_name_is_refused_before_storage(storage: Storage, name: str, message: str) -> None:
    with pytest.raises(SpecError) as err:
        services.submit_run(storage, "qnn", TINY_QNN, name=name)
    assert err.value.field == "name" and message in str(err.value)
    assert _total(storage) == 0


def test_names_up_to_200_characters_of_any_script_are_stored_as_given(storage: Storage) -> None:
    for name in ("x" * 200, "🧪" * 200, "Qubits · ε-optimal — Zürich/東京 ✓"):
        run = services.submit_run(storage, "qnn", TINY_QNN, name=name)
        assert storage.get_run(run.id).name == name
    with pytest.raises(SpecError, match="got 201"):
        services.submit_run(storage, "qnn", TINY_QNN, name="x" * 201)
    assert _total(storage) == 3


@pytest.mark.parametrize(("name", "message"), BAD_NAMES)
def test_bad_sweep_name_is_refused_before_storage(storage: Storage, name: str, message: str) -> None:
    with pytest.raises(SpecError) as err:
        sweeps.create_sweep(storage, {**SWEEP, "name": name})
    assert err.value.field == "name" and message in str(err.value)
    assert storage.list_sweeps() == [] and _total(storage) == 0


NAMES = st.one_of(
    st.text(alphabet=st.characters(categories=["Cs", "Cc", "L", "N", "Zs", "So", "Cf"]), max_size=30),
    st.builds(lambda n, c: c * n, st.integers(min_value=195, max_value=400), st.sampled_from("x🧪\x00é")),
)


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(name=NAMES)
@example(name="n" * 201)
@example(name="\x00")
@example(name="\ud800")
def test_fuzzed_names_are_stored_exactly_or_refused_naming_the_field(storage: Storage, name: str) -> None:
    """On both databases: what is accepted reads back equal; what is refused raises a SpecError for "name"
    and stores nothing (never a database error from the write)."""
    before = _total(storage)
    try:
        run = services.submit_run(storage, "qnn", TINY_QNN, name=name)
    except SpecError as exc:
        assert exc.field == "name" and exc.message
        str(exc).encode("utf-8")
        assert _total(storage) == before
    else:
        assert len(name) <= 200
        assert storage.get_run(run.id).name == (name or services.default_run_name(
            services.validate_spec("qnn", TINY_QNN)))


# --- pages --------------------------------------------------------------------------------------


def _no_exceptions(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]


def _button(at: AppTest, text: str) -> Any:
    return next(b for b in at.button if b.label.startswith(text))


@pytest.mark.parametrize("button", ["Run", "Run depth study"])
def test_infinite_depth_in_the_depth_study_field_names_the_field(app: AppTest, storage: Storage,
                                                                 button: str) -> None:
    goto(app, "hypernet").run()
    app.text_input(key="hn_study_depths").set_value("1, 2, inf")
    _button(app, button).click().run()
    _no_exceptions(app)
    errors = [e.value for e in app.error]
    assert any("study_depths" in e and "depth study" in e and "'inf'" in e and "in [1, 12]" in e
               and "Nothing was queued" in e for e in errors), errors
    assert storage.list_runs() == []


@pytest.mark.parametrize(("text", "shown"), [
    pytest.param("9" * 5000, "5000 characters", id="5000 digits"),
    pytest.param("4, 1e400", "'1e400'", id="1e400"),
    pytest.param("1; -inf", "'-inf'", id="-inf"),
    pytest.param("2, " + "9" * 400, "in [1, 12]", id="400 digits"),
])
def test_hostile_depth_study_text_names_the_field(app: AppTest, storage: Storage, text: str, shown: str) -> None:
    goto(app, "hypernet").run()
    app.text_input(key="hn_study_depths").set_value(text)
    _button(app, "Run").click().run()
    _no_exceptions(app)
    assert any("study_depths" in e.value and shown in e.value for e in app.error), [e.value for e in app.error]
    assert storage.list_runs() == []


@pytest.mark.parametrize(("name", "shown"), [
    pytest.param("x" * 201, "at most 200 characters, got 201", id="201 characters"),
    pytest.param("a\x00b", "U+0000", id="NUL"),
    pytest.param("\x1b[31mred", "U+001B", id="escape"),
])
def test_bad_run_name_in_a_form_names_the_field(app: AppTest, storage: Storage, name: str, shown: str) -> None:
    # (A lone surrogate cannot arrive from a page: widget values travel as protobuf UTF-8.)
    goto(app, "qnn").run()
    app.text_input(key="qnn_name").set_value(name)
    app.button[0].click().run()
    _no_exceptions(app)
    errors = [e.value for e in app.error]
    assert any("**name**" in e and "run name" in e and shown in e and "Nothing was queued" in e for e in errors), errors
    assert storage.list_runs() == []
