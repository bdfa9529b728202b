"""Refuse runs whose simulation would not fit in memory, before they are queued.

Each spec may estimate the peak memory of its simulation (``Spec.memory_estimate``: state vectors,
density matrices, their working copies for gradients, the inputs). The estimate is compared with
the memory a worker may use: ``QMLAPP_MEMORY_LIMIT_GB`` if set, else 75 % of this machine's memory
(or of the container's cgroup limit, whichever is smaller). A run over the limit is refused with a
SpecError naming the field that drives the size, so the form, the CLI and sweeps all report it
like any other invalid value and nothing is stored. Estimates are upper bounds within a small
factor; they are labelled estimated.

A worker also checks the sum: ``memory_fits`` gives ``Storage.claim_next_run`` a ``fits`` test so
that a queued run is not claimed while its estimate plus those of the runs already running would
pass the limit (``fits_with_running``).
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from qmlapp.specs import Spec, SpecError

if TYPE_CHECKING:
    from db import RunRecord

GIB = 1024**3
DEFAULT_FRACTION = 0.75


@dataclass(frozen=True)
class MemoryEstimate:
    field: str  # the spec field that drives the size (named in the refusal)
    bytes: int
    what: str  # e.g. "batch 32 × 2^16 amplitudes (complex64) × 4 working copies"


def _cgroup_limit() -> int | None:
    for path in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            raw = Path(path).read_text().strip()
        except OSError:
            continue
        if raw.isdigit() and int(raw) < 1 << 60:  # "max" or a huge number mean no limit
            return int(raw)
    return None


@functools.cache  # read /proc and /sys once per process, not per validated spec
def physical_memory() -> int:
    total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    limit = _cgroup_limit()
    return min(total, limit) if limit else total


def memory_limit_bytes(env: Mapping[str, str] | None = None) -> int:
    env = os.environ if env is None else env
    raw = env.get("QMLAPP_MEMORY_LIMIT_GB", "")
    if raw:
        try:
            value = float(raw)
        except ValueError:
            raise SpecError("QMLAPP_MEMORY_LIMIT_GB", f"must be a number of GiB, got {raw!r}") from None
        if not value > 0:
            raise SpecError("QMLAPP_MEMORY_LIMIT_GB", f"must be > 0, got {raw!r}")
        return int(value * GIB)
    return int(physical_memory() * DEFAULT_FRACTION)


def check_memory(spec: Spec, limit: int | None = None) -> MemoryEstimate | None:
    """Raise SpecError when the spec's estimated peak memory exceeds the limit; return the estimate."""
    estimate = spec.memory_estimate()
    if estimate is None:
        return None
    limit = memory_limit_bytes() if limit is None else limit
    if estimate.bytes > limit:
        raise SpecError(estimate.field, f"this run needs about {estimate.bytes / GIB:,.1f} GiB of memory (estimated: "
                                        f"{estimate.what}), over the {limit / GIB:,.1f} GiB a worker may use "
                                        "(QMLAPP_MEMORY_LIMIT_GB); make it smaller")
    return estimate


def estimated_bytes(spec: Spec) -> int:
    """The spec's estimated peak memory in bytes; 0 when it has no estimate (always small)."""
    estimate = spec.memory_estimate()
    return 0 if estimate is None else int(estimate.bytes)


def fits_with_running(candidate_spec: Spec, running_specs: Iterable[Spec], limit: int | None = None) -> bool:
    """Whether the candidate's estimated memory plus that of the running specs stays within ``limit``
    bytes (default: ``memory_limit_bytes()``)."""
    limit = memory_limit_bytes() if limit is None else limit
    return estimated_bytes(candidate_spec) + sum(estimated_bytes(s) for s in running_specs) <= limit


ClaimFits = Callable[["RunRecord", list["RunRecord"]], bool]


def memory_fits(limit: int | None = None, *, running_filter: Callable[[RunRecord], bool] | None = None) -> ClaimFits:
    """A ``fits(candidate, running)`` test for ``Storage.claim_next_run``: :func:`fits_with_running` on
    the runs' specs. ``limit`` defaults to ``memory_limit_bytes()`` (read once, here). Every running run
    counts unless ``running_filter`` keeps only some (say, those of workers on this machine).

    A run whose spec no longer parses counts as small: its worker fails it with the spec's error.
    """
    from qmlapp.registry import parse_spec  # the registry imports the experiments, which import this module

    limit = memory_limit_bytes() if limit is None else limit

    def spec_bytes(run: RunRecord) -> int:
        try:
            return estimated_bytes(parse_spec(run.kind, run.spec))
        except SpecError:
            return 0

    def fits(candidate: RunRecord, running: list[RunRecord]) -> bool:
        counted = [r for r in running if running_filter is None or running_filter(r)]
        return spec_bytes(candidate) + sum(spec_bytes(r) for r in counted) <= limit

    return fits
