"""Queries on artifact records: one row per (job, name), replaced when an attempt rewrites it."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import Connection, delete, insert, select

from jobyard.storage.records import ArtifactRecord
from jobyard.store.models import artifacts_table

A = artifacts_table.c


def record(conn: Connection, artifact: ArtifactRecord) -> ArtifactRecord:
    """Store the record (replacing the job's earlier one of that name); it with its id."""
    conn.execute(
        delete(artifacts_table).where(A.job_id == artifact.job_id, A.name == artifact.name)
    )
    values = {k: v for k, v in artifact.__dict__.items() if k != "id"}
    new_id = conn.execute(insert(artifacts_table).values(**values).returning(A.id)).scalar_one()
    return ArtifactRecord(**values, id=int(new_id))


def for_job(conn: Connection, job_id: uuid.UUID) -> list[ArtifactRecord]:
    """The job's artifacts, by name."""
    rows = conn.execute(select(artifacts_table).where(A.job_id == job_id).order_by(A.name))
    return [ArtifactRecord(**row._mapping) for row in rows]


def get(conn: Connection, job_id: uuid.UUID, name: str) -> ArtifactRecord | None:
    """One of the job's artifacts by name."""
    row = conn.execute(
        select(artifacts_table).where(A.job_id == job_id, A.name == name)
    ).one_or_none()
    return None if row is None else ArtifactRecord(**row._mapping)


def created_before(conn: Connection, before: datetime, limit: int) -> list[ArtifactRecord]:
    """Artifacts older than `before`, oldest first (the retention sweep)."""
    rows = conn.execute(
        select(artifacts_table).where(A.created_at < before).order_by(A.created_at).limit(limit)
    )
    return [ArtifactRecord(**row._mapping) for row in rows]


def delete_ids(conn: Connection, ids: Sequence[int]) -> int:
    """Remove these records; how many went."""
    if not ids:
        return 0
    return conn.execute(delete(artifacts_table).where(A.id.in_(list(ids)))).rowcount
