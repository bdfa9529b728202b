"""Q-Newton: Newton training whose Hessian solves are scheduled to a quantum or a classical linear solver
(Li, Liu, Wang & Chen 2024, arXiv 2405.00252).

:mod:`.linalg` (NumPy/SciPy only, cheap to import) prunes and regularises each Hessian block, computes its
condition number (exact and the Merikoski et al. determinant/Frobenius bound), the explicit-constant QLSA
query count, the estimated quantum and measured classical solve times, and the scheduler's choice.
:mod:`.hhl` runs the HHL algorithm for real on qsim (Cirq + qsimcirq) on small Hessian-like matrices, to
show what the cost model abstracts away: the success probability falling with κ and the fidelity against
the number of clock qubits.

What is real and what is estimated: every Newton update uses the classical solve H̃⁻¹g (a quantum solver
would return the same vector up to ε), so training is identical whichever solver is "chosen"; only the
time charged for the solve differs. Classical times are measured on this machine; quantum times are a
formula (query count × gates per query × gate time).
"""

from __future__ import annotations

from qmlapp.kinds.base import ExperimentKind, Objective
from qmlapp.kinds.qnewton.result import QnewtonResult
from qmlapp.kinds.qnewton.spec import QnewtonSpec


def _run_name(spec: QnewtonSpec) -> str:
    return (f"{spec.dataset} · {spec.optimizer} · gate {spec.gate_time_s:g} s · ε_norm {spec.epsilon_norm:g} · "
            f"prune {spec.prune_ratio:g}")


KIND = ExperimentKind(
    name="qnewton",
    title="Q-Newton",
    description=(
        "Newton training of an MLP where each per-layer Hessian solve is scheduled to a quantum linear "
        "solver (estimated cost from κ, sparsity and gate time) or a classical one (measured), with "
        "SGD/Adam/Newton baselines from the same weights and a real HHL demo on qsim."
    ),
    icon="🧮",
    page_title="Q-Newton",
    url_path="Q-Newton",
    spec_class=QnewtonSpec,
    result_type=QnewtonResult,
    runner="qmlapp.kinds.qnewton.run:run",
    view="qmlapp.ui.kinds.qnewton",
    objectives=(
        Objective("final_accuracy", "test accuracy", "fraction correct", "maximize", "computed"),
        Objective("speedup_vs_sgd", "time speed-up vs SGD", "ratio", "maximize", "estimated"),
        Objective("total_time_estimated_s", "total training time", "s", "minimize", "estimated"),
        Objective("final_loss", "test loss", "cross-entropy, nats", "minimize", "computed"),
    ),
    summary_keys=("final_loss", "final_accuracy", "n_quantum_solves", "n_classical_solves",
                  "total_time_estimated_s", "sgd_time_s", "speedup_vs_sgd", "kappa_initial", "kappa_final"),
    curve_metrics=("test_accuracy", "train_loss", "test_loss", "batch_loss", "train_accuracy"),
    form_groups=(
        ("Model and training", ("dataset", "hidden_units", "optimizer", "hessian", "epochs", "batch_size",
                                "learning_rate", "sgd_learning_rate", "adam_learning_rate", "baselines", "seed")),
        ("Newton step", ("epsilon_norm", "prune_ratio", "kappa_threshold")),
        ("Quantum cost model", ("qlsa_epsilon", "gate_time_s", "gates_per_query", "count_readout", "hhl_demo",
                                "hhl_size")),
    ),
    example={"dataset": "digits_4x4", "hidden_units": 4, "epochs": 1, "batch_size": 512, "hhl_size": 2},
    run_name=_run_name,
    curve_provenance="computed",  # classical training of a classical network
    headline="test acc {final_accuracy:.3f} (computed) · {n_quantum_solves} quantum / {n_classical_solves} "
             "classical solves · {total_time_estimated_s:.3g} s (estimated)",
    units={"total_time_estimated_s": "s", "sgd_time_s": "s", "wall_time_s": "s", "kappa_initial": "κ",
           "kappa_final": "κ"},
)
