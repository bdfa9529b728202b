"""Registry of experiment kinds: one entry per family.

Menus, the CLI ``kinds`` command, validation and generic tests all come from here. The ``run``
function is referenced by import path so the web process never imports TensorFlow.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from qmlapp.context import RunContext
from qmlapp.experiments.hypernet import HypernetSpec
from qmlapp.experiments.qnetwork import QnetworkSpec
from qmlapp.experiments.qnewton import QnewtonSpec
from qmlapp.experiments.qnn import QnnSpec
from qmlapp.experiments.sparse_qgd import SparseQgdSpec
from qmlapp.specs import Spec, SpecError, show_value

RunFn = Callable[[Any, RunContext], dict[str, Any]]


@dataclass(frozen=True)
class ExperimentKind:
    name: str
    title: str
    description: str
    spec_class: type[Spec]
    runner: str  # "module:function", imported lazily on the worker side
    summary_keys: tuple[str, ...]
    objectives: tuple[str, ...] = ()  # result keys a sweep may optimise (first = default); see analysis.trials
    headline: str = ""  # str.format template over the result: the run's one-line result in tables

    def headline_text(self, result: Mapping[str, Any] | None) -> str:
        """The headline with the run's numbers, or "" when the result lacks them."""
        if not result or not self.headline:
            return ""
        try:
            return self.headline.format(**result)
        except (KeyError, ValueError, TypeError, IndexError):
            return ""

    def load_runner(self) -> RunFn:
        module, func = self.runner.split(":")
        return getattr(importlib.import_module(module), func)  # type: ignore[no-any-return]


KINDS: dict[str, ExperimentKind] = {
    k.name: k
    for k in (
        ExperimentKind(
            name="qnn",
            title="QNN classifier",
            description=(
                "Trains a variational quantum classifier (encoding + ansatz + readout) on a tabular "
                "dataset with TensorFlow Quantum's qsim ops and adjoint gradients."
            ),
            spec_class=QnnSpec,
            runner="qmlapp.experiments.qnn_train:run",
            summary_keys=("val_accuracy", "test_accuracy", "test_f1", "wall_time_s"),
            objectives=("val_accuracy", "val_f1", "val_loss"),
            headline="val acc {val_accuracy:.3f} · test acc {test_accuracy:.3f} (simulated)",
        ),
        ExperimentKind(
            name="hypernet",
            title="Quantum hypernetwork",
            description=(
                "A variational circuit whose measured bitstrings are whole binary neural networks (weights, "
                "activation, encoding, width), trained in superposition on the exact expected loss; every "
                "network is enumerated, and success is measured against the true optimum at each depth."
            ),
            spec_class=HypernetSpec,
            runner="qmlapp.experiments.hypernet_train:run",
            summary_keys=("best_loss", "best_bitstring", "global_min_loss", "n_optimal_bitstrings",
                          "success_probability", "best_accuracy"),
            objectives=("success_probability", "born_mass_optimal", "best_loss"),
            headline="success {success_probability:.0%} · Born mass {born_mass_optimal:.2f} (simulated) · "
                     "best C {best_loss:.4g} vs C_min {global_min_loss:.4g} (computed)",
        ),
        ExperimentKind(
            name="qnetwork",
            title="Distributed learning over a quantum network",
            description=(
                "Alice holds the data, Bob part of the model; they exchange the amplitude-encoded register "
                "instead of data. The two-party protocol runs on qsim, every qubit crossing the cut is counted "
                "and compared with classical baselines (ship the data, ship the model, linear sketching)."
            ),
            spec_class=QnetworkSpec,
            runner="qmlapp.experiments.qnetwork_train:run",
            summary_keys=("loss_exact", "loss_estimate", "qubits_communicated", "rounds", "classical_bits_data",
                          "classical_bits_model", "advantage_ratio", "holevo_bound_bits"),
            objectives=("advantage_ratio", "loss_exact"),
            headline="{qubits_communicated:,.0f} qubits vs {classical_bits_data:,} / {classical_bits_model:,} bits "
                     "(data / model), ratio {advantage_ratio:.3g} (computed)",
        ),
        ExperimentKind(
            name="qnewton",
            title="Q-Newton",
            description=(
                "Newton training of an MLP where each per-layer Hessian solve is scheduled to a quantum linear "
                "solver (estimated cost from κ, sparsity and gate time) or a classical one (measured), with "
                "SGD/Adam/Newton baselines from the same weights and a real HHL demo on qsim."
            ),
            spec_class=QnewtonSpec,
            runner="qmlapp.experiments.qnewton_train:run",
            summary_keys=("final_loss", "final_accuracy", "n_quantum_solves", "n_classical_solves",
                          "total_time_estimated_s", "sgd_time_s", "speedup_vs_sgd", "kappa_initial", "kappa_final"),
            objectives=("final_accuracy", "speedup_vs_sgd", "final_loss"),
            headline="test acc {final_accuracy:.3f} (computed) · {n_quantum_solves} quantum / {n_classical_solves} "
                     "classical solves · {total_time_estimated_s:.3g} s (estimated)",
        ),
        ExperimentKind(
            name="sparse_qgd",
            title="Quantum dissipative sparse GD",
            description=(
                "Dense training, magnitude pruning and sparse training of a small network with Hessian spectra "
                "at checkpoints: is training dissipative and sparse enough for a fault-tolerant quantum ODE / "
                "linear solver (Carleman linearisation) to pay off? Cost model to paper scale, and a tiny history "
                "system solved by HHL on qsim."
            ),
            spec_class=SparseQgdSpec,
            runner="qmlapp.experiments.sparse_qgd_train:run",
            summary_keys=("n_params", "sparsity", "negative_eigen_fraction_after_prune", "r_number", "kappa_history",
                          "favourable_windows", "estimated_speedup_at_target"),
            objectives=("estimated_speedup_at_target", "final_test_accuracy"),
            headline="{favourable_windows} favourable windows · κ(history) {kappa_history:.3g} (computed) · "
                     "speed-up at target {estimated_speedup_at_target:.2g} (estimated)",
        ),
    )
}


def get_kind(name: str) -> ExperimentKind:
    if not isinstance(name, str) or name not in KINDS:  # an unhashable kind would raise TypeError
        raise SpecError("kind", f"unknown experiment kind {show_value(name)}; known kinds: {', '.join(KINDS)}")
    return KINDS[name]


def parse_spec(kind: str, data: Mapping[str, Any]) -> Spec:
    """Validate a plain mapping into the kind's frozen spec (raises :class:`SpecError`)."""
    return get_kind(kind).spec_class.from_dict(data)
