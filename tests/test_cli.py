"""CLI round trip through real subprocesses: ``python -m qmlapp kinds|submit|runs|show|export|cancel|delete``."""

from __future__ import annotations

import contextlib
import csv
import io
import json
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers import (
    ROOT,
    TINY_QNN,
    CliResult,
    cli_env,
    postgres_admin_url,
    postgres_database,
    run_cli,
    sqlite_url,
)

from db import CANCELLED, QUEUED, SUCCEEDED, Storage
from qmlapp import services
from qmlapp.kinds.qnn.spec import QnnSpec

pytestmark = pytest.mark.db  # every test here talks to a database (kept by `make test-pg`)

WAIT_SPEC: dict[str, Any] = {"dataset": "banknote", "n_qubits": 2, "depth": 1, "epochs": 2}  # seconds, mostly imports


def one_json_object(stdout: str) -> Any:
    """``--json`` prints exactly one JSON object on stdout, nothing else."""
    lines = stdout.strip().splitlines()
    assert len(lines) == 1, f"expected one line of JSON on stdout, got:\n{stdout}"
    doc = json.loads(lines[0])
    assert isinstance(doc, dict)
    return doc


def rest_slow(params: list[Any]) -> list[Any]:
    """The first case in the fast suite, the others in ``make test-slow``: every case starts an interpreter
    (0.7 s), and the same refusals are checked in-process in test_specs and test_input_limits."""
    return [p if i == 0 else pytest.param(*p.values, id=p.id, marks=pytest.mark.slow) for i, p in enumerate(params)]


def total_runs(storage: Storage) -> int:
    return sum(storage.count_runs().values())


@pytest.fixture(scope="module")
def finished(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, dict[str, Any]]]:
    """One run submitted with ``--wait --json`` and no worker alive, so the CLI executes it itself
    (on PostgreSQL too under ``make test-pg``)."""
    tmp = tmp_path_factory.mktemp("cli")
    spec_file = tmp / "s.json"
    spec_file.write_text(json.dumps(WAIT_SPEC))
    admin = postgres_admin_url()
    with postgres_database(admin) if admin else contextlib.nullcontext(sqlite_url(tmp / "qmlapp.db")) as url:
        code, out, err = run_cli(url, "submit", "qnn", "--spec", str(spec_file), "--wait", "--json", timeout=300)
        assert code == 0, err
        yield url, one_json_object(out)


def test_submit_wait_json_executes_inline_when_no_worker(finished: tuple[str, dict[str, Any]]) -> None:
    url, doc = finished
    assert {"id", "kind", "status", "error", "result", "spec"} <= set(doc)
    assert (doc["kind"], doc["status"], doc["error"]) == ("qnn", SUCCEEDED, None)
    for key in ("val_accuracy", "test_accuracy"):
        assert 0.0 <= doc["result"][key] <= 1.0
    assert doc["result"]["wall_time_s"] > 0
    # Omitted fields took their defaults, and that full spec was stored.
    assert doc["spec"] == QnnSpec(**WAIT_SPEC).to_dict()
    storage = Storage(url)
    run = storage.get_run(doc["id"])
    assert run.status == SUCCEEDED and run.attempts == 1 and run.spec == doc["spec"]
    assert storage.list_workers(alive_within_s=60) == []  # the inline CLI worker deregistered


@pytest.mark.slow  # a CLI process; the listing is checked in-process on the Runs page
def test_runs_json_lists_the_run(finished: tuple[str, dict[str, Any]]) -> None:
    url, doc = finished
    code, out, err = run_cli(url, "runs", "--json")
    assert code == 0, err
    runs = one_json_object(out)["runs"]
    assert [(r["id"], r["status"]) for r in runs] == [(doc["id"], SUCCEEDED)]
    code, out, _ = run_cli(url, "runs", "--json", "--status", "queued")
    assert code == 0 and one_json_object(out) == {"runs": []}
    code, out, _ = run_cli(url, "runs")
    assert code == 0 and str(doc["id"]) in out and SUCCEEDED in out


