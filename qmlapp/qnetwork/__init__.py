"""Distributed inference and learning over a quantum channel (Gilboa, Michaeli, Soudry & McClean, NeurIPS 2024).

Alice holds the data x, amplitude-encoded in ⌈log₂N⌉ qubits, and the unitaries A_ℓ; Bob holds the B_ℓ and
measures. :mod:`.model` defines the split model (one gate list that feeds Cirq, qsim, TFQ and an exact NumPy
engine), :mod:`.protocol` simulates the two-party protocol with qsimcirq and counts the qubits that cross the
Alice|Bob cut, :mod:`.train` trains the model with TensorFlow Quantum (imported only on the worker side).
"""
