"""Worker registrations and heartbeats."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, select, update

from jobyard.store.models import workers_table
from jobyard.store.records import WorkerRecord

W = workers_table.c


def heartbeat(
    conn: Connection,
    worker: WorkerRecord,
    now: datetime,
    *,
    stalled_since: datetime | None = None,
    gpus: list[dict[str, Any]] | None = None,
) -> None:
    """Register the worker on first call, then move its heartbeat forward.

    Args:
        stalled_since: when its consumer stalled; None while it consumes.
        gpus: its host's visible GPUs as sampled now; None without any.
    """
    result = conn.execute(
        update(workers_table)
        .where(W.id == worker.id)
        .values(
            heartbeat_at=now,
            stopped_at=None,
            concurrency=worker.concurrency,
            stalled_since=stalled_since,
            gpus=gpus,
        )
    )
    if not result.rowcount:
        values = {name: getattr(worker, name) for name in WorkerRecord.__slots__}
        values.update(heartbeat_at=now, stopped_at=None, stalled_since=stalled_since, gpus=gpus)
        conn.execute(workers_table.insert().values(**values))


def set_nodes(conn: Connection, worker_id: str, nodes: list[dict[str, Any]]) -> None:
    """Record the nodes a Kubernetes launcher's pool may run its jobs on."""
    conn.execute(update(workers_table).where(W.id == worker_id).values(nodes=nodes))


def stopped(conn: Connection, worker_id: str, now: datetime) -> None:
    """Mark a worker as cleanly stopped."""
    conn.execute(update(workers_table).where(W.id == worker_id).values(stopped_at=now))


def listing(conn: Connection, *, seen_after: datetime | None = None) -> list[WorkerRecord]:
    """Workers, most recently seen first; optionally only those seen after a time."""
    query = select(workers_table).order_by(W.heartbeat_at.desc())
    if seen_after is not None:
        query = query.where(W.heartbeat_at > seen_after)
    rows = conn.execute(query).mappings()
    return [WorkerRecord(**{k: row[k] for k in WorkerRecord.__slots__}) for row in rows]
