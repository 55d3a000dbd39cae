"""Request and response bodies, separate from the database models."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any
from urllib.parse import quote

from pydantic import BaseModel, ConfigDict, Field, field_validator

from jobyard.domain.limits import MAX_PRIORITY, MIN_PRIORITY
from jobyard.domain.schedules import Catchup, ManagedBy, Overlap
from jobyard.domain.states import JobState
from jobyard.domain.storable import storable_args, storable_text
from jobyard.storage.records import ArtifactRecord
from jobyard.store.records import AttemptRecord, JobRecord, LogRecord, WorkerRecord
from jobyard.store.schedules import ScheduleRecord


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class JobCreate(_Body):
    """A job to submit."""

    type: str = Field(min_length=1, max_length=200, description="Registered job type name.")
    args: dict[str, Any] = Field(default_factory=dict, description="Arguments (≤ 1 MiB JSON).")
    priority: int | None = Field(
        None, ge=MIN_PRIORITY, le=MAX_PRIORITY, description="0 (low) to 9 (high)."
    )
    idempotency_key: str | None = Field(
        None, min_length=1, max_length=200, description="Same key, same job: no duplicate."
    )


class JobBatchCreate(_Body):
    """Up to 10,000 jobs submitted in one transaction."""

    jobs: list[JobCreate]


class AttemptPublic(BaseModel):
    """One finished attempt."""

    attempt: int
    outcome: str
    worker: str | None
    started_at: datetime | None
    finished_at: datetime
    error: str | None
    error_type: str | None
    traceback: str | None

    @classmethod
    def of(cls, record: AttemptRecord) -> AttemptPublic:
        return cls(**{name: getattr(record, name) for name in AttemptRecord.__slots__})


class ArtifactPublic(BaseModel):
    """A file the job wrote to artifact storage."""

    name: str
    url: str = Field(description="Where it is stored (s3://…, file://…).")
    size: int
    sha256: str
    content_type: str
    attempt: int
    created_at: datetime
    download: str = Field(description="Path of the web app's download, with the caller's role.")

    @classmethod
    def of(cls, record: ArtifactRecord) -> ArtifactPublic:
        download = f"/api/v1/jobs/{record.job_id}/artifacts/{quote(record.name)}"
        return cls(
            name=record.name,
            url=record.url,
            size=record.size,
            sha256=record.sha256,
            content_type=record.content_type,
            attempt=record.attempt,
            created_at=record.created_at,
            download=download,
        )


class JobPublic(BaseModel):
    """A job as the API shows it."""

    id: uuid.UUID
    type: str
    pool: str
    queue: str
    state: JobState
    args: dict[str, Any]
    priority: int
    attempt: int
    max_attempts: int
    timeout_s: float
    progress: float | None
    progress_message: str | None
    result: Any = None
    error: str | None
    error_type: str | None
    traceback: str | None
    idempotency_key: str | None
    submitted_by: str | None
    created_at: datetime
    updated_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    run_after: datetime | None
    schedule_id: uuid.UUID | None = Field(None, description="The schedule that fired it.")
    scheduled_for: datetime | None = Field(None, description="Its planned fire time.")
    rerun_of: uuid.UUID | None = Field(None, description="The job this one re-runs.")
    attempts: list[AttemptPublic] | None = None
    artifacts: list[ArtifactPublic] | None = Field(
        None, description="Files the job wrote (on the single-job answer)."
    )

    @classmethod
    def of(
        cls,
        record: JobRecord,
        attempts: list[AttemptRecord] | None = None,
        artifacts: list[ArtifactRecord] | None = None,
    ) -> JobPublic:
        fields = {name: getattr(record, name) for name in _RECORD_FIELDS}
        listed = [AttemptPublic.of(a) for a in attempts] if attempts is not None else None
        files = [ArtifactPublic.of(a) for a in artifacts] if artifacts is not None else None
        return cls(**fields, attempts=listed, artifacts=files)

    @classmethod
    def trusted(cls, record: JobRecord) -> JobPublic:
        """From a record the store just wrote (already valid): no re-validation, which for a
        10,000-job batch response cost more than storing the jobs."""
        return cls.model_construct(**{name: getattr(record, name) for name in _RECORD_FIELDS})


class JobsPage(BaseModel):
    """A page of jobs, newest first; pass `next_cursor` as `cursor` for the next page."""

    items: list[JobPublic]
    next_cursor: uuid.UUID | None


_RECORD_FIELDS = tuple(
    name for name in JobPublic.model_fields if name not in ("attempts", "artifacts")
)


class BatchCreated(BaseModel):
    """The stored jobs of a batch, in request order."""

    created: int
    jobs: list[JobPublic]


class LogPublic(BaseModel):
    """A log line of a job."""

    id: int
    attempt: int
    created_at: datetime
    level: str
    message: str

    @classmethod
    def of(cls, record: LogRecord) -> LogPublic:
        return cls(**{name: getattr(record, name) for name in LogRecord.__slots__})


class LogsPage(BaseModel):
    """Log lines in write order; pass `next_cursor` as `after` to follow."""

    items: list[LogPublic]
    next_cursor: int


class PoolPublic(BaseModel):
    """A pool's configuration and live numbers."""

    name: str
    queue: str
    mode: str
    concurrency: int
    celery_pool: str
    queued: int
    running: int
    retrying: int
    workers_alive: int
    #: Live workers whose consumer stalled (free slots, messages waiting, nothing received).
    workers_stalled: int
    oldest_queued_age_s: float | None
    job_types: list[str]
    #: pod-per-job pools: the most jobs running at once (their launcher's slots).
    max_parallel: int | None = None


