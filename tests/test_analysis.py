"""Analysis library: search spaces, importance (fANOVA / PED-ANOVA), marginal effects, plot infos, recommendation."""

from __future__ import annotations

import math
import subprocess
import sys
from types import SimpleNamespace
from typing import Any

import numpy as np
import optuna
import pytest

from qmlapp.analysis import (
    AnalysisError,
    Categorical,
    ImportanceResult,
    Range,
    SearchSpace,
    Trial,
    best_configurations,
    importance,
    infer_space,
    marginal_effects,
    recommendation,
    to_optuna_distributions,
    trials_from_runs,
)
from qmlapp.plots import (
    best_configs_info,
    contour_info,
    importance_info,
    marginal_effect_info,
    parallel_coordinates_info,
    plot_best_configs,
    plot_contour,
    plot_importance,
    plot_marginal_effect,
    plot_parallel_coordinates,
    plot_slice,
    plot_trial_curves,
    slice_info,
    study_report,
    trial_curves_info,
)
from qmlapp.registry import KINDS, get_kind
from qmlapp.specs import SpecError

SPACE_JSON: dict[str, Any] = {
    "learning_rate": {"low": 1e-4, "high": 0.5, "log": True},
    "encoding": ["angle", "z_feature_map", "zz_feature_map"],
    "depth": {"low": 1, "high": 8},
    "entanglement": ["linear", "circular", "full"],
}
SPACE = SearchSpace.from_json(SPACE_JSON)
FAST_FANOVA = {"n_trees": 16}  # keeps the suite quick; the benchmark runs Optuna's default 64


def synthetic_trials(n: int = 60, *, important: str = "learning_rate", seed: int = 0,
                     noise: float = 0.01) -> list[Trial]:
    """Random-search trials whose accuracy depends on ``important`` only, plus Gaussian noise."""
    rng = np.random.default_rng(seed)
    trials = []
    for i in range(n):
        p: dict[str, Any] = {"learning_rate": float(10 ** rng.uniform(-4, math.log10(0.5))),
                             "encoding": str(rng.choice(SPACE_JSON["encoding"])), "depth": int(rng.integers(1, 9)),
                             "entanglement": str(rng.choice(SPACE_JSON["entanglement"])), "seed": i}
        if important == "learning_rate":  # peaked around 0.03, as for Adam on small QNNs
            signal = 0.3 * math.exp(-((math.log10(p["learning_rate"]) + 1.5) ** 2))
        else:
            signal = 0.3 * SPACE_JSON[important].index(p[important]) / 2
        trials.append(Trial(i, p, 0.5 + signal + float(rng.normal(0, noise))))
    return trials


# --- search space -------------------------------------------------------------------------------------------


def test_space_parses_json_types() -> None:
    lr, enc, depth, _ent = SPACE.dimensions
    assert isinstance(lr, Range) and lr.log and not lr.is_int and lr.low == 1e-4
    assert isinstance(depth, Range) and depth.is_int and (depth.low, depth.high) == (1, 8)
    assert isinstance(enc, Categorical) and enc.choices == ("angle", "z_feature_map", "zz_feature_map")
    assert SearchSpace.from_json({"x": {"low": 0, "high": 1.0}})["x"] == Range("x", 0.0, 1.0)  # one float → float
    assert SearchSpace.from_json(SPACE.to_json()) == SPACE
    stepped = SearchSpace.from_json({"c": {"low": -1.0, "high": 1.0, "step": 0.5},
                                     "d": {"low": 0.0, "high": 1.0, "step": 0.3}})
    assert SearchSpace.from_json(stepped.to_json()) == stepped
    assert stepped["d"] == Range("d", 0.0, 1.0, step=0.3)  # grid stops at 0.9; the bound is kept as written


def test_to_optuna_distributions() -> None:
    space = SearchSpace.from_json({**SPACE_JSON, "n": {"low": 2, "high": 64, "log": True},
                                   "c": {"low": -1.0, "high": 1.0, "step": 0.5}, "mixed": ["none", 0.5, 2, True]})
    d = to_optuna_distributions(space)
    assert d["learning_rate"] == optuna.distributions.FloatDistribution(1e-4, 0.5, log=True)
    assert d["depth"] == optuna.distributions.IntDistribution(1, 8)
    assert d["n"] == optuna.distributions.IntDistribution(2, 64, log=True)
    assert d["c"] == optuna.distributions.FloatDistribution(-1.0, 1.0, step=0.5)
    assert d["mixed"].choices == ("none", 0.5, 2, True)  # type: ignore[attr-defined]


