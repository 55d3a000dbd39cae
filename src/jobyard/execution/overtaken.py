"""Attempts whose job moved on without them: a worker that was lost (its lease expired, or its
process died), and an outcome that arrived after the job was cancelled or taken over.

Used by workers, launchers, the hard-cancel path and the reaper alike.
"""

from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy import Connection

from jobyard.domain.retries import has_attempts_left
from jobyard.domain.states import AttemptOutcome, JobState
from jobyard.runtime import Runtime
from jobyard.store import jobs
from jobyard.store.records import JobRecord

log = logging.getLogger(__name__)


def retry_lost_attempt(
    runtime: Runtime, conn: Connection, lost: JobRecord, now: datetime, *, run_after: datetime
) -> JobRecord | None:
    """Record `lost.attempt` as lost; move the job to `retrying`, or `failed` when out of tries.

    Lost attempts get at least `worker.lost_attempts_max` tries whatever the job's retry
    setting, so a crash does not fail a job, but a job that crashes every worker stops.

    Returns:
        The job as it now is (`retrying` or `failed`), or None when it had moved on.
    """
    limit = max(lost.max_attempts, runtime.settings.worker.lost_attempts_max)
    message = f"worker {lost.lease_owner} stopped during attempt {lost.attempt}"
    error = {"error": message, "error_type": "WorkerLost", "traceback": None}
    retry = has_attempts_left(lost.attempt, limit)
    moved = jobs.transition(
        conn,
        lost.id,
        source=JobState.RUNNING,
        target=JobState.RETRYING if retry else JobState.FAILED,
        now=now,
        attempt=lost.attempt,
        values={"run_after": run_after, "max_attempts": limit, **error}
        if retry
        else {"finished_at": now, **error},
        ends=jobs.AttemptEnd(AttemptOutcome.LOST.value, message, "WorkerLost"),
    )
    return moved


def discard_overtaken(conn: Connection, job: JobRecord, now: datetime) -> str:
    """The attempt finished but the job moved on (cancelled, or lost and retried)."""
    current = jobs.fetch(conn, job.id)
    if (
        current is not None
        and current.state is JobState.CANCELLED
        and current.attempt == job.attempt
        and not any(a.attempt == job.attempt for a in jobs.attempts(conn, job.id))
    ):
        jobs.record_attempt(conn, job, outcome=AttemptOutcome.CANCELLED.value, finished_at=now)
    log.info(
        "job %s attempt %d ended after the job moved to %s; outcome discarded",
        job.id,
        job.attempt,
        current.state.value if current else "deleted",
        extra={"job_id": job.id},
    )
    return "discarded"
