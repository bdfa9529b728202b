"""The stored result of a ``qnn`` run: the keys runner, plots and views rely on."""

from __future__ import annotations

from typing import Any, TypedDict


class QnnResult(TypedDict, total=False):
    val_accuracy: Any
    val_f1: Any
    val_loss: Any
    test_accuracy: Any
    test_f1: Any
    test_loss: Any
    wall_time_s: Any
    labels: dict[str, str]