@pytest.mark.parametrize(("entry", "fragment"), [
    ([], "at least one choice"),
    ("angle", "list of choices"),
    ([1, True], "indistinguishable"),  # Optuna maps True and 1 to one index
    (["a", "a"], "indistinguishable"),
    (["a", None], "strings, finite numbers or booleans"),
    ([float("nan")], "strings, finite numbers or booleans"),
    ({"low": 1}, "needs 'high'"),
    ({"low": "a", "high": 2}, "finite number"),
    ({"low": 3, "high": 1}, "must be ≤"),
    ({"low": 0.0, "high": 1.0, "log": True}, "log range needs 'low' > 0"),
    ({"low": 1e-3, "high": 1.0, "log": "yes"}, "true or false"),
    ({"low": 1e-3, "high": 1.0, "log": True, "step": 0.1}, "cannot be combined"),
    ({"low": 1, "high": 9, "step": 0.5}, "integer"),
    ({"low": 0, "high": 1, "scale": "log"}, "unknown key 'scale'"),
])
def test_space_errors_name_the_hyperparameter(entry: Any, fragment: str) -> None:
    with pytest.raises(SpecError) as err:
        SearchSpace.from_json({"encoding": ["angle"], "learning_rate": entry})
    assert err.value.field == "learning_rate"
    assert fragment in err.value.message


def test_space_must_be_an_object() -> None:
    with pytest.raises(SpecError) as err:
        SearchSpace.from_json(["learning_rate"])
    assert err.value.field == "search_space"


def test_infer_space_keeps_only_differing_fields() -> None:
    runs = [{"dataset": "iris", "encoding": e, "depth": d, "learning_rate": lr, "shots": s, "use_bias": b,
             "seed": i, "epochs": ep}
            for i, (e, d, lr, s, b, ep) in enumerate([
                ("angle", 1, 0.001, 0, True, 10), ("zz_feature_map", 2, 0.01, 0, False, 20),
                ("angle", 3, 0.05, 100, True, 30), ("angle", 4, 0.1, 100, True, 40),
                ("angle", 5, 0.2, 0, True, 50), ("angle", 6, 0.3, 0, True, 60), ("angle", 7, 0.5, 0, True, 70)])]
    runs[0]["only_here"] = 1.0
    space = infer_space(runs)
    assert space.names == ["encoding", "depth", "learning_rate", "shots", "use_bias", "epochs"]  # no seed/dataset
    assert space["encoding"] == Categorical("encoding", ("angle", "zz_feature_map"))
    assert space["depth"] == Range("depth", 1, 7, is_int=True)  # 7 distinct > 6 → range, max/min < 100 → linear
    assert space["learning_rate"] == Range("learning_rate", 0.001, 0.5, log=True)  # ratio 500 ≥ 100
    assert space["shots"] == Categorical("shots", (0, 100))
    assert space["use_bias"] == Categorical("use_bias", (False, True))
    assert space["epochs"] == Range("epochs", 10, 70, is_int=True)
    assert all(space.contains(r) for r in runs)
    assert infer_space([]) == SearchSpace()


# --- importance ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("method", "important", "min_share"), [
    ("fanova", "learning_rate", 0.6), ("ped_anova", "learning_rate", 0.6), ("fanova", "encoding", 0.6),
    # PED-ANOVA asks what gets a trial into the top 10 %: once every top trial has the best encoding,
    # noise decides among them and leaves chance concentrations on the other hyperparameters.
    ("ped_anova", "encoding", 0.4),
])
def test_importance_finds_the_one_relevant_hyperparameter(method: str, important: str, min_share: float) -> None:
    trials = synthetic_trials(60, important=important)
    options = FAST_FANOVA if method == "fanova" else {}
    res = importance(trials, SPACE, "maximize", method, seed=0, **options)  # type: ignore[arg-type]
    assert set(res.shares) == set(SPACE.names)
    assert next(iter(res.shares)) == important
    assert res.shares[important] > min_share
    assert math.isclose(sum(res.shares.values()), 1.0)
    assert list(res.shares.values()) == sorted(res.shares.values(), reverse=True)
    assert res.std is not None and set(res.std) == set(res.shares) and all(s >= 0 for s in res.std.values())
    assert res.n_trials == 60 and res.method == method


