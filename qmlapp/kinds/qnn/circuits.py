"""QNN circuits in Cirq: entanglement patterns, encodings, ansätze and readout operators.

Everything here is plain Cirq + SymPy so that the web process can draw circuits without TensorFlow.
Data and weights are both SymPy symbols: the training path converts the circuit once and feeds
numbers as symbol values (see ``qmlapp.simulators``).

Conventions (Qiskit's):

* entanglement patterns follow ``qiskit.circuit.library.n_local.get_entangler_map``;
* the Z / ZZ feature maps use 2 repetitions of H then P(2·x); P(φ) is written as Rz(φ), equal up to
  a global phase;
* basis index k = Σ_q b_q·2^q, i.e. qubit 0 is the least significant bit (little-endian);
* binary readouts (``parity``, ``all_z``) measure a Z-string O and give p(1) = (1 − ⟨O⟩)/2: class 1
  is odd parity of the measured bits, as ``mod_k`` with K = 2 is for qubit 0 alone.

The mapping of the A′ hyperparameters (Moussa et al.) onto these circuits is our reading of the paper
(their QNN code is not public): ``entangler`` cz / sqrt_iswap, ``reduced_rotations`` = have_less_rotations
(RY instead of RY+RZ per qubit and layer), readouts 2Z = ``parity`` and mZ = ``all_z``.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import cirq
import numpy as np
import sympy
from numpy.typing import ArrayLike

FEATURE_MAP_REPS = 2  # Qiskit ZFeatureMap / ZZFeatureMap default, as in the studies reproduced
LOGIT_SCALE = 3.0  # fixed (not trained): z_per_class logits = LOGIT_SCALE · ⟨Z_c⟩
PAULI_TWO_DESIGN_STREAM = 3  # random stream of spec.seed for the axes (training uses streams 0–2)
PAULI_AXES = ("rx", "ry", "rz")
PROBABILITY_READOUTS = ("mod_k", "parity", "all_z")  # operators are class probabilities

Pair = tuple[int, int]


# --- entanglement -------------------------------------------------------------------------------


def entanglement_pairs(pattern: str, n_qubits: int, rep: int = 0) -> list[Pair]:
    """Two-qubit (control, target) pairs of an entanglement pattern, with Qiskit semantics.

    Args:
        pattern: ``linear``, ``circular``, ``full``, ``pairwise`` or ``sca``.
        n_qubits: number of qubits.
        rep: repetition index; only ``sca`` depends on it (shifted right by ``rep``, pairs
            reversed on odd ``rep``). Like Qiskit, the shift is a Python slice, so ``rep`` at or
            beyond the number of pairs gives no shift (the reversal still alternates).
    """
    n = n_qubits
    if pattern == "full":
        return list(itertools.combinations(range(n), 2))
    linear = [(i, i + 1) for i in range(n - 1)]
    if pattern == "linear":
        return linear
    if pattern == "pairwise":
        return linear[::2] + linear[1::2]
    # Qiskit adds the wrap-around pair only when it is not already a linear pair (n > 2).
    circular = [(n - 1, 0), *linear] if n > 2 else linear
    if pattern == "circular":
        return circular
    if pattern == "sca":
        shifted = circular[-rep:] + circular[:-rep]  # Qiskit's slice; rep = 0 keeps the list
        return [(j, i) for i, j in shifted] if rep % 2 == 1 else shifted
    raise ValueError(f"unknown entanglement pattern {pattern!r}")


# --- building blocks ----------------------------------------------------------------------------


def _angle_encoding(qubits: Sequence[cirq.Qid], x: Sequence[sympy.Symbol]) -> list[cirq.Operation]:
    return [cirq.ry(xi).on(q) for q, xi in zip(qubits, x, strict=True)]


def _pauli_feature_map(
    qubits: Sequence[cirq.Qid],
    x: Sequence[sympy.Symbol],
    zz: dict[Pair, sympy.Symbol] | None,
    entanglement: str,
) -> list[cirq.Operation]:
    """Qiskit Z/ZZ feature map: per rep H, P(2x_i); for ZZ then CX·P(2(π−x_i)(π−x_j))·CX per pair.

    The ZZ angle is a product of two data values, which TFQ cannot parse inside one gate; it is
    therefore its own symbol ``zz_i_j`` holding (π−x_i)(π−x_j), computed classically (see
    :meth:`QnnCircuit.data_values`).
    """
    ops: list[cirq.Operation] = []
    for rep in range(FEATURE_MAP_REPS):
        ops += [cirq.H(q) for q in qubits]
        ops += [cirq.rz(2 * xi).on(q) for q, xi in zip(qubits, x, strict=True)]
        if zz is not None:
            for i, j in entanglement_pairs(entanglement, len(qubits), rep):
                phi = zz[(min(i, j), max(i, j))]
                ops += [cirq.CNOT(qubits[i], qubits[j]), cirq.rz(2 * phi).on(qubits[j]),
                        cirq.CNOT(qubits[i], qubits[j])]
    return ops


class _WeightFactory:
    """Hands out weight symbols w0, w1, ... in construction order (the order of the weight vector)."""

    def __init__(self) -> None:
        self.symbols: list[sympy.Symbol] = []

    def take(self, count: int) -> list[sympy.Symbol]:
        start = len(self.symbols)
        new = [sympy.Symbol(f"w{start + i}") for i in range(count)]
        self.symbols += new
        return new


_ROTATIONS = {"rx": cirq.rx, "ry": cirq.ry, "rz": cirq.rz}


def _rotation_layer(
    qubits: Sequence[cirq.Qid], gates: Sequence[str], w: _WeightFactory
) -> list[cirq.Operation]:
    """One rotation per qubit per gate kind; weights ordered gate-kind-major, then qubit."""
    ops: list[cirq.Operation] = []
    for gate in gates:
        rot = _ROTATIONS[gate]
        ops += [rot(s).on(q) for q, s in zip(qubits, w.take(len(qubits)), strict=True)]
    return ops


def _axes_layer(qubits: Sequence[cirq.Qid], axes: Sequence[str], w: _WeightFactory) -> list[cirq.Operation]:
    """One rotation per qubit about its own axis (pauli_two_design); weights in qubit order."""
    return [_ROTATIONS[a](s).on(q) for q, a, s in zip(qubits, axes, w.take(len(qubits)), strict=True)]


ENTANGLER_GATES: dict[str, cirq.Gate] = {"cx": cirq.CNOT, "cz": cirq.CZ, "sqrt_iswap": cirq.SQRT_ISWAP}


def _entangling_layer(qubits: Sequence[cirq.Qid], pattern: str, rep: int, gate: str) -> list[cirq.Operation]:
    two = ENTANGLER_GATES[gate]
    return [two(qubits[i], qubits[j]) for i, j in entanglement_pairs(pattern, len(qubits), rep)]


# Per ansatz: (rotation gates per layer, default entangling gate, final rotation layer?).
# pauli_two_design's rotation is drawn per qubit and layer ("random"); its pattern is fixed (pairwise).
_ANSATZ_LAYOUT: dict[str, tuple[tuple[str, ...], str, bool]] = {
    "hardware_efficient": (("ry", "rz"), "cz", False),
    "real_amplitudes": (("ry",), "cx", True),
    "efficient_su2": (("ry", "rz"), "cx", True),
    "pauli_two_design": (("random",), "cz", True),
}
_REDUCED_GATES = ("ry",)  # hardware_efficient with reduced_rotations


def ansatz_gates(ansatz: str, reduced_rotations: bool = False) -> tuple[str, ...]:
    """Rotation gate kinds per qubit and layer."""
    gates = _ANSATZ_LAYOUT[ansatz][0]
    if reduced_rotations:
        if ansatz != "hardware_efficient":
            raise ValueError("reduced_rotations applies to hardware_efficient only")
        return _REDUCED_GATES
    return gates


def resolve_entangler(ansatz: str, entangler: str = "auto") -> str:
    """The ansatz's two-qubit gate name (``cx``, ``cz`` or ``sqrt_iswap``); ``auto`` = its default."""
    return _ANSATZ_LAYOUT[ansatz][1] if entangler == "auto" else entangler


