"""Built-in studies: sweep definitions a user can start (and edit) from the Sweeps page or the CLI.

Two QNN design studies and one study per other experiment kind, each small enough for one worker on
2 CPU cores (the description says how long it takes)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Preset:
    name: str
    title: str
    description: str
    definition: dict[str, Any]


PRESETS: dict[str, Preset] = {
    p.name: p
    for p in (
        Preset(
            name="banknote_design_study",
            title="Banknote: encoding × ansatz × optimizer × scaling (2 seeds)",
            description=(
                "A small Herbst-style design study on the UCI banknote data: 4 qubits (PCA), depth 2, "
                "3 encodings × 3 ansätze × 2 optimizers × 2 scalings on a grid, each configuration with "
                "2 seeds, ranked by validation accuracy. Sized for 2 CPU cores in about 10–15 minutes."
            ),
            definition={
                "kind": "qnn",
                "base": {"dataset": "banknote", "n_qubits": 4, "depth": 2, "epochs": 15, "learning_rate": 0.05},
                "space": {
                    "encoding": ["angle", "zz_feature_map", "reuploading"],
                    "ansatz": ["hardware_efficient", "real_amplitudes", "efficient_su2"],
                    "optimizer": ["adam", "spsa"],
                    "scaling": ["minmax_pi", "standard"],
                },
                "sampler": "grid", "n_trials": 36, "objective": "val_accuracy", "repeats": 2, "seed": 0,
            },
        ),
        Preset(
            name="iris_learning_rate_tpe",
            title="Iris: learning rate, depth and entanglement with TPE (Moussa-style)",
            description=(
                "A random-search/TPE study in the spirit of Moussa et al.: log-uniform learning rate, "
                "depth 1–6, entanglement pattern and initialisation on Iris with Adam; 24 trials."
            ),
            definition={
                "kind": "qnn",
                "base": {"dataset": "iris", "n_qubits": 4, "epochs": 10},
                "space": {
                    "learning_rate": {"low": 0.001, "high": 0.5, "log": True},
                    "depth": {"low": 1, "high": 6},
                    "entanglement": ["linear", "circular", "full"],
                    "init": ["uniform", "normal", "zeros"],
                },
                "sampler": "tpe", "n_trials": 24, "objective": "val_accuracy", "repeats": 1, "seed": 0,
            },
        ),
        # Durations: each study run whole with one worker (the CLI's --wait) on 2 shared cores at load 3–10;
        # the stated minutes are two to five times what it took (38–98 s), margin for a slower machine.
        Preset(
            name="hypernet_depth_restarts",
            title="Hypernetwork: code depth × restarts on a 10-bit custom problem (2 seeds)",
            description=(
                "How often does training reach the optimal networks as the circuit deepens and restarts are "
                "added? A 2→2→1 binary network with an activation bit on 1,000 Gaussian points (10 bits = "
                "10 qubits), code depth 1, 2, 4 × 2 or 5 restarts on a grid, each with 2 seeds, ranked by the "
                "simulated share of restarts reaching the optimum. 12 runs of 1–16 s: about 3 min on 2 cores."
            ),
            definition={
                "kind": "hypernet",
                "base": {"problem": "custom", "custom_dataset": "gaussian2d", "custom_hidden": 2,
                         "custom_activation_bit": True, "n_points": 1000, "study_depths": "",
                         "max_iterations": 200, "eval_samples": 200},
                "space": {"depth": [1, 2, 4], "restarts": [2, 5]},
                "sampler": "grid", "n_trials": 6, "objective": "success_probability", "repeats": 2, "seed": 0,
            },
        ),
        Preset(
            name="qnetwork_features_layers",
            title="Quantum network: features N × layers L (communication advantage)",
            description=(
                "Where does shipping the quantum state beat shipping the data or the model? Inference over "
                "the quantum channel (ε = 0.2, 100 rotations per unitary) for N = 16, 64, 256, 1,024 features "
                "(4–10 qubits) × L = 1, 2, 4 layers on a grid, ranked by classical bits ÷ qubits communicated "
                "(computed; above 1 the quantum protocol communicates less). 12 runs of 0.5–20 s: about 2 min "
                "on 2 cores."
            ),
            definition={
                "kind": "qnetwork",
                "base": {"mode": "inference", "params_per_unitary": 100, "epsilon": 0.2, "n_inputs": 8,
                         "scaling_study": False},
                "space": {"n_features": [16, 64, 256, 1024], "layers": [1, 2, 4]},
                "sampler": "grid", "n_trials": 12, "objective": "advantage_ratio", "repeats": 1, "seed": 0,
            },
        ),
        Preset(
            name="qnewton_gate_time_regularisation",
            title="Q-Newton: gate time × ε_norm × Hessian pruning (estimated speed-up vs SGD)",
            description=(
                "When does scheduling Hessian solves to a quantum linear solver pay off? Gate time 1 ps, "
                "0.1 ns, 10 ns × regulariser ε_norm 0.1, 1, 10 (a larger ε_norm lowers κ, hence the quantum "
                "cost, but bends the Newton step towards gradient descent) × kept fraction of Hessian entries "
                "0.5 or 1 on a grid, for an 8-hidden-unit MLP on 4×4 digits (2 epochs, SGD/Adam/Newton "
                "baselines), ranked by the estimated training-time speed-up over SGD; each run also reports its "
                "test accuracy (computed). 18 runs of 1–12 s: about 3 min on 2 cores."
            ),
            definition={
                "kind": "qnewton",
                "base": {"dataset": "digits_4x4", "hidden_units": 8, "epochs": 2, "batch_size": 256,
                         "hhl_demo": False},
                "space": {"gate_time_s": [1e-12, 1e-10, 1e-8], "epsilon_norm": [0.1, 1.0, 10.0],
                          "prune_ratio": [0.5, 1.0]},
                "sampler": "grid", "n_trials": 18, "objective": "speedup_vs_sgd", "repeats": 1, "seed": 0,
            },
        ),
        Preset(
            name="sparse_qgd_prune_window",
            title="Sparse quantum GD: prune ratio × window steps (κ of the history system)",
            description=(
                "How do pruning and the length of a quantum window condition the linear system a quantum "
                "ODE solver would invert? Prune ratio 0.5, 0.8, 0.95 × window of 5, 20, 50 GD steps on a grid "
                "for a 16-hidden-unit MLP on digits (3 dense + 3 sparse epochs, tiny HHL solve on qsim), ranked "
                "by the condition number κ of the history system (computed; lower is better). Each run also "
                "reports the favourable windows and the speed-up at the target size (estimated). 9 runs of "
                "7–25 s: about 3 min on 2 cores."
            ),
            definition={
                "kind": "sparse_qgd",
                "base": {"hidden_units": 16, "dense_epochs": 3, "sparse_epochs": 3, "small_solve": True},
                "space": {"prune_ratio": [0.5, 0.8, 0.95], "window_steps": [5, 20, 50]},
                "sampler": "grid", "n_trials": 9, "objective": "kappa_history", "repeats": 1, "seed": 0,
            },
        ),
    )
}
