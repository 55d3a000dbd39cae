"""The audit log: append and read."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, insert, select

from jobyard.store.models import audit_table

A = audit_table.c


@dataclass(frozen=True, slots=True)
class AuditRecord:
    """One audited action."""

    id: int
    at: datetime
    actor: str
    role: str
    action: str
    target: str | None
    details: dict[str, Any] | None
    client: str | None


def append(conn: Connection, row: dict[str, Any]) -> None:
    """Record one action."""
    conn.execute(insert(audit_table).values(**row))


def append_many(conn: Connection, rows: Sequence[Mapping[str, Any]]) -> None:
    """Record several actions."""
    if rows:
        conn.execute(insert(audit_table), list(rows))


def page(
    conn: Connection,
    *,
    actor: str | None = None,
    action: str | None = None,
    before: int | None = None,
    limit: int = 100,
) -> list[AuditRecord]:
    """Newest entries first, optionally before the cursor id."""
    query = select(audit_table).order_by(A.id.desc()).limit(limit)
    if actor:
        query = query.where(A.actor == actor)
    if action:
        query = query.where(A.action == action)
    if before is not None:
        query = query.where(A.id < before)
    return [AuditRecord(**row) for row in conn.execute(query).mappings()]
