"""Stored history for the dashboard's charts: jobs finished per time bucket (from the jobs
table) and queue depth per pool (from samples the scheduler leader writes).

Buckets are aligned to the Unix epoch (`floor(t / bucket_s) * bucket_s`), as the dashboard
aligns its live buckets, so stored and live counts land in the same bucket.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, Connection, Integer, cast, delete, func, select
from sqlalchemy.dialects import postgresql, sqlite

from jobyard.domain.states import JobState
from jobyard.store.models import jobs_table, pool_samples_table

J = jobs_table.c
S = pool_samples_table.c
FINAL = (JobState.SUCCEEDED.value, JobState.FAILED.value, JobState.CANCELLED.value)


@dataclass(frozen=True)
class Depth:
    """A pool's queued and running counts at one moment."""

    queued: int
    running: int


def record_samples(conn: Connection, now: datetime, depths: Mapping[str, Depth]) -> None:
    """One sample per pool at `now` (a sample already taken at that moment stays)."""
    if not depths:
        return
    # Another leader (a handover, a fake clock in tests) may have sampled that very moment.
    dialect_insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    conn.execute(
        dialect_insert(pool_samples_table).on_conflict_do_nothing(),
        [
            {"pool": pool, "sampled_at": now, "queued": d.queued, "running": d.running}
            for pool, d in depths.items()
        ],
    )


def prune_samples(conn: Connection, before: datetime) -> int:
    """Delete samples older than `before`; how many went."""
    return conn.execute(delete(pool_samples_table).where(S.sampled_at < before)).rowcount


def finished_per_bucket(
    conn: Connection, *, since: datetime, bucket_s: int
) -> dict[str, dict[int, int]]:
    """Per final state, jobs finished since `since` by bucket start (epoch seconds)."""
    bucket = _bucket(conn, J.finished_at, bucket_s)
    rows = conn.execute(
        select(J.state, bucket, func.count())
        .where(J.finished_at >= since, J.state.in_(FINAL))
        .group_by(J.state, bucket)
    )
    out: dict[str, dict[int, int]] = {state: {} for state in FINAL}
    for state, start, count in rows:
        out[state][int(start) * bucket_s] = int(count)
    return out


def depth_per_bucket(
    conn: Connection, *, since: datetime, bucket_s: int
) -> dict[str, dict[int, int]]:
    """Per pool, the most jobs queued in a sample of each bucket, by bucket start."""
    bucket = _bucket(conn, S.sampled_at, bucket_s)
    rows = conn.execute(
        select(S.pool, bucket, func.max(S.queued))
        .where(S.sampled_at >= since)
        .group_by(S.pool, bucket)
    )
    out: dict[str, dict[int, int]] = {}
    for pool, start, queued in rows:
        out.setdefault(pool, {})[int(start) * bucket_s] = int(queued)
    return out


def _bucket(conn: Connection, column: ColumnElement[datetime], bucket_s: int) -> ColumnElement[int]:
    """The bucket number of a timestamp column, computed by the database."""
    if conn.dialect.name == "sqlite":  # stored as naive UTC text
        return cast(cast(func.strftime("%s", column), Integer) / bucket_s, Integer)
    return cast(func.floor(func.extract("epoch", column) / bucket_s), Integer)
