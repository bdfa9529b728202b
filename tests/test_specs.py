"""Spec validation through the registry: defaults, JSON round trip, golden file, one SpecError per bad field."""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path
from typing import Any

import pytest

from qmlapp.experiments.qnn import MAX_QUBITS, QnnSpec
from qmlapp.registry import KINDS, get_kind, parse_spec
from qmlapp.specs import Spec, SpecError

GOLDEN = Path(__file__).parent / "golden"


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_every_kind_round_trips_through_json(kind: str) -> None:
    cls = get_kind(kind).spec_class
    spec = cls()
    assert cls.from_json(spec.to_json()) == spec
    assert parse_spec(kind, json.loads(spec.to_json())) == spec
    tagged = spec.to_dict()
    assert (tagged["kind"], tagged["schema_version"]) == (kind, cls.schema_version)
    assert set(tagged) == {"kind", "schema_version", *cls.params()}


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
    assert parse_spec("qnn", {"kind": "qnn", "schema_version": 1, "dataset": "banknote"}).dataset == "banknote"


def test_non_default_spec_round_trips() -> None:
    spec = parse_spec("qnn", {"dataset": "wine", "n_qubits": 3, "encoding": "zz_feature_map",
                              "ansatz": "efficient_su2", "entanglement": "circular", "readout": "mod_k",
                              "optimizer": "spsa", "learning_rate": 0.2, "epochs": 7, "shots": 100,
                              "seed": 42, "validation_fraction": 0.1, "test_fraction": 0.3})
    again = QnnSpec.from_json(spec.to_json(indent=None))
    assert again == spec and again.to_dict() == spec.to_dict()
    assert spec.replace(epochs=8).epochs == 8 and spec.epochs == 7


def test_specs_are_frozen_and_coerced() -> None:
    spec = parse_spec("qnn", {"epochs": 3.0, "learning_rate": 1})
    assert spec.epochs == 3 and type(spec.epochs) is int
    assert spec.learning_rate == 1.0 and type(spec.learning_rate) is float
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.epochs = 4  # type: ignore[misc]
    with pytest.raises(SpecError) as err:
        spec.replace(n_qubits=0)  # replace re-validates
    assert err.value.field == "n_qubits"


def test_boundaries_are_accepted() -> None:
    assert parse_spec("qnn", {"dataset": "digits", "n_qubits": MAX_QUBITS}).n_qubits == MAX_QUBITS
    assert parse_spec("qnn", {"dataset": "banknote", "n_qubits": 1, "readout": "mod_k"}).n_qubits == 1
    lda = parse_spec("qnn", {"dataset": "iris", "reduction": "lda", "n_qubits": 2, "readout": "mod_k"})
    assert lda.reduction == "lda"
    assert parse_spec("qnn", {"dataset": "banknote", "reduction": "none", "n_qubits": 4}).n_qubits == 4
    assert parse_spec("qnn", {"validation_fraction": 0.39, "test_fraction": 0.4}).test_fraction == 0.4


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
    ("wrong schema version", {"schema_version": 2}, "schema_version"),
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


def test_registry_entries_are_consistent() -> None:
    for name, kind in KINDS.items():
        assert kind.name == name and kind.spec_class.kind == name
        assert issubclass(kind.spec_class, Spec)
        assert kind.summary_keys and kind.title and kind.description
        module, func = kind.runner.split(":")
        assert module.startswith("qmlapp.experiments.") and func
        for fname, (_, p) in kind.spec_class.params().items():
            assert p.help, f"{name}.{fname} has no help text"
