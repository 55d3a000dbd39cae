"""Firing due schedules: one transaction per tick, fenced by the leader lease.

For each due schedule the catch-up policy picks which due fire times run, the overlap policy
decides about each against the schedule's active jobs, and every run becomes an ordinary job
row carrying `schedule_id` and `scheduled_for`. The rows and the schedules' next fire times
commit together, then the jobs are published (the outbox covers a crash in between).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection

from jobyard import actions
from jobyard.dispatch import outbox
from jobyard.dispatch.submit import JobRequest, job_row
from jobyard.domain.schedules import Overlap, plan_firing
from jobyard.errors import InvalidRequest
from jobyard.events.types import JobEvent, state_event
from jobyard.runtime import Runtime
from jobyard.schedules import next_times
from jobyard.store import schedules as store
from jobyard.store.jobs import Dispatch
from jobyard.store.records import JobRecord
from jobyard.store.schedules import ScheduleRecord

log = logging.getLogger(__name__)

#: Schedules fired per tick at most; the rest stay due for the next tick.
SCHEDULES_PER_TICK = 200


@dataclass
class FiringReport:
    """What one firing pass did."""

    fired: int = 0
    skipped: int = 0
    cancelled: int = 0
    dispatches: list[Dispatch] = field(default_factory=list)
    events: list[JobEvent] = field(default_factory=list)


def fire_due(runtime: Runtime, fence: Callable[[Connection], bool]) -> FiringReport | None:
    """Fire every due schedule; None when the lease was lost (nothing was written)."""
    now = runtime.clock()
    report = FiringReport()
    with runtime.db.write() as conn:
        if not fence(conn):
            return None
        for schedule in store.due(conn, now, SCHEDULES_PER_TICK):
            _fire_schedule(runtime, conn, schedule, now, report)
    runtime.events.publish(report.events)
    outbox.publish_committed(runtime, report.dispatches)
    return report


def _fire_schedule(
    runtime: Runtime,
    conn: Connection,
    schedule: ScheduleRecord,
    now: datetime,
    report: FiringReport,
) -> None:
    settings = runtime.settings.scheduler
    trigger = schedule.trigger
    due, total = trigger.due_between(schedule.next_fire_at, now, settings.catchup_limit)
    plan = plan_firing(
        due,
        total,
        catchup=schedule.catchup,
        now=now,
        grace=timedelta(seconds=settings.misfire_grace_s + schedule.jitter_s),
    )
    created: list[tuple[datetime, uuid.UUID]] = []
    for planned in plan.fires:
        job_id = _fire_once(runtime, conn, schedule, planned, now, report)
        if job_id is not None:
            created.append((planned, job_id))
    skipped = total - len(created)
    last_fire, last_job = created[-1] if created else (schedule.last_fire_at, schedule.last_job_id)
    values: dict[str, Any] = next_times(schedule.id, trigger, schedule.jitter_s, now)
    values.update(
        last_fire_at=last_fire,
        last_job_id=last_job,
        fired_count=schedule.fired_count + len(created),
        skipped_count=schedule.skipped_count + skipped,
    )
    store.update_one(conn, schedule.id, values)
    if skipped:
        log.info(
            "schedule %s: %d fire time(s) skipped (catch-up %s, overlap %s)",
            schedule.name,
            skipped,
            schedule.catchup.value,
            schedule.overlap.value,
            extra={"action": "schedule_skip", "schedule": schedule.name},
        )
    report.skipped += skipped


def _fire_once(
    runtime: Runtime,
    conn: Connection,
    schedule: ScheduleRecord,
    planned: datetime,
    now: datetime,
    report: FiringReport,
) -> uuid.UUID | None:
    """Create the run for one fire time; None when the overlap policy or a guard skips it."""
    active = store.active_jobs(conn, schedule.id)
    if active and schedule.overlap is Overlap.SKIP:
        return None
    if active and schedule.overlap is Overlap.CANCEL_PREVIOUS:
        for job_id, state in active:
            cancelled = actions.cancel_in(conn, job_id, state, now)
            if cancelled is not None:
                report.cancelled += 1
                report.events.append(state_event(cancelled))
    try:
        row = job_row(
            runtime,
            JobRequest(schedule.type, schedule.args, schedule.priority),
            f"schedule:{schedule.name}",
            now,
        )
    except InvalidRequest as exc:  # the job type or its schema changed since
        log.error(
            "schedule %s cannot fire: %s",
            schedule.name,
            exc.message,
            extra={"action": "schedule_invalid", "schedule": schedule.name},
        )
        return None
    row.update(schedule_id=schedule.id, scheduled_for=planned)
    if not store.insert_fired_jobs(conn, [row]):
        log.warning(
            "schedule %s already fired for %s; not firing again",
            schedule.name,
            planned.isoformat(),
            extra={"action": "schedule_duplicate", "schedule": schedule.name},
        )
        return None
    report.fired += 1
    fired = JobRecord.from_new_row(row)
    report.dispatches.append(Dispatch.of(fired))
    report.events.append(state_event(fired))
    fired_id: uuid.UUID = row["id"]
    return fired_id
