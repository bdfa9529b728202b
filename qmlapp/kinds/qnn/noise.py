"""Noise model of the ``qnn`` kind: Cirq channels after gates and readout error on the observables.

Plain Cirq, no TensorFlow (the web process may import it). The model, for rates set in the spec:

* ``noise_1q`` = p₁: ``cirq.depolarize(p₁)`` after every one-qubit gate. Cirq's convention: X, Y, Z each
  with probability p₁/3, so every ⟨X⟩, ⟨Y⟩, ⟨Z⟩ of that qubit is multiplied by 1 − 4p₁/3.
* ``noise_2q`` = p₂: ``cirq.depolarize(p₂)`` on each qubit of every two-qubit gate, after it, whether or
  not the gate's qubits would be coupled on a device (the authors' unrouted Perth
  model gave uncoupled CX no error). This is a product of one-qubit channels, not the 15-Pauli
  two-qubit depolarizing channel of Qiskit: TFQ's trajectory simulator has no two-qubit depolarizing
  channel, and every path must simulate the same model. An error hits the pair with probability
  1 − (1 − p₂)².
* ``amplitude_damping`` = γ: ``cirq.amplitude_damp(γ)`` on every qubit a gate acts on, after the gate
  (and after its depolarizing channel).
* ``readout_error`` = p: each measured bit flips with probability p, independently. All our observables
  are Z-strings, and a flip of bit q negates Z_q, so ⟨Z_S⟩ becomes ⟨Z_S⟩·Π_{q∈S}(1 − 2p) =
  ⟨Z_S⟩·(1 − 2p)^|S|. This is applied by scaling the coefficient of every Z-string term of the readout
  observables (:func:`fold_readout_error`): exact for expectations. With shots it is exact in the
  mean; the shot-to-shot spread is that of the ideal readout, scaled, not of flipped bits.

Every gate of the circuit is noisy: encoding and feature-map gates as well as the ansatz.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import cirq


@dataclass(frozen=True)
class NoiseModel:
    """Rates of the noise model (all 0 = noiseless)."""

    noise_1q: float = 0.0
    noise_2q: float = 0.0
    amplitude_damping: float = 0.0
    readout_error: float = 0.0

    @classmethod
    def from_spec(cls, spec: Any) -> NoiseModel:
        """The model of a spec; missing fields (e.g. v1-style objects) count as 0."""
        return cls(**{name: float(getattr(spec, name, 0.0)) for name in
                      ("noise_1q", "noise_2q", "amplitude_damping", "readout_error")})

    @property
    def has_gate_noise(self) -> bool:
        return self.noise_1q > 0 or self.noise_2q > 0 or self.amplitude_damping > 0

    @property
    def is_noiseless(self) -> bool:
        return not self.has_gate_noise and self.readout_error == 0

    def describe(self) -> str:
        """One line for the result: what is applied where."""
        if self.is_noiseless:
            return "noiseless"
        parts = []
        if self.noise_1q > 0:
            parts.append(f"depolarize({self.noise_1q:g}) after every 1-qubit gate")
        if self.noise_2q > 0:
            parts.append(f"depolarize({self.noise_2q:g}) on each qubit after every 2-qubit gate")
        if self.amplitude_damping > 0:
            parts.append(f"amplitude_damp({self.amplitude_damping:g}) on every gate's qubits after it")
        if self.readout_error > 0:
            parts.append(f"readout bit flip p={self.readout_error:g}: ⟨Z_S⟩·(1−2p)^|S|")
        return "; ".join(parts)


def add_gate_noise(circuit: cirq.Circuit, model: NoiseModel) -> cirq.Circuit:
    """The circuit with the model's channels inserted after every gate (see the module docstring)."""
    if not model.has_gate_noise:
        return circuit
    ops: list[cirq.Operation] = []
    for op in circuit.all_operations():
        ops.append(op)
        p = model.noise_1q if len(op.qubits) == 1 else model.noise_2q
        if p > 0:
            ops += [cirq.depolarize(p).on(q) for q in op.qubits]
        if model.amplitude_damping > 0:
            ops += [cirq.amplitude_damp(model.amplitude_damping).on(q) for q in op.qubits]
    return cirq.Circuit(ops)


def fold_readout_error(operators: Sequence[cirq.PauliSum], p: float) -> tuple[cirq.PauliSum, ...]:
    """Observables whose ideal expectation equals the original's under a symmetric readout flip ``p``.

    Every Z-string term is scaled by (1 − 2p)^|S|; the identity term is unchanged.

    Raises:
        ValueError: a term holds X or Y (not a measured Z-string).
    """
    if p == 0:
        return tuple(operators)
    folded = []
    for op in operators:
        terms = []
        for term in op:
            if any(pauli != cirq.Z for pauli in term.values()):
                raise ValueError(f"readout error applies to Z-string observables only, got {term}")
            terms.append(term * (1.0 - 2.0 * p) ** len(term))
        folded.append(cirq.PauliSum.from_pauli_strings(terms))
    return tuple(folded)

