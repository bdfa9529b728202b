"""Worker ids that say where a run executes; shared by the services, the worker and the Dask dispatcher."""

from __future__ import annotations

DASK_PREFIX = "dask-"  # worker ids of runs executed on a Dask cluster


def is_dask_worker_id(worker_id: str) -> bool:
    """True for the worker records of runs executing on a Dask cluster (they never take local runs)."""
    return worker_id.startswith(DASK_PREFIX)
