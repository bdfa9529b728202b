"""What an experiment kind is: every fact the app needs about one family, in one frozen record.

Each kind package (``qmlapp/kinds/<kind>/``) declares its :class:`ExperimentKind` as ``KIND`` in its
``__init__``; :mod:`qmlapp.registry` collects them. Menus, forms, the run view, sweeps, the Compare page,
the CLI, the soak script and the generic tests read these records and nothing else.

Runner and view are import paths, loaded on first use: the worker never imports Streamlit and the web
process never imports TensorFlow.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import ModuleType
from typing import TYPE_CHECKING, Any, Literal, NamedTuple

from qmlapp.specs import Spec

if TYPE_CHECKING:
    from qmlapp.context import RunContext

# Where a number comes from: a simulation on qsim/TFQ, an exact classical computation, or a cost model.
Provenance = Literal["simulated", "computed", "estimated"]
PROVENANCES: tuple[Provenance, ...] = ("simulated", "computed", "estimated")
Direction = Literal["maximize", "minimize"]
FormGroups = tuple[tuple[str, tuple[str, ...]], ...]
RunFn = Callable[[Any, "RunContext"], Mapping[str, Any]]


class Objective(NamedTuple):
    """A result key a sweep may optimise, with the words and unit to show it."""

    name: str  # key in the run's result
    label: str  # axis text without unit
    unit: str
    direction: Direction
    provenance: Provenance | Literal[""]  # "" only for ad-hoc metrics no kind declares

    @property
    def title(self) -> str:
        return f"{self.label} ({self.unit})" if self.unit else self.label


@dataclass(frozen=True)
class ExperimentKind:
    """One experiment family. ``objectives[0]`` is the default objective of a sweep."""

    name: str  # identifier in specs, URLs, the CLI and the database
    title: str  # what users read for this kind
    description: str  # one paragraph for the home page and ``qmlapp kinds``
    icon: str  # page icon (emoji)
    page_title: str  # label of the kind's page in the menu
    url_path: str  # the page's path in the app's URL
    spec_class: type[Spec]
    result_type: type  # TypedDict of the stored result
    runner: str  # "module:function" returning the result, imported lazily on the worker side
    view: str  # module with page(), and optionally curves(run, series) and results(run, detail)
    objectives: tuple[Objective, ...]
    summary_keys: tuple[str, ...]  # result keys shown first in tables, in this order
    # per-step metrics the runner logs (first = default curve to plot); "{field}" is filled from the spec
    curve_metrics: tuple[str, ...]
    form_groups: FormGroups  # titled columns of spec fields on the kind's form
    example: Mapping[str, Any]  # a tiny valid spec (a few seconds on 2 cores) for tests, soak and docs
    run_name: Callable[[Any], str]  # default run name from the spec, so runs can be told apart
    curve_provenance: Provenance = "simulated"  # where the per-step curves come from (classical training: computed)
    headline: str = ""  # str.format template over the result: the run's one-line result in tables
    units: Mapping[str, str] = field(default_factory=dict)  # unit of result keys not covered by objectives

    def objective(self, name: str) -> Objective:
        for o in self.objectives:
            if o.name == name:
                return o
        raise KeyError(name)

    @property
    def objective_names(self) -> tuple[str, ...]:
        return tuple(o.name for o in self.objectives)

    def curve_names(self, spec: Mapping[str, Any]) -> tuple[str, ...]:
        """``curve_metrics`` for one run's spec (names such as "D{depth}_r0_loss" filled in)."""
        out = []
        for m in self.curve_metrics:
            try:
                out.append(m.format(**spec))
            except (KeyError, IndexError, ValueError):
                continue
        return tuple(out)

    def default_run_name(self, spec: Spec) -> str:
        try:
            return self.run_name(spec)
        except (AttributeError, KeyError, TypeError, ValueError):  # a partial spec: the title still says what it is
            return self.title

    def headline_text(self, result: Mapping[str, Any] | None) -> str:
        """The headline with the run's numbers, or "" when the result lacks them."""
        if not result or not self.headline:
            return ""
        try:
            return self.headline.format(**result)
        except (KeyError, ValueError, TypeError, IndexError):
            return ""

    def load_runner(self) -> RunFn:
        module, func = self.runner.split(":")
        fn: RunFn = getattr(importlib.import_module(module), func)
        return fn

    def load_view(self) -> ModuleType:
        return importlib.import_module(self.view)

    def example_spec(self, **overrides: Any) -> Spec:
        return self.spec_class.from_dict({**self.example, **overrides})

