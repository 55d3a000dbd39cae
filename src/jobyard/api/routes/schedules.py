"""`/api/v1/schedules`: create, list, inspect, edit, pause, resume, delete, preview."""

from __future__ import annotations

from typing import Annotated
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Query, status

from jobyard import schedules
from jobyard.api.deps import RuntimeDep
from jobyard.api.schemas import (
    Problem,
    SchedulePatch,
    SchedulePublic,
    SchedulesPage,
    UpcomingFires,
)
from jobyard.domain.schedules import ScheduleSpec
from jobyard.store import schedules as store

router = APIRouter(prefix="/api/v1/schedules", tags=["schedules"])
ERRORS: dict[int | str, dict[str, object]] = {
    code: {"model": Problem} for code in (400, 404, 409, 422)
}


@router.post("", status_code=status.HTTP_201_CREATED, responses=ERRORS)
def create_schedule(body: ScheduleSpec, runtime: RuntimeDep) -> SchedulePublic:
    """Create a schedule; it fires from the scheduler's next tick on."""
    return SchedulePublic.of(schedules.create(runtime, body))


@router.get("", responses=ERRORS)
def list_schedules(runtime: RuntimeDep) -> SchedulesPage:
    """Every schedule, by name."""
    with runtime.db.read() as conn:
        items = store.all_schedules(conn)
    return SchedulesPage(items=[SchedulePublic.of(s) for s in items])


@router.get("/{ref}", responses=ERRORS)
def get_schedule(ref: str, runtime: RuntimeDep) -> SchedulePublic:
    """One schedule, by id or name."""
    return SchedulePublic.of(schedules.get(runtime, ref))


@router.patch("/{ref}", responses=ERRORS)
def update_schedule(ref: str, body: SchedulePatch, runtime: RuntimeDep) -> SchedulePublic:
    """Change some fields; the edit applies on the next tick, without a restart."""
    changes = body.model_dump(exclude_unset=True)
    return SchedulePublic.of(schedules.update(runtime, ref, changes))


@router.delete("/{ref}", status_code=status.HTTP_204_NO_CONTENT, responses=ERRORS)
def delete_schedule(ref: str, runtime: RuntimeDep) -> None:
    """Delete a schedule; the jobs it fired stay in history."""
    schedules.delete(runtime, ref)


@router.post("/{ref}/pause", responses=ERRORS)
def pause_schedule(ref: str, runtime: RuntimeDep) -> SchedulePublic:
    """Stop firing until resumed."""
    return SchedulePublic.of(schedules.pause(runtime, ref))


@router.post("/{ref}/resume", responses=ERRORS)
def resume_schedule(ref: str, runtime: RuntimeDep) -> SchedulePublic:
    """Fire again from the next fire time after now."""
    return SchedulePublic.of(schedules.resume(runtime, ref))


@router.get("/{ref}/next", responses=ERRORS)
def upcoming(
    ref: str, runtime: RuntimeDep, count: Annotated[int, Query(ge=1, le=100)] = 5
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
