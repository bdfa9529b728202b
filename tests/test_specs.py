"""Spec validation through the registry: defaults, JSON round trip, golden file, one SpecError per bad field."""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from qmlapp.kinds.hypernet.spec import HypernetSpec
from qmlapp.kinds.qnn.spec import HERBST_BUDGETS, MAX_QUBITS, NOISE_EXACT_MAX_QUBITS, QnnSpec
from qmlapp.registry import KINDS, get_kind, parse_spec
from qmlapp.specs import SpecError

GOLDEN = Path(__file__).parent / "golden"


def parse_qnn(data: Mapping[str, Any]) -> QnnSpec:
    """``parse_spec("qnn", data)`` narrowed to the concrete class (the registry returns a ``Spec``)."""
    spec = parse_spec("qnn", data)
    assert isinstance(spec, QnnSpec)
    return spec


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_every_kind_has_a_golden_spec(kind: str) -> None:
    """The golden file pins the public field names and defaults: changing them breaks stored runs."""
    cls = get_kind(kind).spec_class
    path = GOLDEN / f"{kind}_spec_v{cls.schema_version}.json"
    assert path.exists(), f"add {path.name} (the kind's default spec) under tests/golden/"
    golden = json.loads(path.read_text())
    assert cls().to_dict() == golden
    assert list(cls().to_dict()) == list(golden)  # field order is part of the form layout
    assert parse_spec(kind, golden) == cls()


def test_defaults_fill_omitted_fields() -> None:
    spec = parse_spec("qnn", {"dataset": "banknote", "epochs": 2})
    assert isinstance(spec, QnnSpec)
    assert spec == QnnSpec(dataset="banknote", epochs=2)
    assert (spec.n_qubits, spec.depth, spec.optimizer, spec.learning_rate) == (4, 2, "adam", 0.05)
    assert parse_spec("qnn", {}) == QnnSpec()
    # Tags are accepted when they match.
    assert parse_qnn({"kind": "qnn", "schema_version": 1, "dataset": "banknote"}).dataset == "banknote"


def test_v1_golden_spec_loads_as_the_v2_default() -> None:
    """Stored v1 specs load unchanged: the fields added in v2 take defaults that reproduce v1
    (tests/test_qnn_train.py checks that the runs are identical too)."""
    v1 = json.loads((GOLDEN / "qnn_spec_v1.json").read_text())
    assert v1["schema_version"] == 1
    spec = parse_spec("qnn", v1)
    assert spec == QnnSpec() and spec.schema_version == QnnSpec.schema_version == 2
    upgraded = spec.to_dict()
    assert upgraded["schema_version"] == 2
    assert all(upgraded[k] == v for k, v in v1.items() if k != "schema_version")
    added = [k for k in upgraded if k not in v1]
    assert added == ["input_activation", "feature_map_entanglement", "entangler", "reduced_rotations", "init_mode",
                     "loss_log_base", "loss_reduction", "budget_preset", "noise_1q", "noise_2q",
                     "amplitude_damping", "readout_error"]
    assert not spec.is_noisy and spec.iterations_budget is None
    # A non-default v1 spec keeps its values too.
    old = {"kind": "qnn", "schema_version": 1, "dataset": "wine", "n_qubits": 3, "optimizer": "spsa", "epochs": 7}
    assert parse_spec("qnn", old) == QnnSpec(dataset="wine", n_qubits=3, optimizer="spsa", epochs=7)


