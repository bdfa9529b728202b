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
    classify_error,
    default_database_url,
    explain_error,
    is_transient,
    redact_url,
    retrying,
)

__all__ = [
    "CANCELLED", "FAILED", "FINISHED", "QUEUED", "RUNNING", "STATUSES", "SUCCEEDED",
    "ArtifactRecord", "Heartbeat", "MetricPoint", "Recovery", "RunRecord", "Storage", "StorageError", "SweepRecord",
    "WorkerRecord", "classify_error", "default_database_url", "explain_error", "is_transient", "redact_url", "retrying",
]
