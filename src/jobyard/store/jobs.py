"""Queries on jobs and their attempts. `transition()` is the only writer of `state`."""

from __future__ import annotations

import functools
import json
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    Connection,
    Executable,
    String,
    Text,
    bindparam,
    cast,
    func,
    insert,
    select,
    update,
)

from jobyard.domain.states import JobState, is_allowed
from jobyard.errors import JobNotFound
from jobyard.store.db import Database
from jobyard.store.models import attempts_table, jobs_table
from jobyard.store.records import AttemptRecord, JobRecord
from jobyard.store.types import UTCDateTime

J = jobs_table.c


@dataclass(frozen=True, slots=True)
class Dispatch:
    """What the broker needs to deliver one queued job (`type` names it in Celery's tools)."""

    id: uuid.UUID
    queue: str
    priority: int
    timeout_s: float
    type: str

    @classmethod
    def of(cls, job: JobRecord) -> Dispatch:
        return cls(job.id, job.queue, job.priority, job.timeout_s, job.type)


@dataclass(frozen=True, slots=True)
class AttemptEnd:
    """How the attempt a transition ends went; stored in `jobyard_job_attempts`."""

    outcome: str
    error: str | None = None
    error_type: str | None = None
    traceback: str | None = None


def transition(
    conn: Connection,
    job_id: uuid.UUID,
    *,
    source: JobState,
    target: JobState,
    now: datetime,
    attempt: int | None = None,
    values: Mapping[str, Any] | None = None,
    ends: AttemptEnd | None = None,
    next_attempt: bool = False,
) -> JobRecord | None:
    """Move one job from `source` to `target` if it is still there (compare-and-set).

    Args:
        conn: a write transaction, or an autocommit connection (`Database.single`): the
            change, with its attempt record, is one statement on PostgreSQL.
        job_id: the job.
        source: the state the caller saw; the update applies only if it is unchanged.
        target: the new state; (source, target) must be in `domain.states.TRANSITIONS`.
        now: the time of the change.
        attempt: when given, the update also requires this attempt number, so a stale
            attempt (a worker that lost its lease) cannot finish a job taken over since.
        values: other columns to set in the same statement.
        ends: record the job's current attempt as ended this way, atomically with the change.
        next_attempt: count a new attempt (`attempt = attempt + 1`), for starting a run.

    Returns:
        The updated job, or None when the guard rejected the change.

    Raises:
        ValueError: for a (source, target) pair the state table forbids; a programming error.
    """
    if not is_allowed(source, target):
        raise ValueError(f"transition {source.value} -> {target.value} is not allowed")
    values = dict(values or {})
    recording = ends is not None and conn.dialect.name == "postgresql"
    statement = _transition_statement(
        tuple(sorted(values)), attempt is not None, next_attempt, recording
    )
    params: dict[str, Any] = {
        "job_id": job_id,
        "source": source.value,
        "target": target.value,
        "now": now,
        "guard_attempt": attempt,
        **{f"v_{key}": value for key, value in values.items()},
    }
    if recording:
        assert ends is not None
        params.update(_attempt_params(ends, now))
    row = _execute_returning_one(conn, statement, params)
    if row is None:
        return None
    record = JobRecord.from_row(row)
    if ends is not None and not recording:
        record_attempt(
            conn,
            record,
            outcome=ends.outcome,
            finished_at=now,
            error=ends.error,
            error_type=ends.error_type,
            traceback=ends.traceback,
        )
    return record


