"""Simulators come from the run context, with a thread count from the settings and the CPUs a process may use.

The recording factory below is a real :class:`Simulators` (it builds real qsim options, simulators and TFQ
backends); it only keeps a list of what it built, so a test can see which factory a run used.
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import qsimcirq
from helpers import TINY_QNN

from db import Storage
from qmlapp import services
from qmlapp.config import SIM_THREADS_ENV, Settings, usable_cpus
from qmlapp.context import LocalContext
from qmlapp.kinds.hypernet.circuit import HypernetCircuit
from qmlapp.registry import get_kind, parse_spec
from qmlapp.simulators import Simulators, TfqBackend
from qmlapp.worker import execute_run

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class RecordingSimulators(Simulators):
    """Simulators that keep what they built, in order."""

    built: list[Any] = field(default_factory=list, compare=False, repr=False)

    def qsim_options(self, *, max_fused_gate_size: int = 2) -> qsimcirq.QSimOptions:
        options = super().qsim_options(max_fused_gate_size=max_fused_gate_size)
        self.built.append(options)
        return options

    def tfq(self, **options: Any) -> TfqBackend:
        backend = super().tfq(**options)
        self.built.append(backend)
        return backend


# The smallest run of each kind that still reaches its qsim (or TFQ) code path.
RUNS: dict[str, dict[str, Any]] = {
    "hypernet": {"problem": "custom", "custom_dataset": "gaussian2d", "custom_hidden": 1, "n_points": 100,
                 "depth": 2, "restarts": 1, "max_iterations": 10, "eval_samples": 20, "noise": 1.0,
                 "noise_trajectories": 2},
    "qnetwork": {"n_features": 16, "layers": 1, "params_per_unitary": 4, "n_inputs": 1, "scaling_study": False,
                 "epsilon": 0.1},
    "qnewton": {"dataset": "digits_4x4", "hidden_units": 4, "epochs": 1, "batch_size": 512, "baselines": False,
                "hhl_size": 2},
    "sparse_qgd": {"hidden_units": 8, "dense_epochs": 1, "sparse_epochs": 1, "window_steps": 5},
    "qnn": TINY_QNN,
}


@pytest.mark.parametrize("kind", sorted(RUNS))
def test_a_run_builds_its_simulators_with_the_contexts_factory(kind: str) -> None:
    simulators = RecordingSimulators(threads=1)
    spec = parse_spec(kind, RUNS[kind])
    get_kind(kind).load_runner()(spec, LocalContext(seed=0, simulators=simulators))
    assert simulators.built, f"{kind} built no simulator through ctx.simulators"
    for built in simulators.built:
        if isinstance(built, TfqBackend):
            assert built.threads == 1
        else:
            assert built.cpu_threads == 1 and built.max_fused_gate_size == 2


def test_hypernet_qsim_paths_take_the_injected_factory() -> None:
    simulators = RecordingSimulators(threads=1)
    circuit = HypernetCircuit(4, 2)
    params = np.random.default_rng(0).uniform(0, 2 * np.pi, circuit.n_params)
    samples = circuit.sample_qsim(params, 50, seed=3, simulators=simulators)
    assert np.array_equal(samples, circuit.sample_qsim(params, 50, seed=3))  # the thread count changes no draw
    circuit.noisy_trajectories(params, 1.0, 2, seed=1, observables=[np.ones(16)], simulators=simulators)
    assert [o.cpu_threads for o in simulators.built] == [1, 1]


def test_default_thread_count_is_the_share_of_the_usable_cpus(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(SIM_THREADS_ENV, raising=False)
    cpus = len(os.sched_getaffinity(0))
    assert usable_cpus() == cpus
    assert Settings().threads_per_run == cpus
    assert Settings(concurrent_runs=2).threads_per_run == max(1, cpus // 2)
    assert Settings(concurrent_runs=cpus + 5).threads_per_run == 1
    assert Settings(sim_threads=1, concurrent_runs=2).threads_per_run == 1
    assert LocalContext().simulators == Simulators(threads=cpus)
    assert Simulators.from_settings(Settings(concurrent_runs=cpus)) == Simulators(threads=1)


def test_default_follows_the_affinity_mask() -> None:
    """A process pinned to one CPU (taskset, a cgroup cpuset) gets one thread, whatever the machine has."""
    code = ("import os; from qmlapp.context import LocalContext; "
            "os.sched_setaffinity(0, {min(os.sched_getaffinity(0))}); print(LocalContext().simulators.threads)")
    env = {k: v for k, v in os.environ.items() if k != SIM_THREADS_ENV}
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "1"


def test_the_setting_overrides_the_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(SIM_THREADS_ENV, "1")
    assert Settings.from_env().sim_threads == 1
    assert LocalContext().simulators.threads == 1
    assert Simulators.from_env().qsim_options().cpu_threads == 1


@pytest.mark.parametrize("raw", ["0", "-1", "two", "1.5", str((os.cpu_count() or 1) + usable_cpus() + 1)])
def test_a_bad_setting_names_the_variable_and_the_range(raw: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(SIM_THREADS_ENV, raw)
    with pytest.raises(SystemExit, match=rf"{SIM_THREADS_ENV}: must be an integer from 1 to \d+"):
        Settings.from_env()


@pytest.mark.slow  # a fresh interpreter that imports TensorFlow
def test_tensorflow_thread_pool_follows_the_factory() -> None:
    code = ("import qmlapp; from qmlapp.simulators import Simulators; import tensorflow as tf; "
            "Simulators(threads=1).tfq(); print(tf.config.threading.get_intra_op_parallelism_threads())")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True,
                         timeout=300)
    assert out.stdout.strip().splitlines()[-1] == "1"


def test_the_worker_records_the_thread_count_with_the_versions(storage: Storage, settings: Settings) -> None:
    rec = services.submit_run(storage, "hypernet", RUNS["hypernet"])
    claimed = storage.claim_run(rec.id, "w")
    assert claimed is not None
    assert execute_run(storage, claimed, "w", dataclasses.replace(settings, sim_threads=1)) == "succeeded"
    assert storage.get_run(rec.id).versions["sim_threads"] == "1"
