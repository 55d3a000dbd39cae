"""Outbox queries: which queued jobs reached the broker, which did not, which came due.

The transactional outbox (`dispatch.outbox`) reads and marks these; `transition()` in
`store.jobs` stays the only writer of a job's state.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import Connection, select, text, update

from jobyard.domain.states import JobState
from jobyard.store.jobs import Dispatch
from jobyard.store.models import jobs_table

J = jobs_table.c


def mark_dispatched(conn: Connection, ids: Sequence[uuid.UUID], now: datetime) -> None:
    """Note that the current queued state of these jobs reached the broker."""
    if conn.dialect.name == "postgresql":  # one array parameter, not one per id
        conn.execute(_MARK_DISPATCHED, {"ids": list(ids), "now": now})
        return
    for start in range(0, len(ids), 500):
        conn.execute(
            update(jobs_table)
            .where(
                J.id.in_(ids[start : start + 500]),
                J.state == JobState.QUEUED.value,
                J.dispatched_at.is_(None),
            )
            .values(dispatched_at=now)
        )


_MARK_DISPATCHED = text(
    "UPDATE jobyard_jobs SET dispatched_at = :now "
    "WHERE id = ANY(CAST(:ids AS uuid[])) AND state = 'queued' AND dispatched_at IS NULL"
)


def mark_undispatched(conn: Connection, ids: Sequence[uuid.UUID]) -> None:
    """Note that these queued jobs, stored as dispatched, never reached the broker."""
    for start in range(0, len(ids), 500):
        conn.execute(
            update(jobs_table)
            .where(J.id.in_(ids[start : start + 500]), J.state == JobState.QUEUED.value)
            .values(dispatched_at=None)
        )


def undispatched(conn: Connection, *, updated_before: datetime, limit: int) -> list[Dispatch]:
    """Queued jobs whose message never reached the broker (the outbox backlog)."""
    rows = conn.execute(
        select(J.id, J.queue, J.priority, J.timeout_s, J.type)
        .where(
            J.state == JobState.QUEUED.value,
            J.dispatched_at.is_(None),
            J.updated_at < updated_before,
        )
        .order_by(J.id)
        .limit(limit)
    )
    return [Dispatch(row.id, row.queue, row.priority, row.timeout_s, row.type) for row in rows]


def queues_waiting_since(conn: Connection, *, dispatched_before: datetime) -> list[str]:
    """Queues holding queued jobs that were published before the given time."""
    rows = conn.execute(
        select(J.queue)
        .where(J.state == JobState.QUEUED.value, J.dispatched_at < dispatched_before)
        .group_by(J.queue)
    )
    return [row.queue for row in rows]


def dispatched_before(
    conn: Connection, queue: str, *, before: datetime, limit: int
) -> list[Dispatch]:
    """Queued jobs of a queue published before the given time, oldest first."""
    rows = conn.execute(
        select(J.id, J.queue, J.priority, J.timeout_s, J.type)
        .where(J.state == JobState.QUEUED.value, J.queue == queue, J.dispatched_at < before)
        .order_by(J.id)
        .limit(limit)
    )
    return [Dispatch(row.id, row.queue, row.priority, row.timeout_s, row.type) for row in rows]


def mark_redispatched(conn: Connection, ids: Sequence[uuid.UUID], now: datetime) -> None:
    """Restart the lost-message clock of jobs just published again."""
    for start in range(0, len(ids), 500):
        conn.execute(
            update(jobs_table)
            .where(J.id.in_(ids[start : start + 500]), J.state == JobState.QUEUED.value)
            .values(dispatched_at=now)
        )


def due_retries(conn: Connection, *, now: datetime, limit: int) -> list[uuid.UUID]:
    """Jobs waiting in `retrying` whose backoff has passed."""
    rows = conn.execute(
        select(J.id)
        .where(J.state == JobState.RETRYING.value, J.run_after <= now)
        .order_by(J.run_after)
        .limit(limit)
    )
    return [row.id for row in rows]


def queued_of(conn: Connection, ids: Sequence[uuid.UUID]) -> list[Dispatch]:
    """The jobs among `ids` that are still queued, in the order given."""
    found: dict[uuid.UUID, Dispatch] = {}
    for start in range(0, len(ids), 500):
        rows = conn.execute(
            select(J.id, J.queue, J.priority, J.timeout_s, J.type).where(
                J.id.in_(ids[start : start + 500]), J.state == JobState.QUEUED.value
            )
        )
        for row in rows:
            found[row.id] = Dispatch(row.id, row.queue, row.priority, row.timeout_s, row.type)
    return [found[job_id] for job_id in ids if job_id in found]