@pytest.mark.parametrize("preset", ["herbst_intended", "herbst_as_run"])
@pytest.mark.parametrize("noisy", [False, True])
def test_budget_presets_give_the_table(preset: str, noisy: bool) -> None:
    table = {("herbst_intended", False): (500, 300, 150), ("herbst_as_run", False): (500, 150, 300),
             ("herbst_intended", True): (250, 125, 75), ("herbst_as_run", True): (250, 75, 125)}
    noise: dict[str, Any] = {"noise_2q": 0.01} if noisy else {}
    budgets = tuple(QnnSpec(optimizer=opt, budget_preset=preset, epochs=3, **noise).iterations_budget
                    for opt in ("cobyla", "spsa", "nelder_mead"))
    assert budgets == table[(preset, noisy)]
    assert budgets == tuple(HERBST_BUDGETS[(preset, noisy)][o] for o in ("cobyla", "spsa", "nelder_mead"))
    # Readout error alone is noise too; without a preset the budget is the epochs.
    assert QnnSpec(optimizer="spsa", budget_preset=preset, readout_error=0.02).iterations_budget == table[
        (preset, True)][1]
    assert QnnSpec(optimizer="cobyla", epochs=3, **noise).iterations_budget == 3


def test_v2_fields_round_trip_and_new_boundaries() -> None:
    data = {"dataset": "banknote", "ansatz": "pauli_two_design", "entangler": "sqrt_iswap", "readout": "parity",
            "input_activation": "tanh", "encoding": "zz_feature_map", "feature_map_entanglement": "sca",
            "init": "normal_beta", "init_mode": "authors", "loss_log_base": "2", "loss_reduction": "sum",
            "optimizer": "nelder_mead", "budget_preset": "herbst_as_run", "noise_1q": 0.2, "noise_2q": 0.0,
            "amplitude_damping": 0.2, "readout_error": 0.5, "shots": 10}
    spec = parse_spec("qnn", data)
    assert QnnSpec.from_json(spec.to_json()) == spec
    assert parse_qnn({"reduced_rotations": True}).reduced_rotations is True
    assert parse_qnn({"dataset": "banknote", "n_qubits": 1, "readout": "all_z"}).readout == "all_z"
    # Gate noise beyond the exact-simulation limit is allowed with shots (trajectories).
    assert parse_qnn({"dataset": "digits", "n_qubits": 10, "noise_1q": 0.01, "shots": 100}).shots == 100
    assert parse_qnn({"dataset": "digits", "n_qubits": 10, "readout_error": 0.01}).readout_error == 0.01


def test_non_default_spec_round_trips() -> None:
    spec = parse_spec("qnn", {"dataset": "wine", "n_qubits": 3, "encoding": "zz_feature_map",
                              "ansatz": "efficient_su2", "entanglement": "circular", "readout": "mod_k",
                              "optimizer": "spsa", "learning_rate": 0.2, "epochs": 7, "shots": 100,
                              "seed": 42, "validation_fraction": 0.1, "test_fraction": 0.3})
    again = QnnSpec.from_json(spec.to_json(indent=None))
    assert again == spec and again.to_dict() == spec.to_dict()
    assert spec.replace(epochs=8).epochs == 8 and spec.epochs == 7


def test_specs_are_frozen_and_coerced() -> None:
    spec = parse_qnn({"epochs": 3.0, "learning_rate": 1})
    assert spec.epochs == 3 and type(spec.epochs) is int
    assert spec.learning_rate == 1.0 and type(spec.learning_rate) is float
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.epochs = 4  # type: ignore[misc]
    with pytest.raises(SpecError) as err:
        spec.replace(n_qubits=0)  # replace re-validates
    assert err.value.field == "n_qubits"


def test_boundaries_are_accepted() -> None:
    assert parse_qnn({"dataset": "digits", "n_qubits": MAX_QUBITS}).n_qubits == MAX_QUBITS
    assert parse_qnn({"dataset": "banknote", "n_qubits": 1, "readout": "mod_k"}).n_qubits == 1
    lda = parse_qnn({"dataset": "iris", "reduction": "lda", "n_qubits": 2, "readout": "mod_k"})
    assert lda.reduction == "lda"
    assert parse_qnn({"dataset": "banknote", "reduction": "none", "n_qubits": 4}).n_qubits == 4
    assert parse_qnn({"validation_fraction": 0.39, "test_fraction": 0.4}).test_fraction == 0.4


