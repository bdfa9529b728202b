"""Quantum hypernetworks (Carrasquilla et al. 2023; Nepote et al. 2025): bit layouts, problems,
cost landscapes, the brickwork circuit engine and training. See ``qmlapp.kinds.hypernet.spec``."""

from __future__ import annotations

from qmlapp.kinds.base import ExperimentKind, Objective
from qmlapp.kinds.hypernet.result import HypernetResult
from qmlapp.kinds.hypernet.spec import HypernetSpec


def _run_name(spec: HypernetSpec) -> str:
    problem = spec.custom_dataset if spec.problem == "custom" else spec.problem
    depths = f"D={','.join(map(str, spec.study_depths))}" if spec.study_depths else f"D={spec.depth}"
    restarts = "1 restart" if spec.restarts == 1 else f"{spec.restarts} restarts"
    return f"{problem} · {depths} · {restarts} · {spec.optimizer}"


KIND = ExperimentKind(
    name="hypernet",
    title="Quantum hypernetwork",
    description=(
        "A variational circuit whose measured bitstrings are whole binary neural networks (weights, "
        "activation, encoding, width), trained in superposition on the exact expected loss; every "
        "network is enumerated, and success is measured against the true optimum at each depth."
    ),
    icon="🧬",
    page_title="Hypernetworks",
    url_path="Hypernetworks",
    spec_class=HypernetSpec,
    result_type=HypernetResult,
    runner="qmlapp.kinds.hypernet.run:run",
    view="qmlapp.ui.kinds.hypernet",
    objectives=(
        Objective("success_probability", "share of restarts reaching the optimum", "0–1", "maximize", "simulated"),
        Objective("born_mass_optimal", "Born mass on the optimal set", "probability", "maximize", "simulated"),
        Objective("best_loss", "loss of the best network found", "training loss", "minimize", "computed"),
        Objective("best_accuracy", "training accuracy of the best network", "fraction correct", "maximize",
                  "computed"),
    ),
    summary_keys=("best_loss", "best_bitstring", "global_min_loss", "n_optimal_bitstrings",
                  "success_probability", "best_accuracy"),
    curve_metrics=("D{depth}_r0_loss", "D{depth}_r0_optimal_mass"),  # restart 0 at the run's depth
    form_groups=(
        ("Problem", ("problem", "n_points", "qubit_order")),
        ("Custom problem", ("custom_dataset", "custom_hidden", "custom_activation_bit", "custom_encoding_bits",
                            "custom_width_bit")),
        ("Circuit", ("depth", "study_depths", "ansatz", "restarts")),
        ("Objective and optimiser", ("objective", "shots", "prior_weight", "optimizer", "learning_rate",
                                     "max_iterations")),
        ("Evaluation", ("tolerance", "eval_samples", "noise", "noise_trajectories", "seed")),
    ),
    example={"problem": "custom", "custom_hidden": 0, "n_points": 200, "depth": 2, "restarts": 1,
             "max_iterations": 20, "eval_samples": 50, "study_depths": "2"},
    run_name=_run_name,
    headline="success {success_probability:.0%} · Born mass {born_mass_optimal:.2f} (simulated) · "
             "best C {best_loss:.4g} vs C_min {global_min_loss:.4g} (computed)",
    units={"wall_time_s": "s", "train_time_s": "s", "enumeration_time_s": "s", "best_loss": "training loss",
           "global_min_loss": "training loss", "best_bitstring": "bits"},
)
