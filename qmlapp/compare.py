"""Comparing runs of any kinds: headline tables per kind, spec diffs within a kind, what can be overlaid.

The Compare page draws these; no Streamlit here. Runs are grouped by kind because their numbers and specs
only mean the same thing within a kind: spec fields are never diffed across kinds, and a metric is
overlaid only across the runs that log it, with a sentence for every run or metric left out.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import pandas as pd

from db import RunRecord
from qmlapp.formatting import (
    Quantity,
    curve_provenance,
    format_value,
    kind_or_none,
    quantity,
    result_provenance,
    result_quantities,
    unit_of,
)
from qmlapp.plots.runs import RunCurves
from qmlapp.services import RunDetail, frame_to_csv

MIN_ANALYSIS_RUNS = 3  # importance over fewer runs than this says nothing
_SPEC_META = ("kind", "schema_version")  # identify the spec's format, not the experiment


class Cell(NamedTuple):
    """One number of one run: shown text, the stored value, and where it comes from ("" when blank)."""

    text: str
    raw: Any
    provenance: str


@dataclass(frozen=True)
class QuantityRow:
    quantity: Quantity
    cells: Mapping[int, Cell]  # run id -> cell, for every run of the group

    @property
    def provenance(self) -> str:
        """The provenance column: one word when the runs agree, else each run's own."""
        words = {rid: c.provenance for rid, c in self.cells.items() if c.provenance}
        if len(set(words.values())) <= 1:
            return next(iter(words.values()), "")
        return "; ".join(f"run {rid}: {w}" for rid, w in words.items())


@dataclass(frozen=True)
class SpecRow:
    field: str
    values: Mapping[int, Any]  # run id -> value; a run whose spec lacks the field is absent
    differs: bool


@dataclass(frozen=True)
class KindGroup:
    """The selected runs of one kind, with their headline numbers and their spec fields side by side."""

    kind: str
    title: str
    runs: tuple[RunRecord, ...]
    quantities: tuple[QuantityRow, ...]
    specs: tuple[SpecRow, ...]

    @property
    def n_differ(self) -> int:
        return sum(r.differs for r in self.specs)

    @property
    def run_ids(self) -> tuple[int, ...]:
        return tuple(r.id for r in self.runs)


@dataclass(frozen=True)
class Comparison:
    groups: tuple[KindGroup, ...]  # in the order their first run was selected

    @property
    def mixed(self) -> bool:
        return len(self.groups) > 1

    @property
    def runs(self) -> tuple[RunRecord, ...]:
        return tuple(r for g in self.groups for r in g.runs)


@dataclass(frozen=True)
class OverlayPlan:
    """Which logged metrics can be overlaid (logged by at least two selected runs) and the default pick."""

    metrics: tuple[str, ...]  # the kinds' curve metrics first, in their order, then the rest by name
    default: tuple[str, ...]
    logged_by: Mapping[str, tuple[int, ...]]  # every logged metric -> the runs that log it


class AnalysisOffer(NamedTuple):
    kinds: tuple[str, ...]  # kinds with enough selected runs for importance analysis
    reason: str  # why it is not offered, "" when it is


def kind_title(kind: str) -> str:
    k = kind_or_none(kind)
    return k.title if k is not None else kind


def run_ref(run: RunRecord) -> str:
    """How sentences name a run: "run 12 (Q-Newton)"."""
    return f"run {run.id} ({kind_title(run.kind)})"


def _same(values: Sequence[Any]) -> bool:
    return len({json.dumps(v, sort_keys=True, default=str) for v in values}) <= 1


def _quantity_rows(kind: str, runs: Sequence[RunRecord]) -> tuple[QuantityRow, ...]:
    k = kind_or_none(kind)
    quantities = result_quantities(k)
    if k is None:  # a kind this version does not know: its runs' small scalar results, so nothing is hidden
        known = {q.key for q in quantities}
        extra = sorted({key for r in runs for key, v in (r.result or {}).items()
                        if key not in known and isinstance(v, (int, float, str, bool))})
        quantities += [quantity(None, key) for key in extra]
    rows = []
    for q in quantities:
        cells = {}
        for r in runs:
            value = (r.result or {}).get(q.key)
            cells[r.id] = (Cell(format_value(value), value, result_provenance(k, r.result, q.key))
                           if value is not None else Cell("", None, ""))
        if any(c.raw is not None for c in cells.values()):
            rows.append(QuantityRow(q, cells))
    return tuple(rows)