BAD: list[tuple[str, dict[str, Any], str]] = [
    ("zero qubits", {"n_qubits": 0}, "n_qubits"),
    ("17 qubits", {"dataset": "digits", "n_qubits": MAX_QUBITS + 1}, "n_qubits"),
    ("negative learning rate", {"learning_rate": -0.1}, "learning_rate"),
    ("zero learning rate", {"learning_rate": 0.0}, "learning_rate"),
    ("unknown dataset", {"dataset": "mnist"}, "dataset"),
    ("unknown optimizer", {"optimizer": "rmsprop"}, "optimizer"),
    ("unknown field", {"n_qubit": 3}, "n_qubit"),
    ("string for int", {"n_qubits": "4"}, "n_qubits"),
    ("bool for int", {"n_qubits": True}, "n_qubits"),
    ("fractional epochs", {"epochs": 2.5}, "epochs"),
    ("zero epochs", {"epochs": 0}, "epochs"),
    ("NaN learning rate", {"learning_rate": math.nan}, "learning_rate"),
    ("infinite init constant", {"init_constant": math.inf}, "init_constant"),
    ("bool for float", {"learning_rate": True}, "learning_rate"),
    ("number for string", {"dataset": 3}, "dataset"),
    ("null for int", {"depth": None}, "depth"),
    ("negative seed", {"seed": -1}, "seed"),
    ("lda with too many qubits", {"dataset": "iris", "reduction": "lda", "n_qubits": 3}, "n_qubits"),
    ("none with wrong qubits", {"dataset": "banknote", "reduction": "none", "n_qubits": 3}, "n_qubits"),
    ("pca with more qubits than features", {"dataset": "banknote", "n_qubits": 5}, "n_qubits"),
    ("z_per_class with too few qubits", {"dataset": "glass", "n_qubits": 4}, "readout"),
    ("mod_k too large for 3 classes", {"dataset": "wine", "n_qubits": 9, "readout": "mod_k"}, "readout"),
    ("zz map on one qubit", {"dataset": "banknote", "n_qubits": 1, "readout": "mod_k",
                             "encoding": "zz_feature_map"}, "encoding"),
    ("validation fraction 0.5", {"validation_fraction": 0.5}, "validation_fraction"),
    ("validation fraction 0", {"validation_fraction": 0.0}, "validation_fraction"),
    ("test fraction negative", {"test_fraction": -0.1}, "test_fraction"),
    ("fractions leave too little training", {"validation_fraction": 0.4, "test_fraction": 0.45}, "test_fraction"),
    ("wrong kind", {"kind": "hypernet"}, "kind"),
    ("wrong schema version", {"schema_version": 99}, "schema_version"),
    ("schema version 0", {"schema_version": 0}, "schema_version"),
    ("string schema version", {"schema_version": "2"}, "schema_version"),
    # schema v2 fields
    ("unknown ansatz", {"ansatz": "two_local"}, "ansatz"),
    ("unknown entangler", {"entangler": "iswap"}, "entangler"),
    ("string for bool", {"reduced_rotations": "yes"}, "reduced_rotations"),
    ("int for bool", {"reduced_rotations": 1}, "reduced_rotations"),
    ("reduced rotations on real_amplitudes", {"ansatz": "real_amplitudes", "reduced_rotations": True},
     "reduced_rotations"),
    ("unknown feature map pattern", {"feature_map_entanglement": "ring"}, "feature_map_entanglement"),
    ("unknown activation", {"input_activation": "relu"}, "input_activation"),
    ("parity with 3 classes", {"dataset": "iris", "readout": "parity"}, "readout"),
    ("all_z with 6 classes", {"dataset": "glass", "n_qubits": 6, "readout": "all_z"}, "readout"),
    ("parity on one qubit", {"dataset": "banknote", "n_qubits": 1, "readout": "parity"}, "readout"),
    ("unknown init", {"init": "beta_mean"}, "init"),
    ("unknown init mode", {"init_mode": "qiskit"}, "init_mode"),
    ("log base 10", {"loss_log_base": "10"}, "loss_log_base"),
    ("number for log base", {"loss_log_base": 2}, "loss_log_base"),
    ("unknown reduction", {"loss_reduction": "median"}, "loss_reduction"),
    ("unknown budget preset", {"budget_preset": "herbst"}, "budget_preset"),
    ("budget preset with adam", {"budget_preset": "herbst_intended"}, "budget_preset"),
    ("budget preset with sgd", {"optimizer": "sgd", "budget_preset": "herbst_as_run"}, "budget_preset"),
    ("negative 1q noise", {"noise_1q": -0.01}, "noise_1q"),
    ("1q noise above 0.2", {"noise_1q": 0.25}, "noise_1q"),
    ("2q noise above 0.2", {"noise_2q": 0.3}, "noise_2q"),
    ("damping above 0.2", {"amplitude_damping": 0.21}, "amplitude_damping"),
    ("readout error above 0.5", {"readout_error": 0.6}, "readout_error"),
    ("NaN noise", {"noise_2q": math.nan}, "noise_2q"),
    ("exact gate noise on 9 qubits", {"dataset": "breast_cancer", "n_qubits": NOISE_EXACT_MAX_QUBITS + 1,
                                      "noise_2q": 0.01}, "n_qubits"),
]


