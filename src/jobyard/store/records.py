"""Plain read models returned by the store, independent of SQLAlchemy rows."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from jobyard.domain.states import JobState


@dataclass(frozen=True, slots=True)
class JobRecord:
    """A job as stored."""

    id: uuid.UUID
    type: str
    pool: str
    queue: str
    args: dict[str, Any]
    priority: int
    state: JobState
    attempt: int
    max_attempts: int
    timeout_s: float
    idempotency_key: str | None
    submitted_by: str | None
    progress: float | None
    progress_message: str | None
    result: Any
    error: str | None
    error_type: str | None
    traceback: str | None
    lease_owner: str | None
    lease_expires_at: datetime | None
    created_at: datetime
    updated_at: datetime
    dispatched_at: datetime | None
    run_after: datetime | None
    started_at: datetime | None
    finished_at: datetime | None
    schedule_id: uuid.UUID | None
    scheduled_for: datetime | None
    rerun_of: uuid.UUID | None

    @classmethod
    def from_new_row(cls, row: Mapping[str, Any]) -> JobRecord:
        """Build from the values of a row about to be inserted (columns left out are None)."""
        values: dict[str, Any] = dict.fromkeys(cls.__slots__)
        values.update(row)
        values["state"] = JobState(row["state"])
        return cls(**values)

    @classmethod
    def from_row(cls, row: Mapping[Any, Any]) -> JobRecord:
        """Build from a full `jobyard_jobs` row."""
        values = {name: row[name] for name in cls.__slots__}
        values["state"] = JobState(values["state"])
        return cls(**values)


@dataclass(frozen=True, slots=True)
class AttemptRecord:
    """One finished attempt."""

    attempt: int
    outcome: str
    worker: str | None
    started_at: datetime | None
    finished_at: datetime
    error: str | None
    error_type: str | None
    traceback: str | None


@dataclass(frozen=True, slots=True)
class LogRecord:
    """One stored log line."""

    id: int
    attempt: int
    created_at: datetime
    level: str
    message: str


@dataclass(frozen=True, slots=True)
class WorkerRecord:
    """A worker process and its last heartbeat."""

    id: str
    pool: str
    hostname: str
    pid: int
    concurrency: int
    celery_pool: str
    queue: str
    started_at: datetime
    heartbeat_at: datetime
    stopped_at: datetime | None
    stalled_since: datetime | None = None
    nodes: list[dict[str, Any]] | None = None
    #: The host's visible GPUs at the last heartbeat (`execution.gpu`); None without any.
    gpus: list[dict[str, Any]] | None = None


@dataclass(frozen=True, slots=True)
class PoolStats:
    """Live numbers of one pool."""

    pool: str
    queued: int
    running: int
    retrying: int
    oldest_queued_at: datetime | None
