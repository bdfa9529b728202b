"""The two-party quantum-network protocol (qmlapp.kinds.qnetwork): exactness, communication counts, shot noise,
the TFQ training path and expressivity. Small registers, except one real 16-qubit protocol run."""

from __future__ import annotations

import math
import time

import cirq
import numpy as np
import pytest

import qmlapp  # noqa: F401  (selects legacy Keras before TensorFlow loads)
from qmlapp.kinds.qnetwork import protocol as pr
from qmlapp.kinds.qnetwork.model import SplitModel

CASES = [
    # n_features, layers, P, ansatz, data_layers, observable
    (8, 2, 7, "hardware_efficient", True, "z0"),
    (5, 3, 11, "zz_two_local", False, "zz01"),
    (16, 1, 9, "zz_two_local", True, "parity"),
    (2, 2, 3, "hardware_efficient", True, "z0"),
    (8, 3, 2, "zz_two_local", True, "z0"),  # P < n: some qubits idle in every unitary
]


def _setup(case: tuple, seed: int = 0) -> tuple[SplitModel, np.ndarray, np.ndarray]:
    n_features, layers, p, ansatz, data_layers, obs = case
    model = SplitModel(n_features, layers, p, ansatz, data_layers, 2.0, obs, seed=seed)
    rng = np.random.default_rng(seed + 100)
    return model, model.init_params(rng), rng.standard_normal(n_features)


@pytest.mark.parametrize("case", CASES)
def test_protocol_equals_single_party_and_cirq(case: tuple) -> None:
    model, params, x = _setup(case)
    run = pr.run_protocol(model, params, x)
    x_hat = model.amplitude_encode(x)
    reference = cirq.Simulator(dtype=np.complex128).simulate(
        model.circuit(params, x_hat), initial_state=x_hat.astype(np.complex128), qubit_order=model.qubits
    ).final_state_vector
    exact = model.observable().expectation_from_state_vector(
        reference, {q: i for i, q in enumerate(model.qubits)}).real
    assert run.final_state.shape == (model.dim,)
    np.testing.assert_allclose(run.final_state, reference, atol=2e-6)
    np.testing.assert_allclose(run.final_state, pr.single_party_state(model, params, x), atol=2e-6)
    np.testing.assert_allclose(model.final_states(params, x)[0], reference, atol=1e-12)
    assert run.expectation == pytest.approx(exact, abs=1e-5)
    assert pr.single_party_expectation(model, params, x) == pytest.approx(exact, abs=1e-5)
    assert model.expectations(params, x)[0] == pytest.approx(exact, abs=1e-12)


@pytest.mark.parametrize("layers", [1, 2, 3, 4])
@pytest.mark.parametrize("n_features", [2, 3, 8, 16])
def test_transfer_log_alternates(layers: int, n_features: int) -> None:
    model = SplitModel(n_features, layers, 3)
    run = pr.run_protocol(model, model.init_params(np.random.default_rng(0)), np.ones(n_features))
    n = model.n_qubits
    assert run.rounds == model.rounds == 2 * layers - 1 == len(run.transfers)
    expected = [("alice", "bob", n) if r % 2 == 0 else ("bob", "alice", n) for r in range(2 * layers - 1)]
    assert run.transfers == expected
    assert run.qubits_per_copy == (2 * layers - 1) * n
    assert [owner for owner, _ in model.unitaries(model.init_params(np.random.default_rng(0)),
                                                  model.amplitude_encode(np.ones(n_features)))] \
        == ["alice", "bob"] * layers


def test_parameter_layout_and_ansatz_structure() -> None:
    model = SplitModel(8, 2, 8, "hardware_efficient")
    assert model.n_params == 32
    params = np.arange(32.0)
    assert [(name, owner, s.start, s.stop) for name, owner, s in model.param_slices()] == [
        ("A1", "alice", 0, 8), ("B1", "bob", 8, 16), ("A2", "alice", 16, 24), ("B2", "bob", 24, 32)]
    np.testing.assert_array_equal(model.alice_params(params), np.r_[0:8, 16:24])
    np.testing.assert_array_equal(model.bob_params(params), np.r_[8:16, 24:32])
    kinds = [(g.kind, g.qubits) for g in model.layout[0].gates]
    data = [("data", (j,)) for j in range(3)]
    ladder = [("cz", (0, 1)), ("cz", (1, 2))]
    full_round = [("ry", (0,)), ("ry", (1,)), ("ry", (2,)), ("rz", (0,)), ("rz", (1,)), ("rz", (2,))]
    assert kinds == [*data, *full_round, *ladder, ("ry", (0,)), ("ry", (1,)), *ladder]
    assert [(g.kind, g.qubits) for g in model.layout[1].gates][:3] == [("ry", (0,)), ("ry", (1,)), ("ry", (2,))]
    zz = SplitModel(8, 1, 7, "zz_two_local", data_layers=False)
    assert [(g.kind, g.qubits) for g in zz.layout[0].gates] == [
        ("ry", (0,)), ("ry", (1,)), ("ry", (2,)), ("zz", (0, 1)), ("zz", (1, 2)), ("ry", (0,)), ("ry", (1,))]
    with pytest.raises(ValueError, match="non-zero"):
        model.amplitude_encode(np.zeros(8))
    with pytest.raises(ValueError, match="more than"):
        model.amplitude_encode(np.ones(9))