def _spec_rows(runs: Sequence[RunRecord]) -> tuple[SpecRow, ...]:
    fields = dict.fromkeys(f for r in runs for f in r.spec if f not in _SPEC_META)
    rows = []
    for f in fields:
        values = {r.id: r.spec[f] for r in runs if f in r.spec}
        rows.append(SpecRow(f, values, len(values) < len(runs) or not _same(list(values.values()))))
    return tuple(rows)


def build_comparison(runs: Sequence[RunRecord]) -> Comparison:
    """Group the selected runs by kind (in selection order) and line up their numbers and specs."""
    by_kind: dict[str, list[RunRecord]] = {}
    for r in runs:
        by_kind.setdefault(r.kind, []).append(r)
    return Comparison(tuple(KindGroup(kind, kind_title(kind), tuple(rs), _quantity_rows(kind, rs), _spec_rows(rs))
                            for kind, rs in by_kind.items()))


# --- tables -------------------------------------------------------------------------------------------
def run_column(run: RunRecord) -> str:
    return f"run {run.id}"


def headline_frame(group: KindGroup) -> pd.DataFrame:
    """Rows "quantity (unit)", one text column per run (blank where a run lacks the number), provenance."""
    rows = [{"quantity": "run name", **{run_column(r): r.name for r in group.runs}, "provenance": ""}]
    if any(r.sweep_id is not None for r in group.runs):
        rows.append({"quantity": "sweep", **{run_column(r): "" if r.sweep_id is None else str(r.sweep_id)
                                             for r in group.runs}, "provenance": ""})
    for row in group.quantities:
        rows.append({"quantity": row.quantity.title, **{run_column(r): row.cells[r.id].text for r in group.runs},
                     "provenance": row.provenance})
    return pd.DataFrame(rows, columns=["quantity", *map(run_column, group.runs), "provenance"]).fillna("").astype(str)


def spec_frame(group: KindGroup, *, only_differing: bool = True) -> pd.DataFrame:
    """Spec fields of one kind's runs, one text column per run ("(not set)" where a spec lacks the field)."""
    specs = [s for s in group.specs if s.differs or not only_differing]
    rows = [{"spec field": s.field, **{run_column(r): format_value(s.values[r.id]) if r.id in s.values
                                       else "(not set)" for r in group.runs}} for s in specs]
    return pd.DataFrame(rows, columns=["spec field", *map(run_column, group.runs)]).fillna("").astype(str)


