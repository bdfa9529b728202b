"""The stored result of a ``hypernet`` run: the keys runner, plots and views rely on."""

from __future__ import annotations

from typing import Any, TypedDict


class HypernetResult(TypedDict, total=False):
    best_loss: Any
    best_bitstring: Any
    global_min_loss: Any
    n_optimal_bitstrings: Any
    success_probability: Any
    born_mass_optimal: Any
    best_accuracy: Any
    wall_time_s: Any
    labels: dict[str, str]
