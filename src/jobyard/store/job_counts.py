"""Counts over jobs for the overview, the pools table and /metrics: by state, type and pool,
per pool, and run times of recently finished jobs."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, and_, func, select

from jobyard.domain.states import JobState
from jobyard.store.models import jobs_table
from jobyard.store.records import PoolStats

J = jobs_table.c


def count_finished_since(conn: Connection, state: JobState, since: datetime) -> int:
    """How many jobs reached `state` (a final state) since `since`."""
    query = select(func.count()).where(J.state == state.value, J.finished_at >= since)
    return int(conn.execute(query).scalar_one())


def pool_stats(conn: Connection) -> dict[str, PoolStats]:
    """Queued, running and retrying counts and oldest queued time per pool."""
    active = [JobState.QUEUED.value, JobState.RUNNING.value, JobState.RETRYING.value]
    rows = conn.execute(
        select(J.pool, J.state, func.count(), func.min(J.updated_at))
        .where(J.state.in_(active))
        .group_by(J.pool, J.state)
    )
    stats: dict[str, dict[str, Any]] = {}
    for pool, state, count, oldest in rows:
        entry = stats.setdefault(pool, {"queued": 0, "running": 0, "retrying": 0, "oldest": None})
        entry[state] = count
        if state == JobState.QUEUED.value:
            entry["oldest"] = _aware(oldest)
    return {
        pool: PoolStats(pool, e["queued"], e["running"], e["retrying"], e["oldest"])
        for pool, e in stats.items()
    }


def counts(conn: Connection) -> list[tuple[str, str, str, int]]:
    """(state, type, pool, count) over all jobs, for metrics."""
    rows = conn.execute(
        select(J.state, J.type, J.pool, func.count()).group_by(J.state, J.type, J.pool)
    )
    return [(state, type_, pool, count) for state, type_, pool, count in rows]


def finished_between(
    conn: Connection, *, after: datetime, until: datetime
) -> list[tuple[uuid.UUID, str, str, str, float]]:
    """(id, type, pool, state, run seconds) of jobs that finished in (after, until]."""
    rows = conn.execute(
        select(J.id, J.type, J.pool, J.state, J.started_at, J.finished_at).where(
            and_(J.finished_at > after, J.finished_at <= until, J.started_at.is_not(None))
        )
    )
    out = []
    for row in rows:
        started, finished = _aware(row.started_at), _aware(row.finished_at)
        if started is not None and finished is not None:
            seconds = (finished - started).total_seconds()
            out.append((row.id, row.type, row.pool, row.state, seconds))
    return out


def _aware(value: Any) -> datetime | None:
    """Aggregates bypass the column type on SQLite; restore UTC there."""
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    assert isinstance(value, datetime)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value
