"""Operator actions on one job: cancel and retry."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import Connection

from jobyard.dispatch import outbox
from jobyard.domain.states import CANCELLABLE_STATES, RETRYABLE_BY_USER_STATES, JobState
from jobyard.errors import InvalidState, JobNotFound, TransitionRejected, UnknownJobType
from jobyard.events.types import state_event
from jobyard.runtime import Runtime
from jobyard.store import jobs
from jobyard.store.jobs import Dispatch
from jobyard.store.records import JobRecord

ATTEMPTS = 3


def cancel(runtime: Runtime, job_id: uuid.UUID) -> JobRecord:
    """Cancel a queued, retrying or running job.

    A running job is marked cancelled at once; its code sees `ctx.cancelled()` turn true and
    whatever it returns afterwards is discarded.

    Raises:
        JobNotFound: no such job.
        InvalidState: the job already finished.
    """
    for _ in range(ATTEMPTS):
        now = runtime.clock()
        with runtime.db.write() as conn:
            job = _existing(conn, job_id)
            if job.state not in CANCELLABLE_STATES:
                raise InvalidState(
                    f"job {job_id} is already {job.state.value}; only queued, retrying or "
                    "running jobs can be cancelled",
                    state=job.state.value,
                )
            moved = cancel_in(conn, job_id, job.state, now)
        if moved is not None:
            runtime.events.publish([state_event(moved)])
            return moved
    raise TransitionRejected(f"job {job_id} kept changing state; try again")


def cancel_in(
    conn: Connection, job_id: uuid.UUID, state: JobState, now: datetime
) -> JobRecord | None:
    """Cancel a job seen in `state`, inside the caller's transaction; None if it moved on."""
    return jobs.transition(
        conn,
        job_id,
        source=state,
        target=JobState.CANCELLED,
        now=now,
        values={"finished_at": now, "run_after": None},
    )


def retry(runtime: Runtime, job_id: uuid.UUID) -> JobRecord:
    """Queue a failed or cancelled job again with a fresh retry budget.

    Raises:
        JobNotFound: no such job.
        InvalidState: the job is not failed or cancelled.
    """
    now = runtime.clock()
    with runtime.db.write() as conn:
        job = _existing(conn, job_id)
        if job.state not in RETRYABLE_BY_USER_STATES:
            raise InvalidState(
                f"job {job_id} is {job.state.value}; only failed or cancelled jobs can be "
                "retried (submit a new job to run a succeeded one again)",
                state=job.state.value,
            )
        try:
            budget = runtime.yard.definition(job.type).retry.max_attempts
        except UnknownJobType:
            budget = 1
        moved = jobs.transition(
            conn,
            job_id,
            source=job.state,
            target=JobState.QUEUED,
            now=now,
            values={
                "max_attempts": job.attempt + budget,
                "dispatched_at": None,
                "finished_at": None,
                "run_after": None,
            },
        )
    if moved is None:
        raise TransitionRejected(f"job {job_id} changed state meanwhile; try again")
    runtime.events.publish([state_event(moved)])
    outbox.publish_committed(runtime, [Dispatch.of(moved)])
    return moved


def _existing(conn: Connection, job_id: uuid.UUID) -> JobRecord:
    job = jobs.fetch(conn, job_id)
    if job is None:
        raise JobNotFound(f"no job with id {job_id}", id=str(job_id))
    return job
