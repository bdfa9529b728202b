"""Runner of the ``qnetwork`` kind: the two-party protocol simulated on qsim, communication counted,
classical baselines, the linear-classifier comparison, privacy and expressivity; training with TFQ.

Provenance of every number: *simulated* (came out of a circuit run: expectations, estimates, counted
transfers of simulated runs), *computed* (exact arithmetic: classical bits, counts of the protocol as
defined), *estimated* (the shadow-tomography bound, formula curves beyond the simulated sizes).
"""

from __future__ import annotations

import dataclasses
import math
import time
from typing import SupportsInt, cast

import numpy as np

from qmlapp.context import RunContext
from qmlapp.kinds.qnetwork import accounting as acc
from qmlapp.kinds.qnetwork.data import load_qnet_data, random_inputs
from qmlapp.kinds.qnetwork.model import SplitModel
from qmlapp.kinds.qnetwork.protocol import (
    ProtocolRun,
    exact_gradient,
    fourier_degree,
    run_protocol,
    sample_mean,
    shift_gradient,
    standard_error,
)
from qmlapp.kinds.qnetwork.result import (
    Communication,
    ExpressivityPoint,
    GradientDemo,
    LinearComparison,
    ProtocolRunRow,
    QnetworkResult,
    QnetworkTraining,
    ScalingPoint,
    ShotPoint,
    Transfer,
)
from qmlapp.kinds.qnetwork.spec import QnetworkSpec
from qmlapp.simulators import Simulators

SHOT_LADDER = (16, 64, 256, 1024, 4096, 16384, 65536)
EXPRESSIVITY_QUBITS = 6  # the Fourier analysis along a path runs at this register size (cheap, exact)
SCALING_MIN_QUBITS = 2


def _estimate(run: ProtocolRun, copies: int, rng: np.random.Generator) -> tuple[float, float, int]:
    """K single-shot copies of an already simulated protocol run (the same draw as ``protocol.estimate``,
    without simulating the circuit again): (estimate, standard error, qubits communicated)."""
    mean = float(sample_mean(run.expectation, copies, rng))
    return mean, standard_error(mean, copies), int(copies) * run.qubits_per_copy


def _inputs(spec: QnetworkSpec) -> tuple[np.ndarray, str]:
    if spec.dataset == "synthetic":
        return random_inputs(spec.n_features, spec.n_inputs, spec.seed), "seeded random unit vectors"
    data = load_qnet_data(spec.dataset, n_features=spec.n_features, train_size=spec.train_size, seed=spec.seed)
    return data.X_test[: spec.n_inputs], f"the first {min(spec.n_inputs, len(data.X_test))} test inputs of " \
                                          f"{spec.dataset}"


def _communication(spec: QnetworkSpec, model: SplitModel, rounds: int) -> Communication:
    N, L, P, K, b = spec.n_features, spec.layers, spec.params_per_unitary, spec.copies, spec.bits_per_number
    n = spec.n_qubits
    inference = K * rounds * n
    data_bits = acc.ship_data_bits(N, b)
    model_bits = acc.ship_model_bits(L, P, b)
    return {
        "copies": K,
        "qubits_per_copy": rounds * n,
        "qubits_per_inference": inference,
        "classical_bits_data": data_bits,
        "classical_bits_model": model_bits,
        "advantage_ratio": acc.advantage_ratio([data_bits, model_bits], inference),
        "ratio_vs_data": data_bits / inference,
        "ratio_vs_model": model_bits / inference,
        "gradient_qubits_parameter_shift": acc.parameter_shift_qubits(N, L, P, K),
        "gradient_qubits_shadow_bound": acc.shadow_gradient_qubits(N, L, P, spec.epsilon, spec.shadow_constant),
        "shadow_crossover_params": acc.shadow_crossover_params(N, L, spec.epsilon, delta=spec.delta,
                                                               C=spec.shadow_constant,
                                                               K=spec.copies),
        "holevo_bound_bits": acc.holevo_bound_bits(K, rounds, n),
        "holevo_bound_bits_entangled": acc.holevo_bound_bits(K, rounds, n, entanglement=True),
        "n_params_total": model.n_params,
    }