def test_fanova_is_deterministic_per_seed() -> None:
    trials = synthetic_trials(40)
    a = importance(trials, SPACE, "maximize", "fanova", seed=3, **FAST_FANOVA)
    b = importance(trials, SPACE, "maximize", "fanova", seed=3, **FAST_FANOVA)
    c = importance(trials, SPACE, "maximize", "fanova", seed=4, **FAST_FANOVA)
    assert a == b
    assert a.shares != c.shares
    assert a.explained is not None and 0.5 < a.explained <= 1.01  # one main effect explains the surrogate
    assert ImportanceResult.from_json(a.to_json()) == a


def test_ped_anova_is_deterministic_and_widens_small_top_sets() -> None:
    trials = synthetic_trials(20)
    a = importance(trials, SPACE, "maximize", "ped_anova", seed=1)
    assert a == importance(trials, SPACE, "maximize", "ped_anova", seed=1)
    assert a.settings["target_quantile"] == 0.25  # 5 of 20 trials, not Optuna's 10 % (2 trials)
    assert a.settings["n_top_trials"] == 5


def test_ped_anova_uses_the_direction() -> None:
    # Minimising accuracy makes the *worst* learning rates the top trials: still learning_rate, other values.
    trials = synthetic_trials(60)
    loss_like = [Trial(t.run_id, t.params, -t.value) for t in trials]  # type: ignore[operator]
    up = importance(trials, SPACE, "maximize", "ped_anova")
    down = importance(loss_like, SPACE, "minimize", "ped_anova")
    assert up.shares == pytest.approx(down.shares)


def test_failed_and_invalid_trials_are_skipped() -> None:
    clean = synthetic_trials(30)
    good = dict(clean[0].params)
    noisy = [*clean,
             Trial(100, good, None, status="failed"), Trial(101, good, 0.9, status="cancelled"),
             Trial(102, good, None), Trial(103, good, float("nan")),
             Trial(104, {**good, "encoding": "amplitude"}, 0.99), Trial(105, {"depth": 2}, 0.99)]
    res = importance(noisy, SPACE, "maximize", "ped_anova")
    assert res.n_trials == 30
    assert res.skipped == {"status failed": 1, "status cancelled": 1, "no finite objective value": 2,
                           "params outside the search space": 2}
    assert res.shares == importance(clean, SPACE, "maximize", "ped_anova").shares


def test_too_few_trials_and_constant_inputs_are_clear_errors() -> None:
    trials = synthetic_trials(5)
    with pytest.raises(AnalysisError, match=r"at least 3 .* got 2 .*1 status failed"):
        importance([*trials[:2], Trial(9, trials[2].params, None, status="failed")], SPACE, "maximize")
    with pytest.raises(AnalysisError, match="no variation"):
        importance([Trial(t.run_id, t.params, 0.5) for t in trials], SPACE, "maximize")
    same = [Trial(i, trials[0].params, 0.5 + 0.01 * i) for i in range(5)]
    with pytest.raises(AnalysisError, match="no hyperparameter"):
        importance(same, SPACE, "maximize", "ped_anova")
    with pytest.raises(ValueError, match="direction"):
        importance(trials, SPACE, "max")


def test_single_valued_hyperparameter_gets_zero_share() -> None:
    trials = [Trial(t.run_id, {**t.params, "depth": 4}, t.value) for t in synthetic_trials(40)]
    res = importance(trials, SPACE, "maximize", "fanova", **FAST_FANOVA)
    assert res.constant == ("depth",)
    assert res.shares["depth"] == 0.0 and list(res.shares)[-1] == "depth"
    assert math.isclose(sum(res.shares.values()), 1.0)