def test_show_json(finished: tuple[str, dict[str, Any]]) -> None:
    url, doc = finished
    code, out, err = run_cli(url, "show", str(doc["id"]), "--json")
    assert code == 0, err
    shown = one_json_object(out)
    assert (shown["id"], shown["status"], shown["attempts"]) == (doc["id"], SUCCEEDED, 1)
    assert shown["spec"] == doc["spec"]
    assert {"circuit.svg", "circuit.qasm"} <= set(shown["artifacts"])
    assert shown["versions"]["tensorflow"] != "not installed"
    assert shown["full_result"]["test_accuracy"] == doc["result"]["test_accuracy"]
    assert shown["finished_at"].endswith("+00:00")


@pytest.mark.slow  # two CLI processes; services.export_run is checked in-process
def test_export_json_and_csv_agree(finished: tuple[str, dict[str, Any]], tmp_path: Path) -> None:
    url, doc = finished
    code, out, err = run_cli(url, "export", str(doc["id"]), "--format", "json")
    assert code == 0, err
    exported = json.loads(out)
    assert exported["id"] == doc["id"] and exported["spec"] == doc["spec"]
    assert exported["result"]["test_accuracy"] == doc["result"]["test_accuracy"]
    metrics = exported["metrics"]
    assert {"train_loss", "val_accuracy"} <= set(metrics)
    for series in metrics.values():
        assert series["step"] == list(range(1, WAIT_SPEC["epochs"] + 1))
        assert len(series["value"]) == len(series["step"])

    code, out, err = run_cli(url, "export", str(doc["id"]), "--format", "csv")
    assert code == 0, err
    rows = list(csv.reader(io.StringIO(out)))
    assert rows[0] == ["run_id", "step", "name", "value"]
    body = rows[1:]
    assert len(body) == sum(len(s["step"]) for s in metrics.values())
    for run_id, step, name, value in body:
        assert run_id == str(doc["id"])
        i = metrics[name]["step"].index(int(step))
        assert float(value) == metrics[name]["value"][i]

    target = tmp_path / "run.csv"
    code, out, err = run_cli(url, "export", str(doc["id"]), "--format", "csv", "-o", str(target))
    assert code == 0 and out == "" and "wrote" in err
    assert list(csv.reader(io.StringIO(target.read_text()))) == rows


def test_kinds_json_lists_qnn_fields(cli: Callable[..., CliResult]) -> None:
    code, out, err = cli("kinds", "--json")
    assert code == 0, err
    kinds = {k["name"]: k for k in one_json_object(out)["kinds"]}
    qnn = kinds["qnn"]
    assert qnn["schema_version"] == QnnSpec.schema_version == 2
    assert list(qnn["fields"]) == list(QnnSpec.params())
    assert qnn["fields"]["n_qubits"]["default"] == 4 and "16" in qnn["fields"]["n_qubits"]["allowed"]
    assert "banknote" in qnn["fields"]["dataset"]["allowed"]
    assert all(f["help"] for f in qnn["fields"].values())
    assert "test_accuracy" in qnn["summary_keys"]


def test_submit_without_wait_queues_from_stdin(cli: Callable[..., CliResult], db_url: str) -> None:
    code, out, err = cli("submit", "qnn", "--spec", "-", "--name", "from stdin", "--json",
                         stdin=json.dumps(TINY_QNN))
    assert code == 0, err
    doc = one_json_object(out)
    assert (doc["status"], doc["name"], doc["result"]) == (QUEUED, "from stdin", None)
    assert Storage(db_url).get_run(doc["id"]).spec == QnnSpec(**TINY_QNN).to_dict()


