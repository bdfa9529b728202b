"""Spec of the ``qnewton`` kind: Newton training whose linear solves are scheduled to a quantum or a
classical solver (Li, Liu, Wang & Chen 2024, "Q-Newton").

Field names are a public contract. Light module (forms, validation); training is in
:mod:`qmlapp.kinds.qnewton.run`, the linear algebra and cost model in :mod:`qmlapp.kinds.qnewton`.
"""

from __future__ import annotations

from dataclasses import dataclass

from qmlapp.specs import Spec, SpecError, param

# dataset -> (inputs, description)
QNEWTON_DATASETS: dict[str, tuple[int, str]] = {
    "digits": (64, "scikit-learn digits, 8×8 pixels, 10 classes"),
    "digits_4x4": (16, "scikit-learn digits averaged over 2×2 blocks to 4×4, 10 classes"),
}
OPTIMIZERS = ("qnewton", "newton", "sgd", "adam")
# The largest Hessian block is inputs × hidden (the first kernel): its SVD for κ and its solve are timed
# every step, so it is kept ≤ 2,048 (a 2048² SVD takes ~3 s on 2 cores).
MAX_BLOCK = 2048


@dataclass(frozen=True)
class QnewtonSpec(Spec):
    """MLP, Newton/Hessian settings, the quantum cost model, the scheduler and the training budget."""

    kind = "qnewton"
    schema_version = 1

    dataset: str = param("digits_4x4", choices=tuple(QNEWTON_DATASETS),
                         help="Digits, optionally downsampled to 4×4 (smaller Hessian blocks).")
    hidden_units: int = param(16, low=1, high=128, help="Hidden units of the one-hidden-layer MLP (tanh).")
    optimizer: str = param("qnewton", choices=OPTIMIZERS,
                           help="qnewton: Newton steps, each layer's solve scheduled to the quantum or classical "
                                "solver; newton: all classical; sgd/adam: first-order baselines.")
    hessian: str = param("fisher", choices=("exact", "fisher"),
                         help="Per-layer block: the empirical Fisher (1/B)Σ gᵢgᵢᵀ (PSD, rank ≤ batch size, so κ is "
                              "set by the regulariser) or the exact Hessian (TF jacobian of the gradient). The exact "
                              "block is indefinite early in training (W1 on digits_4x4: eigenvalues down to −0.15 vs "
                              "λ ≈ 2e-4), so Newton diverges at ε_norm 5e-3; use ε_norm ≳ 5 with it.")
    epsilon_norm: float = param(5e-3, low=0.0, high=1e5, low_inclusive=False, log=True,
                                help="Regulariser: H̃ = H + λI with λ = ε_norm·(max|H_ij| + 1e-6); κ ≤ 1 + N/ε_norm "
                                     "for PSD H.")
    prune_ratio: float = param(1.0, low=0.0, high=1.0, low_inclusive=False,
                               help="Fraction of entries KEPT per row (top-k by magnitude; the authors' docstring "
                                    "says the opposite). The mask is symmetrised and keeps the diagonal. 1 = dense.")
    qlsa_epsilon: float = param(1e-2, low=0.0, high=0.5, low_inclusive=False, log=True,
                                help="Target precision ε of the quantum linear solver in the query cost.")
    gate_time_s: float = param(1e-9, low=1e-18, high=1e-6, log=True,
                               help="Time per quantum gate (s): 1e-6 (today's hardware) down to 1e-18 (attosecond, "
                                    "the paper's optimistic scenario).")
    gates_per_query: float = param(0.0, low=0.0, high=1e12,
                                   help="Gates per block-encoding query; 0 = d·⌈log₂N⌉ (sparse oracle estimate).")
    kappa_threshold: float = param(1e4, low=1.0, high=1e12, log=True,
                                   help="Solves with κ above this always go to the classical solver (paper: 10⁴).")
    count_readout: bool = param(False, help="Add the readout of the solution (ℓ₂ tomography: N·log₂N/ε² shots × "
                                            "circuit time) to the quantum time; it can erase any advantage.")
    epochs: int = param(5, low=1, high=200, help="Training epochs.")
    batch_size: int = param(256, low=8, high=4096, help="Mini-batch size (also the Fisher's sample count).")
    learning_rate: float = param(0.5, low=0.0, high=10.0, low_inclusive=False,
                                 help="Step size β of the chosen optimizer (Newton: θ ← θ − β·clip(H̃⁻¹g, ±100)) "
                                      "and of the classical-Newton baseline.")
    sgd_learning_rate: float = param(0.5, low=0.0, high=10.0, low_inclusive=False,
                                     help="Step size of the SGD baseline.")
    adam_learning_rate: float = param(0.01, low=0.0, high=10.0, low_inclusive=False,
                                      help="Step size of the Adam baseline.")
    baselines: bool = param(True, help="Also train SGD, Adam and classical Newton from the same initial weights in "
                                       "the same run, for the time and loss comparisons.")
    hhl_demo: bool = param(True, help="Run HHL on qsim for small regularised Hessian-like blocks: fidelity and "
                                      "success probability vs κ and clock qubits (simulated).")
    hhl_size: int = param(4, choices=(2, 4, 8, 16), help="Dimension of the HHL demo's matrices (1–4 system qubits).")
    seed: int = param(0, low=0, high=2**31 - 1, help="Seeds the data split, the weights and the batches.")

    def validate(self) -> None:
        inputs, _ = QNEWTON_DATASETS[self.dataset]
        block = inputs * self.hidden_units
        if self.optimizer in ("qnewton", "newton") or self.baselines:
            if block > MAX_BLOCK:
                raise SpecError("hidden_units", f"the first layer's Hessian block would be {block}×{block} "
                                f"({inputs} inputs × {self.hidden_units} units); at most {MAX_BLOCK} is allowed "
                                f"(use ≤ {MAX_BLOCK // inputs} hidden units or digits_4x4)")
