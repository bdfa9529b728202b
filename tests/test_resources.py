"""Runs that would not fit in memory are refused before queueing, naming the field, in every entry point."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from db import SUCCEEDED, Storage
from qmlapp import services, sweeps
from qmlapp.kinds.qnetwork.spec import QnetworkSpec
from qmlapp.kinds.qnn.spec import QnnSpec
from qmlapp.resources import GIB, check_memory, fits_with_running, memory_fits, memory_limit_bytes, physical_memory
from qmlapp.specs import SpecError

BIG_QNN: dict[str, Any] = {"dataset": "breast_cancer", "n_qubits": 16, "batch_size": 1024, "epochs": 1}  # ~2 GiB


def test_estimates_grow_with_the_register_and_name_the_field() -> None:
    small, big = QnnSpec().memory_estimate(), QnnSpec(**BIG_QNN).memory_estimate()
    assert small.field == big.field == "n_qubits"
    assert big.bytes == 1024 * 2**16 * 8 * 4 and big.bytes > 1000 * small.bytes
    noisy = QnnSpec(dataset="breast_cancer", n_qubits=8, noise_1q=0.01, batch_size=64).memory_estimate()
    assert noisy.bytes == 64 * 4**8 * 8 * (2 * 2 + 4)  # density matrices: 4^n per row
    net = QnetworkSpec(n_features=2**20, n_inputs=1000).memory_estimate()
    assert net.field == "n_features" and net.bytes > 1000 * 2**20 * 8


def test_limit_comes_from_the_environment_or_the_machine() -> None:
    assert memory_limit_bytes({"QMLAPP_MEMORY_LIMIT_GB": "0.5"}) == GIB // 2
    assert 0 < memory_limit_bytes({}) <= physical_memory()
    for bad in ("lots", "0", "-1"):
        with pytest.raises(SpecError, match="QMLAPP_MEMORY_LIMIT_GB"):
            memory_limit_bytes({"QMLAPP_MEMORY_LIMIT_GB": bad})


def test_check_memory_refuses_over_the_limit_only() -> None:
    spec = QnnSpec(**BIG_QNN)
    assert check_memory(spec, limit=4 * GIB) is not None
    with pytest.raises(SpecError) as err:
        check_memory(spec, limit=GIB)
    assert err.value.field == "n_qubits"
    assert "2.0 GiB" in err.value.message and "1.0 GiB" in err.value.message


def test_submit_refuses_and_stores_nothing(storage: Storage, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QMLAPP_MEMORY_LIMIT_GB", "1")
    with pytest.raises(SpecError, match="n_qubits"):
        services.submit_run(storage, "qnn", BIG_QNN)
    with pytest.raises(SpecError, match="n_qubits"):  # a spec built elsewhere is checked as well
        services.submit_run(storage, "qnn", QnnSpec(**BIG_QNN))
    assert storage.list_runs() == []
    assert services.submit_run(storage, "qnn", {**BIG_QNN, "n_qubits": 4}).status == "queued"


def test_cli_refuses_with_exit_2_and_no_traceback(cli: Any, tmp_path: Path) -> None:
    path = tmp_path / "big.json"
    path.write_text(json.dumps(BIG_QNN))
    code, out, err = cli("submit", "qnn", "--spec", str(path), env={"QMLAPP_MEMORY_LIMIT_GB": "1"})
    assert code == 2, err
    assert "n_qubits: this run needs about 2.0 GiB" in err and "Traceback" not in err
    code, out, _ = cli("runs", "--json")
    assert json.loads(out)["runs"] == []


def test_sweep_trials_over_the_limit_become_invalid_not_queued(storage: Storage,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QMLAPP_MEMORY_LIMIT_GB", "1")
    spec = sweeps.SweepSpec.from_dict({"base": {**BIG_QNN, "n_qubits": 4}, "space": {"n_qubits": [4, 16]},
                                       "sampler": "grid", "n_trials": 2})
    sweep = sweeps.create_sweep(storage, spec)
    queued = storage.list_runs(sweep_id=sweep.id)
    assert [r.spec["n_qubits"] for r in queued] == [4]
    reasons = [t.user_attrs.get("invalid", "") for t in sweeps._study(storage, sweep.id, spec).trials]
    assert sum(r.startswith("n_qubits: this run needs about 2.0 GiB") for r in reasons) == 1, reasons


def test_fits_with_running_sums_the_estimates() -> None:
    big, small = QnnSpec(**BIG_QNN), QnnSpec(dataset="banknote", n_qubits=2)
    assert fits_with_running(big, [], 3 * GIB)
    assert not fits_with_running(big, [big], 3 * GIB)  # 2 + 2 GiB
    assert fits_with_running(small, [big], 3 * GIB) and fits_with_running(big, [small], 3 * GIB)
    assert fits_with_running(big, [big], 5 * GIB)
    assert not fits_with_running(big, [], GIB)  # does not fit even alone


def test_a_second_worker_does_not_start_a_big_run_while_one_runs(storage: Storage,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """The limit fits one big run, not two: the second waits in the queue while smaller runs go by."""
    monkeypatch.setenv("QMLAPP_MEMORY_LIMIT_GB", "3")
    first = services.submit_run(storage, "qnn", BIG_QNN)
    second = services.submit_run(storage, "qnn", {**BIG_QNN, "seed": 2})
    small = services.submit_run(storage, "qnn", {"dataset": "banknote", "n_qubits": 2})
    fits = memory_fits()  # the limit from the environment: 3 GiB

    a = storage.claim_next_run("worker-A", fits=fits)
    assert a is not None and a.id == first.id
    b = storage.claim_next_run("worker-B", fits=fits)
    assert b is not None and b.id == small.id  # the second big run is passed over
    assert storage.claim_next_run("worker-B", fits=fits) is None
    assert storage.get_run(second.id).status == "queued"
    # Without the check the second big run would start beside the first.
    assert storage.finish_run(a.id, "worker-A", SUCCEEDED)
    c = storage.claim_next_run("worker-B", fits=fits)
    assert c is not None and c.id == second.id
    # Counting only some running runs (say, this machine's workers) is the caller's choice.
    third = services.submit_run(storage, "qnn", {**BIG_QNN, "seed": 3})
    assert storage.claim_next_run("worker-C", fits=fits) is None
    mine = memory_fits(3 * GIB, running_filter=lambda r: r.worker_id == "worker-C")
    d = storage.claim_next_run("worker-C", fits=mine)
    assert d is not None and d.id == third.id
