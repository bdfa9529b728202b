"""Registry of experiment kinds: one :class:`~qmlapp.kinds.base.ExperimentKind` per family.

Each kind package declares its record as ``KIND``; this module lists the packages. Menus, the home page,
forms, the run view, sweeps, Compare, the CLI, the soak script and the generic tests all read
:data:`KINDS`. Importing it is cheap: specs only (runners and views are loaded lazily by import path).
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any

from qmlapp.kinds.base import Direction, ExperimentKind, Objective
from qmlapp.specs import Spec, SpecError, show_value

# The kind packages, in menu order. A new kind is one more entry here (see README, "Adding a kind").
KIND_PACKAGES = (
    "qmlapp.kinds.qnn",
    "qmlapp.kinds.hypernet",
    "qmlapp.kinds.qnetwork",
    "qmlapp.kinds.qnewton",
    "qmlapp.kinds.sparse_qgd",
)

KINDS: dict[str, ExperimentKind] = {}


def register(kind: ExperimentKind) -> ExperimentKind:
    """Add a kind (the packages above at import; tests and plug-ins call it for their own)."""
    if kind.name in KINDS and KINDS[kind.name] is not kind:
        raise ValueError(f"experiment kind {kind.name!r} is already registered")
    KINDS[kind.name] = kind
    return kind


def unregister(name: str) -> None:
    KINDS.pop(name, None)


for _package in KIND_PACKAGES:
    register(importlib.import_module(_package).KIND)


def get_kind(name: str) -> ExperimentKind:
    if not isinstance(name, str) or name not in KINDS:  # an unhashable kind would raise TypeError
        raise SpecError("kind", f"unknown experiment kind {show_value(name)}; known kinds: {', '.join(KINDS)}")
    return KINDS[name]


def parse_spec(kind: str, data: Mapping[str, Any]) -> Spec:
    """Validate a plain mapping into the kind's frozen spec (raises :class:`SpecError`)."""
    return get_kind(kind).spec_class.from_dict(data)


def objective_info(name: str, kind: str | None = None) -> Objective:
    """Labels of an objective: the kind's own when given, else the first kind that declares ``name``;
    other metric names get a neutral label and no provenance claim."""
    kinds = [KINDS[kind]] if kind in KINDS else list(KINDS.values())
    for k in kinds:
        for o in k.objectives:
            if o.name == name:
                return o
    direction: Direction = "minimize" if name.endswith(("loss", "error", "time_s")) else "maximize"
    return Objective(name, name.replace("_", " "), "", direction, "")


__all__ = ["KINDS", "ExperimentKind", "Objective", "get_kind", "objective_info", "parse_spec", "register",
           "unregister"]