def test_mixed_type_categorical_choices() -> None:
    space = SearchSpace.from_json({"init_constant": ["none", 0.5, 2, True], "x": {"low": 0.0, "high": 1.0}})
    rng = np.random.default_rng(0)
    effect = {"none": 0.0, 0.5: 0.1, 2: 0.2, True: 0.3}
    trials = []
    for i in range(40):
        c = space["init_constant"].choices[i % 4]  # type: ignore[union-attr]
        trials.append(Trial(i, {"init_constant": c, "x": float(rng.uniform())}, effect[c] + rng.normal(0, 0.01)))
    trials.append(Trial(99, {"init_constant": 2.0, "x": 0.5}, 0.2))  # 2.0 is the choice 2 (spec coercion)
    res = importance(trials, space, "maximize", "ped_anova")
    assert next(iter(res.shares)) == "init_constant" and res.n_trials == 41
    m = marginal_effects(trials, space)["init_constant"]
    assert m.labels == ["none", "0.5", "2", "True"] and m.counts == [10, 10, 11, 10]


# --- marginal effects and best configurations ---------------------------------------------------------------


def test_marginal_effects_exact() -> None:
    space = SearchSpace.from_json({"optimizer": ["adam", "sgd", "spsa"], "depth": {"low": 1, "high": 3},
                                   "learning_rate": {"low": 0.001, "high": 1.0, "log": True}})
    rows = [("adam", 1, 0.002, 0.8), ("adam", 2, 0.02, 0.6), ("sgd", 2, 0.5, 0.5), ("adam", 3, 0.9, 0.7)]
    trials = [Trial(i, {"optimizer": o, "depth": d, "learning_rate": lr}, v) for i, (o, d, lr, v) in enumerate(rows)]
    trials.append(Trial(9, {"optimizer": "sgd", "depth": 1, "learning_rate": 0.1}, None, status="failed"))
    m = marginal_effects(trials, space, n_bins=3)
    opt = m["optimizer"]
    assert opt.kind == "categorical" and opt.labels == ["adam", "sgd", "spsa"]
    assert opt.counts == [3, 1, 0]
    assert opt.means[0] == pytest.approx(0.7) and opt.stds[0] == pytest.approx(0.1)
    assert (opt.mins[0], opt.maxs[0]) == (0.6, 0.8)
    assert (opt.means[1], opt.stds[1], opt.mins[1]) == (0.5, None, 0.5)
    assert opt.means[2] is None and opt.best("maximize") == [0, 1] and opt.best("minimize") == [1, 0]
    depth = m["depth"]
    assert depth.labels == ["1", "2", "3"] and depth.counts == [1, 2, 1] and depth.means[1] == pytest.approx(0.55)
    lr = m["learning_rate"]  # decades: [1e-3, 1e-2), [1e-2, 1e-1), [1e-1, 1]
    assert lr.log and lr.edges == pytest.approx([0.001, 0.01, 0.1, 1.0])
    assert lr.labels == ["[0.001, 0.01)", "[0.01, 0.1)", "[0.1, 1]"]
    assert lr.counts == [1, 1, 2] and lr.means[2] == pytest.approx(0.6)


def test_best_configurations_group_repeats_across_seeds() -> None:
    base = {"encoding": "angle", "depth": 2}
    trials = [Trial(1, {**base, "seed": 0}, 0.80), Trial(2, {**base, "seed": 1}, 0.70),
              Trial(3, {**base, "seed": 2}, 0.90), Trial(4, {"encoding": "zz", "depth": 2, "seed": 0}, 0.88),
              Trial(5, {"encoding": "zz", "depth": 3, "seed": 0}, 0.60), Trial(6, {**base, "seed": 3}, None, "failed")]
    groups = best_configurations(trials, "maximize", k=2)
    assert [g.run_ids for g in groups] == [(4,), (1, 2, 3)]
    assert groups[1].params == base and groups[1].n == 3
    assert groups[1].mean == pytest.approx(0.8) and groups[1].std == pytest.approx(0.1)
    assert (groups[1].min, groups[1].max) == (0.7, 0.9) and groups[0].std is None
    assert next(g.run_ids for g in best_configurations(trials, "minimize")) == (5,)
    space = SearchSpace.from_json({"encoding": ["angle", "zz"], "depth": {"low": 2, "high": 3}})
    info = best_configs_info(trials, space, objective="val_accuracy", k=3)
    assert info.columns[:3] == ["rank", "encoding (choice)", "depth (layers)"]
    assert info.columns[3] == "mean validation accuracy (fraction correct)" and "(simulated)" in info.title
    assert info.rows[1][:4] == [2, "angle", 2, pytest.approx(0.8)] and info.rows[1][5] == 3
    assert info.rows[1][-1] == "run 1, run 2, run 3"
    assert plot_best_configs(info).data[0].header.values[0] == "rank"


