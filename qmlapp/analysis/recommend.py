"""A short, data-driven reading of a study: what matters, which values won, and how far to trust it."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from qmlapp.analysis.effects import MarginalInfo, best_configurations, config_groups, marginal_effects, repeat_noise
from qmlapp.analysis.importance import ImportanceResult
from qmlapp.analysis.space import SearchSpace
from qmlapp.analysis.trials import Trial, check_direction, objective_info, usable_trials

NEGLIGIBLE_SHARE = 0.05  # below this a hyperparameter "hardly matters"
TRIALS_PER_PARAM = 10  # fewer usable trials per varied hyperparameter than this → ranking is indicative only


def _pct(x: float) -> str:
    return f"{100 * x:.0f} %"


def _g(x: float) -> str:
    return f"{x:.3g}"


def _value(v: object) -> str:
    return _g(v) if isinstance(v, float) else str(v)


def _n(count: int, noun: str) -> str:
    return f"{count} {noun}" + ("" if count == 1 else "s")


def _best_value_line(name: str, m: MarginalInfo, direction: str, what: str, noise: float | None) -> str | None:
    order = m.best(direction)
    if len(order) < 2:
        return None
    b, n = order[0], order[1]
    mb, mn = m.means[b], m.means[n]
    assert mb is not None and mn is not None
    gap = abs(mb - mn)
    versus = f"{_g(gap)} better than" if gap > 0 else "tied with"
    line = (f"Best {name}: {m.labels[b]} (mean {what} {_g(mb)} over {_n(m.counts[b], 'trial')}), "
            f"{versus} {m.labels[n]} ({_g(mn)}, {_n(m.counts[n], 'trial')})")
    sb, sn = m.stds[b], m.stds[n]
    if sb is not None and sn is not None:
        se = math.sqrt(sb**2 / m.counts[b] + sn**2 / m.counts[n])
        if gap < 2 * se:
            line += f", within 2 standard errors ({_g(2 * se)}), so not a clear winner"
    elif noise is not None and gap < noise:
        line += f", below the seed-to-seed noise ({_g(noise)})"
    else:
        line += ", one side has a single trial, so the gap is anecdotal"
    if len(order) > 2:
        w = order[-1]
        line += f"; worst {m.labels[w]} ({_g(m.means[w])}, {_n(m.counts[w], 'trial')})"  # type: ignore[arg-type]
    return line + "."


def recommendation(trials: Sequence[Trial], space: SearchSpace, direction: str, importance_result: ImportanceResult,
                   *, objective: str | None = None, kind: str | None = None, threshold: float = NEGLIGIBLE_SHARE,
                   top: int = 3) -> str:
    """Plain-text summary generated from the numbers: important hyperparameters, their best values,
    negligible ones, the best configuration, and caveats (trial count, repeats, spread, method).
    ``kind`` picks whose label and provenance the objective gets (objective names repeat across kinds)."""
    direction = check_direction(direction)
    obj = objective_info(objective, kind) if objective else None
    what = obj.label if obj else "objective"
    titled = obj.title if obj else "objective"  # the unit once, in the first line; later numbers share it
    usable = usable_trials(trials, space)
    values = np.asarray(usable.values(), dtype=float)
    groups = config_groups(trials, space=space)
    noise = repeat_noise(groups)
    marginals = marginal_effects(trials, space)
    res = importance_result
    method = res.method_label
    std = res.std or {}
    lines: list[str] = []

    n_rep = sum(1 for g in groups if g.n > 1)
    rep = f", {n_rep} of them repeated with different seeds" if n_rep else ""
    lines.append(f"From {len(values)} trials ({len(groups)} distinct configurations{rep}), {method} ranks "
                 f"the hyperparameters for {titled} ({direction}).")

    ranked = [(k, v) for k, v in res.shares.items() if k not in res.constant]
    important = [(k, v) for k, v in ranked if v >= threshold]
    negligible = [(k, v) for k, v in ranked if v < threshold]
    if important:
        # A share whose error bar reaches below the threshold may be noise; say so rather than drop it.
        parts = [f"{k} ({_pct(v)}" + (f" ± {_pct(std[k])}" if k in std else "")
                 + (", possibly noise)" if k in std and v - std[k] < threshold else ")") for k, v in important]
        lines.append("Matters most: " + ", ".join(parts) + ".")
        for name, _ in important[:top]:
            line = _best_value_line(name, marginals[name], direction, what, noise)
            if line:
                lines.append(line)
    else:
        lines.append(f"No hyperparameter reaches {_pct(threshold)} of the importance.")
    if negligible:
        lines.append(f"Hardly matter (< {_pct(threshold)} each): "
                     + ", ".join(f"{k} ({_pct(v)})" for k, v in negligible) + ".")
    if res.constant:
        lines.append("Not varied in these trials (single value): " + ", ".join(res.constant) + ".")

    best = best_configurations(trials, direction, k=1, space=space)
    if best:
        g = best[0]
        desc = ", ".join(f"{k}={_value(g.params[k])}" for k in space.names if k in g.params)
        spread = f" ± {_g(g.std)} over {g.n} repeats" if g.std is not None else ", single run"
        lines.append(f"Best configuration: {desc or 'as run'}: {what} {_g(g.mean)}{spread} "
                     f"({', '.join(g.labels)}).")

    caveats: list[str] = []
    varied = len(ranked)
    if len(values) < TRIALS_PER_PARAM * max(varied, 1):
        caveats.append(f"only {len(values)} trials for {varied} varied hyperparameters "
                       f"(< {TRIALS_PER_PARAM} per hyperparameter): treat the ranking as indicative")
    if res.method == "fanova":
        s = res.settings
        caveats.append(f"approximate: random-forest surrogate ({int(s.get('n_trees', 0))} trees in "
                       f"{int(s.get('n_forests', 1))} forests; ± is the spread between forests)")
        if res.explained is not None:
            inter = " — interactions dominate, so single-hyperparameter shares tell only part of the story" \
                if res.explained < 0.5 else ""
            caveats.append(f"main effects explain {_pct(min(res.explained, 1.0))} of the surrogate's variance, "
                           f"the rest is interactions{inter}")
    else:
        s = res.settings
        caveats.append(f"PED-ANOVA compares the top {_pct(s.get('target_quantile', 0.1))} "
                       f"({int(s.get('n_top_trials', 0))} trials) with all trials; ± is the spread over "
                       f"{res.n_repeats} bootstrap resamples")
    if len(important) >= 2 and important[0][0] in std and important[1][0] in std:
        (a, va), (b, vb) = important[0], important[1]
        if va - vb < std[a] + std[b]:
            caveats.append(f"{a} and {b} are within each other's uncertainty")
    if noise is None:
        caveats.append("each configuration ran once, so seed-to-seed noise is mixed into the effects; "
                       "repeat the best configurations with other seeds")
    else:
        caveats.append(f"seed-to-seed noise (pooled std over {_n(n_rep, 'repeated configuration')}): {_g(noise)}")
    if values.size:
        caveats.append(f"{what} ranges {_g(values.min())}–{_g(values.max())} (std {_g(values.std(ddof=1))}); "
                       "per-value means pool the other hyperparameters")
    if usable.n_skipped:
        caveats.append(f"{_n(usable.n_skipped, 'trial')} skipped (" +
                       ", ".join(f"{n} {r}" for r, n in usable.skipped.items()) + ")")
    if obj and obj.provenance:
        caveats.append(f"values are {obj.provenance}")
    lines.append("Caveats: " + "; ".join(caveats) + ".")
    return "\n".join(lines)
