"""Job states and the one table of allowed transitions.

`store.jobs.transition()` consults `TRANSITIONS` before every state change, so the rules live
here once and a unit test can walk them.
"""

from __future__ import annotations

from enum import StrEnum


class JobState(StrEnum):
    """Lifecycle state of a job; the values are also the database values."""

    QUEUED = "queued"
    RUNNING = "running"
    RETRYING = "retrying"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


TERMINAL_STATES: frozenset[JobState] = frozenset(
    {JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED}
)
ACTIVE_STATES: frozenset[JobState] = frozenset(
    {JobState.QUEUED, JobState.RUNNING, JobState.RETRYING}
)
CANCELLABLE_STATES: frozenset[JobState] = ACTIVE_STATES
RETRYABLE_BY_USER_STATES: frozenset[JobState] = frozenset({JobState.FAILED, JobState.CANCELLED})

#: Every allowed (from, to) pair. `running -> retrying` covers both a failed attempt with
#: retries left and an attempt lost with its worker; `failed|cancelled -> queued` is a manual
#: retry. A succeeded job is never run again: re-running it means submitting a new job.
TRANSITIONS: frozenset[tuple[JobState, JobState]] = frozenset(
    {
        (JobState.QUEUED, JobState.RUNNING),
        (JobState.QUEUED, JobState.CANCELLED),
        (JobState.RUNNING, JobState.SUCCEEDED),
        (JobState.RUNNING, JobState.FAILED),
        (JobState.RUNNING, JobState.RETRYING),
        (JobState.RUNNING, JobState.CANCELLED),
        (JobState.RETRYING, JobState.QUEUED),
        (JobState.RETRYING, JobState.CANCELLED),
        (JobState.FAILED, JobState.QUEUED),
        (JobState.CANCELLED, JobState.QUEUED),
    }
)


def is_allowed(source: JobState, target: JobState) -> bool:
    """Whether a job may move from `source` to `target`."""
    return (source, target) in TRANSITIONS


class AttemptOutcome(StrEnum):
    """How one attempt of a job ended; stored per attempt."""

    SUCCEEDED = "succeeded"
    FAILED = "failed"
    TIMED_OUT = "timed_out"
    LOST = "lost"
    CANCELLED = "cancelled"
