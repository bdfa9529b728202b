"""Circuit construction: Qiskit semantics of patterns and feature maps, readout, exports."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace

import cirq
import numpy as np
import pytest

from qmlapp.kinds.qnn.circuits import (
    QnnCircuit,
    binary_parity_operators,
    build_qnn_circuit,
    circuit_qasm,
    circuit_svg,
    entanglement_pairs,
    mod_k_operators,
    n_weights,
    pauli_two_design_axes,
    readout_operators,
    z_per_class_operators,
)
from qmlapp.kinds.qnn.noise import NoiseModel, add_gate_noise, fold_readout_error
from qmlapp.kinds.qnn.spec import ANSATZES, ENCODINGS, ENTANGLEMENTS, QnnSpec
from qmlapp.simulators import has_channels


def make(**kw: object) -> SimpleNamespace:
    base = dict(n_qubits=4, encoding="angle", ansatz="hardware_efficient", entanglement="linear", depth=2,
                readout="z_per_class", dataset="iris")
    base.update(kw)
    return SimpleNamespace(**base)


# Expected lists as produced by qiskit.circuit.library.n_local.get_entangler_map(2, 4, pattern, offset).
QISKIT_N4 = {
    ("linear", 0): [(0, 1), (1, 2), (2, 3)],
    ("circular", 0): [(3, 0), (0, 1), (1, 2), (2, 3)],
    ("full", 0): [(0, 1), (0, 2), (0, 3), (1, 2), (1, 3), (2, 3)],
    ("pairwise", 0): [(0, 1), (2, 3), (1, 2)],
    ("sca", 0): [(3, 0), (0, 1), (1, 2), (2, 3)],
    ("sca", 1): [(3, 2), (0, 3), (1, 0), (2, 1)],
    ("sca", 2): [(1, 2), (2, 3), (3, 0), (0, 1)],
    ("sca", 3): [(1, 0), (2, 1), (3, 2), (0, 3)],
}


@pytest.mark.parametrize(("pattern", "rep"), list(QISKIT_N4))
def test_entanglement_patterns_match_qiskit_n4(pattern: str, rep: int) -> None:
    assert entanglement_pairs(pattern, 4, rep) == QISKIT_N4[(pattern, rep)]


def test_entanglement_edge_cases_follow_qiskit() -> None:
    assert entanglement_pairs("circular", 2) == [(0, 1)]  # no duplicate wrap-around pair
    assert entanglement_pairs("circular", 3) == [(2, 0), (0, 1), (1, 2)]
    assert entanglement_pairs("pairwise", 5) == [(0, 1), (2, 3), (1, 2), (3, 4)]
    for pattern in ENTANGLEMENTS:
        assert entanglement_pairs(pattern, 1) == []
    # Non-sca patterns do not depend on the repetition.
    for pattern in ("linear", "circular", "full", "pairwise"):
        assert entanglement_pairs(pattern, 5, 3) == entanglement_pairs(pattern, 5, 0)


def _basis_state(k: int, n: int) -> np.ndarray:
    """State vector of |k⟩ with qubit 0 the least significant bit, in Cirq's qubit order."""
    qubits = cirq.LineQubit.range(n)
    flips = [cirq.X(qubits[q]) for q in range(n) if (k >> q) & 1]
    return cirq.final_state_vector(cirq.Circuit(cirq.I.on_each(*qubits), flips), qubit_order=qubits)


@pytest.mark.parametrize(("n", "k_classes"), [(1, 2), (2, 3), (3, 2), (3, 3), (3, 5), (4, 3), (4, 4), (4, 6)])
def test_mod_k_paulisum_gives_class_indicator_on_basis_states(n: int, k_classes: int) -> None:
    qubits = cirq.LineQubit.range(n)
    ops = mod_k_operators(qubits, k_classes)
    qubit_map: dict[cirq.Qid, int] = {q: i for i, q in enumerate(qubits)}
    for k in range(2**n):
        state = _basis_state(k, n)
        probs = [op.expectation_from_state_vector(state, qubit_map).real for op in ops]
        expected = [1.0 if k % k_classes == c else 0.0 for c in range(k_classes)]
        np.testing.assert_allclose(probs, expected, atol=1e-9, err_msg=f"basis state k={k}")


