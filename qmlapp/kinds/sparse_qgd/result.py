"""The stored result of a ``sparse_qgd`` run: the keys runner, plots and views rely on."""

from __future__ import annotations

from typing import Any, TypedDict


class SparseQgdResult(TypedDict, total=False):
    n_params: Any
    sparsity: Any
    negative_eigen_fraction_after_prune: Any
    r_number: Any
    kappa_history: Any
    favourable_windows: Any
    estimated_speedup_at_target: Any
    final_test_accuracy: Any
    wall_time_s: Any
    labels: dict[str, str]