@pytest.mark.parametrize(("data", "field"), [pytest.param(d, f, id=name) for name, d, f in BAD])
def test_bad_field_raises_spec_error_naming_it(data: dict[str, Any], field: str) -> None:
    with pytest.raises(SpecError) as err:
        parse_spec("qnn", data)
    assert err.value.field == field
    assert str(err.value).startswith(f"{field}: ")
    assert err.value.message  # says what is allowed / what went wrong
    assert isinstance(err.value, ValueError)


def test_error_messages_say_what_is_allowed() -> None:
    with pytest.raises(SpecError, match=r"in \[1, 16\].*got 0"):
        parse_spec("qnn", {"n_qubits": 0})
    with pytest.raises(SpecError, match="entangler: must be one of 'auto', 'cx', 'cz', 'sqrt_iswap', got 'iswap'"):
        parse_spec("qnn", {"entangler": "iswap"})
    with pytest.raises(SpecError, match=r"noise_1q: must be in \[0, 0.2\], got 0.25"):
        parse_spec("qnn", {"noise_1q": 0.25})
    with pytest.raises(SpecError, match=r"readout_error: must be in \[0, 0.5\]"):
        parse_spec("qnn", {"readout_error": 0.6})
    with pytest.raises(SpecError, match=r"binary tasks.*3 classes.*'z_per_class', 'mod_k'"):
        parse_spec("qnn", {"readout": "all_z"})
    with pytest.raises(SpecError, match=r"cobyla, nelder_mead, spsa only; use 'none' with optimizer 'adam'"):
        parse_spec("qnn", {"budget_preset": "herbst_as_run"})
    with pytest.raises(SpecError, match=r"n_qubits ≤ 8.*use shots > 0"):
        parse_spec("qnn", {"dataset": "breast_cancer", "n_qubits": 9, "amplitude_damping": 0.01})
    with pytest.raises(SpecError, match=r"schema_version: must be an integer in \[1, 2\] for 'qnn', got 99"):
        parse_spec("qnn", {"schema_version": 99})
    with pytest.raises(SpecError, match="'banknote'"):
        parse_spec("qnn", {"dataset": "mnist"})
    with pytest.raises(SpecError, match="known fields: dataset, n_qubits"):
        parse_spec("qnn", {"colour": "red"})


@pytest.mark.parametrize("text", ["{", '{"dataset": "iris",}', "", "[1, 2"])
def test_malformed_json_names_the_spec(text: str) -> None:
    with pytest.raises(SpecError) as err:
        QnnSpec.from_json(text)
    assert err.value.field == "spec" and "malformed JSON" in str(err.value)


