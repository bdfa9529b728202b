"""QNN training step of the app vs a bare TFQ Expectation (adjoint) + Adam step.

Both steps run the same circuit (default QnnSpec, breast_cancer reduced by PCA to n qubits, so
z_per_class has 2 outputs) on the same batch of 32 rows. The app step is ``QnnModel.train_step``,
the one ``qnn_train.run`` uses. Timings alternate between the two in rounds and report the median.

Usage: python benchmarks/bench_qnn_step.py [--qubits 4 8 12] [--round-seconds 1.0] [--rounds 7] [--depth 2]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from anywhere

from qmlapp.kinds.qnn.circuits import LOGIT_SCALE, build_qnn_circuit
from qmlapp.kinds.qnn.run import QnnModel, initial_weights, make_optimizer, prepare_data
from qmlapp.kinds.qnn.spec import QnnSpec
from qmlapp.simulators import TfqBackend

BATCH = 32


def make_steps(n_qubits: int, depth: int) -> tuple[Callable[[], object], Callable[[], object]]:
    """(app step, bare step) closures on one fixed batch."""
    backend = TfqBackend()  # first: it sets TF's thread pool, which importing TFQ would freeze
    spec = QnnSpec(dataset="breast_cancer", n_qubits=n_qubits, depth=depth, batch_size=BATCH)
    data = prepare_data(spec)
    qnn = build_qnn_circuit(spec, len(data.class_names))
    x = qnn.data_values(data.x_train[:BATCH])
    y = data.y_train[:BATCH].astype(np.int32)
    w0 = initial_weights(spec, len(qnn.weight_symbols))

    import tensorflow as tf
    import tensorflow_quantum as tfq

    compiled = backend.compile(qnn.circuit, qnn.symbols, qnn.operators)
    optimizer = make_optimizer("adam", spec.learning_rate)
    model = QnnModel(qnn, compiled, w0, batch_size=BATCH, optimizer=optimizer)
    mask = np.ones(BATCH, np.float32)

    def app() -> object:
        loss, _ = model.train_step(x, y, mask)
        return loss.numpy()

    # Bare TFQ: the tutorial-style layer on pre-tiled tensors, with the same loss and optimiser.
    layer = tfq.layers.Expectation()
    programs = tfq.convert_to_tensor([qnn.circuit] * BATCH)
    operators = tfq.convert_to_tensor([list(qnn.operators)] * BATCH)
    names = [s.name for s in qnn.symbols]
    w = tf.Variable(w0.astype(np.float32))
    opt = tf.keras.optimizers.Adam(learning_rate=spec.learning_rate)
    opt.build([w])

    @tf.function
    def bare_step(xb: tf.Tensor, yb: tf.Tensor) -> tf.Tensor:
        with tf.GradientTape() as tape:
            values = tf.concat([xb, tf.tile(w[None, :], [BATCH, 1])], axis=1)
            e = layer(programs, symbol_names=names, symbol_values=values, operators=operators)
            loss = tf.reduce_mean(
                tf.keras.losses.sparse_categorical_crossentropy(yb, LOGIT_SCALE * e, from_logits=True))
        opt.apply_gradients([(tape.gradient(loss, w), w)])
        return loss

    xt, yt = tf.constant(x), tf.constant(y)

    def bare() -> object:
        return bare_step(xt, yt).numpy()

    return app, bare


def time_steps(step: Callable[[], object], n: int) -> float:
    """Mean milliseconds per step over ``n`` consecutive steps."""
    start = time.perf_counter()
    for _ in range(n):
        step()
    return (time.perf_counter() - start) / n * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--qubits", type=int, nargs="+", default=[4, 8, 12])
    parser.add_argument("--depth", type=int, default=2)
    parser.add_argument("--round-seconds", type=float, default=1.0, help="target length of a timing round")
    parser.add_argument("--rounds", type=int, default=7, help="alternating rounds; the median is reported")
    args = parser.parse_args()

    rows = []
    for n in args.qubits:
        app, bare = make_steps(n, args.depth)
        for _ in range(10):  # warm-up: tracing, slot creation, thread pools
            app()
            bare()
        steps = max(10, round(args.round_seconds * 1e3 / time_steps(bare, 10)))
        app_ms, bare_ms = [], []
        for _ in range(args.rounds):  # alternate so that machine noise hits both alike
            app_ms.append(time_steps(app, steps))
            bare_ms.append(time_steps(bare, steps))
        a, b = statistics.median(app_ms), statistics.median(bare_ms)
        rows.append((n, a, b, a / b))
        print(f"  n={n:2d} done: app {a:.2f} ms, bare {b:.2f} ms", flush=True)

    print(f"\nQNN training step, batch {BATCH}, hardware_efficient depth {args.depth}, angle encoding, "
          f"z_per_class, Adam; median of {args.rounds} alternating rounds of ~{args.round_seconds:g} s")
    print(f"{'qubits':>6} | {'app ms/step':>11} | {'bare TFQ ms/step':>16} | {'ratio':>5}")
    print(f"{'-' * 6}-+-{'-' * 11}-+-{'-' * 16}-+-{'-' * 5}")
    for n, a, b, r in rows:
        print(f"{n:>6} | {a:>11.2f} | {b:>16.2f} | {r:>5.2f}")


if __name__ == "__main__":
    main()
