"""The stored result of a ``toy`` run."""

from __future__ import annotations

from typing import TypedDict


class ToyResult(TypedDict, total=False):
    slope: float
    slope_error: float
    final_loss: float
    x: list[float]
    y: list[float]
    wall_time_s: float
    labels: dict[str, str]