def test_mod_k_is_little_endian_and_sparse_for_powers_of_two() -> None:
    qubits = cirq.LineQubit.range(4)
    p0, p1 = mod_k_operators(qubits, 2)
    # K = 2 reads qubit 0 only: p(1) = (1 − Z0)/2.
    assert p1 == 0.5 * cirq.PauliString() - 0.5 * cirq.Z(qubits[0])
    assert p0 + p1 == cirq.PauliSum.from_pauli_strings([cirq.PauliString()])
    assert all(len(term) <= 2 and set(term.qubits) <= {qubits[0], qubits[1]}
               for term in sum(mod_k_operators(qubits, 4), cirq.PauliSum()))


def test_z_per_class_reads_qubit_c() -> None:
    qubits = cirq.LineQubit.range(4)
    ops = z_per_class_operators(qubits, 3)
    assert [next(iter(op)).qubits for op in ops] == [(qubits[0],), (qubits[1],), (qubits[2],)]


@pytest.mark.parametrize("ansatz", ANSATZES)
@pytest.mark.parametrize("depth", [1, 3])
def test_parameter_count_per_ansatz(ansatz: str, depth: int) -> None:
    expected = {"hardware_efficient": 2 * 4 * depth, "real_amplitudes": 4 * (depth + 1),
                "efficient_su2": 2 * 4 * (depth + 1), "pauli_two_design": 4 * (depth + 1)}[ansatz]
    assert n_weights(ansatz, 4, depth) == expected
    qnn = build_qnn_circuit(make(ansatz=ansatz, depth=depth))
    assert len(qnn.weight_symbols) == expected
    assert {s.name for s in qnn.weight_symbols} == {f"w{i}" for i in range(expected)}
    assert cirq.parameter_names(qnn.circuit) == {s.name for s in qnn.symbols}


@pytest.mark.parametrize("entanglement", ENTANGLEMENTS)
def test_ansatz_entangles_over_the_pattern_each_layer(entanglement: str) -> None:
    depth = 3
    qnn = build_qnn_circuit(make(ansatz="real_amplitudes", entanglement=entanglement, depth=depth))
    cx = [op for op in qnn.circuit.all_operations() if op.gate == cirq.CNOT]
    expected = sum(len(entanglement_pairs(entanglement, 4, r)) for r in range(depth))
    assert len(cx) == expected


def test_reuploading_repeats_the_angle_encoding_before_each_layer() -> None:
    qnn = build_qnn_circuit(make(encoding="reuploading", depth=3))
    uses = [op for op in qnn.circuit.all_operations() if "x0" in cirq.parameter_names(op)]
    assert len(uses) == 3
    angle = build_qnn_circuit(make(encoding="angle", depth=3))
    assert len([op for op in angle.circuit.all_operations() if "x0" in cirq.parameter_names(op)]) == 1


def _p(phi: float) -> np.ndarray:
    return np.diag([1.0, np.exp(1j * phi)])


H = np.array([[1, 1], [1, -1]]) / np.sqrt(2)
CX = np.array([[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 0, 1], [0, 0, 1, 0]])


def _feature_map_part(qnn: QnnCircuit) -> cirq.Circuit:
    """The operations before the first trainable one (the feature map)."""
    weights = {s.name for s in qnn.weight_symbols}
    ops = []
    for op in qnn.circuit.all_operations():
        if cirq.parameter_names(op) & weights:
            break
        ops.append(op)
    return cirq.Circuit(ops)


def test_z_feature_map_is_qiskit_h_then_p2x_twice() -> None:
    spec = make(n_qubits=1, encoding="z_feature_map", readout="mod_k")
    qnn = build_qnn_circuit(spec, n_classes=2)
    x = 0.7
    u = cirq.unitary(cirq.resolve_parameters(_feature_map_part(qnn), {"x0": x}))
    expected = _p(2 * x) @ H @ _p(2 * x) @ H
    assert cirq.allclose_up_to_global_phase(u, expected)