@pytest.mark.parametrize("data", [[1, 2], "iris", 3, None])
def test_non_object_json_names_the_spec(data: Any) -> None:
    with pytest.raises(SpecError) as err:
        parse_spec("qnn", data)
    assert err.value.field == "spec"


def test_unknown_kind_names_the_kind() -> None:
    with pytest.raises(SpecError) as err:
        parse_spec("nope", {})
    assert err.value.field == "kind" and "qnn" in str(err.value)


def _deep_list(levels: int) -> list[Any]:
    """A list nested ``levels`` deep, built without recursion."""
    value: list[Any] = []
    for _ in range(levels):
        value = [value]
    return value


DEEP = _deep_list(100_000)

HOSTILE: list[tuple[str, str, Any, str, str]] = [
    # (id, kind, value of the field, field, text the message must contain)
    ("inf in depth text", "hypernet", {"study_depths": "1, 2, inf"}, "study_depths", "got 'inf'"),
    ("inf in depth list", "hypernet", {"study_depths": [1, 2, math.inf]}, "study_depths", "got inf"),
    ("1e400 depth text", "hypernet", {"study_depths": "4, 1e400"}, "study_depths", "in [1, 12]"),
    ("400-digit depth text", "hypernet", {"study_depths": "9" * 400}, "study_depths", "in [1, 12]"),
    ("5000-character depth text", "hypernet", {"study_depths": "1," * 2500}, "study_depths", "5000 characters"),
    ("5000-digit depth string", "hypernet", {"study_depths": ["9" * 5000]}, "study_depths", "in [1, 12]"),
    ("400-digit depth int", "hypernet", {"study_depths": [10**399]}, "study_depths", "about 400 digits"),
    ("100k depths", "hypernet", {"study_depths": [1] * 100_000}, "study_depths", "at most 64 items"),
    ("deep depth list", "hypernet", {"study_depths": DEEP}, "study_depths", "nested deeper than 64"),
    ("400-digit int field", "qnn", {"epochs": 10**399}, "epochs", "got an integer of about 400 digits"),
    ("5000-digit int field", "qnn", {"epochs": 10**4999}, "epochs", "in [1, 5000]"),
    ("400-digit float field", "qnn", {"learning_rate": 10**399}, "learning_rate", "a number in (0, 10]"),
    ("-5000-digit float field", "qnn", {"noise_1q": -(10**4999)}, "noise_1q", "a negative integer"),
    ("huge float into int field", "qnetwork", {"n_features": 1e300}, "n_features", "got 1e+300"),
    ("huge int in float field", "qnewton", {"gates_per_query": 2**64}, "gates_per_query", "a number in [0, 1e+12]"),
    ("deep list for a string", "qnn", {"dataset": DEEP}, "dataset", "nested deeper than 64"),
    ("deep list for an int", "sparse_qgd", {"seed": DEEP}, "seed", "nested deeper than 64"),
    ("long surrogate string", "qnn", {"dataset": "\ud800\x00" * 5000}, "dataset", "one of 'iris'"),
    ("non-string field name", "qnn", {1: 2}, "spec", "field names must be strings"),
    ("deep kind tag", "qnn", {"kind": DEEP}, "kind", "must be 'qnn'"),
    ("huge schema version", "qnn", {"schema_version": 10**5000}, "schema_version", "about 5001 digits"),
]


@pytest.mark.parametrize(("kind", "data", "field", "text"),
                         [pytest.param(k, d, f, t, id=i) for i, k, d, f, t in HOSTILE])
def test_hostile_values_are_refused_naming_the_field(kind: str, data: dict[Any, Any], field: str,
                                                     text: str) -> None:
    """Huge integers, non-finite numbers, deep or long containers: a short SpecError naming the field,
    never OverflowError, ValueError (int-to-str limit) or RecursionError."""
    with pytest.raises(SpecError) as err:
        parse_spec(kind, data)
    assert err.value.field == field, str(err.value)
    assert text in err.value.message
    message = str(err.value)
    assert len(message) <= 300, message[:400]  # quoted input is abbreviated
    message.encode("utf-8")  # printable and storable: a lone surrogate is shown escaped