def n_weights(ansatz: str, n_qubits: int, depth: int, reduced_rotations: bool = False) -> int:
    """Number of trainable circuit parameters of an ansatz."""
    final = _ANSATZ_LAYOUT[ansatz][2]
    return len(ansatz_gates(ansatz, reduced_rotations)) * n_qubits * (depth + (1 if final else 0))


def pauli_two_design_axes(seed: int, n_qubits: int, depth: int) -> tuple[tuple[str, ...], ...]:
    """Rotation axes of a PauliTwoDesign, one per qubit for each of the ``depth + 1`` rotation layers.

    Drawn uniformly from RX/RY/RZ with ``numpy.random.default_rng([seed, 3])``. Qiskit draws them with
    its own RNG (seed 3 in the authors' code), which cannot be reproduced here, so the axes are stored
    with every run instead.
    """
    rng = np.random.default_rng([seed, PAULI_TWO_DESIGN_STREAM])
    draws = rng.integers(0, len(PAULI_AXES), size=(depth + 1, n_qubits))
    return tuple(tuple(PAULI_AXES[int(i)] for i in row) for row in draws)


# --- readout ------------------------------------------------------------------------------------


def z_per_class_operators(qubits: Sequence[cirq.Qid], n_classes: int) -> list[cirq.PauliSum]:
    """⟨Z_c⟩ on qubit c for each class c."""
    return [cirq.PauliSum.from_pauli_strings([cirq.Z(qubits[c])]) for c in range(n_classes)]