# --- plot infos ---------------------------------------------------------------------------------------------


def test_importance_info_and_figure() -> None:
    res = importance(synthetic_trials(40), SPACE, "maximize", "ped_anova")
    info = importance_info(res, objective="val_accuracy")
    assert info.params == list(res.shares) and info.shares == list(res.shares.values())
    assert info.errors == [res.std[p] for p in info.params]  # type: ignore[index]
    assert "PED-ANOVA" in info.title and info.title.endswith("(simulated)") and "bootstrap" in info.error_note
    fig = plot_importance(info)
    assert fig.data[0].y[-1] == info.params[0]  # most important bar on top
    assert fig.layout.xaxis.title.text == info.x_label and fig.layout.yaxis.title.text == "hyperparameter"


def test_marginal_effect_info() -> None:
    marginals = marginal_effects(synthetic_trials(30), SPACE)
    info = marginal_effect_info(marginals["learning_rate"], SPACE, objective="val_loss")
    assert info.x_label == "learning rate (step size, log scale)"
    assert info.y_label == "validation loss (cross-entropy, nats)"
    assert sum(info.counts) == 30 and len(info.labels) == len(info.means) == 6
    assert info.title.endswith("(simulated)")
    assert plot_marginal_effect(info).layout.xaxis.title.text == info.x_label


def test_parallel_coordinates_info_codes_categoricals() -> None:
    trials = synthetic_trials(12)
    info = parallel_coordinates_info(trials, SPACE, objective="val_accuracy")
    assert [a.label for a in info.axes] == ["learning rate (step size, log10 axis)", "encoding (choice)",
                                            "depth (layers)", "entanglement (choice)",
                                            "validation accuracy (fraction correct)"]
    lr, enc = info.axes[0], info.axes[1]
    assert lr.values[0] == pytest.approx(math.log10(trials[0].params["learning_rate"]))
    assert lr.tickvals == [-4.0, -3.0, -2.0, -1.0] and lr.ticktext == ["0.0001", "0.001", "0.01", "0.1"]
    assert enc.tickvals == [0.0, 1.0, 2.0] and enc.ticktext == list(SPACE_JSON["encoding"])
    assert enc.values == [float(SPACE_JSON["encoding"].index(t.params["encoding"])) for t in trials]
    assert info.color == [t.value for t in trials] and info.title.endswith("(simulated)")
    assert len(plot_parallel_coordinates(info).data[0].dimensions) == 5


def test_slice_info() -> None:
    trials = [*synthetic_trials(10), Trial(50, {}, None, "failed")]
    info = slice_info(trials, SPACE)
    assert [s.param for s in info.subplots] == SPACE.names and len(info.run_labels) == 10
    lr, enc = info.subplots[0], info.subplots[1]
    assert lr.log and lr.x == [t.params["learning_rate"] for t in trials[:10]]
    assert enc.x == [SPACE_JSON["encoding"].index(t.params["encoding"]) for t in trials[:10]]
    assert enc.ticktext == list(SPACE_JSON["encoding"]) and info.y_label == "validation accuracy (fraction correct)"
    assert info.title.endswith("(simulated)")
    assert not slice_info(trials, SPACE, objective="wall_time_s").title.endswith(")")  # measured, not simulated
    fig = plot_slice(info)
    assert fig.layout.xaxis.type == "log" and fig.layout.xaxis.title.text == lr.x_label