def test_estimate_error_shrinks_like_one_over_sqrt_k() -> None:
    model, params, x = _setup(CASES[0])
    exact = pr.run_protocol(model, params, x).expectation
    rng = np.random.default_rng(7)
    rms, reported = [], []
    for k in (100, 400, 1600, 6400):
        draws = [pr.estimate(model, params, x, k, rng) for _ in range(300)]
        errors = np.array([d[0] - exact for d in draws])
        rms.append(float(np.sqrt(np.mean(errors**2))))
        reported.append(float(np.mean([d[1] for d in draws])))
        assert {d[2] for d in draws} == {k * model.rounds * model.n_qubits}
        assert reported[-1] == pytest.approx(math.sqrt((1 - exact**2) / k), rel=0.05)
        assert rms[-1] == pytest.approx(reported[-1], rel=0.2)
    ratios = np.array(rms[:-1]) / np.array(rms[1:])
    assert np.all((ratios > 1.6) & (ratios < 2.5)), ratios


def test_encoding_tree_prepares_signed_amplitudes() -> None:
    rng = np.random.default_rng(3)
    model = SplitModel(11, 1, 3)  # 11 features → 4 qubits, padded
    rows = [rng.standard_normal(11), -np.abs(rng.standard_normal(11)), np.r_[0, 0, 0, 0, -1.0, 0, 0, 0, 0, 0, 2.0],
            np.r_[np.zeros(10), -3.0]]
    circuit, symbols = model.encoding_circuit()
    values = model.data_symbol_values(np.array(rows))
    assert values.shape == (4, 2**4 - 1 + 4)
    sim = cirq.Simulator(dtype=np.complex128)
    for row, vals in zip(rows, values, strict=True):
        resolver = dict(zip([s.name for s in symbols], vals[:len(symbols)], strict=True))
        state = sim.simulate(cirq.resolve_parameters(circuit, resolver), qubit_order=model.qubits).final_state_vector
        np.testing.assert_allclose(state, model.amplitude_encode(row), atol=1e-12)
    # the full symbolic circuit from |0…0⟩ equals the protocol started from |ψ(x)⟩
    full, data_symbols, model_symbols = model.symbolic_circuit()
    assert len(data_symbols) == values.shape[1] and len(model_symbols) == model.n_params
    params = model.init_params(rng)
    state = sim.simulate(cirq.resolve_parameters(full, model.resolver(values[0], params)),
                         qubit_order=model.qubits).final_state_vector
    np.testing.assert_allclose(state, pr.run_protocol(model, params, rows[0]).final_state, atol=2e-6)


@pytest.mark.parametrize("ansatz", ["hardware_efficient", "zz_two_local"])
def test_tfq_path_matches_protocol_and_exact_gradient(ansatz: str) -> None:
    from qmlapp.kinds.qnetwork.train import tfq_value_and_grad

    model = SplitModel(8, 2, 7, ansatz, True, 2.0, "zz01", seed=1)
    rng = np.random.default_rng(5)
    params = model.init_params(rng)
    x = rng.standard_normal((3, 8))
    values, grads = tfq_value_and_grad(model, params, x)
    for i in range(len(x)):
        assert values[i] == pytest.approx(pr.run_protocol(model, params, x[i]).expectation, abs=1e-4)
        np.testing.assert_allclose(grads[i], pr.exact_gradient(model, params, x[i]), atol=2e-4)