def binary_parity_operators(qubits: Sequence[cirq.Qid]) -> list[cirq.PauliSum]:
    """[p(0), p(1)] = [(1 + ⟨O⟩)/2, (1 − ⟨O⟩)/2] for the Z-string O on ``qubits``.

    Class 1 is odd parity of the measured bits (O = −1). ``parity`` passes qubits 0 and 1 (A′ "2Z"),
    ``all_z`` every qubit (A′ "mZ").
    """
    z: cirq.PauliString[cirq.Qid] = cirq.PauliString(*(cirq.Z(q) for q in qubits))
    identity: cirq.PauliString[cirq.Qid] = cirq.PauliString()
    return [cirq.PauliSum.from_pauli_strings([0.5 * identity, 0.5 * z]),
            cirq.PauliSum.from_pauli_strings([0.5 * identity, -0.5 * z])]


def readout_operators(readout: str, qubits: Sequence[cirq.Qid], n_classes: int) -> list[cirq.PauliSum]:
    """Observables of a readout, one per class (Z-strings only)."""
    if readout == "z_per_class":
        return z_per_class_operators(qubits, n_classes)
    if readout == "mod_k":
        return mod_k_operators(qubits, n_classes)
    if readout in ("parity", "all_z"):
        if n_classes != 2:
            raise ValueError(f"readout {readout!r} is for two classes, got {n_classes}")
        return binary_parity_operators(qubits[:2] if readout == "parity" else qubits)
    raise ValueError(f"unknown readout {readout!r}")


def _walsh_hadamard(values: np.ndarray) -> np.ndarray:
    """Unnormalised fast Walsh–Hadamard transform: out[S] = Σ_k values[k]·(−1)^popcount(k & S)."""
    out = values.astype(np.float64).copy()
    h = 1
    while h < len(out):
        out = out.reshape(-1, 2, h)
        out = np.stack([out[:, 0] + out[:, 1], out[:, 0] - out[:, 1]], axis=1).reshape(-1)
        h *= 2
    return out


def mod_k_operators(qubits: Sequence[cirq.Qid], n_classes: int, atol: float = 1e-12) -> list[cirq.PauliSum]:
    """Exact class-probability observables for ``class = k mod K`` (qubit 0 = least significant bit).

    The indicator f_c(k) = [k mod K = c] is expanded in Z-strings (Walsh expansion):
    f_c = Σ_S f̂_c(S)·Π_{q∈S} Z_q with f̂_c(S) = 2^−n Σ_k f_c(k)(−1)^{|k∧S|}, so ⟨f_c⟩ = p(c).
    For K a power of two only the low log2(K) qubits appear; otherwise up to 2^n terms per class.
    """
    n = len(qubits)
    k = np.arange(2**n)
    ops = []
    for c in range(n_classes):
        coeffs = _walsh_hadamard((k % n_classes == c).astype(np.float64)) / 2**n
        terms: list[cirq.PauliString[cirq.Qid]] = []
        for mask in np.flatnonzero(np.abs(coeffs) > atol):
            zs = [cirq.Z(qubits[q]) for q in range(n) if (mask >> q) & 1]
            terms.append(cirq.PauliString(float(coeffs[mask]), *zs))
        ops.append(cirq.PauliSum.from_pauli_strings(terms))
    return ops


