"""Spec of the ``toy`` kind: noisy points on a line through the origin, and the gradient-descent settings."""

from __future__ import annotations

from dataclasses import dataclass

from qmlapp.specs import Spec, param


@dataclass(frozen=True)
class ToySpec(Spec):
    """Data and fit of a one-parameter model y = a·x."""

    kind = "toy"
    schema_version = 1

    n_points: int = param(50, low=2, high=10_000, help="Points x ~ U[-1, 1] with y = 2x + noise.")
    noise: float = param(0.1, low=0.0, high=10.0, help="Standard deviation of the Gaussian noise on y.")
    steps: int = param(20, low=1, high=10_000, help="Gradient-descent steps on the mean squared error.")
    learning_rate: float = param(0.5, low=0.0, high=10.0, low_inclusive=False, help="Step size of gradient descent.")
    seed: int = param(0, low=0, high=2**31 - 1, help="Seed of the data.")
