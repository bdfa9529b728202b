"""Comparing runs of one kind and of several: data functions (qmlapp.compare, qmlapp.formatting, the overlay
plot info) on stored runs, and the Compare page under AppTest.

The runs are stored through the real storage API (claimed, metrics added, finished) with results and
metric series taken from real runs of each kind's example spec (labels as those runners write them,
free-text labels of older runs included).
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Sequence
from typing import Any

import pytest
from helpers import goto
from streamlit.testing.v1 import AppTest

from db import SUCCEEDED, RunRecord, Storage
from qmlapp import compare, services
from qmlapp.formatting import format_number, result_provenance, result_titles
from qmlapp.plots.runs import compare_curves_info, plot_compare_curves
from qmlapp.registry import get_kind

QNN_RESULT: dict[str, Any] = {
    "val_accuracy": 0.4763636363636364, "val_f1": 0.47657136262658323, "val_loss": 1.2583440545743163,
    "test_accuracy": 0.4909090909090909, "test_f1": 0.49178451178451177, "test_loss": 1.2773886075497352,
    "train_accuracy": 0.4951338199513382, "train_loss": 1.1856513465862322, "n_parameters": 4, "n_train": 822,
    "backend": "tfq", "train_time_s": 1.3451099159999558, "wall_time_s": 7.397234328999957,
    "confusion_matrix": [[70, 60], [80, 65]],
    "labels": {"val_accuracy": "simulated", "val_f1": "simulated", "val_loss": "simulated",
               "test_accuracy": "simulated", "test_f1": "simulated", "test_loss": "simulated",
               "train_accuracy": "simulated", "train_loss": "simulated", "n_parameters": "computed",
               "n_train": "computed", "train_time_s": "computed", "wall_time_s": "computed"},
}
QNEWTON_RESULT: dict[str, Any] = {
    "final_loss": 1.4101231195506974, "final_accuracy": 0.43333333333333335, "n_quantum_solves": 0,
    "n_classical_solves": 12, "total_time_estimated_s": 0.011687672999983079, "sgd_time_s": 0.0028306520000569435,
    "speedup_vs_sgd": 0.2421912385862474, "kappa_initial": 1399.8173415804638, "kappa_final": 1215.395793310199,
    "n_train": 1437, "n_test": 360, "wall_time_s": 2.2491988369999945,
    "labels": {  # free text, as older runs have them
        "final_loss": "computed (test cross-entropy of the trained MLP, nats)",
        "final_accuracy": "computed (test accuracy of the trained MLP)",
        "n_quantum_solves": "computed (scheduler decisions; the quantum solver itself is costed, not run)",
        "n_classical_solves": "computed (scheduler decisions)",
        "total_time_estimated_s": "estimated (measured classical work + estimated quantum solve times)",
        "sgd_time_s": "computed (measured wall time of SGD on this machine)",
        "speedup_vs_sgd": "estimated (SGD time ÷ the main optimizer's total time)",
        "kappa_initial": "computed (σmax/σmin of the regularised first-layer block, first step)",
        "kappa_final": "computed (the same at the last step)"},
}
HYPERNET_RESULT: dict[str, Any] = {
    "best_loss": 0.07250241024281141, "best_bitstring": "111", "global_min_loss": 0.07250241024281141,
    "n_optimal_bitstrings": 1, "success_probability": 1.0, "born_mass_optimal": 0.9999999998049192,
    "best_accuracy": 0.91, "n_bits": 3, "depth": 2, "wall_time_s": 0.13116670199997316,
    "labels": {"best_loss": "computed", "global_min_loss": "computed", "n_optimal_bitstrings": "computed",
               "success_probability": "simulated", "born_mass_optimal": "simulated", "best_accuracy": "computed"},
    "label_notes": {"global_min_loss": "exhaustive enumeration"},
}


def _qnn_metrics(shift: float) -> list[tuple[int, str, float]]:
    return [(e, name, v + shift * e) for e in (1, 2, 3)
            for name, v in (("train_loss", 1.2), ("train_accuracy", 0.5), ("val_loss", 1.25), ("val_accuracy", 0.48))]


QNEWTON_METRICS = [(s, name, v - 0.01 * s) for s in (1, 2, 3, 4)
                   for name, v in (("batch_loss", 2.2), ("train_loss", 2.1), ("train_accuracy", 0.3),
                                   ("test_loss", 2.15), ("test_accuracy", 0.28))]
HYPERNET_METRICS = [(i, name, v) for i in range(8)
                    for name, v in (("D2_r0_loss", 0.3 - 0.02 * i), ("D2_r0_optimal_mass", 0.1 * i))]


def finished_run(storage: Storage, kind: str, overrides: dict[str, Any], result: dict[str, Any],
                 metrics: Sequence[tuple[int, str, float]]) -> RunRecord:
    """A succeeded run stored as a worker stores it: claimed, metrics logged, finished with its result."""
    spec = services.validate_spec(kind, {**get_kind(kind).example, **overrides})
    run = storage.create_run(kind, spec.to_dict(), seed=int(getattr(spec, "seed", 0)),
                             name=services.default_run_name(spec), versions=services.software_versions())
    assert storage.claim_run(run.id, "test-worker") is not None
    assert storage.add_metrics(run.id, metrics, worker_id="test-worker")
    assert storage.finish_run(run.id, "test-worker", SUCCEEDED, result=result)
    return storage.get_run(run.id)


@pytest.fixture
def mixed_runs(storage: Storage) -> list[RunRecord]:
    return [finished_run(storage, "qnn", {"seed": 1}, QNN_RESULT, _qnn_metrics(0.01)),
            finished_run(storage, "qnewton", {}, QNEWTON_RESULT, QNEWTON_METRICS),
            finished_run(storage, "hypernet", {}, HYPERNET_RESULT, HYPERNET_METRICS)]


@pytest.fixture
def two_qnn_runs(storage: Storage) -> list[RunRecord]:
    other = {**QNN_RESULT, "val_accuracy": 0.52, "test_accuracy": 0.5}
    return [finished_run(storage, "qnn", {"seed": 1}, QNN_RESULT, _qnn_metrics(0.01)),
            finished_run(storage, "qnn", {"seed": 2, "learning_rate": 0.1}, other, _qnn_metrics(0.02))]


def _has_nan(frame: Any) -> bool:
    """A NaN cell, or "nan" shown as a word (not inside "banknote")."""
    return bool(frame.isna().to_numpy().any()) or bool(_NAN.search(frame.to_csv()))


_NAN = re.compile(r"\bnan\b", re.IGNORECASE)


def _details(storage: Storage, runs: Sequence[RunRecord]) -> list[services.RunDetail]:
    return [services.run_detail(storage, r.id) for r in runs]


def _row(frame: Any, quantity: str) -> dict[str, str]:
    rows = frame[frame["quantity"] == quantity]
    assert len(rows) == 1, (quantity, list(frame["quantity"]))
    return dict(rows.iloc[0])


# --- formatting ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(("value", "text"), [
    (0.4763636363636364, "0.4764"), (1.0, "1"), (1399.8173415804638, "1,400"), (12345.6, "12,350"),
    (0.0028306520000569435, "0.002831"), (8.4e-14, "8.4e-14"), (2.5e9, "2.5e+09"), (1234567, "1,234,567"),
    (0.9999999998049192, "1.000"), (0.1 + 0.2, "0.3"),
    (0, "0"), (0.0, "0"), (-0.5, "-0.5"), (True, "yes"), (float("nan"), "undefined"), (float("inf"), "∞"),
])
def test_format_number_significant_digits_exponents_and_thousands(value: float, text: str) -> None:
    assert format_number(value) == text


def test_run_view_titles_carry_units() -> None:
    titles = result_titles("qnewton")
    assert titles["final_accuracy"] == "test accuracy (fraction correct)"
    assert titles["n_quantum_solves"] == "n quantum solves (count)"
    assert titles["sgd_time_s"] == "sgd time (s)"
    assert result_titles("no_such_kind")["wall_time_s"] == "wall time (s)"


def test_provenance_from_bare_or_free_text_labels_else_the_kinds_objectives() -> None:
    qnewton, qnn = get_kind("qnewton"), get_kind("qnn")
    assert result_provenance(qnewton, QNEWTON_RESULT, "total_time_estimated_s") == "estimated"
    assert result_provenance(qnewton, QNEWTON_RESULT, "final_accuracy") == "computed"
    unlabelled = {k: v for k, v in QNN_RESULT.items() if k != "labels"}
    assert result_provenance(qnn, unlabelled, "val_accuracy") == "simulated"  # the objective's
    assert result_provenance(qnn, unlabelled, "test_f1") == "simulated"  # like val_f1
    assert result_provenance(qnn, unlabelled, "wall_time_s") == "computed"


# --- comparison data ----------------------------------------------------------------------------------
def test_mixed_kinds_get_one_headline_table_each_with_units_provenance_and_no_nan(
        storage: Storage, mixed_runs: list[RunRecord]) -> None:
    qnn, qnewton, hypernet = mixed_runs
    comparison = compare.build_comparison(mixed_runs)
    assert comparison.mixed
    assert [g.title for g in comparison.groups] == ["QNN classifier", "Q-Newton", "Quantum hypernetwork"]
    assert all(g.n_differ == 0 for g in comparison.groups)  # one run per kind: no spec is diffed across kinds
    frames = {g.kind: compare.headline_frame(g) for g in comparison.groups}
    for g in comparison.groups:
        frame = frames[g.kind]
        assert list(frame.columns) == ["quantity", *(f"run {r.id}" for r in g.runs), "provenance"]
        assert not _has_nan(frame) and "None" not in frame.to_csv()
        results = frame[frame["quantity"] != "run name"]
        assert set(results["provenance"]) <= {"simulated", "computed", "estimated"}
    assert _row(frames["qnn"], "validation accuracy (fraction correct)") == {
        "quantity": "validation accuracy (fraction correct)", f"run {qnn.id}": "0.4764", "provenance": "simulated"}
    assert _row(frames["qnn"], "run name")[f"run {qnn.id}"] == qnn.name
    assert _row(frames["qnewton"], "total training time (s)")[f"run {qnewton.id}"] == "0.01169"
    assert _row(frames["qnewton"], "total training time (s)")["provenance"] == "estimated"
    assert _row(frames["qnewton"], "kappa initial (κ)")[f"run {qnewton.id}"] == "1,400"
    assert _row(frames["qnewton"], "n classical solves (count)")["provenance"] == "computed"
    assert _row(frames["hypernet"], "share of restarts reaching the optimum (0–1)") == {
        "quantity": "share of restarts reaching the optimum (0–1)", f"run {hypernet.id}": "1",
        "provenance": "simulated"}
    assert _row(frames["hypernet"], "global min loss (training loss)")["provenance"] == "computed"
    # rows a result does not have are left out, not shown as empty
    assert "validation F1, weighted (0–1)" in set(frames["qnn"]["quantity"])
    assert "test F1, weighted (0–1)" not in set(frames["qnewton"]["quantity"])


def test_same_kind_diff_counts_only_the_fields_that_differ(two_qnn_runs: list[RunRecord]) -> None:
    a, b = two_qnn_runs
    (group,) = compare.build_comparison(two_qnn_runs).groups
    assert group.n_differ == 2
    diff = compare.spec_frame(group)
    assert list(diff["spec field"]) == ["learning_rate", "seed"]
    assert _row(diff.rename(columns={"spec field": "quantity"}), "learning_rate") == {
        "quantity": "learning_rate", f"run {a.id}": "0.05", f"run {b.id}": "0.1"}
    every = compare.spec_frame(group, only_differing=False)
    assert {"dataset", "seed", "learning_rate"} <= set(every["spec field"])
    assert len(every) == len(a.spec) - 2  # all fields but kind and schema_version


def test_overlay_plan_for_mixed_kinds_overlays_shared_metrics_and_explains_the_rest(
        storage: Storage, mixed_runs: list[RunRecord]) -> None:
    qnn, qnewton, hypernet = mixed_runs
    details = _details(storage, mixed_runs)
    plan = compare.overlay_plan(details)
    assert plan.metrics == ("train_loss", "train_accuracy")  # the only ones two runs log
    assert plan.default == ("train_loss",)
    notes = compare.overlay_notes(details, ["train_loss"])
    assert f"run {hypernet.id} (Quantum hypernetwork) logs no 'train_loss'." in notes
    assert any(n.startswith(f"run {qnn.id} (QNN classifier) is the only selected run that logs 'val_accuracy', "
                            "'val_loss'") for n in notes), notes
    assert any(f"run {hypernet.id} (Quantum hypernetwork) is the only" in n and "'D2_r0_loss'" in n for n in notes)
    assert not any("overlaid across kinds" in n for n in notes)
    (caveat,) = compare.overlay_caveats(details, ["train_loss"])
    assert caveat.startswith("'train_loss' is overlaid across kinds (Q-Newton, QNN classifier)")
    info = compare_curves_info(compare.overlay_runs(details, ["train_loss"]), ["train_loss"])
    assert {c.run_id for c in info.curves} == {qnn.id, qnewton.id}
    # each kind's own provenance: a simulated QNN curve next to a computed Q-Newton curve
    assert info.provenance == ""
    assert {c.run_id: c.provenance for c in info.curves} == {qnn.id: "simulated", qnewton.id: "computed"}
    assert info.panels[0].y_label == "cross-entropy, nats"
    plot_compare_curves(info)


def test_same_kind_overlay_one_panel_per_metric_one_colour_per_run(storage: Storage,
                                                                   two_qnn_runs: list[RunRecord]) -> None:
    details = _details(storage, two_qnn_runs)
    plan = compare.overlay_plan(details)
    assert plan.default == ("val_accuracy",)  # the kind's first curve metric
    assert compare.overlay_notes(details, ["val_accuracy", "val_loss"]) == ()
    assert compare.overlay_caveats(details, ["val_accuracy", "val_loss"]) == ()
    info = compare_curves_info(compare.overlay_runs(details, ["val_accuracy", "val_loss"]),
                               ["val_accuracy", "val_loss"])
    assert [p.metric for p in info.panels] == ["val_accuracy", "val_loss"]
    assert [p.y_label for p in info.panels] == ["fraction correct", "cross-entropy, nats"]
    assert len(info.curves) == 4 and info.provenance == "simulated"
    colours = {(c.run_id, c.colour) for c in info.curves}
    assert len(colours) == 2 and len({c for _, c in colours}) == 2
    fig = plot_compare_curves(info)
    assert sum(t.showlegend for t in fig.data) == 2  # legend: one entry per run


def test_selection_analysis_needs_three_runs_of_one_kind(storage: Storage, two_qnn_runs: list[RunRecord],
                                                         mixed_runs: list[RunRecord]) -> None:
    offer = compare.analysis_offer(compare.build_comparison([*two_qnn_runs, mixed_runs[1]]))
    assert offer.kinds == ()
    assert "at least 3 runs of one kind" in offer.reason and "2 QNN classifier runs and 1 Q-Newton run" in offer.reason
    offer = compare.analysis_offer(compare.build_comparison([*two_qnn_runs, *mixed_runs]))
    assert offer == compare.AnalysisOffer(("qnn",), "")


def test_csv_holds_the_formatted_table_raw_values_and_provenance(mixed_runs: list[RunRecord]) -> None:
    qnn, qnewton, _ = mixed_runs
    text = compare.comparison_csv(compare.build_comparison(mixed_runs))
    assert not _NAN.search(text)
    rows = list(csv.DictReader(io.StringIO(text)))
    row = next(r for r in rows if r["quantity"] == "total training time" and r["kind"] == "Q-Newton")
    assert row["unit"] == "s" and row["section"] == "result"
    assert row[f"run {qnewton.id}"] == "0.01169"
    assert float(row[f"run {qnewton.id} raw"]) == QNEWTON_RESULT["total_time_estimated_s"]
    assert row[f"run {qnewton.id} provenance"] == "estimated"
    assert row[f"run {qnn.id}"] == ""  # another kind's row: blank
    seed = next(r for r in rows if r["quantity"] == "seed" and r["kind"] == "QNN classifier")
    assert seed["section"] == "spec" and seed[f"run {qnn.id} raw"] == "1"


# --- the page -----------------------------------------------------------------------------------------
def _no_exceptions(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]


def _shown_text(at: AppTest) -> str:
    parts = [f.value.to_csv() for f in at.dataframe]
    parts += [m.value for m in (*at.markdown, *at.info, *at.caption, *at.warning)]
    return "\n".join(parts)


def test_page_mixed_kinds_shows_each_run_without_nan_and_says_what_is_not_overlaid(
        app: AppTest, storage: Storage, mixed_runs: list[RunRecord]) -> None:
    goto(app, "compare").run()
    _no_exceptions(app)
    assert set(app.multiselect(key="compare_runs").value) == {r.id for r in mixed_runs}
    frames = [f.value for f in app.dataframe]
    assert frames
    assert not any(_has_nan(f) for f in frames)
    columns = {c for f in frames for c in f.columns}
    assert {f"run {r.id}" for r in mixed_runs} <= columns
    hypernet = mixed_runs[2]
    infos = " ".join(i.value for i in app.info).replace("\\", "")  # Markdown escapes removed
    assert f"run {hypernet.id} (Quantum hypernetwork) logs no 'train_loss'." in infos
    text = _shown_text(app)
    assert "spec field(s) differ" not in text
    assert "Specs of different kinds are not compared" in text
    assert "(simulated)" not in " ".join(m.value for m in app.markdown)
    assert "needs at least 3 runs of one kind" in text
    assert len(app.get("plotly_chart")) == 1
    assert len(app.get("download_button")) == 2


def test_page_two_qnn_runs_overlays_two_metrics_and_counts_differing_fields(
        app: AppTest, storage: Storage, two_qnn_runs: list[RunRecord]) -> None:
    goto(app, "compare").run()
    _no_exceptions(app)
    assert app.multiselect(key="compare_metrics").value == ["val_accuracy"]
    app.multiselect(key="compare_metrics").set_value(["val_accuracy", "val_loss"]).run()
    _no_exceptions(app)
    (chart,) = app.get("plotly_chart")
    figure = json.loads(chart.proto.spec)
    assert len(figure["data"]) == 4
    assert {t["yaxis"] for t in figure["data"]} == {"y", "y2"}
    names = {t["name"] for t in figure["data"]}  # legend: the run
    assert len(names) == 2 and all(any(n.startswith(f"run {r.id} · ") for n in names) for r in two_qnn_runs)
    assert any("2 spec field(s) differ" in m.value for m in app.markdown)
    assert not app.info  # nothing left out
    (specs,) = [f.value for f in app.dataframe if "spec field" in f.value.columns]
    assert list(specs["spec field"]) == ["learning_rate", "seed"]
    app.toggle(key="compare_only_diff").set_value(False).run()
    (specs,) = [f.value for f in app.dataframe if "spec field" in f.value.columns]
    assert "dataset" in set(specs["spec field"])
    assert not _NAN.search(_shown_text(app))


def test_page_offers_the_selection_analysis_for_three_runs_of_one_kind(app: AppTest, storage: Storage) -> None:
    for seed, rate in ((1, 0.05), (2, 0.1), (3, 0.2)):
        result = {**QNN_RESULT, "val_accuracy": 0.4 + rate}
        finished_run(storage, "qnn", {"seed": seed, "learning_rate": rate}, result, _qnn_metrics(rate))
    goto(app, "compare").run()
    _no_exceptions(app)
    assert [e.label for e in app.expander] == ["Analyse this selection (importance of the spec fields that differ)"]
    assert not any("needs at least 3 runs" in c.value for c in app.caption)
    assert any("2 spec field(s) differ" in m.value for m in app.markdown)
