"""How a result number is shown: its words, its unit, its provenance and its digits.

Shared by the run view and the Compare page (and anything else that prints results), so a quantity
reads the same everywhere. No Streamlit here.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any, NamedTuple

from qmlapp.kinds.base import PROVENANCES, ExperimentKind
from qmlapp.registry import get_kind
from qmlapp.specs import SpecError

# Words and units of result keys several kinds share and none declares as an objective.
SHARED_QUANTITIES: dict[str, tuple[str, str]] = {
    "test_f1": ("test F1, weighted", "0–1"),
    "test_loss": ("test loss", "nats"),
    "n_parameters": ("trainable parameters", "count"),
    "wall_time_s": ("wall time", "s"),
    "train_time_s": ("training time", "s"),
}
# Units of summary keys that their kind does not declare in ``units`` (by name, where the name says it).
_NAMED_UNITS = {"rounds": "count", "sparsity": "fraction", "r_number": "dimensionless"}

# A result key the runner did not label and no objective declares is a count, a time or a derived
# number of the classical bookkeeping, so it is shown as computed (as the run view always did).
FALLBACK_PROVENANCE = "computed"


class Quantity(NamedTuple):
    """A result key with the words and unit to show it."""

    key: str
    label: str
    unit: str  # "" for text values such as a bitstring

    @property
    def title(self) -> str:
        return f"{self.label} ({self.unit})" if self.unit else self.label


def kind_or_none(name: str) -> ExperimentKind | None:
    """The registered kind, or None for a run of a kind this version does not know."""
    try:
        return get_kind(name)
    except SpecError:
        return None


def _last_token(key: str) -> str:
    return key.rsplit("_", 1)[-1]


def unit_of(kind: ExperimentKind | None, key: str) -> str:
    """The unit of a result key: declared by the kind, else by its objective, else read from the name."""
    if kind is not None:
        if key in kind.units:
            return kind.units[key]
        for o in kind.objectives:
            if o.name == key:
                return o.unit
    if key in SHARED_QUANTITIES:
        return SHARED_QUANTITIES[key][1]
    if key in _NAMED_UNITS:
        return _NAMED_UNITS[key]
    if key.endswith("_s"):
        return "s"
    if key.startswith("n_"):
        return "count"
    if "fraction" in key:
        return "fraction"
    if key.startswith("kappa"):
        return "κ"
    if key.endswith("accuracy"):
        return "fraction correct"
    if key.endswith("_mass"):
        return "probability"
    if kind is not None and "loss" in key.split("_"):
        # another loss of the same kind (e.g. the global minimum next to the best loss) has the same unit
        for o in kind.objectives:
            if "loss" in o.name.split("_"):
                return o.unit
    return ""


def quantity(kind: ExperimentKind | None, key: str) -> Quantity:
    if kind is not None:
        for o in kind.objectives:
            if o.name == key:
                return Quantity(key, o.label, o.unit)
    if key in SHARED_QUANTITIES:
        label = SHARED_QUANTITIES[key][0]
    else:  # "sgd_time_s" reads "sgd time (s)": the unit suffix is not part of the words
        label = (key[:-2] if key.endswith("_s") else key).replace("_", " ")
    return Quantity(key, label, unit_of(kind, key))


def result_quantities(kind: str | ExperimentKind | None) -> list[Quantity]:
    """The kind's objectives, then its summary keys, then the shared keys: the rows of a result table."""
    k = kind_or_none(kind) if isinstance(kind, str) else kind
    keys: list[str] = []
    if k is not None:
        keys += [o.name for o in k.objectives] + list(k.summary_keys)
    keys += list(SHARED_QUANTITIES)
    return [quantity(k, key) for key in dict.fromkeys(keys)]


def result_titles(kind: str) -> dict[str, str]:
    """Result key -> label with unit: the kind's objectives, then its summary keys, then shared words."""
    return {q.key: q.title for q in result_quantities(kind)}