class NodePublic(BaseModel):
    """A Kubernetes node a pod-per-job pool's jobs may run on (it matches the pool's
    `node_selector`), with what it can allocate."""

    name: str
    cpu: str | None
    memory: str | None
    gpu: int
    ready: bool = Field(description="Ready and schedulable.")


class CapacityPublic(BaseModel):
    """How much of a pool is in use: slots of its live workers against its running jobs."""

    pool: str
    mode: str
    workers: int = Field(description="Live workers (fresh heartbeat).")
    slots: int = Field(description="Jobs the live workers can run at once (their concurrency).")
    used: int = Field(description="Jobs running now.")
    free: int = Field(description="Slots not in use; 0 when more jobs run than slots are known.")
    queued: int
    nodes: list[NodePublic] | None = Field(
        None,
        description="Kubernetes pod-per-job pools: the nodes matching the pool's node selector, "
        "as its launcher last saw them (every 30 s); null for other pools.",
    )


class WorkerPublic(BaseModel):
    """A worker process."""

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
    #: When its consumer stalled; null while it consumes.
    stalled_since: datetime | None
    alive: bool
    gpus: list[dict[str, Any]] | None = Field(
        None,
        description="Its host's visible GPUs at the last heartbeat: index, uuid, name, "
        "utilization (0 to 1), memory_used_bytes, memory_total_bytes; null without any.",
    )

    @classmethod
    def of(cls, record: WorkerRecord, *, alive: bool) -> WorkerPublic:
        return cls(**{n: getattr(record, n) for n in WorkerRecord.__slots__}, alive=alive)


class JobTypePublic(BaseModel):
    """A registered job type and its argument schema."""

    name: str
    pool: str
    retries: int
    timeout_s: float
    priority: int
    args_schema: dict[str, Any]


class JobTypeStatsPublic(BaseModel):
    """A job type's finished jobs over the window: how many, how many failed, how long."""

    type: str
    runs: int = Field(description="Jobs that succeeded or failed in the window.")
    failed: int
    failure_rate: float = Field(description="failed / runs, from 0 to 1.")
    p50_s: float | None = Field(description="Median run time of the last attempt, seconds.")
    p95_s: float | None
    last_failure_at: datetime | None
    last_error: str | None


class HistoryPublic(BaseModel):
    """The dashboard's charts over a window, from stored data: jobs finished per bucket (by
    final state) and the most jobs queued per pool in each bucket (None: no sample then)."""

    window: str
    bucket_s: int = Field(description="Bucket width; buckets start at multiples of it.")
    times: list[int] = Field(description="Bucket starts, Unix seconds, oldest first.")
    succeeded: list[int]
    failed: list[int]
    cancelled: list[int]
    queued: dict[str, list[int | None]] = Field(description="Per pool, one value per bucket.")


class Problem(BaseModel):
    """Every error response: a stable `code` and a message that says what to fix."""

    code: str
    message: str


class SchedulePatch(_Body):
    """A partial edit of a schedule; what is left out stays as it is."""

    name: str | None = None
    type: str | None = None
    args: dict[str, Any] | None = None
    priority: int | None = None
    cron: str | None = None
    timezone: str | None = None
    interval_s: float | str | None = None
    jitter_s: float | str | None = None
    overlap: Overlap | None = None
    catchup: Catchup | None = None
    paused: bool | None = None
    description: str | None = None

    @field_validator("args")
    @classmethod
    def _storable_args(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        return None if value is None else storable_args(value)

    @field_validator("name", "type", "cron", "timezone", "description", mode="before")
    @classmethod
    def _storable_text(cls, value: Any) -> Any:
        return storable_text(value)


class SchedulePublic(BaseModel):
    """A schedule as the API shows it."""

    id: uuid.UUID
    name: str
    type: str
    args: dict[str, Any]
    priority: int | None
    cron: str | None
    timezone: str
    interval_s: float | None
    jitter_s: float
    overlap: Overlap
    catchup: Catchup
    paused: bool
    managed_by: ManagedBy
    description: str | None
    next_fire_at: datetime | None = Field(description="Next planned fire time; null if paused.")
    last_fire_at: datetime | None
    last_job_id: uuid.UUID | None
    fired_count: int
    skipped_count: int
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, record: ScheduleRecord) -> SchedulePublic:
        fields = {name: getattr(record, name) for name in cls.model_fields}
        if record.paused:
            fields["next_fire_at"] = None
        return cls(**fields)


class SchedulesPage(BaseModel):
    """Every schedule, by name."""

    items: list[SchedulePublic]


class UpcomingFires(BaseModel):
    """The next fire times of a schedule, in UTC and in its timezone."""

    name: str
    timezone: str
    fires: list[datetime]
    local: list[str]
