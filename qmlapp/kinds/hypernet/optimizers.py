"""Optimisers of one hypernetwork restart, on the circuit's Born distribution p(θ) over all 2ⁿ networks:

* L-BFGS-B (SciPy) on the exact or ELBO objective with its exact gradient;
* Adam on the same objective, or on the sampled objective: the parameter-shift gradient estimated from Born
  samples, as a device would measure it.

:func:`train_restart` picks by the spec; curve points go to the caller's ``log(iteration, p, force=False)``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from qmlapp.context import RunContext
from qmlapp.kinds.hypernet.circuit import HypernetCircuit
from qmlapp.kinds.hypernet.result import TrainingFacts
from qmlapp.kinds.hypernet.spec import HypernetSpec

GTOL = 1e-6  # SciPy L-BFGS-B `gtol` (max-abs projected gradient; the authors' OptimKit gradtol is a norm)
ADAM_BETA1, ADAM_BETA2, ADAM_EPS = 0.9, 0.999, 1e-8
Objective = Callable[[np.ndarray], tuple[float, np.ndarray]]  # p → (value, d value / d p)
CurveLog = Callable[..., None]  # log(iteration, probabilities, force=False)


def make_objective(spec: HypernetSpec, costs_q: np.ndarray) -> Objective:
    """fn(p) → (value, d value / d p) for the exact and ELBO objectives."""
    if spec.objective == "elbo":
        beta = spec.prior_weight

        def elbo(p: np.ndarray) -> tuple[float, np.ndarray]:
            # loss − β·H(q): the negative ELBO with a uniform prior, up to the constant β·n·log 2
            logp = np.log(np.maximum(p, 1e-300))
            value = float(p @ costs_q + beta * (p @ logp))
            return value, costs_q + beta * (logp + 1.0)

        return elbo

    def exact(p: np.ndarray) -> tuple[float, np.ndarray]:
        return float(p @ costs_q), costs_q

    return exact


def train_restart(spec: HypernetSpec, circuit: HypernetCircuit, costs_q: np.ndarray, theta0: np.ndarray,
                  rng: np.random.Generator, log: CurveLog, ctx: RunContext) -> tuple[np.ndarray, TrainingFacts]:
    """Optimise one restart from ``theta0``; returns the final parameters and the optimiser's facts. The last
    curve point is logged (forced) at the final parameters."""
    fn = make_objective(spec, costs_q)
    if spec.optimizer == "lbfgs":
        theta, facts = lbfgs(spec, circuit, fn, theta0, log, ctx)
    else:
        theta, facts = adam(spec, circuit, fn, costs_q, theta0, rng, log, ctx)
    log(max(facts["iterations"], 1), circuit.probabilities(theta), force=True)
    return theta, facts


def lbfgs(spec: HypernetSpec, circuit: HypernetCircuit, fn: Objective, theta0: np.ndarray, log: CurveLog,
          ctx: RunContext) -> tuple[np.ndarray, TrainingFacts]:
    """SciPy's L-BFGS-B with the exact gradient, at most ``max_iterations`` iterations."""
    from scipy.optimize import minimize

    last_p: list[np.ndarray] = [circuit.probabilities(theta0)]
    log(0, last_p[0])
    iteration = 0

    def fun(theta: np.ndarray) -> tuple[float, np.ndarray]:
        ctx.check_cancelled()
        value, grad, p = circuit.value_and_grad(theta, fn)
        last_p[0] = p  # the callback logs the iterate L-BFGS accepted, evaluated last
        return value, grad

    def callback(intermediate_result: Any) -> None:
        nonlocal iteration
        iteration += 1
        log(iteration, last_p[0])

    res = minimize(fun, theta0, jac=True, method="L-BFGS-B", callback=callback,
                   options={"maxiter": spec.max_iterations, "gtol": GTOL})
    facts: TrainingFacts = {"iterations": int(res.nit), "evaluations": int(res.nfev), "converged": bool(res.success),
                            "optimizer_message": str(res.message)}
    return res.x, facts


def adam(spec: HypernetSpec, circuit: HypernetCircuit, fn: Objective, costs_q: np.ndarray, theta0: np.ndarray,
         rng: np.random.Generator, log: CurveLog, ctx: RunContext) -> tuple[np.ndarray, TrainingFacts]:
    """Adam on the exact/ELBO gradient, or on the shot-based parameter-shift gradient (objective 'sampled')."""
    theta = theta0.copy()
    m = np.zeros_like(theta)
    v = np.zeros_like(theta)
    b1, b2, eps = ADAM_BETA1, ADAM_BETA2, ADAM_EPS
    lr = spec.learning_rate
    log(0, circuit.probabilities(theta))
    for it in range(1, spec.max_iterations + 1):
        ctx.check_cancelled()
        if spec.objective == "sampled":
            grad = shot_shift_gradient(circuit, theta, costs_q, spec.shots, rng)
        else:
            _, grad, _ = circuit.value_and_grad(theta, fn)
        m = b1 * m + (1 - b1) * grad
        v = b2 * v + (1 - b2) * grad * grad
        theta = theta - lr * (m / (1 - b1**it)) / (np.sqrt(v / (1 - b2**it)) + eps)
        log(it, circuit.probabilities(theta))
    facts: TrainingFacts = {"iterations": spec.max_iterations, "evaluations": spec.max_iterations,
                            "converged": False,
                            "optimizer_message": f"adam ran its {spec.max_iterations} iterations"}
    return theta, facts


def shot_shift_gradient(circuit: HypernetCircuit, theta: np.ndarray, costs_q: np.ndarray, shots: int,
                        rng: np.random.Generator) -> np.ndarray:
    """∂L/∂θ_k = [L̂(θ + π/2 e_k) − L̂(θ − π/2 e_k)]/2, each L̂ the mean cost of `shots` Born samples: what a
    device would measure (2·n_params circuits × shots per step)."""
    grad = np.empty_like(theta)
    for k in range(theta.size):
        vals = []
        for sign in (1.0, -1.0):
            shifted = theta.copy()
            shifted[k] += sign * math.pi / 2
            idx = circuit.sample(shifted, shots, rng)
            vals.append(float(costs_q[idx].mean()))
        grad[k] = 0.5 * (vals[0] - vals[1])
    return grad