def test_contour_info_bins_and_counts() -> None:
    space = SearchSpace.from_json({"encoding": ["angle", "zz"],
                                   "learning_rate": {"low": 0.001, "high": 1.0, "log": True}})
    trials = [Trial(1, {"encoding": "angle", "learning_rate": 0.002}, 0.6),
              Trial(2, {"encoding": "angle", "learning_rate": 0.003}, 0.8),
              Trial(3, {"encoding": "zz", "learning_rate": 0.5}, 0.9)]
    info = contour_info(trials, space, "encoding", "learning_rate", n_bins=3)
    assert info.x_labels == ["angle", "zz"] and info.y_labels == ["[0.001, 0.01)", "[0.01, 0.1)", "[0.1, 1]"]
    assert info.counts == [[2, 0], [0, 0], [0, 1]]
    assert info.z[0][0] == pytest.approx(0.7) and info.z[1] == [None, None] and info.z[2][1] == 0.9
    assert info.y_label == "learning rate (step size, log scale)" and info.z_label.startswith("mean validation")
    assert info.title == "Mean validation accuracy by encoding and learning_rate, 3 trials (simulated)"
    assert plot_contour(info).layout.yaxis.title.text == info.y_label
    with pytest.raises(ValueError):
        contour_info(trials, space, "encoding", "encoding")


def test_trial_curves_info_best_first() -> None:
    curves = {"val_accuracy": ([1, 2, 3], [0.5, 0.6, 0.7]), "train_loss": ([1, 2, 3], [1.0, 0.8, 0.7])}
    trials = [Trial(i, {"depth": i}, v, curves=curves if i != 2 else None, label=f"r{i}")
              for i, v in enumerate([0.7, 0.9, 0.95, 0.8])]
    info = trial_curves_info(trials, "val_accuracy", objective="val_accuracy", max_curves=2)
    assert [c.label for c in info.curves] == ["r1 (validation accuracy 0.9)", "r3 (validation accuracy 0.8)"]
    assert info.n_without_metric == 1 and info.curves[0].steps == [1, 2, 3]
    assert info.y_label == "val accuracy (fraction correct)" and info.x_label == "epoch (count)"
    assert "best 2 of 3" in info.title and info.title.endswith("(simulated)")
    loss = trial_curves_info(trials, "train_loss", objective="val_loss")  # lower loss first
    assert loss.curves[0].objective_value == 0.7 and loss.y_label == "train loss (cross-entropy, nats)"
    assert len(plot_trial_curves(info).data) == 2


# --- recommendation and the bundle --------------------------------------------------------------------------


def test_recommendation_is_generated_from_the_numbers() -> None:
    trials = synthetic_trials(60)
    trials += [Trial(100 + i, {**trials[7].params, "seed": 100 + i}, trials[7].value + d)  # type: ignore[operator]
               for i, d in enumerate((0.01, -0.01))]
    res = importance(trials, SPACE, "maximize", "fanova", **FAST_FANOVA)
    text = recommendation(trials, SPACE, "maximize", res, objective="val_accuracy")
    assert f"Matters most: learning_rate ({100 * res.shares['learning_rate']:.0f} %" in text
    assert "Best learning_rate: [0.00707, 0.0292)" in text or "Best learning_rate: [0.0292, 0.121)" in text
    hardly = next(line for line in text.splitlines() if line.startswith("Hardly matter"))
    assert "entanglement" in hardly and "learning_rate" not in hardly
    assert "random-forest surrogate" in text and "1 of them repeated" in text and "seed-to-seed noise" in text
    assert "values are simulated" in text


def test_study_report_bundle() -> None:
    curves = {"val_loss": ([1, 2], [0.9, 0.7])}
    trials = [Trial(t.run_id, t.params, t.value, curves=curves) for t in synthetic_trials(30)]
    report = study_report(trials, SPACE, objective="val_accuracy", method="ped_anova", curve_metric="val_loss")
    assert report.contour is not None and report.contour.x_param == next(iter(report.importance.shares))
    assert len(report.marginal_plots) == 4 and report.curves is not None and len(report.curves.curves) == 20
    assert "learning_rate" in report.recommendation and len(report.best.rows) == 10