def test_zz_feature_map_is_qiskit_zz_block() -> None:
    spec = make(n_qubits=2, encoding="zz_feature_map", readout="mod_k", depth=1)
    qnn = build_qnn_circuit(spec, n_classes=2)
    x = np.array([0.4, 1.9])
    resolver = qnn.resolver(x, np.zeros(len(qnn.weight_symbols)))
    u = cirq.unitary(cirq.resolve_parameters(_feature_map_part(qnn), resolver))
    # Cirq's matrix order is qubit 0 first (big-endian in the matrix index).
    phi = 2 * (np.pi - x[0]) * (np.pi - x[1])
    layer = CX @ np.kron(np.eye(2), _p(phi)) @ CX @ np.kron(_p(2 * x[0]), _p(2 * x[1])) @ np.kron(H, H)
    assert qnn.zz_pairs == ((0, 1),)
    assert cirq.allclose_up_to_global_phase(u, layer @ layer, atol=1e-5)  # zz values are float32


def test_data_values_append_zz_products() -> None:
    qnn = build_qnn_circuit(make(n_qubits=3, encoding="zz_feature_map", entanglement="full"))
    x = np.array([[0.1, 0.2, 0.3]])
    values = qnn.data_values(x)
    assert values.dtype == np.float32
    assert [s.name for s in qnn.data_symbols] == ["x0", "x1", "x2", "zz_0_1", "zz_0_2", "zz_1_2"]
    np.testing.assert_allclose(values[0, 3], (np.pi - 0.1) * (np.pi - 0.2), rtol=1e-6)
    sv = qnn.symbol_values(x, np.arange(len(qnn.weight_symbols)))
    assert sv.shape == (1, len(qnn.symbols))


_QASM_FIXED: dict[str, cirq.Gate] = {"h": cirq.H, "cx": cirq.CNOT, "cz": cirq.CZ, "t": cirq.T, "tdg": cirq.T**-1}
_QASM_ROTATIONS: dict[str, Callable[[float], cirq.Gate]] = {"ry": cirq.ry, "rz": cirq.rz, "rx": cirq.rx}


def _parse_qasm(text: str) -> cirq.Circuit:
    """Minimal OpenQASM 2 reader for the gates our circuits export (Cirq's importer needs ``ply``)."""
    ops: list[cirq.Operation] = []
    for line in text.splitlines():
        m = re.fullmatch(r"(\w+)(?:\((.*)\))? (q\[\d+\](?:,q\[\d+\])*);", line.strip())
        if not m or (m.group(1) not in _QASM_FIXED and m.group(1) not in _QASM_ROTATIONS):
            continue
        qubits = [cirq.LineQubit(int(i)) for i in re.findall(r"q\[(\d+)\]", m.group(3))]
        if m.group(2) is not None:
            gate = _QASM_ROTATIONS[m.group(1)](_angle(m.group(2)))
        else:
            gate = _QASM_FIXED[m.group(1)]
        ops.append(gate.on(*qubits))
    return cirq.Circuit(ops)


def _angle(expr: str) -> float:
    factors = [np.pi if f.strip() == "pi" else float(f) for f in expr.split("*")]
    return float(np.prod(factors))


@pytest.mark.parametrize("encoding", ENCODINGS)
def test_qasm_export_resolves_every_symbol_and_round_trips(encoding: str) -> None:
    qnn: QnnCircuit = build_qnn_circuit(make(n_qubits=3, encoding=encoding, ansatz="efficient_su2",
                                             entanglement="circular"))
    rng = np.random.default_rng(1)
    resolver = qnn.resolver(rng.uniform(0, np.pi, 3), rng.uniform(0, 2 * np.pi, len(qnn.weight_symbols)))
    text = circuit_qasm(qnn.circuit, resolver, header="trained\nweights")
    assert text.startswith("// trained\n// weights\n")
    assert "OPENQASM 2.0;" in text and "x0" not in text and "w0" not in text
    parsed = _parse_qasm(text)
    assert len(list(parsed.all_operations())) == len(list(qnn.circuit.all_operations()))
    expected = cirq.unitary(cirq.resolve_parameters(qnn.circuit, resolver))
    assert cirq.allclose_up_to_global_phase(cirq.unitary(parsed), expected, atol=1e-6)


