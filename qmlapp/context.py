"""What an experiment sees of the outside world while it runs.

Experiments receive a :class:`RunContext`; they report progress and metrics through it, call
``check_cancelled()`` once per training step, store artifacts, and build their simulators with its
``simulators`` factory. The worker provides a database-backed context; tests can use :class:`LocalContext`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from qmlapp.simulators import Simulators


class RunCancelled(Exception):
    """Raised by ``check_cancelled`` when the user asked to stop the run."""


@dataclass(frozen=True)
class Artifact:
    name: str
    media_type: str
    content: bytes


class RunContext(Protocol):
    """The seam between an experiment and its runner (worker, CLI, test)."""

    seed: int
    simulators: Simulators  # the qsim / TFQ / Cirq simulators of the run, with its thread budget

    def progress(self, fraction: float, message: str = "") -> None:
        """Report progress in [0, 1] with a short human-readable message."""

    def log_metrics(self, step: int, values: dict[str, float]) -> None:
        """Append one point per metric name at ``step`` (e.g. epoch)."""

    def check_cancelled(self) -> None:
        """Raise :class:`RunCancelled` if a cancel was requested. Call once per step."""

    def save_artifact(self, name: str, content: str | bytes, media_type: str) -> None:
        """Store a named artifact (SVG, QASM, JSON, NPZ ...) with the run."""


@dataclass
class LocalContext:
    """In-memory context for tests and scripts; simulators default to QMLAPP_SIM_THREADS or every usable CPU."""

    seed: int = 0
    cancel_after_steps: int | None = None
    simulators: Simulators = field(default_factory=Simulators.from_env)
    progress_log: list[tuple[float, str]] = field(default_factory=list)
    metrics: list[tuple[int, str, float]] = field(default_factory=list)
    artifacts: dict[str, Artifact] = field(default_factory=dict)
    _checks: int = 0

    def progress(self, fraction: float, message: str = "") -> None:
        self.progress_log.append((float(fraction), message))

    def log_metrics(self, step: int, values: dict[str, float]) -> None:
        self.metrics.extend((step, k, float(v)) for k, v in values.items())

    def check_cancelled(self) -> None:
        self._checks += 1
        if self.cancel_after_steps is not None and self._checks > self.cancel_after_steps:
            raise RunCancelled("cancelled")

    def save_artifact(self, name: str, content: str | bytes, media_type: str) -> None:
        data = content.encode() if isinstance(content, str) else content
        self.artifacts[name] = Artifact(name, media_type, data)

    def series(self, name: str) -> list[float]:
        return [v for _, k, v in self.metrics if k == name]


def json_safe(value: Any) -> Any:
    """Convert numpy scalars/arrays inside a result to plain JSON types; NaN/±inf become None
    (strict JSON has no such values, and a null reads as "undefined" in every consumer)."""
    import math

    import numpy as np

    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if isinstance(value, np.ndarray):
        return json_safe(value.tolist())
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
