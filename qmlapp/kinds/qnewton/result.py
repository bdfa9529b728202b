"""The stored result of a ``qnewton`` run: the keys runner, plots and views rely on."""

from __future__ import annotations

from typing import Any, TypedDict


class QnewtonResult(TypedDict, total=False):
    final_loss: Any
    final_accuracy: Any
    n_quantum_solves: Any
    n_classical_solves: Any
    total_time_estimated_s: Any
    sgd_time_s: Any
    speedup_vs_sgd: Any
    kappa_initial: Any
    kappa_final: Any
    wall_time_s: Any
    labels: dict[str, str]