def test_qasm_export_of_pauli_two_design_with_sqrt_iswap() -> None:
    qnn = build_qnn_circuit(make(n_qubits=3, ansatz="pauli_two_design", entangler="sqrt_iswap", seed=4))
    rng = np.random.default_rng(2)
    resolver = qnn.resolver(rng.uniform(0, np.pi, 3), rng.uniform(0, 2 * np.pi, len(qnn.weight_symbols)))
    parsed = _parse_qasm(circuit_qasm(qnn.circuit, resolver))  # √iSWAP is exported decomposed
    expected = cirq.unitary(cirq.resolve_parameters(qnn.circuit, resolver))
    assert cirq.allclose_up_to_global_phase(cirq.unitary(parsed), expected, atol=1e-6)


def test_qasm_refuses_unresolved_symbols() -> None:
    qnn = build_qnn_circuit(make())
    with pytest.raises(ValueError, match="unresolved"):
        circuit_qasm(qnn.circuit, {"x0": 0.1})


def test_svg_shows_symbols() -> None:
    svg = circuit_svg(build_qnn_circuit(make(encoding="zz_feature_map")).circuit)
    assert svg.startswith("<svg") and "zz_0_1" in svg and "w0" in svg


def test_builds_from_a_real_spec() -> None:
    qnn = build_qnn_circuit(QnnSpec(dataset="iris", readout="mod_k"))
    assert qnn.n_classes == 3 and len(qnn.qubits) == 4


def test_light_imports_do_not_pull_tensorflow() -> None:
    code = ("import sys, qmlapp.kinds.qnn.spec, qmlapp.kinds.qnn.circuits, qmlapp.simulators; "
            "heavy = {'tensorflow', 'tensorflow_quantum'}; "
            "sys.exit(1 if any(m.split('.')[0] in heavy for m in sys.modules) else 0)")
    root = Path(__file__).resolve().parents[1]
    assert subprocess.run([sys.executable, "-c", code], cwd=root, check=False).returncode == 0


# --- schema v2 circuit options ------------------------------------------------------------------------


def _two_qubit_ops(qnn: QnnCircuit) -> list[cirq.Operation]:
    return [op for op in qnn.circuit.all_operations() if len(op.qubits) == 2]


def test_pauli_two_design_is_qiskit_layout_with_seeded_axes() -> None:
    depth = 3
    qnn = build_qnn_circuit(make(ansatz="pauli_two_design", depth=depth, seed=11))
    axes = pauli_two_design_axes(11, 4, depth)
    assert qnn.rotation_axes == axes and len(axes) == depth + 1 and all(len(layer) == 4 for layer in axes)
    # Reproducible per seed, different across seeds.
    assert pauli_two_design_axes(11, 4, depth) == axes
    assert build_qnn_circuit(make(ansatz="pauli_two_design", depth=depth, seed=11)).circuit == qnn.circuit
    assert pauli_two_design_axes(12, 4, depth) != axes
    assert {a for layer in pauli_two_design_axes(0, 8, 10) for a in layer} == {"rx", "ry", "rz"}
    ops = list(qnn.circuit.all_operations())
    # After the angle encoding: the fixed RY(π/4) layer, then per layer the drawn rotations and CZ on
    # the even then the odd pairs, and a final rotation layer.
    assert ops[4:8] == [cirq.ry(np.pi / 4).on(q) for q in qnn.qubits]
    gate_of = {name: type(op.gate) for op in ops for name in cirq.parameter_names(op)}
    kinds = {"rx": cirq.Rx, "ry": cirq.Ry, "rz": cirq.Rz}
    # Weight w(4·layer + qubit) sits in a rotation about axes[layer][qubit].
    assert [gate_of[s.name] for s in qnn.weight_symbols] == [kinds[a] for layer in axes for a in layer]
    assert _two_qubit_ops(qnn) == [cirq.CZ(qnn.qubits[i], qnn.qubits[j]) for _ in range(depth)
                                   for i, j in [(0, 1), (2, 3), (1, 2)]]
    # The ansatz's own pattern: the entanglement field does not change it.
    assert _two_qubit_ops(build_qnn_circuit(make(ansatz="pauli_two_design", depth=depth, seed=11,
                                                 entanglement="full"))) == _two_qubit_ops(qnn)