def test_shift_gradient_approaches_exact() -> None:
    model, params, x = _setup(CASES[1])
    exact = pr.exact_gradient(model, params, x)
    eps = 1e-6
    finite = [(model.expectations(params + eps * e, x)[0] - model.expectations(params - eps * e, x)[0]) / (2 * eps)
              for e in np.eye(model.n_params)]
    np.testing.assert_allclose(exact, finite, atol=1e-7)
    rng = np.random.default_rng(11)
    errors = []
    for copies in (1_000, 1_000_000):
        grad, qubits, circuits = pr.shift_gradient(model, params, x, copies, rng)
        assert circuits == 2 * model.n_params
        assert qubits == 2 * model.n_params * copies * model.rounds * model.n_qubits
        errors.append(float(np.max(np.abs(grad - exact))))
    assert errors[1] < 5 / math.sqrt(1_000_000) < errors[0]
    # the shifted circuits run through the real protocol (or qsim from the prefix states) give the same values
    small = SplitModel(8, 2, 3, seed=2)
    p, xs = small.init_params(rng), np.arange(1.0, 9.0)
    reference = pr.shifted_expectations(small, p, xs, engine="numpy")
    for engine in ("protocol", "qsim"):
        np.testing.assert_allclose(pr.shifted_expectations(small, p, xs, engine=engine), reference, atol=1e-5)
    rows = np.stack([xs, -xs])
    np.testing.assert_allclose(pr.expectations(small, p, rows, engine="qsim"), small.expectations(p, rows), atol=1e-5)


def test_fourier_degree_needs_data_layers() -> None:
    degrees: dict[tuple[bool, int], int] = {}
    for data_layers in (False, True):
        for layers in (1, 2, 3):
            model = SplitModel(16, layers, 8, data_layers=data_layers, seed=layers)
            result = pr.fourier_degree(model, model.init_params(np.random.default_rng(layers)), points=128, seed=1)
            degree, magnitudes = result["degree"], result["magnitudes"]
            assert isinstance(degree, int) and isinstance(magnitudes, np.ndarray)
            degrees[data_layers, layers] = degree
            assert len(magnitudes) == 65
    assert all(degrees[False, layers] <= 2 for layers in (1, 2, 3)), degrees
    assert degrees[True, 3] > degrees[True, 1] > 2, degrees


def test_teacher_labels_balanced_and_exact_predict() -> None:
    from qmlapp.kinds.qnetwork.train import predict, teacher_labels

    model = SplitModel(8, 2, 6, data_layers=False)
    x = np.random.default_rng(0).standard_normal((200, 8))
    y = teacher_labels(model, x, seed=3)
    assert set(np.unique(y)) == {0, 1} and abs(int(y.sum()) - 100) <= 1
    np.testing.assert_array_equal(y, teacher_labels(model, x, seed=3))
    np.testing.assert_array_equal(y[150:], teacher_labels(model, x[150:], seed=3, reference=x))
    params = model.init_params(np.random.default_rng(1))
    assert predict(model, params, x[:2])[1] == pytest.approx(pr.run_protocol(model, params, x[1]).expectation,
                                                             abs=1e-5)


def test_training_on_digits_lowers_loss_and_beats_chance() -> None:
    from qmlapp.datasets import load_dataset
    from qmlapp.kinds.qnetwork.train import train_split_model

    data = load_dataset("digits")
    keep = data.y < 2
    x, y = data.X[keep], data.y[keep]
    order = np.random.default_rng(0).permutation(len(x))
    x, y = x[order], y[order]
    model = SplitModel(64, 2, 20, data_layers=False)  # 6 qubits; the encoding tree has 63 controlled RY gates
    seen = []
    result = train_split_model(model, x[:200], y[:200], x[200:300], y[200:300], epochs=3, learning_rate=0.05,
                               batch_size=32, seed=0, on_epoch=lambda e, m: seen.append(e),
                               check_cancelled=lambda: None)
    assert seen == [0, 1, 2, 3] and len(result.history) == 3
    assert result.steps_per_epoch == 7 and result.padded_rows_per_epoch == 24
    assert result.differentiator == "Adjoint"
    last = result.history[-1]
    assert last["train_loss"] < result.initial["train_loss"] - 0.2
    assert last["test_accuracy"] > 0.9  # 1.0 measured for seeds 0-2 (chance: 0.5)
    assert result.params.shape == (model.n_params,)


def test_protocol_at_n_16() -> None:
    model = SplitModel(2**16, 2, 20, seed=0)
    rng = np.random.default_rng(0)
    params, x = model.init_params(rng), rng.standard_normal(2**16)
    pr.run_protocol(model, params, x)  # warm-up (qsim import)
    start = time.perf_counter()
    run = pr.run_protocol(model, params, x)
    elapsed = time.perf_counter() - start
    assert run.n_qubits == 16 and run.qubits_per_copy == 3 * 16
    assert run.final_state.shape == (2**16,)
    assert run.expectation == pytest.approx(pr.single_party_expectation(model, params, x), abs=1e-5)
    assert elapsed < 5.0  # ~20 ms measured; loose for a shared 2-core machine
    estimate, se, qubits = pr.estimate(model, params, x, 400, rng)
    assert qubits == 400 * 48 and abs(estimate - run.expectation) < 6 * max(se, 0.05)