def provenance_word(text: Any) -> str:
    """"simulated", "computed" or "estimated" from a label ("computed (exhaustive enumeration)" too), else ""."""
    if not isinstance(text, str):
        return ""
    head = text.strip().split(" ", 1)[0].strip(" ,;:(").lower()
    return head if head in PROVENANCES else ""


def result_provenance(kind: ExperimentKind | None, result: Mapping[str, Any] | None, key: str) -> str:
    """Where one result number comes from: the run's own label, else the kind's objective of that name,
    else an objective measuring the same thing (``test_f1`` like ``val_f1``), else computed."""
    labels = (result or {}).get("labels")
    if isinstance(labels, Mapping):
        word = provenance_word(labels.get(key))
        if word:
            return word
    if kind is not None:
        for o in kind.objectives:
            if o.name == key and o.provenance:
                return o.provenance
        last = _last_token(key)
        if last != "s":  # "_s" is a unit, not a quantity: timings are not alike because of it
            for o in kind.objectives:
                if _last_token(o.name) == last and o.provenance:
                    return o.provenance
    return FALLBACK_PROVENANCE


def curve_provenance(kind: ExperimentKind | None, result: Mapping[str, Any] | None, metric: str) -> str:
    """Where a logged per-step metric comes from: the run's label for it, else the objective of that name,
    else what the kind declares for its curves."""
    labels = (result or {}).get("labels")
    if isinstance(labels, Mapping):
        word = provenance_word(labels.get(metric))
        if word:
            return word
    if kind is None:
        return FALLBACK_PROVENANCE
    for o in kind.objectives:
        if o.name == metric and o.provenance:
            return o.provenance
    return kind.curve_provenance


def _exact(rounded: float, value: float) -> bool:
    """Whether rounding lost nothing but float noise (0.1 + 0.2 is 0.3)."""
    return math.isclose(rounded, value, rel_tol=1e-12, abs_tol=0.0)


def format_number(value: float | int, digits: int = 4) -> str:
    """``digits`` significant digits; exponent form below 10⁻³ and from 10⁶; integers exact with
    thousands separators. Never "nan": a missing number is an empty string, a NaN says "undefined"."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    v = float(value)
    if math.isnan(v):
        return "undefined"
    if math.isinf(v):
        return "∞" if v > 0 else "−∞"
    if v == 0:
        return "0"
    mag = math.floor(math.log10(abs(v)))
    # Trailing zeros are dropped only where they carry nothing: 0.91 reads "0.91", but 0.9999999998
    # reads "1.000", not "1", which would claim an exact one.
    if mag < -3 or mag >= 6:
        mantissa, exponent = f"{v:.{digits - 1}e}".split("e")
        if _exact(float(f"{mantissa}e{exponent}"), v) and "." in mantissa:
            mantissa = mantissa.rstrip("0").rstrip(".")
        return f"{mantissa}e{exponent}"
    rounded = round(v, digits - 1 - mag)
    if abs(rounded) >= 10 ** (mag + 1):  # 0.99999 rounds up to 1.000: one decimal fewer
        mag += 1
    ndigits = digits - 1 - mag  # negative above 10^digits: 12 345.6 -> 12 350
    rounded = round(v, ndigits)
    text = f"{rounded:,.{max(0, ndigits)}f}"
    if _exact(rounded, v) and "." in text:
        text = text.rstrip("0").rstrip(".")
    return text


def format_value(value: Any, digits: int = 4) -> str:
    """Any result or spec value as one line of text: numbers by :func:`format_number`, None as blank."""
    if value is None:
        return ""
    if isinstance(value, (bool, int, float)):
        return format_number(value, digits)
    if isinstance(value, str):
        return value
    if isinstance(value, (list, tuple)) and all(isinstance(v, (int, float)) and not isinstance(v, bool)
                                                for v in value):
        return ", ".join(format_number(v, digits) for v in value)
    text = json.dumps(value, default=str, ensure_ascii=False)
    return text if len(text) <= 120 else text[:119] + "…"
