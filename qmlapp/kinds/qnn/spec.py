"""Spec of the ``qnn`` kind: one variational quantum classifier configuration per run.

Field names are a public contract (CLI, scripts, stored runs). This module must stay light: the web
process imports it to build forms and validate input. Training lives in ``qnn_train``.

Schema history: v1 (the first release); v2 adds fields only, each with a default that reproduces v1
exactly, so stored v1 specs load through the default :meth:`~qmlapp.specs.Spec.upgrade` unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass

from qmlapp.datasets import DATASETS
from qmlapp.resources import MemoryEstimate
from qmlapp.specs import Spec, SpecError, param

MAX_QUBITS = 16  # TFQ adjoint training step at 16 qubits, batch 32: ~0.5 s on 2 cores
# mod_k with K not a power of two expands into up to 2^n Z-strings per class: a batch-32 forward
# pass takes 0.22 s at n=8, K=3 but 7.3 s at n=12 (measured), so larger registers are refused.
MOD_K_MAX_QUBITS = 8
# Gate noise is simulated with density matrices (4^n numbers per row): a batch-32 Adam step takes
# 9 ms at n=4, 32 ms at n=6 and 0.5 s at n=8 on 2 cores (measured); beyond that only TFQ's noisy
# trajectories are left, at ~35 µs per trajectory and shot.
NOISE_EXACT_MAX_QUBITS = 8

ENCODINGS = ("angle", "z_feature_map", "zz_feature_map", "reuploading")
ANSATZES = ("hardware_efficient", "real_amplitudes", "efficient_su2", "pauli_two_design")
ENTANGLEMENTS = ("linear", "circular", "full", "pairwise", "sca")
ENTANGLERS = ("auto", "cx", "cz", "sqrt_iswap")
ACTIVATIONS = ("linear", "tanh")
READOUTS = ("z_per_class", "mod_k", "parity", "all_z")
BINARY_READOUTS = ("parity", "all_z")
OPTIMIZERS = ("adam", "sgd", "cobyla", "nelder_mead", "spsa")
GRADIENT_OPTIMIZERS = ("adam", "sgd")
GRADIENT_FREE_OPTIMIZERS = ("cobyla", "nelder_mead", "spsa")
INITS = ("uniform", "normal", "zeros", "beta", "constant", "normal_beta", "beta_mu")
INIT_MODES = ("correct", "authors")
BUDGET_PRESETS = ("none", "herbst_intended", "herbst_as_run")
NOISE_FIELDS = ("noise_1q", "noise_2q", "amplitude_damping", "readout_error")
GATE_NOISE_FIELDS = ("noise_1q", "noise_2q", "amplitude_damping")

# Iteration budgets of the gradient-free optimisers in Herbst et al.:
# "intended" is what the paper describes; "as run" is what the scripts did, where the Nelder–Mead and
# SPSA budgets were swapped by unpacking (cobyla, nm, spsa) as (cobyla, spsa, nm).
HERBST_BUDGETS: dict[tuple[str, bool], dict[str, int]] = {
    ("herbst_intended", False): {"cobyla": 500, "spsa": 300, "nelder_mead": 150},
    ("herbst_as_run", False): {"cobyla": 500, "spsa": 150, "nelder_mead": 300},
    ("herbst_intended", True): {"cobyla": 250, "spsa": 125, "nelder_mead": 75},
    ("herbst_as_run", True): {"cobyla": 250, "spsa": 75, "nelder_mead": 125},
}


@dataclass(frozen=True)
class QnnSpec(Spec):
    """A QNN classifier: data pipeline, circuit, readout, optimiser, noise and seeds."""

    kind = "qnn"
    schema_version = 2

    dataset: str = param("iris", choices=tuple(DATASETS), help="Shipped dataset to classify.")
    n_qubits: int = param(4, low=1, high=MAX_QUBITS, help="Qubits = features after reduction.")
    reduction: str = param(
        "pca", choices=("pca", "lda", "none"),
        help="PCA on standardised features, LDA on raw features (≤ classes−1 components), or none.",
    )
    scaling: str = param(
        "minmax_pi", choices=("none", "minmax", "minmax_pi", "standard"),
        help="Feature scaling fitted on the training split: [0,1], [0,π] or z-score.",
    )
    encoding: str = param(
        "angle", choices=ENCODINGS,
        help="Angle (RY), Qiskit-style Z / ZZ feature maps (2 reps), or data re-uploading per layer.",
    )
    ansatz: str = param(
        "hardware_efficient", choices=ANSATZES,
        help="Trainable circuit family. pauli_two_design: fixed RY(π/4) layer, then per layer a random "
             "RX/RY/RZ per qubit (drawn from the seed, stored with the run) and CZ on even then odd pairs.",
    )
    entanglement: str = param("linear", choices=ENTANGLEMENTS,
                              help="Pattern of the ansatz's two-qubit gates (Qiskit semantics); "
                                   "pauli_two_design always uses its own even-then-odd pairs.")
    depth: int = param(2, low=1, high=20, help="Ansatz repetitions (layers).")
    readout: str = param(
        "z_per_class", choices=READOUTS,
        help="z_per_class: softmax over ⟨Z_c⟩ on qubit c; mod_k: class = basis index mod K (Qiskit "
             "little-endian); parity (Z₀Z₁) and all_z (Z on every qubit), binary tasks only: "
             "p(1) = (1 − ⟨O⟩)/2, i.e. class 1 = odd parity of the measured bits.",
    )
    optimizer: str = param(
        "adam", choices=OPTIMIZERS,
        help="adam/sgd on TFQ adjoint gradients; cobyla, nelder_mead, spsa are gradient-free.",
    )
    learning_rate: float = param(0.05, low=0.0, high=10.0, low_inclusive=False, log=True,
                                 help="Step size for adam/sgd; for SPSA the calibrated size of the first step "
                                      "(Qiskit's default 2π/10 ≈ 0.63); ignored by COBYLA/Nelder–Mead.")
    epochs: int = param(20, low=1, high=5000,
                        help="Epochs (adam/sgd) or iterations (gradient-free) unless a budget preset sets them.")
    batch_size: int = param(32, low=1, high=1024, help="Mini-batch size for adam/sgd.")
    init: str = param("uniform", choices=INITS,
                      help="Initial weights: U[0,2π), N(0,1/depth), zeros, Beta fitted to data, a constant, "
                           "N(μ, σ) of that Beta (normal_beta), or its mean μ for every weight (beta_mu).")
    init_constant: float = param(0.1, low=-10.0, high=10.0, help="Value of every weight when init = constant.")
    shots: int = param(0, low=0, high=1_000_000,
                       help="0 = exact expectations; >0 = sampled with this many shots. With gate noise, shots "
                            "are drawn from the exact noisy distribution for gradient-free optimizers (≤ 8 "
                            "qubits); adam/sgd run one TFQ noisy trajectory per shot (slow: ~8 s per step at "
                            "4 qubits and 100 shots).")
    seed: int = param(0, low=0, high=2**31 - 1,
                      help="Seeds the split, the initial point, SPSA, the pauli_two_design axes and shots drawn "
                           "from density matrices. TFQ's shot sampling and noise trajectories cannot be seeded, "
                           "so those runs vary slightly.")
    validation_fraction: float = param(0.2, low=0.0, high=0.5, low_inclusive=False, high_inclusive=False,
                                       help="Share of rows held out for validation (stratified).")
    test_fraction: float = param(0.2, low=0.0, high=0.5, low_inclusive=False, high_inclusive=False,
                                 help="Share of rows held out for the final test (stratified).")
    # --- added in schema v2; every default reproduces v1 ---------------------------------------------
    input_activation: str = param(
        "linear", choices=ACTIVATIONS,
        help="Applied to the scaled features before encoding: linear (as is) or tanh (A′ input activation).",
    )
    feature_map_entanglement: str = param(
        "same", choices=("same", *ENTANGLEMENTS),
        help="Pair pattern of the ZZ feature map: 'same' as the ansatz entanglement, or its own pattern. "
             "Only zz_feature_map uses it.",
    )
    entangler: str = param(
        "auto", choices=ENTANGLERS,
        help="Two-qubit gate of the ansatz: auto = the ansatz's own (CZ for hardware_efficient and "
             "pauli_two_design, CX for real_amplitudes / efficient_su2), or cx, cz, √iSWAP for all.",
    )
    reduced_rotations: bool = param(
        False, help="hardware_efficient only: one rotation (RY) per qubit and layer instead of RY+RZ "
                    "(A′ have_less_rotations).",
    )
    init_mode: str = param(
        "correct", choices=INIT_MODES,
        help="correct: start from the chosen init; authors: start from U[0,1) whatever the init, as the "
             "authors' code of Herbst et al. did by mistake.",
    )
    loss_log_base: str = param("e", choices=("e", "2"),
                               help="Logarithm of the cross-entropy: natural (e) or log₂ as in qiskit-ml.")
    loss_reduction: str = param("mean", choices=("mean", "sum"),
                                help="Cross-entropy averaged or summed over the samples (qiskit-ml 0.6 sums).")
    budget_preset: str = param(
        "none", choices=BUDGET_PRESETS,
        help="Gradient-free iteration budget: none = epochs; herbst_intended / herbst_as_run = the paper's "
             "budget per optimizer, noisy or noiseless (as_run has the Nelder–Mead/SPSA swap).",
    )
    noise_1q: float = param(0.0, low=0.0, high=0.2,
                            help="Depolarizing probability after every 1-qubit gate (0 = noiseless).")
    noise_2q: float = param(0.0, low=0.0, high=0.2,
                            help="Depolarizing probability on each qubit of every 2-qubit gate, after it.")
    amplitude_damping: float = param(0.0, low=0.0, high=0.2,
                                     help="Amplitude-damping γ on every qubit a gate acts on, after each gate.")
    readout_error: float = param(0.0, low=0.0, high=0.5,
                                 help="Symmetric bit-flip probability per measured qubit.")

    @property
    def is_noisy(self) -> bool:
        """Any noise field > 0 (gate noise or readout error)."""
        return any(getattr(self, name) > 0 for name in NOISE_FIELDS)

    @property
    def has_gate_noise(self) -> bool:
        """Noise channels in the circuit (readout error alone is applied to the observables)."""
        return any(getattr(self, name) > 0 for name in GATE_NOISE_FIELDS)

    @property
    def iterations_budget(self) -> int | None:
        """Iterations of a gradient-free optimiser (``epochs`` or the preset's), None for adam/sgd."""
        if self.optimizer not in GRADIENT_FREE_OPTIMIZERS:
            return None
        if self.budget_preset == "none":
            return self.epochs
        return HERBST_BUDGETS[(self.budget_preset, self.is_noisy)][self.optimizer]

    def memory_estimate(self) -> MemoryEstimate:
        n = self.n_qubits
        # adam/sgd hold one batch; gradient-free optimisers evaluate the whole training split at once.
        rows = self.batch_size if self.optimizer in GRADIENT_OPTIMIZERS else DATASETS[self.dataset].n_samples
        if self.has_gate_noise and self.shots == 0:  # density matrices, intermediates kept for backprop
            copies = 2 * self.depth + 4
            return MemoryEstimate("n_qubits", rows * 4**n * 8 * copies,
                                  f"{rows} rows × 4^{n} density-matrix entries (complex64) × {copies} copies")
        return MemoryEstimate("n_qubits", rows * 2**n * 8 * 4,
                              f"{rows} rows × 2^{n} amplitudes (complex64) × 4 working copies (adjoint)")

    def validate(self) -> None:
        info = DATASETS[self.dataset]
        k = info.n_classes
        if self.reduction == "lda" and self.n_qubits > k - 1:
            raise SpecError("n_qubits", f"must be ≤ {k - 1} (classes − 1) with reduction 'lda' on "
                            f"{self.dataset}, got {self.n_qubits}")
        if self.reduction == "none" and self.n_qubits != info.n_features:
            raise SpecError("n_qubits", f"must equal the {info.n_features} features of {self.dataset} "
                            f"with reduction 'none', got {self.n_qubits}")
        if self.reduction == "pca" and self.n_qubits > info.n_features:
            raise SpecError("n_qubits", f"must be ≤ {info.n_features} (features of {self.dataset}) "
                            f"with reduction 'pca', got {self.n_qubits}")
        if self.readout == "z_per_class" and k > self.n_qubits:
            raise SpecError("readout", f"'z_per_class' needs one qubit per class ({k} classes, "
                            f"{self.n_qubits} qubits); use 'mod_k' or more qubits")
        if self.readout == "mod_k" and k & (k - 1) and self.n_qubits > MOD_K_MAX_QUBITS:
            raise SpecError("readout", f"'mod_k' with {k} classes (not a power of two) needs up to 2^n "
                            f"Pauli terms per class; use n_qubits ≤ {MOD_K_MAX_QUBITS} or 'z_per_class'")
        if self.readout in BINARY_READOUTS and k != 2:
            raise SpecError("readout", f"{self.readout!r} is for binary tasks; {self.dataset} has {k} classes, "
                            f"so use one of 'z_per_class', 'mod_k'")
        if self.readout == "parity" and self.n_qubits < 2:
            raise SpecError("readout", "'parity' measures Z₀Z₁ and needs n_qubits ≥ 2; use 'all_z' or 'mod_k'")
        if self.encoding == "zz_feature_map" and self.n_qubits < 2:
            raise SpecError("encoding", "'zz_feature_map' needs n_qubits ≥ 2")
        if self.validation_fraction + self.test_fraction >= 0.8:
            raise SpecError("test_fraction", "validation_fraction + test_fraction must be < 0.8 "
                            "so that training keeps at least 20 % of the rows")
        if self.reduced_rotations and self.ansatz != "hardware_efficient":
            raise SpecError("reduced_rotations", f"applies to ansatz 'hardware_efficient' only, got ansatz "
                            f"{self.ansatz!r}; set it to false")
        if self.budget_preset != "none" and self.optimizer not in GRADIENT_FREE_OPTIMIZERS:
            raise SpecError("budget_preset", f"sets iteration budgets of {', '.join(GRADIENT_FREE_OPTIMIZERS)} "
                            f"only; use 'none' with optimizer {self.optimizer!r}")
        if self.has_gate_noise and self.shots == 0 and self.n_qubits > NOISE_EXACT_MAX_QUBITS:
            raise SpecError("n_qubits", f"gate noise with shots = 0 is simulated exactly with density matrices, "
                            f"which needs n_qubits ≤ {NOISE_EXACT_MAX_QUBITS}, got {self.n_qubits}; use shots > 0 "
                            f"(noise by Monte-Carlo trajectories, one per shot) or fewer qubits")

    def noise_settings(self) -> dict[str, float]:
        """The four noise fields, as stored with a result."""
        return {name: getattr(self, name) for name in NOISE_FIELDS}
