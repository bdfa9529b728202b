"""The fast paths (TFQ, density matrix) against the Cirq references on random circuits and parameters,
and noisy expectations against known channels."""

from __future__ import annotations

from types import SimpleNamespace

import cirq
import numpy as np
import pytest
import sympy

from qmlapp.kinds.qnn.circuits import QnnCircuit, build_qnn_circuit
from qmlapp.kinds.qnn.noise import NoiseModel, add_gate_noise, fold_readout_error
from qmlapp.kinds.qnn.spec import ANSATZES, ENCODINGS, ENTANGLEMENTS, ENTANGLERS, READOUTS
from qmlapp.simulators import CirqReference, DensityMatrixBackend, TfqBackend


def random_qnn(seed: int) -> QnnCircuit:
    rng = np.random.default_rng(seed)
    n = int(rng.integers(2, 5))
    readout = READOUTS[seed % len(READOUTS)]  # every readout is covered
    k = {"z_per_class": int(rng.integers(2, n + 1)), "mod_k": int(rng.integers(2, 6))}.get(readout, 2)
    ansatz = ANSATZES[seed % len(ANSATZES)]
    spec = SimpleNamespace(
        n_qubits=n,
        encoding=ENCODINGS[(seed // 2) % len(ENCODINGS)],  # every encoding with every ansatz
        ansatz=ansatz,
        entanglement=str(rng.choice(ENTANGLEMENTS)),
        feature_map_entanglement=str(rng.choice(("same", *ENTANGLEMENTS))),
        entangler=ENTANGLERS[(seed // 4) % len(ENTANGLERS)],  # every entangler
        reduced_rotations=ansatz == "hardware_efficient" and bool(rng.integers(2)),
        depth=int(rng.integers(1, 4)),
        readout=readout,
        seed=seed,
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


@pytest.mark.parametrize("seed", range(16))
def test_tfq_expectations_match_cirq_reference(seed: int, tfq_backend: TfqBackend) -> None:
    qnn = random_qnn(seed)
    values = random_values(qnn, 6, seed)
    fast = tfq_backend.compile(qnn.circuit, qnn.symbols, qnn.operators)(values)
    ref = CirqReference().compile(qnn.circuit, qnn.symbols, qnn.operators)(values)
    assert fast.shape == ref.shape == (6, qnn.n_classes)
    np.testing.assert_allclose(fast, ref, atol=1e-4)
    if qnn.readout != "z_per_class":  # class probabilities
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


# --- noise -------------------------------------------------------------------------------------------

THETA = sympy.Symbol("theta")


def _one_qubit(*channels: cirq.Gate) -> tuple[cirq.Circuit, list[cirq.PauliSum]]:
    q = cirq.LineQubit(0)
    circuit = cirq.Circuit(cirq.ry(THETA).on(q), *(c.on(q) for c in channels))
    return circuit, [cirq.PauliSum.from_pauli_strings([cirq.Z(q)])]


@pytest.fixture(scope="module")
def dm_backend() -> DensityMatrixBackend:
    return DensityMatrixBackend()


def test_depolarizing_scales_z_by_one_minus_four_thirds_p(dm_backend: DensityMatrixBackend,
                                                          tfq_backend: TfqBackend) -> None:
    p = 0.15
    circuit, ops = _one_qubit(cirq.depolarize(p))
    thetas = np.array([[0.0], [0.7], [2.0], [np.pi]])
    expected = (1 - 4 * p / 3) * np.cos(thetas)
    np.testing.assert_allclose(dm_backend.compile(circuit, [THETA], ops)(thetas), expected, atol=1e-6)
    np.testing.assert_allclose(CirqReference().compile(circuit, [THETA], ops)(thetas), expected, atol=1e-9)
    # TFQ's noisy backend: mean over trajectories, each ±cos θ; σ ≤ 2·√(2p/3)/√T.
    trajectories = 4000
    noisy = TfqBackend(trajectories=trajectories).compile(circuit, [THETA], ops)
    assert noisy.noisy and noisy.trajectories == trajectories and noisy.differentiator_name == "ParameterShift"
    sigma = 2 * np.sqrt(2 * p / 3) / np.sqrt(trajectories)
    assert np.max(np.abs(noisy(thetas) - expected)) < 5 * sigma
    # Noiseless circuits keep the adjoint state-vector path.
    plain = tfq_backend.compile(_one_qubit()[0], [THETA], ops)
    assert not plain.noisy and plain.trajectories == 0 and plain.differentiator_name == "Adjoint"


def test_amplitude_damping_decays_the_excited_population(dm_backend: DensityMatrixBackend) -> None:
    gamma = 0.3
    circuit, ops = _one_qubit(cirq.amplitude_damp(gamma))
    thetas = np.array([[0.4], [np.pi / 2], [np.pi]])
    expected = 1 - 2 * (1 - gamma) * np.sin(thetas / 2) ** 2  # P(1) → (1 − γ)·P(1)
    np.testing.assert_allclose(dm_backend.compile(circuit, [THETA], ops)(thetas), expected, atol=1e-6)
    np.testing.assert_allclose(CirqReference().compile(circuit, [THETA], ops)(thetas), expected, atol=1e-9)


def test_readout_error_equals_bit_flips_before_measurement(dm_backend: DensityMatrixBackend) -> None:
    """Folding (1 − 2p)^|S| into the observables is exact: it equals a bit-flip channel on every qubit."""
    p = 0.12
    qnn = random_qnn(1)
    values = random_values(qnn, 3, 1)
    flipped = qnn.circuit + cirq.Circuit(cirq.bit_flip(p).on_each(*qnn.qubits))
    exact = CirqReference().compile(flipped, qnn.symbols, qnn.operators)(values)
    folded = fold_readout_error(qnn.operators, p)
    np.testing.assert_allclose(CirqReference().compile(qnn.circuit, qnn.symbols, folded)(values), exact, atol=1e-9)
    np.testing.assert_allclose(dm_backend.compile(flipped, qnn.symbols, qnn.operators)(values), exact, atol=1e-5)
    # The known factors on a product state: ⟨Z⟩·(1 − 2p) and ⟨Z₀Z₁⟩·(1 − 2p)².
    a, b = cirq.LineQubit.range(2)
    product = cirq.Circuit(cirq.ry(THETA).on(a), cirq.ry(1.1).on(b))
    z, zz = fold_readout_error([cirq.PauliSum.from_pauli_strings([cirq.Z(a)]),
                                cirq.PauliSum.from_pauli_strings([cirq.Z(a) * cirq.Z(b)])], p)
    ev = CirqReference().compile(product, [THETA], [z, zz])(np.array([[0.5]]))[0]
    np.testing.assert_allclose(ev, [(1 - 2 * p) * np.cos(0.5), (1 - 2 * p) ** 2 * np.cos(0.5) * np.cos(1.1)])


NOISE = NoiseModel(noise_1q=0.03, noise_2q=0.08, amplitude_damping=0.05, readout_error=0.04)


# Small circuits covering CZ, CX (in the ZZ map), √iSWAP, pauli_two_design and every binary readout.
@pytest.mark.parametrize("seed", [9, 11, 12, 14])
def test_density_matrix_matches_cirq_density_matrix_simulator(seed: int, dm_backend: DensityMatrixBackend) -> None:
    qnn = random_qnn(seed)
    circuit = add_gate_noise(qnn.circuit, NOISE)
    operators = fold_readout_error(qnn.operators, NOISE.readout_error)
    values = random_values(qnn, 4, seed)
    fast = dm_backend.compile(circuit, qnn.symbols, operators)(values)
    ref = CirqReference().compile(circuit, qnn.symbols, operators)(values)
    np.testing.assert_allclose(fast, ref, atol=2e-5)
    ideal = CirqReference().compile(qnn.circuit, qnn.symbols, operators)(values)
    assert np.max(np.abs(ref - ideal)) > 1e-3  # the noise is there
    if seed == 12:  # noiseless, it is a (slow) state-vector simulator like the others
        np.testing.assert_allclose(dm_backend.compile(qnn.circuit, qnn.symbols, qnn.operators)(values),
                                   CirqReference().compile(qnn.circuit, qnn.symbols, qnn.operators)(values),
                                   atol=2e-5)


@pytest.mark.parametrize("field", ["noise_1q", "noise_2q", "amplitude_damping", "readout_error"])
def test_every_noise_field_changes_the_expectations(field: str, dm_backend: DensityMatrixBackend) -> None:
    qnn = random_qnn(14)
    values = random_values(qnn, 3, 14)
    model = NoiseModel(**{field: 0.1})
    noisy = dm_backend.compile(add_gate_noise(qnn.circuit, model), qnn.symbols,
                               fold_readout_error(qnn.operators, model.readout_error))(values)
    ideal = dm_backend.compile(qnn.circuit, qnn.symbols, qnn.operators)(values)
    assert np.max(np.abs(noisy - ideal)) > 1e-3, field


def test_noisy_gradients_backprop_vs_finite_differences_and_parameter_shift(dm_backend: DensityMatrixBackend) -> None:
    import tensorflow as tf

    qnn = random_qnn(14)
    circuit = add_gate_noise(qnn.circuit, NOISE)
    operators = fold_readout_error(qnn.operators, NOISE.readout_error)
    values = random_values(qnn, 2, 14)
    coeff = np.linspace(1.0, 2.0, qnn.n_classes)

    def gradient(compiled: object) -> np.ndarray:
        v = tf.constant(values)
        with tf.GradientTape() as tape:
            tape.watch(v)
            total = tf.reduce_sum(compiled.tf_call(v) * coeff)  # type: ignore[attr-defined]
        return tape.gradient(total, v).numpy()

    exact = gradient(dm_backend.compile(circuit, qnn.symbols, operators))
    ref = CirqReference().compile(circuit, qnn.symbols, operators)
    eps = 1e-4
    numeric = np.zeros_like(values, dtype=np.float64)
    for j in range(values.shape[1]):
        shift = np.zeros(values.shape[1])
        shift[j] = eps
        numeric[:, j] = (ref(values + shift) @ coeff - ref(values - shift) @ coeff) / (2 * eps)
    np.testing.assert_allclose(exact, numeric, atol=2e-3)
    # TFQ's noisy backend differentiates by parameter shift over trajectories: equal within their noise.
    shifted = gradient(TfqBackend(trajectories=1000).compile(circuit, qnn.symbols, operators))
    assert np.max(np.abs(shifted - exact)) < 0.05  # observed ≤ 0.017 over 10 repeats; |gradient| ≤ 0.13


def test_density_matrix_shots_are_seeded_samples_of_the_exact_distribution() -> None:
    qnn = random_qnn(1)  # mod_k: the outputs are class probabilities
    circuit = add_gate_noise(qnn.circuit, NOISE)
    values = random_values(qnn, 4, 1)
    exact = DensityMatrixBackend().compile(circuit, qnn.symbols, qnn.operators)(values)
    shots = 4000
    first = DensityMatrixBackend(seed=3).compile(circuit, qnn.symbols, qnn.operators, repetitions=shots)
    again = DensityMatrixBackend(seed=3).compile(circuit, qnn.symbols, qnn.operators, repetitions=shots)
    sampled = first(values)
    np.testing.assert_array_equal(sampled, again(values))
    assert not np.array_equal(first(values), sampled)  # the generator moves on between calls
    assert np.max(np.abs(sampled - exact)) < 5 * 0.5 / np.sqrt(shots)
    np.testing.assert_allclose(sampled.sum(axis=1), 1.0, atol=1e-9)  # all outputs from the same shots
    assert not hasattr(first, "tf_call")  # not differentiable: adam/sgd with shots use TFQ


def test_tfq_noisy_shots_sample_one_trajectory_per_shot(dm_backend: DensityMatrixBackend,
                                                       tfq_backend: TfqBackend) -> None:
    qnn = random_qnn(1)
    circuit = add_gate_noise(qnn.circuit, NOISE)
    values = random_values(qnn, 3, 1)
    exact = dm_backend.compile(circuit, qnn.symbols, qnn.operators)(values)
    shots = 3000
    compiled = tfq_backend.compile(circuit, qnn.symbols, qnn.operators, repetitions=shots)
    assert compiled.trajectories == shots and compiled.differentiator_name == "ParameterShift"
    tol = 6 / np.sqrt(shots) * max(1.0, sum(abs(t.coefficient) for op in qnn.operators for t in op))
    assert np.max(np.abs(compiled(values) - exact)) < tol
