"""Spec of the ``qnn`` kind: one variational quantum classifier configuration per run.

Field names are a public contract (CLI, scripts, stored runs). This module must stay light: the web
process imports it to build forms and validate input. Training lives in ``qnn_train``.
"""

from __future__ import annotations

from dataclasses import dataclass

from qmlapp.datasets import DATASETS
from qmlapp.specs import Spec, SpecError, param

MAX_QUBITS = 16  # TFQ adjoint training step at 16 qubits, batch 32: ~0.5 s on 2 cores
# mod_k with K not a power of two expands into up to 2^n Z-strings per class: a batch-32 forward
# pass takes 0.22 s at n=8, K=3 but 7.3 s at n=12 (measured), so larger registers are refused.
MOD_K_MAX_QUBITS = 8

ENCODINGS = ("angle", "z_feature_map", "zz_feature_map", "reuploading")
ANSATZES = ("hardware_efficient", "real_amplitudes", "efficient_su2")
ENTANGLEMENTS = ("linear", "circular", "full", "pairwise", "sca")
READOUTS = ("z_per_class", "mod_k")
OPTIMIZERS = ("adam", "sgd", "cobyla", "nelder_mead", "spsa")
GRADIENT_OPTIMIZERS = ("adam", "sgd")
INITS = ("uniform", "normal", "zeros", "beta", "constant")


@dataclass(frozen=True)
class QnnSpec(Spec):
    """A QNN classifier: data pipeline, circuit, readout, optimiser and seeds."""

    kind = "qnn"
    schema_version = 1

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
    ansatz: str = param("hardware_efficient", choices=ANSATZES, help="Trainable circuit family.")
    entanglement: str = param("linear", choices=ENTANGLEMENTS, help="CNOT/CZ pattern (Qiskit semantics).")
    depth: int = param(2, low=1, high=20, help="Ansatz repetitions (layers).")
    readout: str = param(
        "z_per_class", choices=READOUTS,
        help="z_per_class: softmax over ⟨Z_c⟩ on qubit c; mod_k: class = basis index mod K (Qiskit little-endian).",
    )
    optimizer: str = param(
        "adam", choices=OPTIMIZERS,
        help="adam/sgd on TFQ adjoint gradients; cobyla, nelder_mead, spsa are gradient-free.",
    )
    learning_rate: float = param(0.05, low=0.0, high=10.0, low_inclusive=False, log=True,
                                 help="Step size for adam/sgd; for SPSA the calibrated size of the first step "
                                      "(Qiskit's default 2π/10 ≈ 0.63); ignored by COBYLA/Nelder–Mead.")
    epochs: int = param(20, low=1, high=5000, help="Epochs (adam/sgd) or iterations (gradient-free).")
    batch_size: int = param(32, low=1, high=1024, help="Mini-batch size for adam/sgd.")
    init: str = param("uniform", choices=INITS,
                      help="Initial weights: U[0,2π), N(0,1/depth), zeros, Beta fitted to data, or a constant.")
    init_constant: float = param(0.1, low=-10.0, high=10.0, help="Value of every weight when init = constant.")
    shots: int = param(0, low=0, high=1_000_000, help="0 = exact expectations; >0 = sampled with this many shots.")
    seed: int = param(0, low=0, high=2**31 - 1,
                      help="Seeds the split, the initial point and SPSA. Shot sampling (shots > 0) runs in "
                           "TFQ's C++ sampler, which cannot be seeded, so sampled runs vary slightly.")
    validation_fraction: float = param(0.2, low=0.0, high=0.5, low_inclusive=False, high_inclusive=False,
                                       help="Share of rows held out for validation (stratified).")
    test_fraction: float = param(0.2, low=0.0, high=0.5, low_inclusive=False, high_inclusive=False,
                                 help="Share of rows held out for the final test (stratified).")

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
        if self.encoding == "zz_feature_map" and self.n_qubits < 2:
            raise SpecError("encoding", "'zz_feature_map' needs n_qubits ≥ 2")
        if self.validation_fraction + self.test_fraction >= 0.8:
            raise SpecError("test_fraction", "validation_fraction + test_fraction must be < 0.8 "
                            "so that training keeps at least 20 % of the rows")
