"""Job events and the filters WebSocket clients subscribe with."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from jobyard.store.records import JobRecord


class EventKind(StrEnum):
    """What happened to a job."""

    STATE = "state"
    PROGRESS = "progress"
    LOG = "log"


@dataclass(frozen=True, slots=True)
class JobEvent:
    """One change of one job, as sent to subscribers (JSON-ready fields only)."""

    kind: str
    job_id: str
    type: str
    pool: str
    state: str
    attempt: int
    at: str
    progress: float | None = None
    message: str | None = None
    level: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """The event as a JSON object, without empty fields."""
        # By hand: dataclasses.asdict deep-copies every field, which cost batch submits more
        # than storing the jobs did.
        found = {key: getattr(self, key) for key in self.__slots__}
        return {key: value for key, value in found.items() if value is not None}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> JobEvent:
        """Read an event back from its JSON object."""
        return cls(**{key: data.get(key) for key in cls.__slots__})  # type: ignore[arg-type]


def state_event(job: JobRecord) -> JobEvent:
    """The job entered its current state."""
    return JobEvent(
        kind=EventKind.STATE.value,
        job_id=str(job.id),
        type=job.type,
        pool=job.pool,
        state=job.state.value,
        attempt=job.attempt,
        at=job.updated_at.isoformat(),
        progress=job.progress,
        message=job.error if job.error else job.progress_message,
    )


def progress_event(job: JobRecord, fraction: float, message: str | None, at: datetime) -> JobEvent:
    """The running attempt reported progress."""
    return JobEvent(
        kind=EventKind.PROGRESS.value,
        job_id=str(job.id),
        type=job.type,
        pool=job.pool,
        state=job.state.value,
        attempt=job.attempt,
        at=at.isoformat(),
        progress=fraction,
        message=message,
    )


def log_event(job: JobRecord, row: dict[str, Any]) -> JobEvent:
    """The running attempt wrote a log line (a `jobyard_job_logs` row)."""
    return JobEvent(
        kind=EventKind.LOG.value,
        job_id=str(job.id),
        type=job.type,
        pool=job.pool,
        state=job.state.value,
        attempt=int(row["attempt"]),
        at=row["created_at"].isoformat(),
        message=str(row["message"]),
        level=str(row["level"]),
    )


@dataclass(frozen=True, slots=True)
class EventFilter:
    """What a subscriber wants; unset fields match everything."""

    job_id: str | None = None
    type: str | None = None
    pool: str | None = None
    state: str | None = None

    @property
    def everything(self) -> bool:
        """Whether it lets every event through."""
        return self == EventFilter()

    def matches(self, event: Mapping[str, Any]) -> bool:
        """Whether the event (as its JSON object) passes."""
        return (
            (self.job_id is None or event.get("job_id") == self.job_id)
            and (self.type is None or event.get("type") == self.type)
            and (self.pool is None or event.get("pool") == self.pool)
            and (self.state is None or event.get("state") == self.state)
        )
