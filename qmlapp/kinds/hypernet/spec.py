"""Spec of the ``hypernet`` kind: a quantum hypernetwork search over binary neural networks.

Field names are a public contract. Light module (the web process builds forms from it); training is
in :mod:`qmlapp.kinds.hypernet.run`.

Depth convention: ``depth`` is the *code* depth D, the number of brickwork
sub-layers (CX sub-layer, then Ry and Rz on every qubit). One manuscript layer = two sub-layers, so
D = 2, 4, 6 are 1, 2, 3 layers in the paper; D = 1 is the paper's "product state".
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from qmlapp.kinds.hypernet.layouts import CUSTOM_DATASETS, MAX_BITS, PROBLEMS, QUBIT_ORDERS, BitLayout, make_layout
from qmlapp.resources import MemoryEstimate
from qmlapp.specs import MAX_LIST_ITEMS, MAX_TEXT_CHARS, Spec, SpecError, param, show_value

MAX_DEPTH = 12
MAX_STUDY_DEPTHS = 8
OBJECTIVES = ("exact", "sampled", "elbo")
# Noisy evaluation runs Monte-Carlo trajectories on qsim (one state vector per trajectory); the cost is
# restarts × depths × trajectories simulations, so the product is capped (≈10 ms per trajectory at 18 qubits).
MAX_NOISE_SIMULATIONS = 20_000


def _depth(value: Any) -> int | None:
    """One code depth from an int, an integral float or its text; None when it is not one. Text is
    length-capped before int() and floats are checked finite before int(), so "inf", "1e400" and
    5000-digit strings are refused instead of raising OverflowError/ValueError."""
    if isinstance(value, str):
        text = value.strip()
        if not text or len(text) > 8:
            return None
        try:
            return int(text)
        except ValueError:
            pass
        try:
            value = float(text)
        except ValueError:
            return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    if isinstance(value, float):
        return int(value) if math.isfinite(value) and value.is_integer() and abs(value) <= MAX_DEPTH else None
    return value


def parse_depths(value: Any) -> tuple[int, ...]:
    """'1, 2, 4' / [1, 2, 4] / () → a sorted tuple of distinct code depths (raises SpecError)."""
    allowed = f"a list of at most {MAX_STUDY_DEPTHS} code depths in [1, {MAX_DEPTH}], e.g. '1, 2, 4, 6'"
    if isinstance(value, str):
        if len(value) > MAX_TEXT_CHARS:
            raise SpecError("study_depths", f"must be {allowed}; got {len(value)} characters of text")
        items: list[Any] = [v for v in value.replace(";", ",").replace(" ", ",").split(",") if v]
    elif isinstance(value, (list, tuple)):
        items = list(value)
    else:
        raise SpecError("study_depths", f"must be {allowed}, got {show_value(value)}")
    if len(items) > MAX_LIST_ITEMS:
        raise SpecError("study_depths", f"must be {allowed}; got {len(items)} items")
    out: set[int] = set()
    for v in items:
        d = _depth(v)
        if d is None or not 1 <= d <= MAX_DEPTH:
            raise SpecError("study_depths", f"items must be integers in [1, {MAX_DEPTH}], got {show_value(v)}")
        out.add(d)
    if len(out) > MAX_STUDY_DEPTHS:
        raise SpecError("study_depths", f"at most {MAX_STUDY_DEPTHS} depths, got {len(out)}")
    return tuple(sorted(out))


@dataclass(frozen=True)
class HypernetSpec(Spec):
    """Problem (bit layout + data), circuit, objective, optimiser, restarts, depth study, noise, seed."""

    kind = "hypernet"
    schema_version = 1

    problem: str = param(
        "gaussian2d", choices=PROBLEMS,
        help="gaussian2d: 18-bit 2→4→1 BNN with an activation bit (paper); mnist01: 17-bit logistic "
             "regression on 4×4 MNIST 0 vs 1; mnist37_encoding: 19 bits with 2 weight-encoding bits, 3 vs 7; "
             "custom: choose data, hidden units and extra bits below.",
    )
    custom_dataset: str = param("gaussian2d", choices=CUSTOM_DATASETS,
                                help="Data of the custom problem (2-D synthetic sets or 4×4 MNIST pairs).")
    custom_hidden: int = param(2, low=0, high=4, help="Hidden units of the custom BNN (0 = logistic regression).")
    custom_activation_bit: bool = param(False, help="Custom: one bit chooses sigmoid vs ReLU for the hidden layer.")
    custom_encoding_bits: int = param(0, low=0, high=2, help="Custom: bits choosing the weight encoding "
                                      "(a weight bit 0 means −e, e = 0…3).")
    custom_width_bit: bool = param(False, help="Custom: one bit chooses all vs half of the hidden units.")
    n_points: int = param(10_000, low=100, high=20_000,
                          help="Points drawn for synthetic data (gaussian2d, moons, blobs); MNIST uses all images.")
    qubit_order: str = param("app", choices=QUBIT_ORDERS,
                             help="Which qubit carries layout bit p: app = qubit p; authors = qubit n−1−p "
                                  "(the Julia code), which reverses the brickwork line.")
    depth: int = param(4, low=1, high=MAX_DEPTH,
                       help="Code depth D = brickwork sub-layers (CX, then Ry and Rz on every qubit). One "
                            "manuscript layer = two sub-layers: D = 2, 4, 6 are 1, 2, 3 layers; D = 1 is the "
                            "product state.")
    study_depths: tuple[int, ...] = param(
        (), label="depth study (code depths)",
        help="Also run every restart at these code depths (e.g. 1, 2, 4, 6) and plot success vs depth; "
             "empty = only `depth`.",
    )
    ansatz: str = param("brickwork", choices=("brickwork", "product"),
                        help="brickwork: the authors' CX brickwork; product: no CX (a product state).")
    objective: str = param(
        "exact", choices=OBJECTIVES,
        help="exact: Σ|ψ(σ)|² C(σ) from the state vector with adjoint gradients; sampled: `shots` Born "
             "samples per step with the score-function gradient (hardware-realistic); elbo: exact loss "
             "minus prior_weight × entropy (variational inference with a uniform prior).",
    )
    shots: int = param(1000, low=10, high=100_000, help="Samples per step for the sampled objective.")
    prior_weight: float = param(0.01, low=0.0, high=100.0,
                                help="β of the ELBO: loss − β·H(q) (KL to a uniform prior up to a constant).")
    optimizer: str = param("lbfgs", choices=("lbfgs", "adam"),
                           help="lbfgs: SciPy L-BFGS-B (exact/elbo objectives); adam: for any objective.")
    learning_rate: float = param(0.05, low=0.0, high=10.0, low_inclusive=False, help="Adam step size.")
    max_iterations: int = param(300, low=1, high=5000, help="Optimiser iterations per restart.")
    restarts: int = param(5, low=1, high=100, help="Random restarts (θ ~ U[0, 2π)) per depth.")
    tolerance: float = param(1e-4, low=0.0, high=1.0,
                             help="ε of the optimal set O_ε = {σ : C(σ) ≤ C_min + ε} used by both success metrics.")
    eval_samples: int = param(1000, low=10, high=100_000, help="Born samples drawn from each trained circuit.")
    noise: float = param(0.0, low=0.0, high=10.0,
                         help="Depolarising scale p for noisy evaluation: p₁ = 0.001·p after every 1-qubit gate, "
                              "two-qubit channel p₂ = 0.00375·p after every CX (0 = noiseless).")
    noise_trajectories: int = param(100, low=1, high=10_000,
                                    help="Monte-Carlo trajectories (qsim) per trained circuit, noisy evaluation.")
    seed: int = param(0, low=0, high=2**31 - 1, help="Seeds data, initial angles and sampling.")

    @classmethod
    def check_field(cls, name: str, value: Any) -> Any:
        if name == "study_depths":
            return parse_depths(value)
        return super().check_field(name, value)

    def layout(self) -> BitLayout:
        return make_layout(self.problem, dataset=self.custom_dataset, hidden=self.custom_hidden,
                           activation_bit=self.custom_activation_bit, encoding_bits=self.custom_encoding_bits,
                           width_bit=self.custom_width_bit)

    @property
    def depths(self) -> tuple[int, ...]:
        """Every code depth this run trains at (``depth`` plus the study depths)."""
        return tuple(sorted({self.depth, *self.study_depths}))

    @property
    def n_bits(self) -> int:
        return self.layout().n_bits

    def memory_estimate(self) -> MemoryEstimate:
        n = self.n_bits
        # The loss of every network (float64), state vector and adjoint copies (complex128), Born samples.
        size = 2**n * (8 + 3 * 16) + self.eval_samples * n
        return MemoryEstimate("custom_hidden" if self.problem == "custom" else "problem", size,
                              f"2^{n} network losses (float64) + 3 state vectors of {n} qubits (complex128)")

    def validate(self) -> None:
        if self.problem == "custom":
            if self.custom_hidden == 0 and self.custom_activation_bit:
                raise SpecError("custom_activation_bit", "needs custom_hidden ≥ 1 (no hidden layer to activate)")
            if self.custom_hidden < 2 and self.custom_width_bit:
                raise SpecError("custom_width_bit", "needs custom_hidden ≥ 2 (half of one unit is not a width)")
        n = self.n_bits
        if n > MAX_BITS:
            raise SpecError("custom_hidden", f"the layout has {n} bits; at most {MAX_BITS} are allowed (every "
                            f"one of the 2^n networks is enumerated); use fewer hidden units or bits")
        if n < 2:
            raise SpecError("problem", f"the layout has {n} bit(s); at least 2 are needed")
        if self.optimizer == "lbfgs" and self.objective == "sampled":
            raise SpecError("optimizer", "'lbfgs' needs an exact objective; use 'adam' with the sampled objective")
        sims = self.noise_trajectories * self.restarts * len(self.depths)
        if self.noise > 0 and sims > MAX_NOISE_SIMULATIONS:
            raise SpecError("noise_trajectories", f"restarts × depths × trajectories = {sims} noisy simulations; "
                            f"at most {MAX_NOISE_SIMULATIONS} per run")