def test_unhashable_or_deep_kind_names_the_kind() -> None:
    for kind in ([1], DEEP, {"a": 1}):
        with pytest.raises(SpecError) as err:
            parse_spec(kind, {})  # type: ignore[arg-type]
        assert err.value.field == "kind" and "known kinds" in err.value.message


def test_integers_up_to_64_bits_reach_the_range_check() -> None:
    with pytest.raises(SpecError, match=r"seed: must be in \[0, 2.14748e\+09\], got 9223372036854775807"):
        parse_spec("qnn", {"seed": 2**63 - 1})
    with pytest.raises(SpecError, match=r"seed: must be an integer .*, got 9223372036854775808"):
        parse_spec("qnn", {"seed": 2**63})
    hypernet = parse_spec("hypernet", {"study_depths": "1, 2.0, 4e0 ; 6"})
    assert isinstance(hypernet, HypernetSpec) and hypernet.study_depths == (1, 2, 4, 6)


@pytest.mark.parametrize(("text", "message"), [
    pytest.param('{"epochs": ' + "9" * 5000 + "}", "number literal 999999999999... has 5000 characters; at most 40",
                 id="5000-digit literal"),
    pytest.param('{"epochs": -' + "1" * 400 + "}", "401 characters", id="400-digit negative literal"),
    pytest.param('{"learning_rate": 0.' + "1" * 400 + "}", "402 characters", id="400-digit float literal"),
    pytest.param("[" * 100_000 + "]" * 100_000, "JSON nested deeper than 64 levels", id="100k-deep list"),
    pytest.param('{"dataset": ' + "[" * 65 + "]" * 65 + "}", "JSON nested deeper than 64 levels", id="66 levels"),
])
def test_hostile_json_text_names_the_spec(text: str, message: str) -> None:
    for kind in KINDS.values():
        with pytest.raises(SpecError) as err:
            kind.spec_class.from_json(text)
        assert err.value.field == "spec" and message in err.value.message


def test_json_depth_limit_is_64_and_ignores_brackets_in_strings() -> None:
    from qmlapp.specs import MAX_JSON_DEPTH, json_depth, load_json

    assert MAX_JSON_DEPTH == 64
    assert load_json("[" * 64 + "]" * 64) == _deep_list(63)
    assert json_depth('{"a": "[[[[{{{{\\"[[", "b": [1, {"c": "]]]"}]}') == 3
    assert load_json('{"a": "' + "[" * 1000 + '"}') == {"a": "[" * 1000}
    with pytest.raises(SpecError, match="nested deeper than 64"):
        load_json("[" * 65 + "]" * 65)


@pytest.mark.parametrize(("value", "message"), [
    pytest.param("x" * 201, "name: must be at most 200 characters, got 201", id="201 characters"),
    ("run\x00one", "name: must not contain control characters (NUL, tab, newline, ...), got U+0000 at position 3"),
    ("a\nb", "U+000A at position 1"),
    ("\x1b[31mred", "U+001B at position 0"),
    ("ok \ud800", "name: must be valid Unicode text, got a lone surrogate U+D800 at position 3"),
    ("\udcff", "U+DCFF"),
    (b"bytes", "name: must be a string of at most 200 characters, got b'bytes'"),
    (None, "got None"),
])
def test_check_name_refuses_what_a_database_cannot_store(value: Any, message: str) -> None:
    from qmlapp.specs import check_name

    with pytest.raises(SpecError) as err:
        check_name("name", value)
    assert err.value.field == "name" and message in str(err.value)


def test_check_name_accepts_200_characters_of_any_script() -> None:
    from qmlapp.specs import check_name

    for name in ("", "x" * 200, "🧪" * 200, "Qubits · ε-optimal — Zürich/東京 ✓"):
        assert check_name("name", name) == name
