"""The hypernetwork circuit engine against Cirq/qsim: states, exact gradients, sampling and noise.

Everything is checked against an independent reference: ``cirq.Simulator`` (complex128) and qsimcirq for
states, finite differences and the parameter-shift rule for gradients, ``cirq.DensityMatrixSimulator`` for
the noisy average. Both engines ("split" and "dense") are exercised explicitly.
"""

from __future__ import annotations

import pickle
from collections.abc import Callable

import cirq
import numpy as np
import pytest
import qsimcirq

from qmlapp.kinds.hypernet.circuit import P1_PER_NOISE, P2_PER_NOISE, HypernetCircuit

CONFIGS = [(ansatz, n, d) for ansatz in ("brickwork", "product") for n in (1, 2, 3, 4, 5, 6, 7) for d in (1, 2, 3, 4)]


def random_params(c: HypernetCircuit, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(0, 2 * np.pi, c.n_params)


def cirq_state(c: HypernetCircuit, params: np.ndarray) -> np.ndarray:
    qs = cirq.LineQubit.range(c.n_qubits)
    return cirq.Simulator(dtype=np.complex128).simulate(c.cirq_circuit(params), qubit_order=qs).final_state_vector


def engines(ansatz: str, n: int, d: int) -> list[HypernetCircuit]:
    out = [HypernetCircuit(n, d, ansatz, engine="dense")]
    if ansatz == "brickwork" and d >= 3 and n >= 3:
        out.append(HypernetCircuit(n, d, ansatz, engine="split"))
    return out


def finite_diff(f: Callable[[np.ndarray], float], x: np.ndarray, h: float = 1e-6) -> np.ndarray:
    g = np.empty_like(x)
    for k in range(x.size):
        e = np.zeros_like(x)
        e[k] = h
        g[k] = (f(x + e) - f(x - e)) / (2 * h)
    return g


# ------------------------------------------------------------------------------------------------ structure


def test_parameters_and_circuit_structure() -> None:
    c = HypernetCircuit(5, 3)
    assert (c.n_qubits, c.depth, c.ansatz, c.n_params) == (5, 3, "brickwork", 30)
    circuit = c.cirq_circuit()
    assert cirq.is_parameterized(circuit)
    assert sorted(map(str, cirq.parameter_names(circuit))) == sorted(c.symbol_names())
    cx = [op for op in circuit.all_operations() if op.gate == cirq.CNOT]
    # d = 1: j odd (1,2),(3,4); d = 2: j even (0,1),(2,3); d = 3: odd again
    q = cirq.LineQubit.range(5)
    assert [op.qubits for op in cx] == [(q[i], q[j]) for i, j in [(1, 2), (3, 4), (0, 1), (2, 3), (1, 2), (3, 4)]]
    assert not any(op.gate == cirq.CNOT for op in HypernetCircuit(5, 3, "product").cirq_circuit().all_operations())
    # the symbolic circuit resolved with the vector equals the resolved circuit
    params = random_params(c)
    resolved = cirq.resolve_parameters(circuit, dict(zip(c.symbol_names(), params, strict=True)))
    qs = cirq.LineQubit.range(5)
    np.testing.assert_allclose(cirq.final_state_vector(resolved, qubit_order=qs, dtype=np.complex128),
                               cirq_state(c, params), atol=1e-12)


def test_invalid_arguments() -> None:
    with pytest.raises(ValueError, match="ansatz"):
        HypernetCircuit(4, 2, "ladder")
    with pytest.raises(ValueError, match="depth"):
        HypernetCircuit(4, 0)
    with pytest.raises(ValueError, match="split"):
        HypernetCircuit(4, 2, engine="split")
    c = HypernetCircuit(3, 2)
    with pytest.raises(ValueError, match="12 parameters"):
        c.state(np.zeros(5))
    with pytest.raises(ValueError, match="shape"):
        c.value_and_grad(np.zeros(12), lambda p: (0.0, np.zeros(3)))
    with pytest.raises(RuntimeError, match="re-entrantly"):  # would overwrite ψ in the shared workspace
        c.value_and_grad(np.zeros(12), lambda p: (c.expectation(np.ones(12), p), p))
    assert c.expectation(np.zeros(12), np.arange(8.0)) == 0.0  # and the circuit is still usable


def test_first_cx_sublayer_does_nothing_on_zero_state() -> None:
    """Sub-layer 1's CXs act on |0…0⟩, so dropping them leaves the final state unchanged."""
    c = HypernetCircuit(6, 3)
    full = c.cirq_circuit(random_params(c))
    assert all(op.gate == cirq.CNOT for op in full[0].operations) and len(full[0].operations) == 2
    qs = cirq.LineQubit.range(6)
    np.testing.assert_allclose(cirq.final_state_vector(full[1:], qubit_order=qs, dtype=np.complex128),
                               cirq.final_state_vector(full, qubit_order=qs, dtype=np.complex128), atol=1e-13)


def test_noisy_circuit_channels() -> None:
    n, d, p = 5, 3, 1.6
    c = HypernetCircuit(n, d)
    noisy = c.cirq_circuit(random_params(c), noise=p)
    ops = list(noisy.all_operations())
    n_cx = sum(op.gate == cirq.CNOT for op in ops)
    one = [op for op in ops if isinstance(op.gate, cirq.DepolarizingChannel) and cirq.num_qubits(op) == 1]
    two = [op for op in ops if isinstance(op.gate, cirq.DepolarizingChannel) and cirq.num_qubits(op) == 2]
    assert len(one) == 2 * d * n  # after every Ry and every Rz
    assert len(two) == n_cx == 6  # the TWO-qubit channel after every CX, not two 1-qubit ones
    np.testing.assert_allclose([op.gate.p for op in one if isinstance(op.gate, cirq.DepolarizingChannel)],
                               P1_PER_NOISE * p, rtol=1e-12)
    np.testing.assert_allclose([op.gate.p for op in two if isinstance(op.gate, cirq.DepolarizingChannel)],
                               P2_PER_NOISE * p, rtol=1e-12)
    assert all(set(ch.qubits) == set(cx.qubits) for ch, cx in
               zip(two, [op for op in ops if op.gate == cirq.CNOT], strict=True))
    assert len(list(c.cirq_circuit(random_params(c), noise=0.0).all_operations())) == n_cx + 2 * d * n
    assert not any(cirq.is_measurement(op) or not cirq.has_unitary(op)
                   for op in c.cirq_circuit(random_params(c)).all_operations())


# ------------------------------------------------------------------------------------------------ states


@pytest.mark.parametrize(("ansatz", "n", "d"), CONFIGS)
def test_state_equals_cirq(ansatz: str, n: int, d: int) -> None:
    for c in engines(ansatz, n, d):
        params = random_params(c, seed=n * 10 + d)
        psi = c.state(params)
        assert psi.dtype == np.complex128 and psi.shape == (2**n,)
        np.testing.assert_allclose(psi, cirq_state(c, params), atol=1e-13)  # same global phase too
        p = c.probabilities(params)
        assert p.dtype == np.float64
        np.testing.assert_allclose(p, np.abs(psi) ** 2, atol=1e-14)


@pytest.mark.parametrize(("n", "d"), [(5, 4), (6, 3), (7, 2), (8, 5)])
def test_state_equals_qsim(n: int, d: int) -> None:
    c = HypernetCircuit(n, d)
    params = random_params(c, seed=3)
    sim = qsimcirq.QSimSimulator(qsimcirq.QSimOptions(cpu_threads=2, max_fused_gate_size=2))
    _, amps, order = sim.simulate_into_1d_array(c.cirq_circuit(params))
    assert list(order) == cirq.LineQubit.range(n)
    np.testing.assert_allclose(c.state(params), amps, atol=2e-6)  # qsim is complex64


def test_engines_agree_on_larger_circuits() -> None:
    for n, d in [(10, 4), (11, 5), (12, 7), (9, 10)]:
        split, dense = HypernetCircuit(n, d, engine="split"), HypernetCircuit(n, d, engine="dense")
        params = random_params(split, seed=n + d)
        cost = np.random.default_rng(n).normal(size=2**n)
        np.testing.assert_allclose(split.state(params), dense.state(params), atol=1e-13)
        vs, gs = split.expectation_and_grad(params, cost)
        vd, gd = dense.expectation_and_grad(params, cost)
        assert vs == pytest.approx(vd, abs=1e-13)
        np.testing.assert_allclose(gs, gd, atol=1e-12)
    assert HypernetCircuit(18, 4).engine == "split" and HypernetCircuit(18, 2).engine == "dense"


# ------------------------------------------------------------------------------------------------ gradients


@pytest.mark.parametrize(("ansatz", "n", "d"), CONFIGS)
def test_gradient_equals_parameter_shift(ansatz: str, n: int, d: int) -> None:
    for c in engines(ansatz, n, d):
        params = random_params(c, seed=n + 7 * d)
        cost = np.random.default_rng(d).normal(size=2**n)
        value, grad = c.expectation_and_grad(params, cost)
        assert value == pytest.approx(float(np.abs(cirq_state(c, params)) ** 2 @ cost), abs=1e-13)
        np.testing.assert_allclose(grad, c.parameter_shift_grad(params, cost), atol=1e-12)


@pytest.mark.parametrize(("ansatz", "n", "d", "engine"),
                         [("brickwork", 5, 4, "split"), ("brickwork", 5, 4, "dense"), ("brickwork", 6, 2, "auto"),
                          ("product", 4, 3, "auto")])
def test_gradient_equals_finite_differences(ansatz: str, n: int, d: int, engine: str) -> None:
    c = HypernetCircuit(n, d, ansatz, engine=engine)
    params = random_params(c, seed=1)
    cost = np.random.default_rng(2).uniform(0, 1, 2**n)
    _, grad = c.expectation_and_grad(params, cost)
    np.testing.assert_allclose(grad, finite_diff(lambda x: c.expectation(x, cost), params), atol=1e-6)
    # φ of the last sub-layer (an Rz right before measurement) never matters
    assert np.abs(grad.reshape(d, 2, n)[-1, 1]).max() < 1e-12


@pytest.mark.parametrize("engine", ["split", "dense"])
def test_value_and_grad_nonlinear_objective(engine: str) -> None:
    """An ELBO-like objective: cost expectation plus an entropy term, so dvalue/dp depends on p."""
    c = HypernetCircuit(6, 4, engine=engine)
    params = random_params(c, seed=4)
    cost = np.random.default_rng(5).normal(size=2**6)

    def fn(p: np.ndarray) -> tuple[float, np.ndarray]:
        q = np.maximum(p, 1e-300)
        return float(p @ cost + 0.3 * np.sum(p * np.log(q))), cost + 0.3 * (np.log(q) + 1)

    value, grad, p = c.value_and_grad(params, fn)
    np.testing.assert_allclose(p, c.probabilities(params), atol=1e-15)
    assert value == pytest.approx(fn(c.probabilities(params))[0], abs=1e-13)
    np.testing.assert_allclose(grad, finite_diff(lambda x: fn(c.probabilities(x))[0], params), atol=1e-6)


def test_recomputing_backward_pass_and_pickle() -> None:
    """When the tape would not fit the workspace budget, states are recomputed backwards: same numbers."""
    stored, recomputed = HypernetCircuit(7, 6, engine="dense"), HypernetCircuit(7, 6, engine="dense")
    recomputed.max_workspace_bytes = 0
    params, cost = random_params(stored, seed=9), np.random.default_rng(9).normal(size=2**7)
    v1, g1 = stored.expectation_and_grad(params, cost)
    v2, g2 = recomputed.expectation_and_grad(params, cost)
    assert stored._store and not recomputed._store
    assert v1 == pytest.approx(v2, abs=1e-13)
    np.testing.assert_allclose(g1, g2, atol=1e-12)
    clone = pickle.loads(pickle.dumps(stored))
    np.testing.assert_allclose(clone.expectation_and_grad(params, cost)[1], g1, atol=1e-14)


# ------------------------------------------------------------------------------------------------ sampling


def test_sample_mean_matches_exact_expectation() -> None:
    c = HypernetCircuit(6, 4)
    params = random_params(c, seed=6)
    cost = np.random.default_rng(7).normal(size=2**6)
    exact = c.expectation(params, cost)
    p = c.probabilities(params)
    sd = np.sqrt(p @ cost**2 - exact**2)
    for idx in (c.sample(params, 4000, np.random.default_rng(8)), c.sample_qsim(params, 4000, seed=8)):
        assert idx.shape == (4000,) and idx.min() >= 0 and idx.max() < 2**6
        assert abs(cost[idx].mean() - exact) < 4 * sd / np.sqrt(len(idx))
    np.testing.assert_array_equal(c.sample_qsim(params, 50, seed=3), c.sample_qsim(params, 50, seed=3))


def test_sample_index_is_big_endian() -> None:
    """θ = π flips a qubit to |1⟩: qubit 0 set must give index 2^(n−1) in both samplers."""
    c = HypernetCircuit(4, 1, "product")
    params = np.zeros(c.n_params)
    params[0] = np.pi  # θ_{1,0}
    params[3] = np.pi  # θ_{1,3}
    expected = 0b1001
    assert set(c.sample(params, 20, np.random.default_rng(0))) == {expected}
    assert set(c.sample_qsim(params, 20, seed=0)) == {expected}


# ------------------------------------------------------------------------------------------------ noise


@pytest.mark.parametrize("backend", ["qsim", "numpy"])
def test_noiseless_trajectories_equal_exact_value(backend: str) -> None:
    c = HypernetCircuit(6, 4)
    params = random_params(c, seed=10)
    cost = np.random.default_rng(11).normal(size=2**6)
    best = (cost <= np.sort(cost)[2]).astype(float)  # indicator of a 3-element optimal set
    vals = c.noisy_trajectories(params, 0.0, 3, seed=1, observables=[cost, best], backend=backend)
    assert vals.shape == (3, 2)
    exact = [c.expectation(params, cost), c.expectation(params, best)]
    np.testing.assert_allclose(vals, np.tile(exact, (3, 1)), atol=1e-5 if backend == "qsim" else 1e-13)


@pytest.mark.parametrize("backend", ["qsim", "numpy"])
def test_noisy_trajectories_match_density_matrix(backend: str) -> None:
    n, d, noise = 3, 4, 60.0  # p1 = 0.06, p2 = 0.225: far from noiseless
    c = HypernetCircuit(n, d)
    params = random_params(c, seed=12)
    cost = np.random.default_rng(13).normal(size=2**n)
    rho = cirq.DensityMatrixSimulator(dtype=np.complex128).simulate(
        c.cirq_circuit(params, noise=noise), qubit_order=cirq.LineQubit.range(n)).final_density_matrix
    exact = float(np.real(np.diag(rho)) @ cost)
    assert abs(exact - c.expectation(params, cost)) > 0.05  # the noise matters at this strength
    vals = c.noisy_trajectories(params, noise, 1500, seed=14, observables=[cost], backend=backend)[:, 0]
    assert abs(vals.mean() - exact) < 4 * vals.std(ddof=1) / np.sqrt(len(vals))
    again = c.noisy_trajectories(params, noise, 20, seed=14, observables=[cost], backend=backend)[:, 0]
    np.testing.assert_array_equal(again, vals[:20])  # reproducible from the seed
