"""Built-in studies: sweep definitions a user can start (and edit) from the Sweeps page or the CLI."""

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
    )
}