def test_trials_from_runs() -> None:
    runs = [SimpleNamespace(id=1, name="a", status="succeeded", result={"val_accuracy": 0.8},
                            spec={"kind": "qnn", "schema_version": 1, "depth": 2}),
            SimpleNamespace(id=2, name="", status="failed", result=None, spec={"kind": "qnn", "depth": 3})]
    trials = trials_from_runs(runs, "val_accuracy", curves={1: {"val_loss": ([1], [0.5])}})
    assert trials[0] == Trial(1, {"depth": 2}, 0.8, "succeeded", {"val_loss": ([1], [0.5])}, "a")
    assert trials[1].value is None and trials[1].display_label == "run 2"


def test_analysis_imports_neither_tensorflow_nor_streamlit() -> None:
    code = ("import sys, qmlapp.analysis, qmlapp.plots.study; "
            "bad = [m for m in ('tensorflow', 'streamlit', 'sqlalchemy') if m in sys.modules]; "
            "assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True)


# --- every kind's objectives ------------------------------------------------------------------------------


@pytest.mark.parametrize(("kind", "objective"), [(k.name, o.name) for k in KINDS.values() for o in k.objectives])
def test_study_report_labels_every_plot_with_the_kinds_objective(kind: str, objective: str) -> None:
    obj = get_kind(kind).objective(objective)
    curves = {"m": ([1, 2], [0.9, 0.7])}
    trials = [Trial(t.run_id, t.params, t.value, curves=curves) for t in synthetic_trials(12)]
    report = study_report(trials, SPACE, objective=objective, kind=kind, method="ped_anova", curve_metric="m",
                          curve_provenance="computed", curve_x_label="logged training step")
    suffix = f"({obj.provenance})"
    titles = [report.importance_plot.title, report.parallel.title, report.slices.title, report.best.title,
              *(m.title for m in report.marginal_plots), *([report.contour.title] if report.contour else [])]
    assert all(obj.label.lower() in t.lower() and t.endswith(suffix) for t in titles), titles
    assert all(m.y_label == obj.title for m in report.marginal_plots) and report.slices.y_label == obj.title
    assert report.parallel.axes[-1].label == obj.title
    assert report.curves is not None and report.curves.title.endswith("(computed)")
    assert report.curves.x_label == "logged training step (count)"
    assert f"for {obj.title} ({obj.direction})" in report.recommendation
    assert f"values are {obj.provenance}" in report.recommendation
    if obj.direction == "minimize":  # the best configuration is the lowest
        assert report.best.rows[0][-6] == min(t.value for t in trials)  # type: ignore[type-var]


def test_curve_titles_use_the_kinds_units() -> None:
    curves = {"D{depth}_r0_loss": ([1, 2], [0.3, 0.2])}
    trials = [Trial(i, {"depth": i}, 0.5 + i / 10, curves=curves) for i in range(3)]
    info = trial_curves_info(trials, "D{depth}_r0_loss", objective="success_probability", kind="hypernet")
    assert info.y_label == "D{depth} r0 loss (training loss)"  # a hypernetwork's loss is not a cross-entropy
    assert info.title.startswith("D{depth} r0 loss of 3 trials")
    assert "share of restarts reaching the optimum" in info.curves[0].label
    accuracy = trial_curves_info(trials, "test_accuracy", objective="final_accuracy", kind="qnewton")
    assert accuracy.y_label == "test accuracy (fraction correct)"


def test_kind_curves_fill_each_runs_metric_name(storage: Any) -> None:
    from qmlapp.ui.analysis_view import curve_provenance, kind_curves

    specs = {storage.create_run("hypernet", {"depth": d}).id: {"depth": d} for d in (1, 2, 4)}
    for run_id, spec in specs.items():
        storage.add_metrics(run_id, [(s, f"D{spec['depth']}_r0_loss", 1.0 / (s + 1)) for s in range(3)])
    metric, curves = kind_curves(storage, "hypernet", specs)
    assert metric == "D{depth}_r0_loss" and set(curves) == set(specs)
    assert all(c[metric] == ([0, 1, 2], [1.0, 0.5, 1 / 3]) for c in curves.values())
    one = dict([next(iter(specs.items()))])
    assert kind_curves(storage, "hypernet", one)[0] == "D1_r0_loss"  # one name: the name itself
    assert kind_curves(storage, "qnewton", specs) == (None, {})  # no run logged a qnewton metric
    assert [curve_provenance(k) for k in KINDS] == ["simulated", "simulated", "simulated", "computed", "computed"]
