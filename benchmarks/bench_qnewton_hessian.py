"""Exact Hessian block of the first kernel (Q-Newton training) vs a per-parameter gradient-of-gradient loop.

Model and batch as the ``qnewton`` kind: one-hidden-layer tanh MLP, float64, digits 8×8 (64 inputs) with 16
hidden units, so the W1 block is 1024×1024; 256 training rows. Methods:

- app, all 4 blocks: ``_Compiled.exact_blocks``, the call ``train`` makes each Newton step (W1, b1, W2, b2
  blocks; 1,210 Hessian rows, W1 is 85 % of them);
- W1 block, pfor: the same method for W1 alone (nested GradientTape, ``jacobian(experimental_use_pfor=True)``);
- loop, compiled: a ``tf.function`` returning row i (gradient of g_i), called once per row from Python;
- loop, eager: a persistent tape, ``tape.gradient(g_i, W1)`` per row (the textbook way);
- Fisher, all 4 blocks: ``_Compiled.fisher_blocks`` (per-sample gradients by vectorized_map, (1/B)·GᵀG).

The loops are timed on ``--loop-rows`` rows and extrapolated linearly to all rows. Methods alternate in
rounds; the median is reported, with ratios against "W1 block, pfor" from the same run. Rows from the loops
are checked against the pfor block (max abs difference printed). Nothing is asserted on time.

Usage: python benchmarks/bench_qnewton_hessian.py [--dataset digits] [--hidden 16] [--batch 256] [--rounds 5]
       [--loop-rows 64]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from anywhere

from qmlapp.kinds.qnewton.training import LAYERS, _compiled, glorot_init, load_data


def make_methods(dataset: str, hidden: int, batch: int, loop_rows: int) -> tuple[dict[str, Callable[[], Any]], int]:
    """{name: closure} on one fixed batch; loop closures compute ``loop_rows`` rows only. Also returns N(W1)."""
    import tensorflow as tf

    X, y, _, _ = load_data(dataset, 0)
    n_inputs = X.shape[1]
    params = glorot_init(n_inputs, hidden, 0)
    p = [tf.constant(params[k]) for k in LAYERS]
    x, yy = tf.constant(X[:batch]), tf.constant(y[:batch].astype(np.int32))
    fn = _compiled(n_inputs, hidden)
    n = n_inputs * hidden
    rows = np.linspace(0, n - 1, loop_rows).astype(int)

    def loss_of(w1: tf.Tensor) -> tf.Tensor:
        logits = tf.tanh(x @ w1 + p[1]) @ p[2] + p[3]
        return tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels=yy, logits=logits))

    @tf.function(input_signature=[tf.TensorSpec(params["W1"].shape, tf.float64)])
    def w1_block(w1: tf.Tensor) -> tf.Tensor:
        with tf.GradientTape() as outer:
            outer.watch(w1)
            with tf.GradientTape() as inner:
                inner.watch(w1)
                loss = loss_of(w1)
            g = tf.reshape(inner.gradient(loss, w1), [-1])
        return tf.reshape(outer.jacobian(g, w1, experimental_use_pfor=True), [n, n])

    @tf.function(input_signature=[tf.TensorSpec(params["W1"].shape, tf.float64), tf.TensorSpec([], tf.int32)])
    def w1_row(w1: tf.Tensor, i: tf.Tensor) -> tf.Tensor:
        with tf.GradientTape() as outer:
            outer.watch(w1)
            with tf.GradientTape() as inner:
                inner.watch(w1)
                loss = loss_of(w1)
            gi = tf.reshape(inner.gradient(loss, w1), [-1])[i]
        return tf.reshape(outer.gradient(gi, w1), [-1])

    def eager_rows() -> np.ndarray:
        w1 = tf.Variable(params["W1"])
        with tf.GradientTape(persistent=True) as outer:
            with tf.GradientTape() as inner:
                loss = loss_of(w1)
            g = tf.reshape(inner.gradient(loss, w1), [-1])
        out = []
        for i in rows:
            with outer:
                gi = g[int(i)]
            out.append(tf.reshape(outer.gradient(gi, w1), [-1]).numpy())
        del outer
        return np.array(out)

    w1 = p[0]
    methods: dict[str, Callable[[], Any]] = {
        "W1 block, pfor": lambda: w1_block(w1).numpy(),
        "app, all 4 blocks": lambda: [b.numpy() for b in fn.exact_blocks(p, x, yy)],
        "Fisher, all 4 blocks": lambda: [b.numpy() for b in fn.fisher_blocks(p, x, yy)],
        "loop, compiled": lambda: np.array([w1_row(w1, tf.constant(int(i), tf.int32)).numpy() for i in rows]),
        "loop, eager": eager_rows,
    }
    block = methods["W1 block, pfor"]()
    app = methods["app, all 4 blocks"]()[0]
    print(f"  check: app W1 vs pfor block {np.abs(app - block).max():.1e}; "
          f"compiled loop rows {np.abs(methods['loop, compiled']() - block[rows]).max():.1e}; "
          f"eager loop rows {np.abs(eager_rows() - block[rows]).max():.1e}", flush=True)
    return methods, n


def timed(f: Callable[[], Any]) -> float:
    start = time.perf_counter()
    f()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="digits", choices=["digits", "digits_4x4"])
    parser.add_argument("--hidden", type=int, default=16)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--rounds", type=int, default=5, help="alternating rounds; the median is reported")
    parser.add_argument("--loop-rows", type=int, default=64, help="rows the loops compute (extrapolated)")
    args = parser.parse_args()

    methods, n = make_methods(args.dataset, args.hidden, args.batch, args.loop_rows)
    for f in methods.values():  # warm-up: tracing, thread pools
        f()
    scale = {name: (n / args.loop_rows if name.startswith("loop") else 1.0) for name in methods}
    times: dict[str, list[float]] = {name: [] for name in methods}
    for _ in range(args.rounds):  # alternate so that machine noise hits all alike
        for name, f in methods.items():
            times[name].append(timed(f) * scale[name])
    base = statistics.median(times["W1 block, pfor"])

    print(f"\nExact Hessian block of W1 ({n}×{n}: {args.dataset}, hidden {args.hidden}), batch {args.batch}, "
          f"float64; median of {args.rounds} alternating rounds; loops timed on {args.loop_rows} rows and "
          f"extrapolated to {n}")
    print(f"{'method':<22} | {'seconds':>8} | {'× pfor block':>12}")
    print(f"{'-' * 22}-+-{'-' * 8}-+-{'-' * 12}")
    for name, ts in times.items():
        t = statistics.median(ts)
        print(f"{name:<22} | {t:>8.3f} | {t / base:>12.2f}")


if __name__ == "__main__":
    main()
