"""Spec of the ``sparse_qgd`` kind: when is pruned training dissipative and sparse enough for a
fault-tolerant quantum ODE/linear solver to pay off? (Liu et al., Nature Communications 2024.)

Field names are a public contract. Light module (forms, validation); the numerics are in
:mod:`qmlapp.kinds.sparse_qgd` and :mod:`qmlapp.kinds.sparse_qgd.run`.
"""

from __future__ import annotations

from dataclasses import dataclass

from qmlapp.specs import Spec, SpecError, param

MODELS = ("mlp", "small_cnn")
# Exact Hessians (eigh) up to this many unpruned parameters; Lanczos (80 Hessian-vector products) above:
# exact takes ~1 s at 567 coordinates and 4–15 s at 2,410 on 2 cores, Lanczos ~0.4 s (measured).
EXACT_HESSIAN_MAX = 1000


@dataclass(frozen=True)
class SparseQgdSpec(Spec):
    """Training schedule (dense → prune → sparse), the Carleman/QLSA cost model and paper-scale targets."""

    kind = "sparse_qgd"
    schema_version = 1

    dataset: str = param("digits", choices=("digits",), help="scikit-learn digits (8×8, 10 classes).")
    model: str = param("mlp", choices=MODELS,
                       help="mlp: 64 → hidden → 10 (tanh); small_cnn: 8×8 conv(3×3, channels) → tanh → dense 10 (tanh, "
                            "not ReLU: ReLU makes the Hessian piecewise constant in its second derivatives).")
    hidden_units: int = param(32, low=2, high=256, help="MLP hidden units.")
    channels: int = param(4, low=1, high=32, help="small_cnn: convolution channels.")
    dense_epochs: int = param(10, low=1, high=200, help="Dense (classical) pre-training epochs.")
    prune_ratio: float = param(0.9, low=0.0, high=0.99,
                               help="Fraction of weights REMOVED by global magnitude pruning (not the last layer); "
                                    "0.9 = 90 % zeros.")
    sparse_epochs: int = param(10, low=1, high=200, help="Sparse training epochs after pruning (mask fixed).")
    learning_rate: float = param(0.05, low=0.0, high=10.0, low_inclusive=False, help="SGD step size η.")
    batch_size: int = param(128, low=8, high=2048, help="Mini-batch size.")
    carleman_order: int = param(2, low=1, high=4, help="N_c: Carleman truncation order.")
    window_steps: int = param(20, low=1, high=200, help="T: GD steps per quantum window (history system size).")
    epsilon: float = param(1e-3, low=0.0, high=0.5, low_inclusive=False, log=True,
                           help="Target precision of the quantum linear solve.")
    download_precision: float = param(1e-2, low=0.0, high=1.0, low_inclusive=False, log=True,
                                      help="δ_d: ℓ₂ error of the amplitude tomography that downloads the weights.")
    qlsa: str = param("optimal", choices=("hhl", "optimal"),
                      help="Query scaling of the linear solver: κ² (textbook HHL) or κ (optimal-κ solvers).")
    gate_time_s: float = param(1e-7, low=1e-15, high=1e-3, log=True, help="Time per logical gate / query step (s).")
    target_params: float = param(7e6, low=1e3, high=1e12, log=True,
                                 help="Parameter count for the paper-scale estimate (e.g. 7e6 or 1.03e8), with the "
                                      "sparsity and spectra measured here carried over (labelled estimated).")
    checkpoints_per_epoch: int = param(1, low=1, high=10, help="Hessian spectra per epoch.")
    small_solve: bool = param(True, help="Solve a tiny Carleman history system with HHL on qsim (≤ 14 qubits).")
    seed: int = param(0, low=0, high=2**31 - 1, help="Seeds data split, weights, batches and Lanczos.")

    def validate(self) -> None:
        if self.model == "mlp" and 64 * self.hidden_units > 50_000:
            raise SpecError("hidden_units", f"at most {50_000 // 64} for the MLP (Hessian-vector products per "
                            "checkpoint stay under a few seconds)")
