"""Spec of the ``qnetwork`` kind: distributed inference and learning over a quantum channel.

Gilboa, Michaeli, Soudry & McClean (NeurIPS 2024): Alice holds the data x (amplitude-encoded in
⌈log₂N⌉ qubits) and unitaries A_ℓ, Bob holds B_ℓ; the register crosses the Alice|Bob cut after every
unitary. Field names are a public contract. Light module (forms, validation); the protocol simulation
and training live in :mod:`qmlapp.kinds.qnetwork` and :mod:`qmlapp.kinds.qnetwork.run`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from qmlapp.resources import MemoryEstimate
from qmlapp.specs import Spec, SpecError, param

# N = 2^16 is simulated for real (a 16-qubit state vector, 1 MiB); up to 2^20 still fits comfortably.
MAX_QUBITS = 20
# Training runs TFQ adjoint gradients on circuits that include the amplitude-encoding tree (2^n − 1
# multi-controlled RY gates), so it is limited to small registers.
MAX_TRAIN_QUBITS = 8
ANSATZES = ("hardware_efficient", "zz_two_local")
OBSERVABLES = ("z0", "zz01", "parity")
# name -> (features after zero-padding to a power of two, description)
QNET_DATASETS: dict[str, tuple[int | None, str]] = {
    "synthetic": (None, "seeded random inputs of dimension N; for training, labels from a random teacher "
                        "network of the same architecture (a task that needs its depth)"),
    "digits": (64, "scikit-learn digits 0 vs 1, 8×8 = 64 pixels → 6 qubits"),
    "breast_cancer": (32, "Wisconsin diagnostic breast cancer, 30 features padded to 32 → 5 qubits"),
    "rice": (8, "Rice (Cammeo/Osmancik), 7 features padded to 8 → 3 qubits"),
    "banknote": (4, "Banknote authentication, 4 features → 2 qubits"),
}


@dataclass(frozen=True)
class QnetworkSpec(Spec):
    """Model split between Alice and Bob, the task, the precision target and the classical baselines."""

    kind = "qnetwork"
    schema_version = 1

    n_features: int = param(1024, low=2, high=2**MAX_QUBITS,
                            help="N, the input dimension; the register has ⌈log₂N⌉ qubits (inputs zero-padded). "
                                 "Datasets fix N to their padded size.")
    layers: int = param(2, low=1, high=8, help="L: the model is B_L A_L ⋯ B₁ A₁ (Alice's and Bob's unitaries "
                                               "alternate; the register crosses the cut after each).")
    params_per_unitary: int = param(20, low=1, high=400, help="P: trainable rotations in each A_ℓ and each B_ℓ.")
    ansatz: str = param("hardware_efficient", choices=ANSATZES,
                        help="hardware_efficient: RY then RZ on each qubit, a CZ ladder after every round; "
                             "zz_two_local: RY on each qubit, then ZZ(φ) on neighbouring pairs.")
    data_layers: bool = param(True, help="Alice re-uploads her data in each A_ℓ (RZ(c·zⱼ(x)) with a fixed random "
                                         "projection z = Rx̂): no extra communication, but without it the output "
                                         "is a quadratic form in x̂ at every depth.")
    data_scale: float = param(3.0, low=0.0, high=100.0, help="c, the angle scale of the data re-uploading.")
    observable: str = param("z0", choices=OBSERVABLES, help="Bob measures Z on qubit 0, Z₀Z₁, or the parity of all.")
    mode: str = param("inference", choices=("inference", "training"),
                      help="inference: run the protocol on inputs and count communication; training: train the "
                           "split model with TFQ gradients and count the gradient communication.")
    gradient: str = param("parameter_shift", choices=("parameter_shift", "shadow_bound"),
                          help="How gradients would be estimated over the channel: parameter shift (simulated "
                               "with shots) or the shadow-tomography bound (estimated, asymptotic).")
    epsilon: float = param(0.05, low=0.0, high=1.0, low_inclusive=False,
                           help="Target precision ε of each estimated expectation (± on ℒ ∈ [−1, 1]).")
    delta: float = param(0.05, low=0.0, high=0.5, low_inclusive=False, help="Failure probability δ (Hoeffding).")
    shots: int = param(0, low=0, high=10_000_000,
                       help="Copies K per expectation; 0 derives K = ⌈2 ln(2/δ)/ε²⌉ from ε and δ.")
    dataset: str = param("synthetic", choices=tuple(QNET_DATASETS), help="Inputs (and labels for training).")
    bits_per_number: int = param(32, choices=(16, 32, 64), help="b: bits per real number in classical baselines.")
    linear_margin: float = param(0.1, low=0.0, high=1.0, low_inclusive=False,
                                 help="γ: margin of the linear-classifier comparison (cost ∝ 1/γ²).")
    shadow_constant: float = param(1.0, low=0.0, high=1e6, low_inclusive=False,
                                   help="C in the shadow-tomography estimate C·L²·log₂²(2LP)·log₂²N/ε⁴ qubits "
                                        "(asymptotic scaling; the constant is unknown, so it is a parameter).")
    scaling_study: bool = param(True, help="Also simulate the inference protocol for N = 2², 2³, … up to N "
                                           "and plot communication vs N.")
    n_inputs: int = param(8, low=1, high=1000, help="Inputs the inference protocol is run on.")
    epochs: int = param(20, low=1, high=500, help="Training epochs (training mode).")
    learning_rate: float = param(0.05, low=0.0, high=10.0, low_inclusive=False, help="Adam step size.")
    batch_size: int = param(32, low=1, high=1024, help="Training batch size.")
    train_size: int = param(400, low=8, high=20_000, help="Training examples used (synthetic: generated).")
    seed: int = param(0, low=0, high=2**31 - 1, help="Seeds inputs, parameters, projections and shots.")

    @property
    def n_qubits(self) -> int:
        return max(1, math.ceil(math.log2(self.n_features)))

    @property
    def copies(self) -> int:
        """K: copies per expectation (explicit shots, or Hoeffding from ε and δ)."""
        if self.shots:
            return self.shots
        return math.ceil(2 * math.log(2 / self.delta) / self.epsilon**2)

    def memory_estimate(self) -> MemoryEstimate:
        n, dim = self.n_qubits, 2**self.n_qubits
        if self.mode == "training":  # TFQ batches (complex64, adjoint copies) plus the float32 training data
            size = self.batch_size * dim * 8 * 4 + self.train_size * dim * 4
            return MemoryEstimate("n_features", size, f"batch {self.batch_size} × 2^{n} amplitudes × 4 copies + "
                                                      f"{self.train_size} inputs × {dim} features")
        # The inputs (float64), then per input a few complex128 state vectors of the two parties.
        return MemoryEstimate("n_features", self.n_inputs * dim * 8 + 8 * dim * 16,
                              f"{self.n_inputs} inputs × {dim} features (float64) + 8 state vectors of 2^{n}")

    def validate(self) -> None:
        padded, _ = QNET_DATASETS[self.dataset]
        if padded is not None and self.n_features != padded:
            raise SpecError("n_features", f"must be {padded} for dataset {self.dataset!r} (its features zero-padded "
                            f"to a power of two), got {self.n_features}")
        n = self.n_qubits
        if self.observable != "z0" and n < 2:
            raise SpecError("observable", f"{self.observable!r} needs at least 2 qubits (N ≥ 3)")
        if self.mode == "training":
            if n > MAX_TRAIN_QUBITS:
                raise SpecError("n_features", f"training simulates N ≤ 2^{MAX_TRAIN_QUBITS} = "
                                f"{2**MAX_TRAIN_QUBITS} (the amplitude-encoding tree grows as 2^n gates); got "
                                f"{self.n_features}. Use mode 'inference' for larger N")
            if self.batch_size > self.train_size:
                raise SpecError("batch_size", f"must be ≤ train_size ({self.train_size}), got {self.batch_size}")
