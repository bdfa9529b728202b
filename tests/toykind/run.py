"""Runner of the ``toy`` kind: gradient descent on one slope with, per step, a cancel check, a metric point
and a progress report, as every runner has."""

from __future__ import annotations

import json
import time

import numpy as np

from qmlapp.context import RunContext
from toykind.result import ToyResult
from toykind.spec import ToySpec

TRUE_SLOPE = 2.0


def run(spec: ToySpec, ctx: RunContext) -> ToyResult:
    started = time.perf_counter()
    rng = np.random.default_rng(spec.seed)
    x = rng.uniform(-1.0, 1.0, spec.n_points)
    y = TRUE_SLOPE * x + spec.noise * rng.standard_normal(spec.n_points)
    slope, loss = 0.0, float(np.mean(y**2))
    for step in range(1, spec.steps + 1):
        ctx.check_cancelled()
        slope -= spec.learning_rate * float(2 * np.mean((slope * x - y) * x))
        loss = float(np.mean((slope * x - y) ** 2))
        ctx.log_metrics(step, {"loss": loss, "slope": slope})
        ctx.progress(step / spec.steps, f"step {step} of {spec.steps}")
    ctx.save_artifact("fit.json", json.dumps({"slope": slope}), "application/json")
    return ToyResult(slope=slope, slope_error=abs(slope - TRUE_SLOPE), final_loss=loss, x=x.tolist(), y=y.tolist(),
                     wall_time_s=time.perf_counter() - started,
                     labels={"slope": "computed", "slope_error": "computed", "final_loss": "computed"})
