"""Use cases shared by the pages and the CLI: submit, inspect, cancel, delete, export runs.

No Streamlit and no TensorFlow here, so the web process stays light.
"""

from __future__ import annotations

import csv
import io
import json
import platform
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import metadata
from typing import Any

from db import FINISHED, MetricPoint, RunRecord, Storage, StorageError, WorkerRecord
from qmlapp import __version__
from qmlapp.lockfile import lock_versions
from qmlapp.registry import get_kind, parse_spec
from qmlapp.resources import check_memory
from qmlapp.specs import Spec, SpecError, check_name
from qmlapp.worker_ids import is_dask_worker_id

WORKER_ALIVE_WITHIN_S = 15.0
_VERSIONED = ("tensorflow", "tensorflow-quantum", "tf-keras", "cirq-core", "qsimcirq", "numpy", "scipy",
              "scikit-learn", "sympy", "optuna", "SQLAlchemy")


def software_versions() -> dict[str, str]:
    """Versions of everything that can change a result (read from metadata; imports nothing heavy)."""
    out = {"python": platform.python_version(), "qmlapp": __version__, "platform": platform.platform()}
    for dist in _VERSIONED:
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = "not installed"
    out.update(lock_versions())
    return out


def validate_spec(kind: str, data: Mapping[str, Any]) -> Spec:
    """Raise :class:`SpecError` naming the field (also when the run would not fit in memory)."""
    spec = parse_spec(kind, data)
    check_memory(spec)
    return spec


def submit_run(storage: Storage, kind: str, data: Mapping[str, Any] | Spec, *, name: str = "",
               sweep_id: int | None = None) -> RunRecord:
    """Validate and queue one run. Nothing is stored when the spec or the name is invalid."""
    check_name("name", name)  # before storage: NUL, lone surrogates or > 200 characters fail the write
    spec = data if isinstance(data, Spec) else parse_spec(kind, data)
    if spec.kind != kind:
        raise SpecError("kind", f"spec is for {spec.kind!r}, not {kind!r}")
    check_memory(spec)  # refused before queueing, however the spec was built
    seed = int(getattr(spec, "seed", 0))
    title = name or default_run_name(spec)
    return storage.create_run(kind, spec.to_dict(), seed=seed, name=title, versions=software_versions(),
                              sweep_id=sweep_id)


def default_run_name(spec: Spec) -> str:
    """Built from the spec by the kind (e.g. "gaussian2d · D=4 · 5 restarts · lbfgs"), so runs can be told apart."""
    return get_kind(spec.kind).default_run_name(spec)


def alive_workers(storage: Storage) -> list[WorkerRecord]:
    """Live workers that take runs from the queue. Runs executing on a Dask cluster register worker
    records too, but those never claim anything, so they are not counted."""
    return [w for w in storage.list_workers(alive_within_s=WORKER_ALIVE_WITHIN_S) if not is_dask_worker_id(w.id)]


@dataclass(frozen=True)
class RunDetail:
    run: RunRecord
    metrics: list[MetricPoint]
    artifacts: list[str]

    def series(self) -> dict[str, tuple[list[int], list[float]]]:
        out: dict[str, tuple[list[int], list[float]]] = {}
        for p in self.metrics:
            steps, values = out.setdefault(p.name, ([], []))
            steps.append(p.step)
            values.append(p.value)
        return out


def run_detail(storage: Storage, run_id: int) -> RunDetail:
    run = storage.get_run(run_id)
    return RunDetail(run, storage.get_metrics(run_id), [a.name for a in storage.list_artifacts(run_id)])


def summary(run: RunRecord) -> dict[str, Any]:
    """The result keys a kind promises (``summary_keys``) plus anything else small in the result."""
    result = run.result or {}
    try:
        keys = get_kind(run.kind).summary_keys
    except SpecError:
        keys = ()
    out = {k: result.get(k) for k in keys}
    for k, v in result.items():
        if k not in out and isinstance(v, (int, float, str, bool)):
            out[k] = v
    return out


def run_json(run: RunRecord) -> dict[str, Any]:
    """The CLI's ``--json`` object for one run."""
    return {"id": run.id, "kind": run.kind, "name": run.name, "status": run.status,
            "progress": run.progress, "message": run.message, "error": run.error,
            "seed": run.seed, "spec": run.spec,
            "result": summary(run) if run.result is not None else None}


def delete_run(storage: Storage, run_id: int) -> None:
    storage.delete_run(run_id)


def cancel_run(storage: Storage, run_id: int) -> RunRecord:
    run = storage.get_run(run_id)
    if run.status in FINISHED:
        raise StorageError(f"run {run_id} already {run.status}; nothing to cancel")
    return storage.request_cancel(run_id)


def export_run(storage: Storage, run_id: int, fmt: str) -> str:
    """A run as one JSON document (record, spec, versions, result, metrics, artifact list) or CSV of
    its metric series (long format: step, name, value)."""
    return export_detail(run_detail(storage, run_id), fmt)


def export_detail(detail: RunDetail, fmt: str) -> str:
    """:func:`export_run` for a run already loaded (pages have it in hand)."""
    run_id = detail.run.id
    if fmt == "json":
        doc = detail.run.to_dict()
        doc["metrics"] = {name: {"step": s, "value": v} for name, (s, v) in detail.series().items()}
        doc["artifacts"] = detail.artifacts
        doc["reproduce"] = (f"python -m qmlapp submit {detail.run.kind} --spec spec.json "
                            "(spec.json = the 'spec' object above)")
        return json.dumps(doc, indent=2, default=str)
    if fmt == "csv":
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(["run_id", "step", "name", "value"])
        for p in detail.metrics:
            writer.writerow([csv_cell(c) for c in (run_id, p.step, p.name, repr(p.value))])
        return buf.getvalue()
    raise SpecError("format", f"must be one of 'json', 'csv', got {fmt!r}")


_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: Any) -> Any:
    """A cell that a spreadsheet will not run as a formula (``=HYPERLINK(…)``): text starting with
    ``= + - @``, tab or CR gets a leading apostrophe. Numbers stay numbers (``-0.5`` is data)."""
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        try:
            float(value)
        except ValueError:
            return "'" + value
    return value


def frame_to_csv(frame: Any, **kwargs: Any) -> str:
    """``DataFrame.to_csv`` for downloads, with every text cell and column name passed through :func:`csv_cell`."""
    safe = frame.copy()
    safe.columns = [csv_cell(c) for c in safe.columns]
    for col in safe.columns:
        if safe[col].dtype == object or str(safe[col].dtype) in ("string", "category"):
            safe[col] = safe[col].map(csv_cell)
    if safe.index.dtype == object:
        safe.index = safe.index.map(csv_cell)
    return str(safe.to_csv(**kwargs))
