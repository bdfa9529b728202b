"""A sixth experiment kind that lives only in the tests: the files a new kind needs, and nothing else.

Fits y = a·x to noisy points by gradient descent. ``tests/test_kinds.py`` registers :data:`KIND` with
:func:`qmlapp.registry.register` for the tests that use it; a real kind is one line in ``KIND_PACKAGES``.
"""

from __future__ import annotations

from qmlapp.kinds.base import ExperimentKind, Objective
from toykind.result import ToyResult
from toykind.spec import ToySpec


def _run_name(spec: ToySpec) -> str:
    return f"{spec.n_points} points · noise {spec.noise:g} · {spec.steps} steps · lr {spec.learning_rate:g}"


KIND = ExperimentKind(
    name="toy",
    title="Toy line fit",
    description="Fits the slope of a line through noisy points by gradient descent (a kind for the tests).",
    icon="📏",
    page_title="Toy line fit",
    url_path="Toy",
    spec_class=ToySpec,
    result_type=ToyResult,
    runner="toykind.run:run",
    view="toykind.view",
    objectives=(
        Objective("final_loss", "training loss", "mean squared error", "minimize", "computed"),
        Objective("slope_error", "error of the fitted slope", "|a − 2|", "minimize", "computed"),
    ),
    summary_keys=("slope", "slope_error", "final_loss", "wall_time_s"),
    curve_metrics=("loss", "slope"),
    form_groups=(("Data", ("n_points", "noise", "seed")), ("Fit", ("steps", "learning_rate"))),
    example={"n_points": 20, "steps": 5},
    run_name=_run_name,
    headline="slope {slope:.3f} · loss {final_loss:.3g} (computed)",
    units={"wall_time_s": "s"},
)
