"""The TFQ fast path against the cirq.Simulator reference on random circuits and parameters."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from qmlapp.circuits import QnnCircuit, build_qnn_circuit
from qmlapp.experiments.qnn import ANSATZES, ENCODINGS, ENTANGLEMENTS, READOUTS
from qmlapp.simulators import CirqReference, TfqBackend


def random_qnn(seed: int) -> QnnCircuit:
    rng = np.random.default_rng(seed)
    n = int(rng.integers(2, 5))
    readout = str(rng.choice(READOUTS))
    k = int(rng.integers(2, n + 1)) if readout == "z_per_class" else int(rng.integers(2, 6))
    spec = SimpleNamespace(
        n_qubits=n,
        encoding=ENCODINGS[seed % len(ENCODINGS)],  # every encoding is covered
        ansatz=ANSATZES[seed % len(ANSATZES)],
        entanglement=str(rng.choice(ENTANGLEMENTS)),
        depth=int(rng.integers(1, 4)),
        readout=readout,
    )
    return build_qnn_circuit(spec, n_classes=k)


def random_values(qnn: QnnCircuit, rows: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed + 1000)
    x = rng.uniform(-np.pi, np.pi, (rows, len(qnn.feature_symbols)))
    w = rng.uniform(0, 2 * np.pi, len(qnn.weight_symbols))
    return qnn.symbol_values(x, w)


@pytest.fixture(scope="module")
def tfq_backend() -> TfqBackend:
    return TfqBackend()


@pytest.mark.parametrize("seed", range(12))
def test_tfq_expectations_match_cirq_reference(seed: int, tfq_backend: TfqBackend) -> None:
    qnn = random_qnn(seed)
    values = random_values(qnn, 6, seed)
    fast = tfq_backend.compile(qnn.circuit, qnn.symbols, qnn.operators)(values)
    ref = CirqReference().compile(qnn.circuit, qnn.symbols, qnn.operators)(values)
    assert fast.shape == ref.shape == (6, qnn.n_classes)
    np.testing.assert_allclose(fast, ref, atol=1e-4)
    if qnn.readout == "mod_k":
        np.testing.assert_allclose(ref.sum(axis=1), 1.0, atol=1e-9)


@pytest.mark.parametrize("seed", [0, 5])
def test_adjoint_gradient_matches_finite_differences(seed: int, tfq_backend: TfqBackend) -> None:
    import tensorflow as tf

    qnn = random_qnn(seed)
    values = random_values(qnn, 2, seed)
    compiled = tfq_backend.compile(qnn.circuit, qnn.symbols, qnn.operators)
    coeff = np.linspace(1.0, 2.0, qnn.n_classes)  # a generic linear functional of the outputs
    v = tf.constant(values)
    with tf.GradientTape() as tape:
        tape.watch(v)
        total = tf.reduce_sum(compiled.tf_call(v) * coeff)
    grad = tape.gradient(total, v).numpy()

    ref = CirqReference().compile(qnn.circuit, qnn.symbols, qnn.operators)
    eps = 1e-4
    numeric = np.zeros_like(values, dtype=np.float64)
    for j in range(values.shape[1]):
        shift = np.zeros(values.shape[1])
        shift[j] = eps
        plus = ref(values.astype(np.float64) + shift) @ coeff
        minus = ref(values.astype(np.float64) - shift) @ coeff
        numeric[:, j] = (plus - minus) / (2 * eps)
    np.testing.assert_allclose(grad, numeric, atol=2e-3)


def test_sampled_expectations_are_close_to_exact(tfq_backend: TfqBackend) -> None:
    qnn = random_qnn(3)
    values = random_values(qnn, 4, 3)
    exact = CirqReference().compile(qnn.circuit, qnn.symbols, qnn.operators)(values)
    shots = 4000
    tfq_sampled = tfq_backend.compile(qnn.circuit, qnn.symbols, qnn.operators, repetitions=shots)(values)
    ref_a = CirqReference(seed=7).compile(qnn.circuit, qnn.symbols, qnn.operators, repetitions=shots)(values)
    ref_b = CirqReference(seed=7).compile(qnn.circuit, qnn.symbols, qnn.operators, repetitions=shots)(values)
    tol = 6 / np.sqrt(shots) * max(1.0, sum(abs(t.coefficient) for op in qnn.operators for t in op))
    assert np.max(np.abs(tfq_sampled - exact)) < tol
    assert np.max(np.abs(ref_a - exact)) < tol
    np.testing.assert_array_equal(ref_a, ref_b)  # the reference sampler is seeded
