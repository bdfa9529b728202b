"""Hypernetwork training end to end on small real problems (exact enumeration + state vector + qsim samples)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from qmlapp.context import LocalContext
from qmlapp.kinds.hypernet.layouts import as_bits, bits_to_index
from qmlapp.kinds.hypernet.problems import load_problem_data, network_cost
from qmlapp.kinds.hypernet.result import HypernetResult
from qmlapp.kinds.hypernet.run import run, wilson_interval
from qmlapp.kinds.hypernet.spec import HypernetSpec
from qmlapp.registry import get_kind
from qmlapp.specs import SpecError

# 9 bits: 2 inputs → 2 hidden → 1 on 500 Gaussian-mixture points
SMALL = {"problem": "custom", "custom_dataset": "gaussian2d", "custom_hidden": 2, "n_points": 500,
         "depth": 6, "restarts": 4, "max_iterations": 200, "eval_samples": 200, "seed": 3}


@pytest.fixture(scope="module")
def small_run() -> tuple[HypernetSpec, HypernetResult, LocalContext]:
    spec = HypernetSpec.from_dict(SMALL)
    ctx = LocalContext(seed=spec.seed)
    return spec, run(spec, ctx), ctx


def test_summary_keys_and_provenance(small_run: tuple[HypernetSpec, dict, LocalContext]) -> None:
    _, result, ctx = small_run
    for key in get_kind("hypernet").summary_keys:
        assert result[key] is not None, key
    assert set(result["labels"]) >= {"success_probability", "global_min_loss", "best_loss"}
    assert all(v.split()[0] in ("simulated", "computed", "estimated") for v in result["labels"].values())
    assert ctx.progress_log[-1][0] == 1.0
    assert {"costs.npy", "parameters.json"} <= set(ctx.artifacts)


def test_a_nine_bit_problem_reliably_reaches_its_optimum(small_run: tuple[HypernetSpec, dict, LocalContext]) -> None:
    spec, result, _ = small_run
    assert result["n_bits"] == 9
    # the best network found is a global optimum, and most restarts put their weight on the optimal set
    assert result["best_loss"] <= result["global_min_loss"] + spec.tolerance
    assert result["success_probability"] >= 0.75, result["restarts"]
    assert result["born_mass_optimal"] >= 0.7
    lo, hi = result["success_probability_ci"]
    assert lo <= result["success_probability"] <= hi


def test_reported_losses_are_the_decoded_networks_losses(small_run: tuple[HypernetSpec, dict, LocalContext]) -> None:
    spec, result, ctx = small_run
    layout = spec.layout()
    data = load_problem_data(layout, n_points=spec.n_points, seed=spec.seed)
    assert math.isclose(result["best_loss"], network_cost(layout, data, result["best_bitstring"]), rel_tol=1e-9)
    costs = np.load(__import__("io").BytesIO(ctx.artifacts["costs.npy"].content))
    assert costs.shape == (2**9,)
    assert math.isclose(float(costs.min()), result["global_min_loss"], rel_tol=1e-6)
    for row in result["restarts"]:
        idx = bits_to_index(as_bits(row["best_sampled_bitstring"], 9))
        assert math.isclose(float(costs[idx]), row["best_sampled_loss"], rel_tol=1e-6)
        assert row["final_loss"] >= result["global_min_loss"] - 1e-9  # an average over networks can't beat the best


def test_curves_are_logged_per_restart(small_run: tuple[HypernetSpec, dict, LocalContext]) -> None:
    _, _, ctx = small_run
    names = {k for _, k, _ in ctx.metrics}
    assert {f"D6_r{r}_loss" for r in range(4)} <= names
    assert {f"D6_r{r}_optimal_mass" for r in range(4)} <= names
    loss = ctx.series("D6_r0_loss")
    assert len(loss) >= 3 and loss[-1] < loss[0]  # training lowered the expected loss


def test_same_spec_same_result(small_run: tuple[HypernetSpec, dict, LocalContext]) -> None:
    spec, result, _ = small_run
    again = run(spec.replace(restarts=1), LocalContext(seed=spec.seed))
    first = next(r for r in result["restarts"] if r["restart"] == 0)
    assert again["restarts"][0]["final_loss"] == first["final_loss"]
    assert again["restarts"][0]["best_sampled_bitstring"] == first["best_sampled_bitstring"]


def test_depth_study_and_authors_qubit_order() -> None:
    spec = HypernetSpec.from_dict({**SMALL, "restarts": 2, "study_depths": [1, 2], "qubit_order": "authors",
                                   "max_iterations": 60})
    result = run(spec, LocalContext(seed=spec.seed))
    assert [s["depth"] for s in result["depth_study"]] == [1, 2, 6]
    assert [s["layers"] for s in result["depth_study"]] == [0.5, 1.0, 3.0]
    for s in result["depth_study"]:
        assert 0.0 <= s["success_ci_low"] <= s["success_fraction"] <= s["success_ci_high"] <= 1.0
        assert s["restarts"] == 2 and s["n_params"] == 2 * s["depth"] * 9
    # the qubit map changes the circuit, not the landscape (the same networks, the same optimum)
    assert result["landscape"]["n_optimal_bitstrings"] >= 1
    layout = spec.layout()
    data = load_problem_data(layout, n_points=spec.n_points, seed=spec.seed)
    for row in result["restarts"]:
        assert math.isclose(network_cost(layout, data, row["mode_bitstring"]), row["mode_loss"], rel_tol=1e-6)


def test_elbo_keeps_more_entropy_than_the_plain_objective() -> None:
    base = {**SMALL, "restarts": 2, "max_iterations": 80}
    plain = run(HypernetSpec.from_dict(base), LocalContext())
    elbo = run(HypernetSpec.from_dict({**base, "objective": "elbo", "prior_weight": 0.2}), LocalContext())
    h_plain = np.mean([r["entropy_nats"] for r in plain["restarts"]])
    h_elbo = np.mean([r["entropy_nats"] for r in elbo["restarts"]])
    assert h_elbo > h_plain + 0.1


def test_sampled_objective_with_adam_lowers_the_loss() -> None:
    spec = HypernetSpec.from_dict({"problem": "custom", "custom_dataset": "gaussian2d", "custom_hidden": 0,
                                   "n_points": 300, "depth": 2, "restarts": 1, "objective": "sampled",
                                   "optimizer": "adam", "learning_rate": 0.2, "shots": 200,
                                   "max_iterations": 40, "eval_samples": 100, "seed": 1})
    ctx = LocalContext()
    result = run(spec, ctx)
    loss = ctx.series("D2_r0_loss")
    assert loss[-1] < loss[0] - 0.02
    assert result["restarts"][0]["final_loss"] == pytest.approx(loss[-1])


def test_noisy_evaluation_reports_trajectory_means() -> None:
    spec = HypernetSpec.from_dict({**SMALL, "restarts": 1, "max_iterations": 60, "noise": 5.0,
                                   "noise_trajectories": 20})
    result = run(spec, LocalContext())
    row = result["restarts"][0]
    assert 0.0 <= row["noisy_born_mass_optimal"] <= 1.0 and row["noisy_loss_se"] is not None
    assert "noisy_born_mass_mean" in result["depth_study"][0]


def test_wilson_interval_edges() -> None:
    assert wilson_interval(0, 10)[0] == 0.0 and wilson_interval(10, 10)[1] == 1.0
    lo, hi = wilson_interval(5, 10)
    assert lo < 0.5 < hi and math.isclose(0.5 - lo, hi - 0.5)


@pytest.mark.parametrize(
    ("change", "field"),
    [({"depth": 0}, "depth"), ({"study_depths": "1, 99"}, "study_depths"), ({"study_depths": "two"}, "study_depths"),
     ({"problem": "custom", "custom_dataset": "mnist01", "custom_hidden": 3}, "custom_hidden"),
     ({"problem": "custom", "custom_hidden": 0, "custom_activation_bit": True}, "custom_activation_bit"),
     ({"objective": "sampled"}, "optimizer"), ({"noise": 1.0, "noise_trajectories": 10_000}, "noise_trajectories"),
     ({"tolerance": -1}, "tolerance"), ({"problem": "xor"}, "problem")],
)
def test_bad_specs_name_the_field(change: dict, field: str) -> None:
    with pytest.raises(SpecError) as err:
        HypernetSpec.from_dict(change)
    assert err.value.field == field