# --- the QNN circuit ----------------------------------------------------------------------------


@dataclass(frozen=True)
class QnnCircuit:
    """A parameterised classifier circuit and how to feed it.

    Attributes:
        circuit: encoding + ansatz, with SymPy symbols for data and weights.
        qubits: ``cirq.LineQubit(0..n-1)``.
        feature_symbols: x0..x{n-1}, one per (scaled) input feature.
        derived_symbols: ``zz_i_j`` = (π−x_i)(π−x_j) for the ZZ feature map (empty otherwise).
        weight_symbols: w0.. in construction order (layer, then gate kind, then qubit).
        operators: readout observables, one per class.
        readout: ``z_per_class``, ``mod_k``, ``parity`` or ``all_z``.
        zz_pairs: the (i, j), i < j, of ``derived_symbols``.
        rotation_axes: pauli_two_design only: the axis of every rotation, per layer then qubit.
        entangler: the ansatz's two-qubit gate (``cx``, ``cz`` or ``sqrt_iswap``).
    """

    circuit: cirq.Circuit
    qubits: tuple[cirq.LineQubit, ...]
    feature_symbols: tuple[sympy.Symbol, ...]
    derived_symbols: tuple[sympy.Symbol, ...]
    weight_symbols: tuple[sympy.Symbol, ...]
    operators: tuple[cirq.PauliSum, ...]
    readout: str
    zz_pairs: tuple[Pair, ...] = ()
    rotation_axes: tuple[tuple[str, ...], ...] = ()
    entangler: str = ""

    @property
    def data_symbols(self) -> tuple[sympy.Symbol, ...]:
        """All symbols fed from data: features, then derived ZZ products."""
        return self.feature_symbols + self.derived_symbols

    @property
    def symbols(self) -> tuple[sympy.Symbol, ...]:
        """Symbol order of the ``symbol_values`` rows: data symbols, then weights."""
        return self.data_symbols + self.weight_symbols

    @property
    def n_classes(self) -> int:
        return len(self.operators)

    def data_values(self, x: np.ndarray) -> np.ndarray:
        """Values of :attr:`data_symbols` for feature rows ``x`` of shape (batch, n_qubits), float32."""
        x = np.asarray(x, dtype=np.float64).reshape(-1, len(self.feature_symbols))
        derived = [(math.pi - x[:, i]) * (math.pi - x[:, j]) for i, j in self.zz_pairs]
        return np.column_stack([x, *derived]).astype(np.float32) if derived else x.astype(np.float32)

    def symbol_values(self, x: np.ndarray, weights: np.ndarray) -> np.ndarray:
        """Rows ``concat(data_values(x), weights)`` in :attr:`symbols` order, float32."""
        data = self.data_values(x)
        w = np.broadcast_to(np.asarray(weights, dtype=np.float32), (len(data), len(self.weight_symbols)))
        return np.concatenate([data, w], axis=1)

    def resolver(self, x_row: ArrayLike, weights: ArrayLike) -> cirq.ParamResolver:
        """Resolver for one input row and a weight vector."""
        values = self.symbol_values(np.asarray(x_row)[None, :], np.asarray(weights))[0]
        return cirq.ParamResolver({s.name: float(v) for s, v in zip(self.symbols, values, strict=True)})


