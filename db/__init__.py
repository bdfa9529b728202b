"""Database layer: SQLAlchemy models, Alembic migrations and the run storage API."""

from db.storage import (
    CANCELLED,
    FAILED,
    FINISHED,
    QUEUED,
    RUNNING,
    STATUSES,
    SUCCEEDED,
    ArtifactRecord,
    Heartbeat,
    MetricPoint,
    Recovery,
    RunRecord,
    Storage,
    StorageError,
    SweepRecord,
    WorkerRecord,
    default_database_url,
)

__all__ = [
    "CANCELLED", "FAILED", "FINISHED", "QUEUED", "RUNNING", "STATUSES", "SUCCEEDED",
    "ArtifactRecord", "Heartbeat", "MetricPoint", "Recovery", "RunRecord", "Storage", "StorageError", "SweepRecord",
    "WorkerRecord", "default_database_url",
]