def _linear(spec: QnetworkSpec, rng: np.random.Generator) -> LinearComparison:
    """The ℓ₂-sampling protocol run for real on one random (x, w) pair, and the quantum linear protocol's count."""
    N, b, gamma = spec.n_features, spec.bits_per_number, spec.linear_margin
    x = rng.standard_normal(N)
    w = rng.standard_normal(N)
    samples = acc.linear_sketch_samples(gamma, c=2 * math.log(2 / spec.delta))
    sim = acc.simulate_linear_sketch(x, w, samples, rng, b)
    classical = acc.linear_sketch_bits(N, b, gamma, c=2 * math.log(2 / spec.delta))
    quantum = acc.quantum_linear_qubits(N, gamma, spec.delta)
    return {"margin": gamma, "samples": samples, "sketch_estimate": sim["estimate"], "sketch_se": sim["se"],
            "exact_overlap": sim["exact"], "sketch_bits_sent": sim["bits_sent"], "classical_bits": classical,
            "quantum_qubits": quantum, "ratio": classical / quantum}


def _scaling(spec: QnetworkSpec, params_seed: int, ctx: RunContext, lo: float, hi: float) -> list[ScalingPoint]:
    """The inference protocol for real at N = 2^2 … 2^n: one input each, transfers counted from the log."""
    points: list[ScalingPoint] = []
    sizes = list(range(SCALING_MIN_QUBITS, spec.n_qubits + 1))
    for i, n in enumerate(sizes):
        ctx.check_cancelled()
        N = 2**n
        sub = dataclasses.replace(spec, n_features=N, dataset="synthetic", mode="inference")
        model = SplitModel.from_spec(sub)
        params = model.init_params(np.random.default_rng([params_seed, n]))
        x = random_inputs(N, 1, spec.seed + n)[0]
        t0 = time.perf_counter()
        run = run_protocol(model, params, x, simulators=ctx.simulators)
        est, se, qubits = _estimate(run, spec.copies, np.random.default_rng([spec.seed, n, 7]))
        points.append({"n_features": N, "n_qubits": n, "rounds": run.rounds,
                       "qubits_per_copy": sum(t.n_qubits for t in run.transfers),
                       "qubits_per_inference": qubits, "loss_exact": run.expectation, "loss_estimate": est,
                       "loss_se": se, "wall_s": time.perf_counter() - t0})
        ctx.progress(lo + (hi - lo) * (i + 1) / len(sizes), f"scaling study: N = 2^{n} simulated")
    return points


def _expressivity(spec: QnetworkSpec, ctx: RunContext) -> list[ExpressivityPoint]:
    """Highest Fourier frequency of ℒ along a great circle vs depth, with and without data re-uploading."""
    n = min(spec.n_qubits, EXPRESSIVITY_QUBITS)
    out: list[ExpressivityPoint] = []
    for L in range(1, max(spec.layers, 4) + 1):
        for data_layers in (False, True):
            ctx.check_cancelled()
            sub = dataclasses.replace(spec, n_features=2**n, layers=L, data_layers=data_layers, dataset="synthetic",
                                      mode="inference")
            model = SplitModel.from_spec(sub)
            params = model.init_params(np.random.default_rng([spec.seed, L, 3]))
            res = fourier_degree(model, params, seed=spec.seed, simulators=ctx.simulators)
            out.append({"layers": L, "data_layers": data_layers, "degree": int(cast(SupportsInt, res["degree"])),
                        "n_qubits": n, "provenance": "simulated"})
    return out


