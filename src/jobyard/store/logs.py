"""Log lines written by jobs through `ctx.log`."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, func, insert, select

from jobyard.store.models import logs_table
from jobyard.store.records import LogRecord

L = logs_table.c


def append(conn: Connection, rows: Sequence[Mapping[str, Any]]) -> None:
    """Store log lines (`job_id`, `attempt`, `created_at`, `level`, `message`)."""
    if rows:
        conn.execute(insert(logs_table), list(rows))


def page(
    conn: Connection, job_id: uuid.UUID, *, after_id: int = 0, limit: int = 500
) -> list[LogRecord]:
    """Log lines of a job in write order, after the cursor id."""
    rows = conn.execute(
        select(L.id, L.attempt, L.created_at, L.level, L.message)
        .where(L.job_id == job_id, L.id > after_id)
        .order_by(L.id)
        .limit(limit)
    )
    return [LogRecord(r.id, r.attempt, r.created_at, r.level, r.message) for r in rows]


def count(conn: Connection, job_id: uuid.UUID, attempt: int) -> int:
    """How many log lines one attempt has stored (where an adopting launcher resumes)."""
    query = select(func.count()).where(L.job_id == job_id, L.attempt == attempt)
    return int(conn.execute(query).scalar_one())
