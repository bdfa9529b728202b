"""Golden results: every registered kind's example, run in-process with seed 0, against
``tests/golden/<kind>_result_v1.json``.

Each result is also checked against its kind's declared type (``ExperimentKind.result_type``, nested records
included) and must label every provenance with one word: simulated, computed or estimated.

``QMLAPP_REGEN_GOLDEN=1 .venv/bin/python -m pytest tests/test_golden_results.py`` rewrites the golden files
from this machine's runs instead of comparing (add ``-k <kind>`` for one kind). Review the diff before
committing: every changed number is a changed result.
"""

from __future__ import annotations

import json
import math
import os
import types
from fnmatch import fnmatch
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin

import pytest
from helpers import example_run
from typing_extensions import get_type_hints, is_typeddict

from qmlapp.context import json_safe
from qmlapp.kinds.base import PROVENANCES
from qmlapp.registry import KINDS

GOLDEN = Path(__file__).parent / "golden"
REGEN = os.environ.get("QMLAPP_REGEN_GOLDEN") == "1"

# Floats: TFQ/qsim simulate in float32 and pick SIMD kernels per CPU, so simulated values differ in their last
# digits between machines, and training steps carry that on (up to 2e-6 relative seen between this machine's
# AVX-512 kernels and the SSE ones that QMLAPP_TEST_CPU=sse selects); 1e-4 relative leaves room for that and
# still catches any real change of a result.
REL_TOL = 1e-4
# Plus an absolute floor for values that are zero up to rounding. A float32 state vector's probabilities and
# expectations are good to about 1e-7 (1.6e-7 seen), hence 1e-6 for the result keys that come from one ("*":
# every key of the kind); elsewhere the kinds compute in float64, where 1e-9 still lets tiny cost-model values
# (speed-ups of 1e-14) be compared relatively.
FLOAT32_KEYS = {"qnn": ("*",), "qnetwork": ("*",), "qnewton": ("hhl",), "sparse_qgd": ("small_solve",)}
FLOAT32_ABS_TOL = 1e-6
FLOAT64_ABS_TOL = 1e-9
# Integers, booleans, strings and nulls are compared exactly. An accuracy or a confusion-matrix count would
# change only if a sample sat within float32 rounding of the decision boundary: none does in these examples
# under QMLAPP_TEST_CPU=avx2 or sse.

# Keys (fnmatch patterns, at any depth) left out of the comparison: wall-clock measurements of this machine.
TIMING_KEYS = ("wall_time_s", "train_time_s", "enumeration_time_s", "wall_s", "seconds", "t_*_s")
NOT_COMPARED = {
    # Trained weights: a weight with a (near-)zero gradient gets Adam's normalised steps from float32 noise and
    # may wander by up to the learning rate per step; the losses and accuracies the weights give are compared.
    "qnn": ("weights",),
    # Q-Newton's time accounting adds measured classical solve and step times (every "*time_s", the total and
    # the speed-up over SGD). Its scheduler sends a solve to the quantum solver when the estimated quantum time
    # beats the measured classical one (only 10× apart for the example's 4×4 block), so each choice, its reason,
    # and the counts of quantum and classical solves (also when rescheduled per gate time) follow the machine's
    # load. Training is the same whichever solver is chosen, so losses and κ are compared.
    "qnewton": ("*time_s", "total_time_estimated_s", "speedup_vs_sgd", "choice", "reason", "n_quantum_solves",
                "n_classical_solves", "n_quantum", "n_classical"),
}
LONG_LIST = 64  # numeric lists longer than this are stored as a summary (spectral densities, 512 points)
# Records that hold more keys than their type names: a decoded network has one entry per layout field.
OPEN_RECORDS = frozenset({"NetworkSummary"})


def _golden_path(kind: str) -> Path:
    return GOLDEN / f"{kind}_result_v1.json"


def _run_example(kind: str) -> Any:
    return example_run(KINDS[kind])[1]  # seed 0, run once per session and shared with tests/test_kinds.py


def _prepared(value: Any, skip: tuple[str, ...]) -> Any:
    """The comparable part of a stored (JSON) result: skipped keys dropped, long numeric lists summarised."""
    if isinstance(value, dict):
        return {k: _prepared(v, skip) for k, v in value.items() if not any(fnmatch(k, p) for p in skip)}
    if isinstance(value, list):
        numbers = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)
        if len(value) > LONG_LIST and numbers:
            return {"list_summary": {"len": len(value), "min": min(value), "max": max(value),
                                     "mean": math.fsum(value) / len(value)}}
        return [_prepared(v, skip) for v in value]
    return value