@functools.lru_cache(maxsize=256)
def _transition_statement(
    keys: tuple[str, ...], guard_attempt: bool, next_attempt: bool, recording: bool
) -> Executable:
    """The guarded UPDATE for one shape of transition, built once and reused.

    Building SQLAlchemy statements per call cost more CPU than the database round trip.
    """
    guard = [J.id == bindparam("job_id"), J.state == bindparam("source")]
    if guard_attempt:
        guard.append(J.attempt == bindparam("guard_attempt"))
    assignments: dict[str, Any] = {
        key: bindparam(f"v_{key}", type_=jobs_table.c[key].type) for key in keys
    }
    if next_attempt:
        assignments["attempt"] = J.attempt + 1
    statement = (
        update(jobs_table)
        .where(*guard)
        .values(
            state=bindparam("target"),
            updated_at=bindparam("now", type_=UTCDateTime()),
            **assignments,
        )
        .returning(*jobs_table.c)
    )
    if not recording:
        return statement
    moved = statement.cte("moved")
    A = attempts_table.c
    recorded = (
        insert(attempts_table)
        .from_select(
            [
                A.job_id,
                A.attempt,
                A.outcome,
                A.worker,
                A.started_at,
                A.finished_at,
                A.error,
                A.error_type,
                A.traceback,
            ],
            select(
                moved.c.id,
                moved.c.attempt,
                bindparam("a_outcome", type_=String()),
                moved.c.lease_owner,
                moved.c.started_at,
                bindparam("a_finished_at", type_=UTCDateTime()),
                bindparam("a_error", type_=Text()),
                bindparam("a_error_type", type_=String()),
                bindparam("a_traceback", type_=Text()),
            ),
        )
        .cte("recorded")
    )
    return select(moved).add_cte(recorded)


def _execute_returning_one(
    conn: Connection, statement: Executable, params: dict[str, Any]
) -> Mapping[Any, Any] | None:
    """Run a cached transition statement and return its one row, if any.

    On PostgreSQL the statement is compiled once and sent straight through psycopg (as a
    prepared statement): SQLAlchemy's per-execute machinery cost workers more CPU than the
    database did. Everywhere else SQLAlchemy executes it.
    """
    if conn.dialect.name != "postgresql":
        return conn.execute(statement, params).mappings().first()
    from psycopg.rows import dict_row  # here: SQLite users never load the PostgreSQL driver

    sql, defaults = _postgres_sql(statement, conn.dialect)
    params = {**defaults, **params}
    for key in _JSON_PARAMS.intersection(params):
        params[key] = json.dumps(params[key], separators=(",", ":"))
    raw = conn.connection.driver_connection
    assert raw is not None
    with raw.cursor(row_factory=dict_row) as cursor:
        cursor.execute(sql, params, prepare=True)
        row = cursor.fetchone()
    if row is None:
        return None
    return {k: v.astimezone(UTC) if isinstance(v, datetime) else v for k, v in row.items()}


_JSON_PARAMS = {"v_args", "v_result"}


@functools.lru_cache(maxsize=256)
def _postgres_sql(statement: Executable, dialect: Any) -> tuple[str, dict[str, Any]]:
    """SQL text and the literal parameters SQLAlchemy bound itself (`attempt + 1`)."""
    compiled = statement.compile(dialect=dialect)  # type: ignore[attr-defined]
    return compiled.string, dict(compiled.params)


def _attempt_params(ends: AttemptEnd, now: datetime) -> dict[str, Any]:
    return {
        "a_outcome": ends.outcome,
        "a_finished_at": now,
        "a_error": ends.error,
        "a_error_type": ends.error_type,
        "a_traceback": ends.traceback,
    }


def by_idempotency_keys(conn: Connection, keys: Iterable[str]) -> dict[str, JobRecord]:
    """Existing jobs holding any of `keys`."""
    wanted = list(set(keys))
    found: dict[str, JobRecord] = {}
    for start in range(0, len(wanted), 500):
        part = wanted[start : start + 500]
        rows = conn.execute(select(jobs_table).where(J.idempotency_key.in_(part))).mappings()
        for row in rows:
            record = JobRecord.from_row(row)
            found[str(record.idempotency_key)] = record
    return found


def fetch(conn: Connection, job_id: uuid.UUID) -> JobRecord | None:
    """The job, or None."""
    row = conn.execute(select(jobs_table).where(J.id == job_id)).mappings().first()
    return JobRecord.from_row(row) if row is not None else None


def get(db: Database, job_id: uuid.UUID) -> JobRecord:
    """The job.

    Raises:
        JobNotFound: when no job has this id.
    """
    with db.read() as conn:
        record = fetch(conn, job_id)
    if record is None:
        raise JobNotFound(f"no job with id {job_id}", id=str(job_id))
    return record