def _raw(value: Any) -> Any:
    """A stored value for a CSV cell: numbers and text as they are, anything else as JSON."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return "" if value is None else value
    return json.dumps(value, default=str, ensure_ascii=False)


def comparison_frame(comparison: Comparison) -> pd.DataFrame:
    """The shown tables in one frame for download: per run its formatted value, the stored value and the
    provenance; results and spec fields of every kind (blank where a run's kind has no such row)."""
    runs = comparison.runs
    columns = ["section", "kind", "quantity", "unit"]
    for r in runs:
        columns += [run_column(r), f"{run_column(r)} raw", f"{run_column(r)} provenance"]
    rows: list[dict[str, Any]] = []
    for g in comparison.groups:
        rows.append({"section": "run", "kind": g.title, "quantity": "run name",
                     **{run_column(r): r.name for r in g.runs}})
        for q in g.quantities:
            row: dict[str, Any] = {"section": "result", "kind": g.title, "quantity": q.quantity.label,
                                   "unit": q.quantity.unit}
            for r in g.runs:
                cell = q.cells[r.id]
                row.update({run_column(r): cell.text, f"{run_column(r)} raw": _raw(cell.raw),
                            f"{run_column(r)} provenance": cell.provenance})
            rows.append(row)
        for s in g.specs:
            row = {"section": "spec (differs)" if s.differs else "spec", "kind": g.title, "quantity": s.field}
            for r in g.runs:
                if r.id in s.values:
                    row.update({run_column(r): format_value(s.values[r.id]), f"{run_column(r)} raw": _raw(
                        s.values[r.id])})
            rows.append(row)
    return pd.DataFrame(rows, columns=columns).fillna("").astype(str)


def comparison_csv(comparison: Comparison) -> str:
    return frame_to_csv(comparison_frame(comparison), index=False)


# --- curves -------------------------------------------------------------------------------------------
def overlay_plan(details: Sequence[RunDetail]) -> OverlayPlan:
    logged_by: dict[str, tuple[int, ...]] = {}
    for d in details:
        for name in d.series():
            logged_by[name] = (*logged_by.get(name, ()), d.run.id)
    preferred: list[str] = []
    for d in details:
        k = kind_or_none(d.run.kind)
        if k is not None:
            preferred += [m for m in k.curve_names(d.run.spec) if m not in preferred]
    order = [*preferred, *sorted(set(logged_by) - set(preferred))]
    metrics = tuple(m for m in order if len(logged_by.get(m, ())) >= 2)
    return OverlayPlan(metrics, metrics[:1], logged_by)


def _quoted(names: Sequence[str]) -> str:
    return ", ".join(f"'{n}'" for n in names)


def overlay_notes(details: Sequence[RunDetail], chosen: Sequence[str]) -> tuple[str, ...]:
    """In words, every run or metric that is not overlaid, and why."""
    plan = overlay_plan(details)
    runs = {d.run.id: d.run for d in details}
    notes: list[str] = []
    if not plan.logged_by:
        return ("None of the selected runs logged per-step metrics, so there are no curves to overlay.",)
    notes += [f"{run_ref(d.run)} logged no per-step metrics." for d in details if not d.metrics]
    for metric in chosen:
        notes += [f"{run_ref(d.run)} logs no '{metric}'." for d in details
                  if d.metrics and d.run.id not in plan.logged_by.get(metric, ())]
    alone: dict[int, list[str]] = {}
    for metric, ids in plan.logged_by.items():
        if len(ids) == 1:
            alone.setdefault(ids[0], []).append(metric)
    for rid, metrics in alone.items():
        what = "it" if len(metrics) == 1 else "them"
        notes.append(f"{run_ref(runs[rid])} is the only selected run that logs {_quoted(sorted(metrics))}: "
                     f"nothing to overlay {what} with.")
    return tuple(notes)


def overlay_caveats(details: Sequence[RunDetail], chosen: Sequence[str]) -> tuple[str, ...]:
    """How to read a panel that overlays runs of different kinds."""
    kinds_of = {d.run.id: kind_title(d.run.kind) for d in details}
    plan = overlay_plan(details)
    notes = []
    for metric in chosen:
        kinds = sorted({kinds_of[rid] for rid in plan.logged_by.get(metric, ())})
        if len(kinds) > 1:
            notes.append(f"'{metric}' is overlaid across kinds ({', '.join(kinds)}): each kind counts its steps "
                         "and defines the metric its own way, so compare shapes and end values, not step by step.")
    return tuple(notes)


def overlay_runs(details: Sequence[RunDetail], metrics: Sequence[str]) -> list[RunCurves]:
    """The input of :func:`qmlapp.plots.runs.compare_curves_info`: each run's series of ``metrics`` with
    units and provenance from its kind."""
    out = []
    for d in details:
        k = kind_or_none(d.run.kind)
        series = {m: s for m, s in d.series().items() if m in metrics}
        label = f"run {d.run.id} · {d.run.name}"
        out.append(RunCurves(d.run.id, label if len(label) <= 48 else label[:47] + "…", series,
                             {m: unit_of(k, m) for m in series},
                             {m: curve_provenance(k, d.run.result, m) for m in series}))
    return out


# --- selection analysis -------------------------------------------------------------------------------
def analysis_offer(comparison: Comparison) -> AnalysisOffer:
    """Importance over hand-picked runs needs at least :data:`MIN_ANALYSIS_RUNS` runs of one kind."""
    kinds = tuple(g.kind for g in comparison.groups if len(g.runs) >= MIN_ANALYSIS_RUNS)
    if kinds:
        return AnalysisOffer(kinds, "")
    counts = [f"{len(g.runs)} {g.title} run{'s' if len(g.runs) != 1 else ''}" for g in comparison.groups]
    have = counts[0] if len(counts) == 1 else ", ".join(counts[:-1]) + " and " + counts[-1]
    return AnalysisOffer((), f"Importance analysis of the spec fields needs at least {MIN_ANALYSIS_RUNS} runs of "
                             f"one kind; this selection has {have}.")
