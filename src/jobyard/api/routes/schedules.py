"""`/api/v1/schedules`: create, list, inspect, edit, pause, resume, delete, preview."""

from __future__ import annotations

from typing import Annotated
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Query, Request, status

from jobyard import access, schedules
from jobyard.api.auth import Admin, Operator, Viewer, client_of
from jobyard.api.deps import RuntimeDep
from jobyard.api.responses import COMMON
from jobyard.api.schemas import (
    Problem,
    SchedulePatch,
    SchedulePublic,
    SchedulesPage,
    UpcomingFires,
)
from jobyard.domain.schedules import ScheduleSpec
from jobyard.store import schedules as store

router = APIRouter(prefix="/api/v1/schedules", tags=["schedules"], responses=COMMON)
ERRORS: dict[int | str, dict[str, object]] = {
    code: {"model": Problem} for code in (400, 404, 409, 422)
}


@router.post("", status_code=status.HTTP_201_CREATED, responses=ERRORS)
def create_schedule(
    body: ScheduleSpec, runtime: RuntimeDep, caller: Admin, request: Request
) -> SchedulePublic:
    """Create a schedule; it fires from the scheduler's next tick on."""
    created = schedules.create(runtime, body)
    details = body.model_dump(mode="json")
    access.record(runtime, caller, "schedule.create", created.name, details, client_of(request))
    return SchedulePublic.of(created)


@router.get("", responses=ERRORS)
def list_schedules(runtime: RuntimeDep, _caller: Viewer) -> SchedulesPage:
    """Every schedule, by name."""
    with runtime.db.read() as conn:
        items = store.all_schedules(conn)
    return SchedulesPage(items=[SchedulePublic.of(s) for s in items])


@router.get("/{ref}", responses=ERRORS)
def get_schedule(ref: str, runtime: RuntimeDep, _caller: Viewer) -> SchedulePublic:
    """One schedule, by id or name."""
    return SchedulePublic.of(schedules.get(runtime, ref))


@router.patch("/{ref}", responses=ERRORS)
def update_schedule(
    ref: str, body: SchedulePatch, runtime: RuntimeDep, caller: Admin, request: Request
) -> SchedulePublic:
    """Change some fields; the edit applies on the next tick, without a restart."""
    changes = body.model_dump(exclude_unset=True, mode="json")
    updated = schedules.update(runtime, ref, changes)
    access.record(runtime, caller, "schedule.update", updated.name, changes, client_of(request))
    return SchedulePublic.of(updated)


@router.delete("/{ref}", status_code=status.HTTP_204_NO_CONTENT, responses=ERRORS)
def delete_schedule(ref: str, runtime: RuntimeDep, caller: Admin, request: Request) -> None:
    """Delete a schedule; the jobs it fired stay in history."""
    deleted = schedules.delete(runtime, ref)
    access.record(runtime, caller, "schedule.delete", deleted.name, None, client_of(request))


@router.post("/{ref}/pause", responses=ERRORS)
def pause_schedule(
    ref: str, runtime: RuntimeDep, caller: Operator, request: Request
) -> SchedulePublic:
    """Stop firing until resumed."""
    paused = schedules.pause(runtime, ref)
    access.record(runtime, caller, "schedule.pause", paused.name, None, client_of(request))
    return SchedulePublic.of(paused)


@router.post("/{ref}/resume", responses=ERRORS)
def resume_schedule(
    ref: str, runtime: RuntimeDep, caller: Operator, request: Request
) -> SchedulePublic:
    """Fire again from the next fire time after now."""
    resumed = schedules.resume(runtime, ref)
    access.record(runtime, caller, "schedule.resume", resumed.name, None, client_of(request))
    return SchedulePublic.of(resumed)


@router.get("/{ref}/next", responses=ERRORS)
def upcoming(
    ref: str,
    runtime: RuntimeDep,
    _caller: Viewer,
    count: Annotated[int, Query(ge=1, le=100)] = 5,
) -> UpcomingFires:
    """The next fire times (from now, as if unpaused)."""
    record = schedules.get(runtime, ref)
    fires = record.trigger.upcoming(runtime.clock(), count)
    zone = ZoneInfo(record.timezone)
    return UpcomingFires(
        name=record.name,
        timezone=record.timezone,
        fires=fires,
        local=[f.astimezone(zone).isoformat() for f in fires],
    )