def run(spec: QnetworkSpec, ctx: RunContext) -> QnetworkResult:
    t_start = time.perf_counter()
    model = SplitModel.from_spec(spec)
    rng = np.random.default_rng([spec.seed, 1])
    params = model.init_params(np.random.default_rng([spec.seed, 2]))
    training: QnetworkTraining = {}
    if spec.mode == "training":
        params, X, training = _train(spec, model, ctx)
        source = "test inputs"
    else:
        X, source = _inputs(spec)
    ctx.progress(0.6 if spec.mode == "training" else 0.02, "running the two-party protocol")
    runs: list[ProtocolRunRow] = []
    protocol_runs = []
    for x in X:
        ctx.check_cancelled()
        pr = run_protocol(model, params, x, simulators=ctx.simulators)
        protocol_runs.append(pr)
        est, se, qubits = _estimate(pr, spec.copies, rng)
        runs.append({"loss_exact": pr.expectation, "loss_estimate": est, "loss_se": se, "qubits": qubits,
                     "wall_s": pr.wall_s})
    first = protocol_runs[0]
    transfers: list[Transfer] = [{"round": i + 1, "from": t.sender, "to": t.receiver, "qubits": t.n_qubits}
                                 for i, t in enumerate(first.transfers)]
    comm = _communication(spec, model, first.rounds)
    counted = sum(t["qubits"] for t in transfers)
    assert counted == comm["qubits_per_copy"], "the transfer log and the formula must agree"
    shots: list[ShotPoint] = []
    for K in sorted({*[k for k in SHOT_LADDER if k <= max(spec.copies, 1024)], spec.copies}):
        est, se, _ = _estimate(first, K, np.random.default_rng([spec.seed, K]))
        shots.append({"copies": K, "estimate": est, "se": se})
    ctx.progress(0.7, "gradient communication (parameter shift through the protocol)")
    grad_demo = _gradient_demo(spec, model, params, X[0], rng, ctx.simulators)
    ctx.progress(0.75, "linear classifier comparison")
    linear = _linear(spec, rng)
    scaling = _scaling(spec, spec.seed, ctx, 0.75, 0.9) if spec.scaling_study else []
    ctx.progress(0.9, "expressivity vs depth")
    expressivity = _expressivity(spec, ctx)
    loss_exact = float(np.mean([r["loss_exact"] for r in runs]))
    loss_estimate = float(np.mean([r["loss_estimate"] for r in runs]))
    headline_qubits: float = comm["qubits_per_inference"]
    advantage = comm["advantage_ratio"]
    if spec.mode == "training":  # the headline is one per-example gradient, against a classical gradient exchange
        headline_qubits = (comm["gradient_qubits_parameter_shift"] if spec.gradient == "parameter_shift"
                           else comm["gradient_qubits_shadow_bound"])
        comm["classical_bits_gradient"] = acc.ship_gradient_bits(spec.n_features, spec.layers,
                                                                  spec.params_per_unitary, spec.bits_per_number)
        advantage = comm["classical_bits_gradient"] / headline_qubits
    result: QnetworkResult = {
        "n_qubits": spec.n_qubits, "n_features": spec.n_features, "layers": spec.layers,
        "params_per_unitary": spec.params_per_unitary, "mode": spec.mode,
        **training,
        "loss_exact": loss_exact if spec.mode == "inference" else training["test_loss"],
        "loss_estimate": loss_estimate if spec.mode == "inference" else training["test_loss_estimate"],
        "mean_output_exact": loss_exact,
        "mean_output_estimate": loss_estimate,
        "qubits_communicated": headline_qubits,
        "rounds": first.rounds,
        "classical_bits_data": comm["classical_bits_data"],
        "classical_bits_model": comm["classical_bits_model"],
        "advantage_ratio": advantage,
        "holevo_bound_bits": comm["holevo_bound_bits"],
        "copies": spec.copies,
        "communication": comm,
        "transfers": transfers,
        "inputs": source,
        "protocol_runs": runs,
        "shot_convergence": shots,
        "gradient_demo": grad_demo,
        "linear": linear,
        "scaling": scaling,
        "expressivity": expressivity,
        "wall_time_s": time.perf_counter() - t_start,
        "labels": {
            "loss_exact": "simulated", "loss_estimate": "simulated",
            "qubits_communicated": ("estimated" if spec.mode == "training" and spec.gradient != "parameter_shift"
                                    else "computed"),
            "rounds": "computed", "classical_bits_data": "computed", "classical_bits_model": "computed",
            "advantage_ratio": "computed", "test_loss": "simulated", "test_accuracy": "simulated",
            "train_time_s": "computed", "holevo_bound_bits": "computed",
        },
        "label_notes": {
            "loss_exact": ("mean ℒ(x) over the inputs, exact from the qsim state vector"
                           if spec.mode == "inference" else "test cross-entropy, exact expectations"),
            "loss_estimate": f"the same from K = {spec.copies} single-shot copies each",
            "qubits_communicated": ("counted crossings of the simulated protocol × copies, per inference"
                                    if spec.mode == "inference" else
                                    "parameter shift: 2·2LP circuits × K copies × R·n, per gradient"
                                    if spec.gradient == "parameter_shift"
                                    else "shadow-tomography bound per gradient, asymptotic, constant C"),
            "rounds": "counted transfers of one simulated copy",
            "classical_bits_data": "N · b",
            "classical_bits_model": "L · P · b, Bob's parameters",
            "advantage_ratio": ("cheaper classical protocol ÷ quantum per inference, same ε and δ"
                                if spec.mode == "inference" else
                                "classical gradient exchange N·b + 2LP·b ÷ quantum per gradient"),
            "test_loss": "exact, test split", "test_accuracy": "exact, test split",
            "train_time_s": "wall time",
            "holevo_bound_bits": "K · R · n: what the transmitted qubits can reveal at most",
        },
    }
    cheapest = min(comm["classical_bits_data"], comm["classical_bits_model"])
    ctx.progress(1.0, f"done · {headline_qubits:,.0f} qubits vs {cheapest:,} bits")
    return result