def attempts(conn: Connection, job_id: uuid.UUID) -> list[AttemptRecord]:
    """Finished attempts of a job, oldest first."""
    rows = conn.execute(
        select(attempts_table)
        .where(attempts_table.c.job_id == job_id)
        .order_by(attempts_table.c.attempt)
    ).mappings()
    return [AttemptRecord(**{k: row[k] for k in AttemptRecord.__slots__}) for row in rows]


def record_attempt(
    conn: Connection,
    job: JobRecord,
    *,
    outcome: str,
    finished_at: datetime,
    error: str | None = None,
    error_type: str | None = None,
    traceback: str | None = None,
) -> None:
    """Store how `job.attempt` ended (same transaction as the state change)."""
    conn.execute(
        insert(attempts_table).values(
            job_id=job.id,
            attempt=job.attempt,
            outcome=outcome,
            worker=job.lease_owner,
            started_at=job.started_at,
            finished_at=finished_at,
            error=error,
            error_type=error_type,
            traceback=traceback,
        )
    )


def page(
    conn: Connection,
    *,
    state: JobState | None = None,
    type_: str | None = None,
    pool: str | None = None,
    schedule_id: uuid.UUID | None = None,
    text: str | None = None,
    oldest_first: bool = False,
    before: uuid.UUID | None = None,
    limit: int = 50,
) -> list[JobRecord]:
    """Newest jobs first (ids are time-ordered), or oldest first; past the cursor id.

    `text` matches case-insensitively anywhere in the args' JSON text.
    """
    order = J.id.asc() if oldest_first else J.id.desc()
    query = select(jobs_table).order_by(order).limit(limit)
    if text:
        query = query.where(func.lower(cast(J.args, Text)).contains(text.lower(), autoescape=True))
    if schedule_id is not None:
        query = query.where(J.schedule_id == schedule_id)
    if state is not None:
        query = query.where(J.state == state.value)
    if type_ is not None:
        query = query.where(J.type == type_)
    if pool is not None:
        query = query.where(J.pool == pool)
    if before is not None:
        query = query.where(J.id > before if oldest_first else J.id < before)
    return [JobRecord.from_row(row) for row in conn.execute(query).mappings()]


def expired_leases(conn: Connection, *, now: datetime, limit: int) -> list[JobRecord]:
    """Running jobs whose worker stopped renewing their lease (worker died)."""
    rows = conn.execute(
        select(jobs_table)
        .where(J.state == JobState.RUNNING.value, J.lease_expires_at < now)
        .limit(limit)
    ).mappings()
    return [JobRecord.from_row(row) for row in rows]


def running(conn: Connection, *, limit: int) -> list[JobRecord]:
    """Running jobs (the reaper checks each against its timeout)."""
    rows = conn.execute(
        select(jobs_table).where(J.state == JobState.RUNNING.value).limit(limit)
    ).mappings()
    return [JobRecord.from_row(row) for row in rows]


def renew_leases(
    conn: Connection, leases: Mapping[uuid.UUID, int], owner: str, until: datetime
) -> set[uuid.UUID]:
    """Extend the leases this process holds; returns the jobs it still owns and runs."""
    kept: set[uuid.UUID] = set()
    for job_id, attempt in leases.items():
        row = conn.execute(
            update(jobs_table)
            .where(
                J.id == job_id,
                J.state == JobState.RUNNING.value,
                J.attempt == attempt,
                J.lease_owner == owner,
            )
            .values(lease_expires_at=until)
            .returning(J.id)
        ).first()
        if row is not None:
            kept.add(job_id)
    return kept


def set_progress(
    conn: Connection,
    job_id: uuid.UUID,
    attempt: int,
    fraction: float,
    message: str | None,
    now: datetime,
) -> bool:
    """Store progress of the running attempt; False if the job is no longer running it."""
    result = conn.execute(
        update(jobs_table)
        .where(J.id == job_id, J.state == JobState.RUNNING.value, J.attempt == attempt)
        .values(progress=fraction, progress_message=message, updated_at=now)
    )
    return bool(result.rowcount)
