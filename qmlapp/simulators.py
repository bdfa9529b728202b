"""The one place where simulators are built: the :class:`Simulators` factory, and the strategies that
evaluate ⟨operators⟩ of a symbolic circuit for rows of symbol values.

Experiments never construct a qsim, TFQ or Cirq simulator themselves: their run context carries a
:class:`Simulators` (``ctx.simulators``) that knows the run's thread budget, and the runner hands it, or
what it builds, to the domain code. Tests inject ``Simulators(threads=1)`` or a subclass.

A simulator ``compile``s (circuit, symbols, operators) once and returns a callable that maps a
(batch, n_symbols) array of symbol values to a (batch, n_operators) array of expectations:

* :class:`TfqBackend` — TensorFlow Quantum's qsim ops; exact expectations with the adjoint
  differentiator, or sampled ones (``repetitions`` shots per term, parameter-shift gradients). Its
  compiled form also exposes a differentiable TensorFlow call for training. Circuits with noise
  channels run on TFQ's noisy backend (Monte-Carlo trajectories in qsim, parameter-shift gradients):
  with ``repetitions`` > 0 one trajectory per shot, else ``trajectories`` per expectation.
* :class:`DensityMatrixBackend` — exact noisy expectations by density-matrix simulation written in
  TensorFlow (differentiable by backpropagation); the fast path for gate noise on few qubits.
* :class:`CirqReference` — ``cirq.Simulator`` row by row (``cirq.DensityMatrixSimulator`` when the
  circuit holds channels); slow, used to check the fast paths.

TensorFlow, qsimcirq and Cirq are imported lazily, where a simulator is built or run, so that importing
this module (the run contexts, the worker and the CLI do) stays light.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from qmlapp.config import Settings, env_sim_threads

if TYPE_CHECKING:
    import cirq
    import qsimcirq
    import sympy
    import tensorflow as tf

# Trajectories per expectation when a noisy circuit is evaluated without shots on TFQ's noisy backend
# (standard error ≲ 1/√1000 ≈ 0.03 on a ±1 observable; ~35 µs per trajectory at 4 qubits, measured).
DEFAULT_TRAJECTORIES = 1000


def has_channels(circuit: cirq.Circuit) -> bool:
    """True if the circuit holds non-unitary operations (noise channels)."""
    import cirq

    return any(not cirq.is_parameterized(op) and not cirq.has_unitary(op) for op in circuit.all_operations())


class CompiledExpectation(Protocol):
    """Expectations of fixed operators on a fixed symbolic circuit."""

    n_symbols: int
    n_outputs: int

    def __call__(self, symbol_values: np.ndarray) -> np.ndarray:
        """Map (batch, n_symbols) symbol values to (batch, n_outputs) expectations."""


class Simulator(Protocol):
    """A simulation strategy (injected into experiments; see :class:`TfqBackend`)."""

    name: str

    def compile(
        self,
        circuit: cirq.Circuit,
        symbols: Sequence[sympy.Symbol],
        operators: Sequence[cirq.PauliSum],
        repetitions: int = 0,
    ) -> CompiledExpectation:
        """Prepare ``circuit`` for repeated evaluation; ``repetitions`` 0 means exact."""


def configure_tensorflow(threads: int | None = None) -> None:
    """Use ``threads`` intra-op threads (None: QMLAPP_SIM_THREADS, else all usable CPUs). TensorFlow only
    accepts this before its runtime starts; later calls (runtime already up) leave the setting as it is."""
    import tensorflow as tf

    if threads is None:
        threads = Simulators.from_env().threads
    if tf.config.threading.get_intra_op_parallelism_threads() == threads:
        return
    try:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
    except RuntimeError:
        pass  # runtime already initialised by an earlier TensorFlow user in this process


class TfqCompiled:
    """A circuit serialised once; numbers are fed as symbol values.

    ``tf_call`` is differentiable (adjoint for exact, parameter shift for sampled or noisy) and is what
    the training step uses; ``__call__`` is a graph-compiled forward pass on numpy input.

    A circuit with noise channels runs on TFQ's noisy backend: ``repetitions`` > 0 gives sampled
    expectations with one trajectory per shot (``tfq.layers.SampledExpectation(backend='noisy')``),
    ``repetitions`` = 0 the mean of exact expectations over ``trajectories`` trajectories
    (``tfq.layers.Expectation(backend='noisy')``). TFQ supports only parameter-shift (or finite-difference)
    gradients there.
    """

    def __init__(
        self,
        circuit: cirq.Circuit,
        symbols: Sequence[sympy.Symbol],
        operators: Sequence[cirq.PauliSum],
        repetitions: int,
        differentiator: Any | None = None,
        trajectories: int = DEFAULT_TRAJECTORIES,
    ) -> None:
        import tensorflow as tf
        import tensorflow_quantum as tfq

        self.n_symbols = len(symbols)
        self.n_outputs = len(operators)
        self.repetitions = int(repetitions)
        self.noisy = has_channels(circuit)
        # Trajectories per evaluated expectation (0 = noiseless state vector).
        self.trajectories = (self.repetitions or int(trajectories)) if self.noisy else 0
        self.symbol_names = tf.constant([s.name for s in symbols])
        self.program = tfq.convert_to_tensor([circuit])  # shape [1]
        self.operators = tfq.convert_to_tensor([list(operators)])  # shape [1, n_outputs]
        # No backend argument for noiseless circuits: TFQ keeps its C++ qsim ops, with the Adjoint
        # differentiator for exact expectations and ParameterShift for sampled ones unless another one is
        # injected. The noisy backend defaults to ParameterShift.
        options: dict[str, Any] = {"differentiator": differentiator} if differentiator is not None else {}
        if self.noisy:
            options["backend"] = "noisy"
        layer_class = tfq.layers.SampledExpectation if self.repetitions > 0 else tfq.layers.Expectation
        self.layer = layer_class(**options)
        self.differentiator_name = (type(differentiator).__name__ if differentiator is not None
                                    else "Adjoint" if not self.noisy and self.repetitions == 0 else "ParameterShift")
        # A closure per instance, not the bound method: TF's retracing detector keys on the Python
        # function and would warn when many compiled circuits live in one process (tests, sweeps).
        def forward(symbol_values: tf.Tensor) -> tf.Tensor:
            return self.tf_call(symbol_values)

        signature = [tf.TensorSpec([None, self.n_symbols], tf.float32)]
        self._forward = tf.function(forward, input_signature=signature)

    def tf_call(self, symbol_values: tf.Tensor) -> tf.Tensor:
        """Differentiable expectations, (batch, n_outputs) float32. Tiles the serialised circuit and
        operators to the batch (static when the batch dimension is static)."""
        import tensorflow as tf

        batch = symbol_values.shape[0]
        if batch is None:
            batch = tf.shape(symbol_values)[0]
        programs = tf.tile(self.program, [batch])
        operators = tf.tile(self.operators, [batch, 1])
        kwargs: dict[str, Any] = {"symbol_names": self.symbol_names, "symbol_values": symbol_values,
                                  "operators": operators}
        if self.repetitions > 0 or self.noisy:
            kwargs["repetitions"] = self.repetitions or self.trajectories
        return self.layer(programs, **kwargs)

    def __call__(self, symbol_values: np.ndarray) -> np.ndarray:
        values = np.asarray(symbol_values, dtype=np.float32).reshape(-1, self.n_symbols)
        return self._forward(values).numpy()


class TfqBackend:
    """TensorFlow Quantum (qsim C++ ops): adjoint gradients when exact, shots otherwise; circuits with
    channels run as Monte-Carlo trajectories on TFQ's noisy backend.

    TFQ's sampling and trajectory ops take no seed, so sampled or noisy results are not reproducible
    bit for bit.

    Args:
        threads: TensorFlow intra-op threads (None: see :func:`configure_tensorflow`).
        differentiator: a ``tfq.differentiators.Differentiator``; None = TFQ's default (Adjoint for
            exact noiseless expectations, ParameterShift otherwise).
        trajectories: trajectories per expectation for noisy circuits evaluated without shots.
    """

    name = "tfq"

    def __init__(self, threads: int | None = None, differentiator: Any | None = None,
                 trajectories: int = DEFAULT_TRAJECTORIES) -> None:
        self.threads = threads if threads is not None else Simulators.from_env().threads
        configure_tensorflow(self.threads)
        self.differentiator = differentiator
        self.trajectories = int(trajectories)

    def compile(
        self,
        circuit: cirq.Circuit,
        symbols: Sequence[sympy.Symbol],
        operators: Sequence[cirq.PauliSum],
        repetitions: int = 0,
    ) -> TfqCompiled:
        return TfqCompiled(circuit, symbols, operators, repetitions, self.differentiator, self.trajectories)


class DensityMatrixBackend:
    """Noisy expectations by density-matrix simulation in TensorFlow (see :mod:`qmlapp.density_matrix`);
    4^n numbers per row, so for few qubits only.

    Exact (``repetitions`` 0): deterministic and differentiable by backpropagation. Sampled: every
    qubit measured ``repetitions`` times per row, bitstrings drawn from the exact distribution with a
    generator seeded by ``seed``; forward only (no ``tf_call``).
    """

    name = "density_matrix"

    def __init__(self, threads: int | None = None, seed: int | None = None) -> None:
        self.threads = threads if threads is not None else Simulators.from_env().threads
        configure_tensorflow(self.threads)
        self.seed = seed

    def compile(
        self,
        circuit: cirq.Circuit,
        symbols: Sequence[sympy.Symbol],
        operators: Sequence[cirq.PauliSum],
        repetitions: int = 0,
    ) -> Any:
        from qmlapp.density_matrix import DensityMatrixCompiled, SampledDensityMatrix

        if repetitions > 0:
            return SampledDensityMatrix(circuit, symbols, operators, repetitions, self.seed)
        return DensityMatrixCompiled(circuit, symbols, operators)


class CirqCompiled:
    """Row-by-row ``cirq.Simulator`` evaluation (exact, or sampled with a seeded simulator)."""

    def __init__(
        self,
        circuit: cirq.Circuit,
        symbols: Sequence[sympy.Symbol],
        operators: Sequence[cirq.PauliSum],
        repetitions: int,
        simulator: cirq.Simulator | cirq.DensityMatrixSimulator,
    ) -> None:
        self.circuit = circuit
        self.symbols = tuple(symbols)
        self.operators = list(operators)
        self.n_symbols = len(self.symbols)
        self.n_outputs = len(self.operators)
        self.repetitions = int(repetitions)
        self.simulator = simulator
        self.qubits = sorted(circuit.all_qubits() | {q for op in operators for q in op.qubits})

    def _resolver(self, row: np.ndarray) -> cirq.ParamResolver:
        import cirq

        return cirq.ParamResolver({s.name: float(v) for s, v in zip(self.symbols, row, strict=True)})

    def _sampled(self, resolver: cirq.ParamResolver) -> np.ndarray:
        """Measure all qubits ``repetitions`` times and average each Z-string term over the shots."""
        import cirq

        measured = self.circuit + cirq.measure(*self.qubits, key="m")
        bits = self.simulator.run(measured, resolver, repetitions=self.repetitions).measurements["m"]
        signs = 1 - 2 * bits.astype(np.int64)  # Z eigenvalue per qubit and shot
        col = {q: i for i, q in enumerate(self.qubits)}
        out = np.zeros(self.n_outputs)
        for k, op in enumerate(self.operators):
            for term in op:
                if any(p != cirq.Z for p in term.values()):
                    raise ValueError("sampled CirqReference supports Z-string operators only")
                prod = np.prod(signs[:, [col[q] for q in term.qubits]], axis=1) if len(term) else 1.0
                out[k] += float(np.real(term.coefficient)) * float(np.mean(prod))
        return out

    def __call__(self, symbol_values: np.ndarray) -> np.ndarray:
        values = np.asarray(symbol_values, dtype=np.float64).reshape(-1, self.n_symbols)
        rows = []
        for row in values:
            resolver = self._resolver(row)
            if self.repetitions > 0:
                rows.append(self._sampled(resolver))
            else:
                observables: list[cirq.PauliSumLike] = list(self.operators)  # cirq's parameter type
                ev = self.simulator.simulate_expectation_values(
                    self.circuit, observables, resolver, qubit_order=self.qubits
                )
                rows.append(np.real(ev))
        return np.asarray(rows, dtype=np.float64).reshape(len(values), self.n_outputs)


class CirqReference:
    """Reference simulator (``cirq.Simulator``, complex128; ``cirq.DensityMatrixSimulator`` for circuits
    with noise channels, so noisy expectations are exact); seeded when sampling."""

    name = "cirq"

    def __init__(self, seed: int | None = None) -> None:
        self.seed = seed

    def compile(
        self,
        circuit: cirq.Circuit,
        symbols: Sequence[sympy.Symbol],
        operators: Sequence[cirq.PauliSum],
        repetitions: int = 0,
    ) -> CirqCompiled:
        import cirq

        simulator: cirq.Simulator | cirq.DensityMatrixSimulator
        if has_channels(circuit):
            simulator = cirq.DensityMatrixSimulator(dtype=np.complex128, seed=self.seed)
        else:
            simulator = cirq.Simulator(dtype=np.complex128, seed=self.seed)
        return CirqCompiled(circuit, symbols, operators, repetitions, simulator)


@dataclass(frozen=True)
class Simulators:
    """Builds every simulator of a run with one thread budget (qsim's ``cpu_threads``, TensorFlow's
    intra-op pool). A run gets it from its context; subclasses may observe what is built."""

    threads: int

    def __post_init__(self) -> None:
        if int(self.threads) < 1:
            raise ValueError(f"threads must be ≥ 1, got {self.threads}")

    @classmethod
    def from_settings(cls, settings: Settings) -> Simulators:
        return cls(threads=settings.threads_per_run)

    @classmethod
    def from_env(cls) -> Simulators:
        """QMLAPP_SIM_THREADS, else every usable CPU: what a script or a test in its own process gets."""
        return cls.from_settings(Settings(sim_threads=env_sim_threads()))

    def qsim_options(self, *, max_fused_gate_size: int = 2) -> qsimcirq.QSimOptions:
        import qsimcirq

        return qsimcirq.QSimOptions(cpu_threads=int(self.threads), max_fused_gate_size=max_fused_gate_size)

    def qsim(self, *, seed: int | None = None, max_fused_gate_size: int = 2,
             circuit_memoization_size: int = 0) -> qsimcirq.QSimSimulator:
        """A qsimcirq state-vector simulator; ``seed`` fixes its sampling and trajectory draws, and
        ``circuit_memoization_size`` > 0 keeps that many translated circuits (repeated noisy runs)."""
        import qsimcirq

        return qsimcirq.QSimSimulator(self.qsim_options(max_fused_gate_size=max_fused_gate_size),
                                      seed=None if seed is None else int(seed),
                                      circuit_memoization_size=int(circuit_memoization_size))

    def tfq(self, *, differentiator: Any | None = None, trajectories: int = DEFAULT_TRAJECTORIES) -> TfqBackend:
        return TfqBackend(threads=self.threads, differentiator=differentiator, trajectories=trajectories)

    def density_matrix(self, *, seed: int | None = None) -> DensityMatrixBackend:
        return DensityMatrixBackend(threads=self.threads, seed=seed)

    def cirq_reference(self, *, seed: int | None = None) -> CirqReference:
        """Cirq's own simulators (single-threaded NumPy): the slow reference for checks."""
        return CirqReference(seed=seed)