def _differences(expected: Any, actual: Any, path: str, abs_tol: float) -> list[str]:
    if isinstance(expected, dict):
        if not isinstance(actual, dict):
            return [f"{path}: expected an object, got {actual!r:.80}"]
        out = [f"{path}.{k}: missing" for k in expected if k not in actual]
        out += [f"{path}.{k}: not in the golden file" for k in actual if k not in expected]
        for k in expected.keys() & actual.keys():
            out += _differences(expected[k], actual[k], f"{path}.{k}", abs_tol)
        return out
    if isinstance(expected, list):
        if not isinstance(actual, list) or len(actual) != len(expected):
            return [f"{path}: expected a list of {len(expected)}, got {actual!r:.80}"]
        return [d for i, (e, a) in enumerate(zip(expected, actual, strict=True))
                for d in _differences(e, a, f"{path}[{i}]", abs_tol)]
    if isinstance(expected, float) and isinstance(actual, float):
        if math.isclose(actual, expected, rel_tol=REL_TOL, abs_tol=abs_tol):
            return []
        return [f"{path}: {actual!r} vs golden {expected!r}"]
    if type(expected) is not type(actual) or expected != actual:
        return [f"{path}: {actual!r:.80} vs golden {expected!r:.80}"]
    return []


def _type_problems(value: Any, tp: Any, path: str) -> list[str]:
    """Where ``value`` does not have type ``tp`` (TypedDicts, lists, dicts, unions, literals, plain classes)."""
    if tp is Any:
        return []
    if is_typeddict(tp):
        if not isinstance(value, dict):
            return [f"{path}: {type(value).__name__}, not {tp.__name__}"]
        hints = get_type_hints(tp)
        out = [f"{path}.{k}: missing ({tp.__name__})" for k in sorted(tp.__required_keys__ - value.keys())]
        if tp.__name__ not in OPEN_RECORDS:
            out += [f"{path}.{k}: not declared in {tp.__name__}" for k in value if k not in hints]
        for k, v in value.items():
            if k in hints:
                out += _type_problems(v, hints[k], f"{path}.{k}")
        return out
    origin, args = get_origin(tp), get_args(tp)
    if origin in (Union, types.UnionType):
        if any(not _type_problems(value, a, path) for a in args):
            return []
        return [f"{path}: {value!r:.60} ({type(value).__name__}) is none of {tp}"]
    if origin is Literal:
        return [] if value in args else [f"{path}: {value!r} not one of {args}"]
    if origin is list:
        if not isinstance(value, list):
            return [f"{path}: {type(value).__name__}, not a list"]
        return [p for i, v in enumerate(value) for p in _type_problems(v, args[0], f"{path}[{i}]")]
    if origin is dict:
        if not isinstance(value, dict):
            return [f"{path}: {type(value).__name__}, not a dict"]
        return [p for k, v in value.items()
                for p in _type_problems(k, args[0], f"{path} key") + _type_problems(v, args[1], f"{path}[{k!r}]")]
    if tp is type(None):
        return [] if value is None else [f"{path}: {value!r:.60}, not None"]
    # bool is an int to Python but never a count here; an int is a float (as for a type checker).
    accepted = (int, float) if tp is float else (tp,)
    if isinstance(value, accepted) and (tp is bool or not isinstance(value, bool)):
        return []
    return [f"{path}: {value!r:.60} ({type(value).__name__}), not {tp.__name__}"]


@pytest.mark.parametrize("kind", list(KINDS))
def test_example_result_matches_its_type_and_golden_file(kind: str) -> None:
    path = _golden_path(kind)
    if not REGEN and not path.exists():
        pytest.fail(f"no golden result for kind {kind!r}: create tests/golden/{path.name} with "
                    f"QMLAPP_REGEN_GOLDEN=1 .venv/bin/python -m pytest tests/test_golden_results.py -k {kind}")
    raw = _run_example(kind)
    result_type: Any = KINDS[kind].result_type  # a TypedDict
    # The type is what the runner returns (numpy scalars would be a lie), before storage makes it JSON.
    problems = _type_problems(raw, result_type, "result")
    assert not problems, f"{kind}: the result is no {result_type.__name__}:\n" + "\n".join(problems[:30])
    required = result_type.__required_keys__
    assert required <= raw.keys(), sorted(required - raw.keys())
    assert set(raw["labels"].values()) <= set(PROVENANCES), raw["labels"]
    assert set(raw["label_notes"]) <= set(raw["labels"]), "a note explains a label"

    stored = json.loads(json.dumps(json_safe(raw), allow_nan=False))  # what the worker stores
    skip = TIMING_KEYS + NOT_COMPARED.get(kind, ())
    actual = _prepared(stored, skip)
    if REGEN:
        path.write_text(json.dumps(actual, indent=1, ensure_ascii=False) + "\n")
        return
    expected = json.loads(path.read_text())
    diffs = [f"result.{k}: not in the golden file" for k in actual if k not in expected]
    for key, value in expected.items():
        if key not in actual:
            diffs.append(f"result.{key}: missing")
            continue
        float32 = any(fnmatch(key, p) for p in FLOAT32_KEYS.get(kind, ()))
        diffs += _differences(value, actual[key], f"result.{key}", FLOAT32_ABS_TOL if float32 else FLOAT64_ABS_TOL)
    assert not diffs, f"{kind}: {len(diffs)} differences from {path.name}:\n" + "\n".join(diffs[:40])