@pytest.mark.parametrize(("ansatz", "entangler", "gate"), [
    ("hardware_efficient", "auto", cirq.CZ), ("real_amplitudes", "auto", cirq.CNOT),
    ("efficient_su2", "auto", cirq.CNOT), ("pauli_two_design", "auto", cirq.CZ),
    ("hardware_efficient", "cx", cirq.CNOT), ("real_amplitudes", "cz", cirq.CZ),
    ("hardware_efficient", "sqrt_iswap", cirq.SQRT_ISWAP), ("pauli_two_design", "sqrt_iswap", cirq.SQRT_ISWAP),
])
def test_entangler_sets_every_two_qubit_gate_of_the_ansatz(ansatz: str, entangler: str, gate: cirq.Gate) -> None:
    qnn = build_qnn_circuit(make(ansatz=ansatz, entangler=entangler, depth=2))
    two = _two_qubit_ops(qnn)
    assert two and all(op.gate == gate for op in two)
    names: dict[cirq.Gate, str] = {cirq.CZ: "cz", cirq.CNOT: "cx", cirq.SQRT_ISWAP: "sqrt_iswap"}
    assert qnn.entangler == names[gate]
    # The ZZ feature map keeps its CX blocks (2 reps × 3 linear pairs × 2) whatever the ansatz entangler.
    zz = build_qnn_circuit(make(ansatz=ansatz, entangler=entangler, encoding="zz_feature_map"))
    cx = sum(op.gate == cirq.CNOT for op in zz.circuit.all_operations())
    assert cx == 12 + (len(two) if gate == cirq.CNOT else 0)


def test_reduced_rotations_keep_one_ry_per_qubit_and_layer() -> None:
    full = build_qnn_circuit(make(depth=3))
    reduced = build_qnn_circuit(make(depth=3, reduced_rotations=True))
    assert len(reduced.weight_symbols) == n_weights("hardware_efficient", 4, 3, reduced_rotations=True) == 12
    assert len(full.weight_symbols) == 24
    trained = [op for op in reduced.circuit.all_operations() if cirq.parameter_names(op) & {"w0", "w11"}]
    assert trained and all(isinstance(op.gate, cirq.Ry) for op in trained)
    assert not any(isinstance(op.gate, cirq.Rz) for op in reduced.circuit.all_operations())
    assert _two_qubit_ops(reduced) == _two_qubit_ops(full)
    with pytest.raises(ValueError, match="hardware_efficient"):
        n_weights("real_amplitudes", 4, 3, reduced_rotations=True)


def test_feature_map_entanglement_is_independent_of_the_ansatz_pattern() -> None:
    same = build_qnn_circuit(make(encoding="zz_feature_map", entanglement="linear"))
    own = build_qnn_circuit(make(encoding="zz_feature_map", entanglement="linear", feature_map_entanglement="full"))
    assert same.zz_pairs == ((0, 1), (1, 2), (2, 3))
    assert own.zz_pairs == ((0, 1), (0, 2), (0, 3), (1, 2), (1, 3), (2, 3))
    fm_cx = [op for op in own.circuit.all_operations() if op.gate == cirq.CNOT]  # the ansatz uses CZ
    assert len(fm_cx) == 2 * 2 * 6  # 2 reps × 2 CX per pair × 6 pairs
    cz = [op for op in own.circuit.all_operations() if op.gate == cirq.CZ]
    assert cz == [op for op in same.circuit.all_operations() if op.gate == cirq.CZ]  # the ansatz keeps 'linear'
    # Without the ZZ map the field has nothing to act on.
    assert build_qnn_circuit(make(feature_map_entanglement="full")).circuit == build_qnn_circuit(make()).circuit


