"""The stored result of a ``qnetwork`` run: the keys runner, plots and views rely on."""

from __future__ import annotations

from typing import Any, TypedDict


class QnetworkResult(TypedDict, total=False):
    loss_exact: Any
    loss_estimate: Any
    qubits_communicated: Any
    rounds: Any
    classical_bits_data: Any
    classical_bits_model: Any
    advantage_ratio: Any
    holevo_bound_bits: Any
    wall_time_s: Any
    labels: dict[str, str]
