"""Queries on schedules, and on the jobs they fired."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, delete, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite

from jobyard.domain.schedules import Catchup, ManagedBy, Overlap
from jobyard.domain.states import ACTIVE_STATES, JobState
from jobyard.domain.triggers import Trigger
from jobyard.store.models import jobs_table, schedules_table

S = schedules_table.c
J = jobs_table.c


@dataclass(frozen=True, slots=True)
class ScheduleRecord:
    """A schedule as stored."""

    id: uuid.UUID
    name: str
    type: str
    args: dict[str, Any]
    priority: int | None
    cron: str | None
    timezone: str
    interval_s: float | None
    jitter_s: float
    overlap: Overlap
    catchup: Catchup
    paused: bool
    managed_by: ManagedBy
    description: str | None
    anchor_at: datetime
    next_fire_at: datetime
    next_due_at: datetime
    last_fire_at: datetime | None
    last_job_id: uuid.UUID | None
    fired_count: int
    skipped_count: int
    created_at: datetime
    updated_at: datetime

    @classmethod
    def from_row(cls, row: Mapping[Any, Any]) -> ScheduleRecord:
        """Build from a full `jobyard_schedules` row."""
        values = {name: row[name] for name in cls.__slots__}
        values["overlap"] = Overlap(values["overlap"])
        values["catchup"] = Catchup(values["catchup"])
        values["managed_by"] = ManagedBy(values["managed_by"])
        values["paused"] = bool(values["paused"])
        return cls(**values)

    @property
    def trigger(self) -> Trigger:
        """When it fires."""
        return Trigger(self.cron, self.timezone, self.interval_s, self.anchor_at)


def insert_one(conn: Connection, row: Mapping[str, Any]) -> ScheduleRecord:
    """Store a new schedule."""
    stored = conn.execute(insert(schedules_table).values(**row).returning(*S)).mappings().one()
    return ScheduleRecord.from_row(stored)


def update_one(
    conn: Connection, schedule_id: uuid.UUID, values: Mapping[str, Any]
) -> ScheduleRecord | None:
    """Change columns of one schedule; None when it no longer exists."""
    stored = (
        conn.execute(
            update(schedules_table).where(S.id == schedule_id).values(**values).returning(*S)
        )
        .mappings()
        .first()
    )
    return None if stored is None else ScheduleRecord.from_row(stored)


def delete_one(conn: Connection, schedule_id: uuid.UUID) -> bool:
    """Delete one schedule (the jobs it fired keep its id)."""
    return conn.execute(delete(schedules_table).where(S.id == schedule_id)).rowcount > 0


def fetch(conn: Connection, schedule_id: uuid.UUID) -> ScheduleRecord | None:
    """One schedule by id."""
    row = conn.execute(select(schedules_table).where(S.id == schedule_id)).mappings().first()
    return None if row is None else ScheduleRecord.from_row(row)


def fetch_by_name(conn: Connection, name: str) -> ScheduleRecord | None:
    """One schedule by name."""
    row = conn.execute(select(schedules_table).where(S.name == name)).mappings().first()
    return None if row is None else ScheduleRecord.from_row(row)


def all_schedules(conn: Connection) -> list[ScheduleRecord]:
    """Every schedule, by name."""
    rows = conn.execute(select(schedules_table).order_by(S.name)).mappings()
    return [ScheduleRecord.from_row(row) for row in rows]


def due(conn: Connection, now: datetime, limit: int) -> list[ScheduleRecord]:
    """Unpaused schedules whose next fire time is due, oldest first, locked for firing.

    On PostgreSQL the rows stay locked until the firing commits, so an edit waits for it (and
    a schedule an edit holds right now is left for the next tick).
    """
    rows = conn.execute(
        select(schedules_table)
        .where(S.paused.is_(False), S.next_due_at <= now)
        .order_by(S.next_due_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
    ).mappings()
    return [ScheduleRecord.from_row(row) for row in rows]


def active_jobs(conn: Connection, schedule_id: uuid.UUID) -> list[tuple[uuid.UUID, JobState]]:
    """Jobs of the schedule that are still queued, running or retrying."""
    rows = conn.execute(
        select(J.id, J.state).where(
            J.schedule_id == schedule_id,
            J.state.in_([s.value for s in ACTIVE_STATES]),
        )
    )
    return [(row.id, JobState(row.state)) for row in rows]


def insert_fired_jobs(conn: Connection, rows: Sequence[Mapping[str, Any]]) -> set[uuid.UUID]:
    """Insert fired jobs, skipping any (schedule, fire time) already stored.

    The unique index is the second guard behind the leader lease: a fire time that somehow
    fired already is dropped here instead of failing the whole tick. Returns the ids stored.
    """
    if not rows:
        return set()
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    statement = (
        dialect.insert(jobs_table)
        .values(list(rows))
        .on_conflict_do_nothing(index_elements=["schedule_id", "scheduled_for"])
        .returning(J.id)
    )
    return set(conn.execute(statement).scalars())