@pytest.mark.slow  # CLI processes; cancel and delete are checked in-process on the Runs page
def test_cancel_and_delete_a_queued_run(cli: Callable[..., CliResult], storage: Storage) -> None:
    run = services.submit_run(storage, "qnn", TINY_QNN)
    code, out, err = cli("cancel", str(run.id))
    assert code == 0, err
    assert CANCELLED in out
    assert storage.get_run(run.id).status == CANCELLED
    code, out, err = cli("cancel", str(run.id))
    assert code != 0 and "already cancelled" in err and "Traceback" not in err

    code, out, err = cli("delete", str(run.id))
    assert code == 0, err
    assert total_runs(storage) == 0


BAD_SPECS: list[tuple[str, str | None, str, str]] = [
    # (id, spec file content or None for a missing file, kind, text stderr must contain)
    ("zero qubits", json.dumps({"dataset": "banknote", "n_qubits": 0}), "qnn", "n_qubits"),
    ("negative learning rate", json.dumps({"learning_rate": -0.01}), "qnn", "learning_rate"),
    ("unknown dataset", json.dumps({"dataset": "mnist"}), "qnn", "dataset"),
    ("unknown field", json.dumps({"qubits": 2}), "qnn", "qubits"),
    ("malformed JSON", '{"dataset": "banknote",', "qnn", "spec"),
    ("not an object", "[1, 2]", "qnn", "spec"),
    ("missing file", None, "qnn", "--spec"),
    ("unknown kind", json.dumps({"dataset": "banknote"}), "nosuchkind", "kind"),
]


@pytest.mark.parametrize(("content", "kind", "field"),
                         rest_slow([pytest.param(c, k, f, id=i) for i, c, k, f in BAD_SPECS]))
def test_bad_submit_is_refused_and_stores_nothing(cli: Callable[..., CliResult], storage: Storage, tmp_path: Path,
                                                  content: str | None, kind: str, field: str) -> None:
    services.submit_run(storage, "qnn", TINY_QNN)  # an existing run, so the count is of a live database
    before = total_runs(storage)
    spec_file = tmp_path / "spec.json"
    if content is not None:
        spec_file.write_text(content)
    code, out, err = cli("submit", kind, "--spec", str(spec_file), "--wait", "--json")
    assert code != 0
    assert out == ""
    assert err.startswith("error: ") and field in err, err
    assert "Traceback" not in err
    assert total_runs(storage) == before


@pytest.mark.parametrize("args", rest_slow([pytest.param(a, id=" ".join(a)) for a in [
    ("show", "9999"), ("show", "9999", "--json"), ("export", "9999"), ("cancel", "9999"), ("delete", "9999")]]))
def test_unknown_run_id_gives_a_clear_error(cli: Callable[..., CliResult], storage: Storage,
                                            args: tuple[str, ...]) -> None:
    code, out, err = cli(*args)
    assert code != 0
    assert out == ""
    assert "run 9999 does not exist" in err and "Traceback" not in err


def test_bad_worker_concurrency(cli: Callable[..., CliResult]) -> None:
    code, out, err = cli("worker", "--concurrency", "0")
    assert code == 2 and out == "" and "--concurrency" in err and "Traceback" not in err


# A second CLI process trains the run again; in-process reproducibility is tests/test_kinds.py's.
@pytest.mark.slow
def test_export_round_trip_reproduces_the_run(finished: tuple[str, dict[str, Any]], tmp_path: Path) -> None:
    """A run is fully described by its exported spec: resubmitting it gives identical results."""
    url, first = finished
    code, out, err = run_cli(url, "export", str(first["id"]), "--format", "json")
    assert code == 0, err
    exported = json.loads(out)
    spec_file = tmp_path / "spec.json"
    spec_file.write_text(json.dumps(exported["spec"]))
    code, out, err = run_cli(url, "submit", "qnn", "--spec", str(spec_file), "--wait", "--json", timeout=300)
    assert code == 0, err
    again = one_json_object(out)
    assert again["id"] != first["id"] and again["spec"] == first["spec"]
    for key in ("val_accuracy", "test_accuracy", "test_f1"):
        assert again["result"][key] == first["result"][key]
    code, out, _ = run_cli(url, "export", str(again["id"]), "--format", "json")
    assert json.loads(out)["metrics"] == exported["metrics"]  # the whole learning curve, bit for bit