def _gradient_demo(spec: QnetworkSpec, model: SplitModel, params: np.ndarray, x: np.ndarray,
                   rng: np.random.Generator, simulators: Simulators) -> GradientDemo:
    """One parameter-shift gradient estimated through the protocol with K copies per shifted circuit,
    against the exact gradient: the communication it took is counted, its error measured."""
    exact = exact_gradient(model, params, x, simulators=simulators)
    grad, qubits, circuits = shift_gradient(model, params, x, spec.copies, rng, simulators=simulators)
    err = float(np.sqrt(np.mean((grad - exact) ** 2)))
    return {"qubits_communicated": qubits, "circuits": circuits, "rms_error": err,
            "max_abs_exact": float(np.abs(exact).max()), "copies": spec.copies, "provenance": "simulated",
            "note": "shifted circuits run through the protocol; error vs exact gradient"}


def _train(spec: QnetworkSpec, model: SplitModel, ctx: RunContext) -> tuple[np.ndarray, np.ndarray, QnetworkTraining]:
    """Train with TFQ; returns (parameters, test inputs to run, the result's training keys)."""
    from qmlapp.kinds.qnetwork.train import bce, predict, teacher_labels, train_split_model

    ctx.progress(0.01, f"loading {spec.dataset}")
    data = load_qnet_data(spec.dataset, n_features=spec.n_features, train_size=spec.train_size, seed=spec.seed)
    if spec.dataset == "synthetic":
        # one threshold (the training inputs' median) for both splits
        data = data.with_labels(teacher_labels(model, data.X_train, spec.seed),
                                teacher_labels(model, data.X_test, spec.seed, reference=data.X_train))
    assert data.y_train is not None and data.y_test is not None, "every training set is labelled by now"

    def on_epoch(epoch: int, metrics: dict[str, float]) -> None:
        ctx.log_metrics(epoch, {k: v for k, v in metrics.items() if k in ("train_loss", "train_accuracy",
                                                                           "test_loss", "test_accuracy")})
        ctx.progress(0.05 + 0.5 * epoch / spec.epochs, f"epoch {epoch}/{spec.epochs}")

    ctx.progress(0.05, "training with TFQ adjoint gradients")
    trained = train_split_model(model, data.X_train, data.y_train, data.X_test, data.y_test, epochs=spec.epochs,
                                learning_rate=spec.learning_rate, batch_size=spec.batch_size, seed=spec.seed,
                                on_epoch=on_epoch, check_cancelled=ctx.check_cancelled, simulators=ctx.simulators)
    values = predict(model, trained.params, data.X_test)
    test_loss, test_acc = bce(values, data.y_test)
    # The same test loss from K single-shot copies per input, as the parties would see it.
    rng = np.random.default_rng([spec.seed, 5])
    est = np.asarray(sample_mean(values, spec.copies, rng))
    est_loss, est_acc = bce(est, data.y_test)
    steps = trained.steps_per_epoch * spec.epochs
    K, n_examples = spec.copies, trained.batch_size * steps
    training: QnetworkTraining = {
        "test_loss": test_loss, "test_accuracy": test_acc, "test_loss_estimate": est_loss,
        "test_accuracy_estimate": est_acc, "train_loss": trained.history[-1]["train_loss"],
        "train_accuracy": trained.history[-1]["train_accuracy"], "train_time_s": trained.wall_s,
        "train_size": len(data.y_train), "test_size": len(data.y_test), "dataset_description": data.description,
        "training_communication": {
            "gradient_evaluations": n_examples,
            "parameter_shift_qubits": n_examples * acc.parameter_shift_qubits(spec.n_features, spec.layers,
                                                                              spec.params_per_unitary, K),
            "shadow_bound_qubits": n_examples * acc.shadow_gradient_qubits(
                spec.n_features, spec.layers, spec.params_per_unitary, spec.epsilon, spec.shadow_constant),
            "ship_data_bits": len(data.y_train) * acc.ship_data_bits(spec.n_features, spec.bits_per_number),
            "note": "per-example gradients over all steps; classical: Alice ships the training set once",
        },
    }
    return trained.params, data.X_test[: spec.n_inputs], training
