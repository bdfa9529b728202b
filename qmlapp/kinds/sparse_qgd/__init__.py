"""Sparse, dissipative (stochastic) gradient descent on a quantum computer via Carleman linearisation
(Liu et al., Nature Communications 15, 434 (2024); base algorithm Liu et al., PNAS 118 (2021)).

* :mod:`.carleman` (NumPy/SciPy): the quadratic model du/dt = F₀ + F₁u + F₂(u⊗u) of GD around a reference
  point, the Carleman matrix, Carleman+Euler against the exact GD iterates, the R-number, the step guard,
  the dissipativity classification of a Hessian spectrum, the discrete history system 𝓛 = I − S⊗M (our
  construction, the paper leaves the discrete-time version open) with its condition number, and the
  Hermitian dilation / power-of-two padding needed by HHL.
* :mod:`.small_solve` (Cirq + qsimcirq): a tiny history system solved by HHL on qsim ("simulated") and the
  same algorithm emulated exactly in the eigenbasis ("emulated").
* :mod:`.cost` (pure Python/NumPy): the per-window qubit / query / I/O cost model and the paper-scale
  extrapolation (every number there is "estimated").
"""

from __future__ import annotations

from qmlapp.kinds.base import ExperimentKind, Objective
from qmlapp.kinds.sparse_qgd.result import SparseQgdResult
from qmlapp.kinds.sparse_qgd.spec import SparseQgdSpec


def _run_name(spec: SparseQgdSpec) -> str:
    return f"{spec.dataset} {spec.model} · prune {spec.prune_ratio:g} · window {spec.window_steps} steps"


KIND = ExperimentKind(
    name="sparse_qgd",
    title="Quantum dissipative sparse GD",
    description=(
        "Dense training, magnitude pruning and sparse training of a small network with Hessian spectra "
        "at checkpoints: is training dissipative and sparse enough for a fault-tolerant quantum ODE / "
        "linear solver (Carleman linearisation) to pay off? Cost model to paper scale, and a tiny history "
        "system solved by HHL on qsim."
    ),
    icon="🌿",
    page_title="Sparse quantum GD",
    url_path="Sparse_quantum_GD",
    spec_class=SparseQgdSpec,
    result_type=SparseQgdResult,
    runner="qmlapp.kinds.sparse_qgd.run:run",
    view="qmlapp.ui.kinds.sparse_qgd",
    objectives=(
        Objective("estimated_speedup_at_target", "estimated speed-up at the target size", "ratio", "maximize",
                  "estimated"),
        Objective("final_test_accuracy", "test accuracy", "fraction correct", "maximize", "computed"),
        Objective("favourable_windows", "windows where the quantum solver pays off", "windows", "maximize",
                  "estimated"),
        Objective("kappa_history", "condition number of the history system", "κ", "minimize", "computed"),
    ),
    summary_keys=("n_params", "sparsity", "negative_eigen_fraction_after_prune", "r_number", "kappa_history",
                  "favourable_windows", "estimated_speedup_at_target"),
    curve_metrics=("test_accuracy", "train_loss", "negative_fraction", "lambda_min", "lambda_max"),
    form_groups=(
        ("Training", ("dataset", "model", "hidden_units", "channels", "dense_epochs", "prune_ratio", "sparse_epochs",
                      "learning_rate", "batch_size", "checkpoints_per_epoch", "seed")),
        ("Quantum solver model", ("carleman_order", "window_steps", "epsilon", "download_precision", "qlsa",
                                  "gate_time_s", "target_params", "small_solve")),
    ),
    example={"hidden_units": 8, "dense_epochs": 1, "sparse_epochs": 1, "window_steps": 5},
    run_name=_run_name,
    curve_provenance="computed",  # classical training of a classical network
    headline="{favourable_windows} favourable windows · κ(history) {kappa_history:.3g} (computed) · "
             "speed-up at target {estimated_speedup_at_target:.2g} (estimated)",
    units={"wall_time_s": "s", "sparsity": "fraction pruned",
           "negative_eigen_fraction_after_prune": "fraction of eigenvalues", "r_number": "dimensionless"},
)
