"""Schedules: what one declares (`ScheduleSpec`) and which fire times run (`plan_firing`).

The same spec validates `[[schedules]]` in jobyard.toml and the body of
`POST /api/v1/schedules`; checks that need the Yard (job type, args) happen in
`jobyard.schedules`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from jobyard.domain.limits import MAX_PRIORITY, MIN_PRIORITY
from jobyard.domain.storable import storable_args, storable_text
from jobyard.domain.triggers import check_timezone, normalize_cron, parse_duration

SCHEDULE_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:-]*$"
MIN_INTERVAL_S = 1.0
MAX_JITTER_S = 86400.0


class Overlap(StrEnum):
    """What a firing does while an earlier run of the same schedule is still active."""

    ALLOW = "allow"
    SKIP = "skip"
    CANCEL_PREVIOUS = "cancel_previous"


class Catchup(StrEnum):
    """Which fire times run when several are due at once (after downtime)."""

    SKIP_MISSED = "skip_missed"
    RUN_ONCE = "run_once"
    RUN_ALL = "run_all"


class ManagedBy(StrEnum):
    """Who owns a schedule's definition."""

    CONFIG = "config"
    API = "api"


class ScheduleSpec(BaseModel):
    """A schedule as declared: a job type with fixed args and a trigger."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(
        min_length=1, max_length=100, pattern=SCHEDULE_NAME_PATTERN, description="Unique name."
    )
    type: str = Field(min_length=1, max_length=200, description="Job type to submit.")
    args: dict[str, Any] = Field(default_factory=dict, description="Fixed arguments of each run.")
    priority: int | None = Field(None, ge=MIN_PRIORITY, le=MAX_PRIORITY)
    cron: str | None = Field(
        None, description="Cron expression (5 fields, or 6 with seconds first; `@daily`…)."
    )
    timezone: str = Field("UTC", description="IANA timezone the cron expression reads in.")
    interval_s: float | None = Field(
        None, description="Fixed interval instead of cron: seconds or `90s`, `15m`, `1h`, `1d`."
    )
    jitter_s: float = Field(
        0.0, ge=0, le=MAX_JITTER_S, description="Each run starts up to this much later."
    )
    overlap: Overlap = Field(Overlap.SKIP, description="allow | skip | cancel_previous")
    catchup: Catchup = Field(Catchup.RUN_ONCE, description="skip_missed | run_once | run_all")
    paused: bool = Field(False, description="Created paused.")
    description: str | None = Field(None, max_length=1000)

    @field_validator("args")
    @classmethod
    def _storable_args(cls, value: dict[str, Any]) -> dict[str, Any]:
        return storable_args(value)  # type: ignore[no-any-return]

    @field_validator("name", "type", "cron", "timezone", "description", mode="before")
    @classmethod
    def _storable_text(cls, value: Any) -> Any:
        return storable_text(value)

    @field_validator("cron")
    @classmethod
    def _cron(cls, value: str | None) -> str | None:
        return None if value is None else normalize_cron(value)

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, value: str) -> str:
        return check_timezone(value)

    @field_validator("interval_s", "jitter_s", mode="before")
    @classmethod
    def _duration(cls, value: Any) -> Any:
        return parse_duration(value) if isinstance(value, str) else value

    @model_validator(mode="after")
    def _one_trigger(self) -> ScheduleSpec:
        if (self.cron is None) == (self.interval_s is None):
            raise ValueError("give exactly one of 'cron' or 'interval_s'")
        if self.interval_s is not None and self.interval_s < MIN_INTERVAL_S:
            raise ValueError(
                f"interval_s must be at least {MIN_INTERVAL_S:g} second, got {self.interval_s:g}"
            )
        return self


@dataclass(frozen=True, slots=True)
class FiringPlan:
    """Which of the due fire times run now."""

    fires: list[datetime]
    skipped: int


def plan_firing(
    due: list[datetime], total_due: int, *, catchup: Catchup, now: datetime, grace: timedelta
) -> FiringPlan:
    """Apply the catch-up policy to the due fire times (ascending, the newest kept).

    A fire time is on time when it is at most `grace` old. `skip_missed` runs the on-time
    ones only; `run_once` runs the newest due one (coalescing the rest); `run_all` runs every
    one it was given (the caller bounds how many).
    """
    if not due:
        return FiringPlan([], 0)
    if catchup is Catchup.RUN_ALL:
        fires = due
    elif catchup is Catchup.RUN_ONCE:
        fires = due[-1:]
    else:
        fires = [moment for moment in due if now - moment <= grace]
    return FiringPlan(fires, total_due - len(fires))
