"""Tables. Queries live in one module per aggregate (`jobs.py`, `workers.py`, `logs.py`)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, cast

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    SmallInteger,
    String,
    Table,
    Text,
    UniqueConstraint,
    Uuid,
    text,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from jobyard.store.types import UTCDateTime

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

#: JSON on SQLite, JSONB on PostgreSQL (indexable, compact).
JSONType = JSON().with_variant(postgresql.JSONB(), "postgresql")
#: BIGINT autoincrement that SQLite accepts as its rowid alias.
BigId = BigInteger().with_variant(Integer(), "sqlite")


#: Rows the overlap check reads: a schedule's unfinished jobs, whatever its history's length.
SCHEDULE_ACTIVE = "schedule_id IS NOT NULL AND state IN ('queued', 'running', 'retrying')"


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class Job(Base):
    """One submission and its current state; the source of truth for delivery."""

    __tablename__ = "jobyard_jobs"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    type: Mapped[str] = mapped_column(String(200))
    pool: Mapped[str] = mapped_column(String(64))
    queue: Mapped[str] = mapped_column(String(200))
    args: Mapped[dict[str, Any]] = mapped_column(JSONType)
    priority: Mapped[int] = mapped_column(SmallInteger)
    state: Mapped[str] = mapped_column(String(16))
    attempt: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    max_attempts: Mapped[int] = mapped_column(Integer)
    timeout_s: Mapped[float] = mapped_column(Float)
    idempotency_key: Mapped[str | None] = mapped_column(String(200), unique=True)
    submitted_by: Mapped[str | None] = mapped_column(String(200))
    progress: Mapped[float | None] = mapped_column(Float)
    progress_message: Mapped[str | None] = mapped_column(Text)
    result: Mapped[Any | None] = mapped_column(JSONType)
    error: Mapped[str | None] = mapped_column(Text)
    error_type: Mapped[str | None] = mapped_column(String(200))
    traceback: Mapped[str | None] = mapped_column(Text)
    lease_owner: Mapped[str | None] = mapped_column(String(200))
    lease_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    #: Set once the current queued state's message reached the broker (transactional outbox).
    dispatched_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    run_after: Mapped[datetime | None] = mapped_column(UTCDateTime)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    #: The schedule that fired this job and the planned fire time (no foreign key: history
    #: outlives a deleted schedule). Unique together: a tick fires once, whatever races.
    schedule_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    scheduled_for: Mapped[datetime | None] = mapped_column(UTCDateTime)
    #: The job this one re-runs (`jobyard jobs rerun`); no foreign key, as for schedules.
    rerun_of: Mapped[uuid.UUID | None] = mapped_column(Uuid)

    __table_args__ = (
        Index(None, "state", "pool"),
        Index(None, "rerun_of"),
        Index(None, "type", "id"),
        Index(None, "pool", "id"),
        Index(None, "state", "id"),
        # Throughput history and job-type figures read recently finished jobs.
        Index(None, "finished_at"),
        Index(None, "schedule_id", "scheduled_for", unique=True),
        Index(
            "ix_jobyard_jobs_schedule_active",
            "schedule_id",
            postgresql_where=text(SCHEDULE_ACTIVE),
            sqlite_where=text(SCHEDULE_ACTIVE),
        ),
    )


class JobAttempt(Base):
    """How one attempt of a job went; written when the attempt ends."""

    __tablename__ = "jobyard_job_attempts"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    job_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("jobyard_jobs.id", ondelete="CASCADE")
    )
    attempt: Mapped[int] = mapped_column(Integer)
    outcome: Mapped[str] = mapped_column(String(16))
    worker: Mapped[str | None] = mapped_column(String(200))
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime] = mapped_column(UTCDateTime)
    error: Mapped[str | None] = mapped_column(Text)
    error_type: Mapped[str | None] = mapped_column(String(200))
    traceback: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (UniqueConstraint("job_id", "attempt"),)


class JobLog(Base):
    """A log line a job wrote through `ctx.log`."""

    __tablename__ = "jobyard_job_logs"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    job_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("jobyard_jobs.id", ondelete="CASCADE")
    )
    attempt: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    level: Mapped[str] = mapped_column(String(16))
    message: Mapped[str] = mapped_column(Text)

    __table_args__ = (Index(None, "job_id", "id"),)


class Worker(Base):
    """A worker process of a pool, kept alive by its heartbeat."""

    __tablename__ = "jobyard_workers"

    id: Mapped[str] = mapped_column(String(200), primary_key=True)
    pool: Mapped[str] = mapped_column(String(64))
    hostname: Mapped[str] = mapped_column(String(200))
    pid: Mapped[int] = mapped_column(Integer)
    concurrency: Mapped[int] = mapped_column(Integer)
    celery_pool: Mapped[str] = mapped_column(String(16))
    queue: Mapped[str] = mapped_column(String(200))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    heartbeat_at: Mapped[datetime] = mapped_column(UTCDateTime)
    stopped_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    #: Set while the worker's consumer receives nothing although it has a free slot and its
    #: queue holds messages (`execution.stall_watch`).
    stalled_since: Mapped[datetime | None] = mapped_column(UTCDateTime)
    #: A Kubernetes pod-per-job launcher: the nodes matching its pool's selector, with what
    #: they can allocate (`[{"name", "cpu", "memory", "gpu", "ready"}]`), for /capacity.
    nodes: Mapped[list[dict[str, Any]] | None] = mapped_column(JSONType)
    #: The host's visible GPUs at the last heartbeat: utilisation and memory (`execution.gpu`).
    gpus: Mapped[list[dict[str, Any]] | None] = mapped_column(JSONType)

    __table_args__ = (Index(None, "pool", "heartbeat_at"),)


class JobArtifact(Base):
    """A file a job wrote to artifact storage, with what a reader needs to trust it."""

    __tablename__ = "jobyard_artifacts"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    job_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("jobyard_jobs.id", ondelete="CASCADE")
    )
    attempt: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(500))
    url: Mapped[str] = mapped_column(Text)
    size: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    content_type: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (UniqueConstraint("job_id", "name"), Index(None, "created_at"))


class PoolSample(Base):
    """A pool's queue depth at one moment, sampled by the scheduler leader, so the dashboard
    can draw the past hours on a fresh load."""

    __tablename__ = "jobyard_pool_samples"

    pool: Mapped[str] = mapped_column(String(64), primary_key=True)
    sampled_at: Mapped[datetime] = mapped_column(UTCDateTime, primary_key=True)
    queued: Mapped[int] = mapped_column(Integer)
    running: Mapped[int] = mapped_column(Integer)

    __table_args__ = (Index(None, "sampled_at"),)


class Schedule(Base):
    """A periodic job: a job type with fixed args, a trigger and policies."""

    __tablename__ = "jobyard_schedules"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    type: Mapped[str] = mapped_column(String(200))
    args: Mapped[dict[str, Any]] = mapped_column(JSONType)
    priority: Mapped[int | None] = mapped_column(SmallInteger)
    cron: Mapped[str | None] = mapped_column(String(200))
    timezone: Mapped[str] = mapped_column(String(64))
    interval_s: Mapped[float | None] = mapped_column(Float)
    jitter_s: Mapped[float] = mapped_column(Float)
    overlap: Mapped[str] = mapped_column(String(16))
    catchup: Mapped[str] = mapped_column(String(16))
    paused: Mapped[bool] = mapped_column(Boolean)
    managed_by: Mapped[str] = mapped_column(String(16))
    description: Mapped[str | None] = mapped_column(Text)
    #: Interval schedules count their fire times from here.
    anchor_at: Mapped[datetime] = mapped_column(UTCDateTime)
    #: The next planned fire time, and when it is due (planned + jitter).
    next_fire_at: Mapped[datetime] = mapped_column(UTCDateTime)
    next_due_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_fire_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_job_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    fired_count: Mapped[int] = mapped_column(BigInteger, server_default=text("0"))
    skipped_count: Mapped[int] = mapped_column(BigInteger, server_default=text("0"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (Index(None, "paused", "next_due_at"),)


class Lease(Base):
    """A named lease with a fencing token (the scheduler's leader lease).

    `expires_at` is seconds since the epoch on the database's clock, so a process whose own
    clock jumps can neither keep a lease too long nor lose it early.
    """

    __tablename__ = "jobyard_leases"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    holder: Mapped[str | None] = mapped_column(String(200))
    token: Mapped[int] = mapped_column(BigInteger)
    expires_at: Mapped[float] = mapped_column(Float)
    acquired_at: Mapped[float] = mapped_column(Float)


class ApiKey(Base):
    """An API key: only its SHA-256 is stored; the key itself is shown once, at creation."""

    __tablename__ = "jobyard_api_keys"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    role: Mapped[str] = mapped_column(String(16))
    #: The key's first characters, to recognise it in listings.
    prefix: Mapped[str] = mapped_column(String(16))
    secret_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class WebSession(Base):
    """A dashboard login: the cookie holds a random token, the table its SHA-256."""

    __tablename__ = "jobyard_sessions"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    key_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("jobyard_api_keys.id", ondelete="CASCADE")
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)


class AuditEntry(Base):
    """Who did what: submissions, cancels, retries, schedule and key changes, logins."""

    __tablename__ = "jobyard_audit"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    actor: Mapped[str] = mapped_column(String(100))
    role: Mapped[str] = mapped_column(String(16))
    action: Mapped[str] = mapped_column(String(64))
    target: Mapped[str | None] = mapped_column(String(200))
    details: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    client: Mapped[str | None] = mapped_column(String(100))

    __table_args__ = (Index(None, "at"),)


jobs_table = cast(Table, Job.__table__)
attempts_table = cast(Table, JobAttempt.__table__)
logs_table = cast(Table, JobLog.__table__)
workers_table = cast(Table, Worker.__table__)
pool_samples_table = cast(Table, PoolSample.__table__)
artifacts_table = cast(Table, JobArtifact.__table__)
schedules_table = cast(Table, Schedule.__table__)
leases_table = cast(Table, Lease.__table__)
api_keys_table = cast(Table, ApiKey.__table__)
sessions_table = cast(Table, WebSession.__table__)
audit_table = cast(Table, AuditEntry.__table__)