def build_qnn_circuit(spec: Any, n_classes: int | None = None) -> QnnCircuit:
    """Build the classifier circuit described by a :class:`~qmlapp.kinds.qnn.spec.QnnSpec`.

    Layout: angle → E(x)·A₁…A_d; reuploading → E(x)A₁ E(x)A₂ … E(x)A_d; z/zz feature map →
    FM(x)·A₁…A_d; the final rotation layer of real_amplitudes / efficient_su2 / pauli_two_design comes
    last, and pauli_two_design's fixed RY(π/4) layer comes right before A₁'s rotations.

    Args:
        spec: object with ``n_qubits, encoding, ansatz, entanglement, depth, readout`` and, unless
            ``n_classes`` is given, ``dataset`` (classes are looked up in ``DATASETS``). The schema-v2
            fields ``entangler, reduced_rotations, feature_map_entanglement, seed`` are optional and
            default to the v1 circuit.
        n_classes: number of classes; defaults to that of ``spec.dataset``.
    """
    if n_classes is None:
        from qmlapp.datasets import DATASETS

        n_classes = DATASETS[spec.dataset].n_classes
    n = spec.n_qubits
    qubits = tuple(cirq.LineQubit.range(n))
    x = tuple(sympy.Symbol(f"x{i}") for i in range(n))
    fm_pattern = getattr(spec, "feature_map_entanglement", "same")
    fm_pattern = spec.entanglement if fm_pattern == "same" else fm_pattern
    zz_pairs: tuple[Pair, ...] = ()
    zz: dict[Pair, sympy.Symbol] | None = None
    if spec.encoding == "zz_feature_map":
        # Union over reps: sca visits the same unordered pairs every rep, other patterns are fixed.
        used = {(min(i, j), max(i, j)) for r in range(FEATURE_MAP_REPS)
                for i, j in entanglement_pairs(fm_pattern, n, r)}
        zz_pairs = tuple(sorted(used))
        zz = {p: sympy.Symbol(f"zz_{p[0]}_{p[1]}") for p in zz_pairs}

    final = _ANSATZ_LAYOUT[spec.ansatz][2]
    gates = ansatz_gates(spec.ansatz, getattr(spec, "reduced_rotations", False))
    two = resolve_entangler(spec.ansatz, getattr(spec, "entangler", "auto"))
    p2d = spec.ansatz == "pauli_two_design"
    axes = pauli_two_design_axes(getattr(spec, "seed", 0), n, spec.depth) if p2d else ()
    pattern = "pairwise" if p2d else spec.entanglement

    def rotations(layer: int) -> list[cirq.Operation]:
        return _axes_layer(qubits, axes[layer], w) if p2d else _rotation_layer(qubits, gates, w)

    w = _WeightFactory()
    ops: list[cirq.Operation] = []
    if spec.encoding == "angle":
        ops += _angle_encoding(qubits, x)
    elif spec.encoding in ("z_feature_map", "zz_feature_map"):
        ops += _pauli_feature_map(qubits, x, zz, fm_pattern)
    elif spec.encoding != "reuploading":
        raise ValueError(f"unknown encoding {spec.encoding!r}")
    for layer in range(spec.depth):
        if spec.encoding == "reuploading":
            ops += _angle_encoding(qubits, x)
        if p2d and layer == 0:
            ops += [cirq.ry(math.pi / 4).on(q) for q in qubits]
        ops += rotations(layer)
        ops += _entangling_layer(qubits, pattern, layer, two)
    if final:
        ops += rotations(spec.depth)

    return QnnCircuit(
        circuit=cirq.Circuit(ops),
        qubits=qubits,
        feature_symbols=x,
        derived_symbols=tuple(zz[p] for p in zz_pairs) if zz else (),
        weight_symbols=tuple(w.symbols),
        operators=tuple(readout_operators(spec.readout, qubits, n_classes)),
        readout=spec.readout,
        zz_pairs=zz_pairs,
        rotation_axes=axes,
        entangler=two,
    )


# --- export -------------------------------------------------------------------------------------


def circuit_svg(circuit: cirq.Circuit) -> str:
    """SVG drawing of a (possibly symbolic) circuit."""
    from cirq.contrib.svg import circuit_to_svg

    return circuit_to_svg(circuit)


def circuit_qasm(circuit: cirq.Circuit, resolver: cirq.ParamResolverOrSimilarType, header: str = "") -> str:
    """OpenQASM 2.0 of the circuit with every symbol resolved.

    Operations without a QASM form are decomposed first (Cirq's own gate set otherwise).
    ``header`` lines are prepended as ``//`` comments.
    """
    resolved = cirq.resolve_parameters(circuit, resolver)
    if cirq.is_parameterized(resolved):
        missing = sorted(s.name for s in cirq.parameter_symbols(resolved))
        raise ValueError(f"unresolved symbols: {', '.join(missing)}")
    args = cirq.QasmArgs(qubit_id_map={q: f"q[{i}]" for i, q in enumerate(sorted(resolved.all_qubits()))})

    def exportable(op: cirq.Operation) -> bool:
        return cirq.qasm(op, args=args, default=None) is not None

    resolved = cirq.Circuit(cirq.decompose(resolved, keep=exportable))
    comments = "".join(f"// {line}\n" for line in header.splitlines())
    return comments + cirq.qasm(resolved)
