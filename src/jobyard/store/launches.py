"""Queries of pod-per-job launchers: the next jobs to start, adoption, who still runs."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import datetime

from sqlalchemy import Connection, select, update

from jobyard.domain.states import JobState
from jobyard.store.models import jobs_table
from jobyard.store.records import JobRecord

J = jobs_table.c


def next_queued(conn: Connection, pool: str, *, limit: int) -> list[uuid.UUID]:
    """Queued jobs of the pool, highest priority first, then oldest (ids are time-ordered)."""
    rows = conn.execute(
        select(J.id)
        .where(J.state == JobState.QUEUED.value, J.pool == pool)
        .order_by(J.priority.desc(), J.id)
        .limit(limit)
    )
    return [row.id for row in rows]


def running_in_pool(conn: Connection, pool: str) -> list[JobRecord]:
    """Every running job of the pool (what a starting launcher must account for)."""
    rows = conn.execute(
        select(jobs_table).where(J.state == JobState.RUNNING.value, J.pool == pool)
    ).mappings()
    return [JobRecord.from_row(row) for row in rows]


def adopt(
    conn: Connection, job_id: uuid.UUID, attempt: int, owner: str, until: datetime
) -> JobRecord | None:
    """Make `owner` the lease holder of a running attempt; None if the job moved on."""
    row = (
        conn.execute(
            update(jobs_table)
            .where(J.id == job_id, J.state == JobState.RUNNING.value, J.attempt == attempt)
            .values(lease_owner=owner, lease_expires_at=until)
            .returning(jobs_table)
        )
        .mappings()
        .first()
    )
    return JobRecord.from_row(row) if row is not None else None


def still_running(conn: Connection, attempts: Mapping[uuid.UUID, int]) -> set[uuid.UUID]:
    """Which of these attempts are still the running attempt of their job."""
    if not attempts:
        return set()
    rows = conn.execute(
        select(J.id, J.attempt).where(J.id.in_(list(attempts)), J.state == JobState.RUNNING.value)
    )
    return {row.id for row in rows if attempts.get(row.id) == row.attempt}