HOSTILE_SUBMITS: list[tuple[str, str, bytes, tuple[str, ...], str]] = [
    # (id, kind, spec file bytes, extra arguments, text stderr must contain)
    ("non-UTF-8 file", "qnn", b'{"e\xff": 1}', (), "--spec: the file is not valid UTF-8 (byte 0xff at offset 3)"),
    ("UTF-8-encoded surrogate", "qnn", b'{"dataset": "\xed\xa0\x80"}', (), "not valid UTF-8 (byte 0xed at offset 13)"),
    ("100k-deep JSON", "qnn", b"[" * 100_000 + b"]" * 100_000, (), "--spec: JSON nested deeper than 64 levels"),
    ("5000-digit number", "qnn", b'{"epochs": ' + b"9" * 5000 + b"}", (), "--spec: number literal 999999999999..."),
    ("inf in the depth study", "hypernet", json.dumps({"study_depths": "1, 2, inf"}).encode(), (),
     "study_depths: items must be integers in [1, 12], got 'inf'"),
    ("201-character name", "qnn", b"{}", ("--name", "n" * 201), "--name: must be at most 200 characters, got 201"),
    ("escape in name", "qnn", b"{}", ("--name", "\x1b[2J"), "--name: must not contain control characters"),
    ("non-UTF-8 name", "qnn", b"{}", ("--name", "run \udcff"), "--name: must be valid Unicode text, got a lone "
                                                                 "surrogate U+DCFF at position 4"),
]


@pytest.mark.parametrize(("kind", "content", "extra", "message"),
                         rest_slow([pytest.param(k, c, e, m, id=i) for i, k, c, e, m in HOSTILE_SUBMITS]))
def test_hostile_submit_exits_2_naming_the_field_and_stores_nothing(
        cli: Callable[..., CliResult], storage: Storage, tmp_path: Path, kind: str, content: bytes,
        extra: tuple[str, ...], message: str) -> None:
    services.submit_run(storage, "qnn", TINY_QNN)
    before = total_runs(storage)
    spec_file = tmp_path / "spec.json"
    spec_file.write_bytes(content)
    code, out, err = cli("submit", kind, "--spec", str(spec_file), *extra, "--json")
    assert (code, out) == (2, ""), err[-2000:]
    assert err.startswith("error: ") and message in err and "Traceback" not in err, err[-2000:]
    assert total_runs(storage) == before


def test_non_utf8_spec_on_stdin_names_standard_input(db_url: str, storage: Storage) -> None:
    proc = subprocess.run([sys.executable, "-m", "qmlapp", "submit", "qnn", "--spec", "-"], cwd=ROOT,
                          env=cli_env(db_url), input=b"{\xff}", capture_output=True, timeout=180)
    err = proc.stderr.decode("utf-8", "replace")
    assert (proc.returncode, proc.stdout) == (2, b""), err[-2000:]
    assert "--spec: standard input is not valid UTF-8 (byte 0xff at offset 1)" in err and "Traceback" not in err
    assert total_runs(storage) == 0


@pytest.mark.parametrize(("name", "message"), rest_slow([
    pytest.param("s" * 201, "name: must be at most 200 characters, got 201", id="201 characters"),
    pytest.param("tab\there", "name: must not contain control characters", id="tab"),
]))
def test_hostile_sweep_name_exits_2_and_stores_nothing(cli: Callable[..., CliResult], storage: Storage,
                                                       tmp_path: Path, name: str, message: str) -> None:
    spec_file = tmp_path / "sweep.json"
    spec_file.write_text(json.dumps({"kind": "qnn", "name": name, "base": TINY_QNN, "space": {"epochs": [1, 2]},
                                     "sampler": "grid"}))
    code, out, err = cli("sweep", "--spec", str(spec_file), "--json")
    assert (code, out) == (2, ""), err[-2000:]
    assert message in err and "Traceback" not in err
    assert storage.list_sweeps() == [] and total_runs(storage) == 0