@pytest.mark.parametrize(("readout", "n"), [("parity", 3), ("all_z", 3), ("all_z", 1)])
def test_binary_readouts_give_parity_class_on_basis_states(readout: str, n: int) -> None:
    qubits = cirq.LineQubit.range(n)
    ops = readout_operators(readout, qubits, 2)
    measured = 2 if readout == "parity" else n
    qubit_map: dict[cirq.Qid, int] = {q: i for i, q in enumerate(qubits)}
    for k in range(2**n):
        probs = [op.expectation_from_state_vector(_basis_state(k, n), qubit_map).real for op in ops]
        odd = bin(k & (2**measured - 1)).count("1") % 2
        np.testing.assert_allclose(probs, [1 - odd, odd], atol=1e-9, err_msg=f"k={k}")
    # p(1) = (1 − ⟨O⟩)/2
    assert ops[1] == 0.5 * cirq.PauliString() - 0.5 * cirq.PauliString(*(cirq.Z(q) for q in qubits[:measured]))
    with pytest.raises(ValueError, match="two classes"):
        readout_operators(readout, qubits, 3)
    assert binary_parity_operators(qubits[:1])[0] == 0.5 * cirq.PauliString() + 0.5 * cirq.Z(qubits[0])


# --- noise model ------------------------------------------------------------------------------------


def test_gate_noise_follows_every_gate() -> None:
    qnn = build_qnn_circuit(make(encoding="zz_feature_map", depth=2))
    ideal = list(qnn.circuit.all_operations())
    n1 = sum(len(op.qubits) == 1 for op in ideal)
    n2 = sum(len(op.qubits) == 2 for op in ideal)
    assert add_gate_noise(qnn.circuit, NoiseModel()) is qnn.circuit
    assert not has_channels(qnn.circuit)
    noisy = add_gate_noise(qnn.circuit, NoiseModel(noise_1q=0.01, noise_2q=0.02, amplitude_damping=0.03))
    ops = list(noisy.all_operations())
    assert has_channels(noisy)
    assert [op for op in ops if cirq.has_unitary(op) or cirq.is_parameterized(op)] == ideal
    dep1 = [op for op in ops if op.gate == cirq.depolarize(0.01)]
    dep2 = [op for op in ops if op.gate == cirq.depolarize(0.02)]
    damp = [op for op in ops if op.gate == cirq.amplitude_damp(0.03)]
    assert (len(dep1), len(dep2), len(damp)) == (n1, 2 * n2, n1 + 2 * n2)  # every CX/CZ, coupled or not
    # On every qubit, each gate is followed by its depolarizing channel, then its damping.
    for q in qnn.qubits:
        on_q = [op for op in ops if q in op.qubits]
        gates = [op for op in on_q if cirq.has_unitary(op) or cirq.is_parameterized(op)]
        assert on_q[::3] == gates and len(on_q) == 3 * len(gates)
        for gate_op, dep_op, damp_op in zip(on_q[::3], on_q[1::3], on_q[2::3], strict=True):
            assert dep_op == cirq.depolarize(0.01 if len(gate_op.qubits) == 1 else 0.02).on(q)
            assert damp_op == cirq.amplitude_damp(0.03).on(q)
    only_2q = add_gate_noise(qnn.circuit, NoiseModel(noise_2q=0.02))
    assert len(list(only_2q.all_operations())) == len(ideal) + 2 * n2


def test_readout_error_scales_each_z_string_by_its_weight() -> None:
    qubits = cirq.LineQubit.range(3)
    p = 0.1
    op = cirq.PauliSum.from_pauli_strings([0.5 * cirq.PauliString(), 2.0 * cirq.Z(qubits[0]),
                                           -1.0 * cirq.Z(qubits[0]) * cirq.Z(qubits[2])])
    (folded,) = fold_readout_error([op], p)
    assert folded == (0.5 * cirq.PauliString() + 2.0 * 0.8 * cirq.Z(qubits[0])
                      - 0.8**2 * cirq.Z(qubits[0]) * cirq.Z(qubits[2]))
    assert fold_readout_error([op], 0.0) == (op,)
    with pytest.raises(ValueError, match="Z-string"):
        fold_readout_error([cirq.PauliSum.from_pauli_strings([cirq.X(qubits[0])])], p)
