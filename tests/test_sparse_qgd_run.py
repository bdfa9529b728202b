"""sparse_qgd runs end to end: dense → prune → sparse with spectra, κ(history), costs, small HHL solve."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

from qmlapp.context import LocalContext
from qmlapp.kinds.sparse_qgd.result import SparseQgdResult
from qmlapp.kinds.sparse_qgd.run import history_kappa_from_eigs, r_number, run
from qmlapp.kinds.sparse_qgd.spec import SparseQgdSpec
from qmlapp.registry import get_kind
from qmlapp.specs import SpecError

SMALL = {"hidden_units": 8, "dense_epochs": 2, "sparse_epochs": 2, "window_steps": 10}


@pytest.fixture(scope="module")
def small() -> tuple[SparseQgdSpec, SparseQgdResult, LocalContext]:
    spec = SparseQgdSpec.from_dict(SMALL)
    ctx = LocalContext()
    return spec, run(spec, ctx), ctx


def test_summary_keys_provenance_and_phases(small: tuple[SparseQgdSpec, dict[str, Any], LocalContext]) -> None:
    _, result, ctx = small
    for key in get_kind("sparse_qgd").summary_keys:
        assert key in result, key
    assert result["n_params"] == 75 * 8 + 10
    assert all(v.split()[0] in ("simulated", "computed", "estimated") for v in result["labels"].values())
    phases = [c["phase"] for c in result["checkpoints"]]
    assert phases.count("pruned") == 1 and phases[0] == "dense" and phases[-1] == "sparse"
    after = next(c for c in result["checkpoints"] if c["phase"] == "pruned")
    assert after["n_active"] < result["checkpoints"][0]["n_active"]  # the Hessian lives on unpruned weights only
    assert ctx.series("lambda_max")


def test_history_kappa_bounded_when_contracting_and_growing_when_marginal(
        small: tuple[SparseQgdSpec, dict[str, Any], LocalContext]) -> None:
    _, result, _ = small
    contracting = [p["kappa"] for p in result["kappa_vs_T"]["reference: strictly contracting, μ = 0.8 (computed)"]]
    marginal = [p["kappa"] for p in result["kappa_vs_T"]["reference: marginal, μ = 1 (computed)"]]
    assert contracting[-1] < 10 and marginal[-1] > 20 * marginal[0]  # T: 1 → 200
    # the block-diagonal shortcut equals κ of the full history matrix for a small symmetric H
    from qmlapp.kinds.sparse_qgd.carleman import history_kappa

    rng = np.random.default_rng(0)
    q, _ = np.linalg.qr(rng.normal(size=(4, 4)))
    eigs = np.array([0.3, 1.0, 2.0, 5.0])
    H = q @ np.diag(eigs) @ q.T
    eta, T = 0.1, 6
    full = history_kappa(np.eye(4) - eta * H, T)
    assert history_kappa_from_eigs(eigs, eta, T) == pytest.approx(full, rel=1e-6)


def test_r_number_is_undefined_unless_the_hessian_is_positive_definite() -> None:
    assert not r_number(1.0, -0.1, 0.05, 10)["defined"]
    r = r_number(2.0, 0.5, 0.1, 10)
    assert r["defined"] and r["R"] == pytest.approx(1 / (0.1 * 10 * 0.5))


def test_costs_and_small_solve(small: tuple[SparseQgdSpec, dict[str, Any], LocalContext]) -> None:
    _, result, _ = small
    targets = {t["target_params"]: t for t in result["paper_scale"]}
    assert {7e6, 1.03e8} <= set(targets)
    assert targets[1.03e8]["queries"] >= targets[7e6]["queries"] * 0.999
    assert math.isfinite(result["estimated_speedup_at_target"])
    schedule = result["schedule"]
    assert len(schedule) == sum(c["phase"] in ("pruned", "sparse") for c in result["checkpoints"])
    for w in schedule:
        assert w["route"].startswith("quantum") == (w["download_shots"] > 0)
    assert result["schedule_time_s"] <= result["schedule_classical_time_s"] + 1e-12  # never worse than classical
    s = result["small_solve"]
    assert s["label"] == "simulated" and s["fidelity"] > 0.99 and s["qubits"]["total"] <= 14


@pytest.mark.parametrize(("change", "field"), [({"prune_ratio": 1.0}, "prune_ratio"), ({"model": "resnet"}, "model"),
                                               ({"carleman_order": 5}, "carleman_order"),
                                               ({"hidden_units": 1000}, "hidden_units"),
                                               ({"gate_time_s": 1.0}, "gate_time_s")])
def test_bad_specs_name_the_field(change: dict[str, Any], field: str) -> None:
    with pytest.raises(SpecError) as err:
        SparseQgdSpec.from_dict(change)
    assert err.value.field == field
