"""The reaper: running jobs whose worker died or whose time ran out.

Both cases end the attempt in the database, the source of truth; a late message or a worker
that comes back finds the job moved on and its outcome is discarded.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from jobyard.domain.retries import backoff_delay_s, has_attempts_left
from jobyard.domain.states import AttemptOutcome, JobState
from jobyard.errors import UnknownJobType
from jobyard.events.types import state_event
from jobyard.execution.overtaken import retry_lost_attempt
from jobyard.runtime import Runtime
from jobyard.store import jobs
from jobyard.store.records import JobRecord

log = logging.getLogger(__name__)
BATCH = 500
#: Extra time past the hard limit before the reaper declares a timeout, so Celery's own time
#: limit (which also records the failure) normally acts first.
TIMEOUT_SLACK_S = 5.0


def reap_lost(runtime: Runtime, now: datetime) -> int:
    """Retry or fail running jobs whose lease expired (their worker process is gone).

    Nothing is reaped until the database server has been up for a whole lease: leases lapse
    while it restarts although their workers live, and those workers renew them (or record
    their outcomes) within a lease of its return.
    """
    uptime_s = runtime.db.server_uptime_s()
    if uptime_s is not None and uptime_s < runtime.settings.worker.lease_s:
        log.info(
            "the database restarted %.0fs ago; lost jobs are reaped after a lease (%gs)",
            uptime_s,
            runtime.settings.worker.lease_s,
            extra={"action": "reap_deferred"},
        )
        return 0
    with runtime.db.read() as conn:
        expired = jobs.expired_leases(conn, now=now, limit=BATCH)
    count = 0
    for job in expired:
        with runtime.db.write() as conn:
            moved = retry_lost_attempt(runtime, conn, job, now, run_after=now)
        if moved is not None:
            runtime.events.publish([state_event(moved)])
            count += 1
            log.warning(
                "job %s lost its worker %s during attempt %d",
                job.id,
                job.lease_owner,
                job.attempt,
                extra={"action": "reap_lost", "job_id": job.id},
            )
    return count


def reap_timed_out(runtime: Runtime, now: datetime) -> int:
    """End attempts running past `timeout_s` plus the kill grace (a hung or threaded job)."""
    grace = runtime.settings.worker.hard_timeout_grace_s + TIMEOUT_SLACK_S
    with runtime.db.read() as conn:
        candidates = jobs.running(conn, limit=BATCH * 4)
    overdue = [
        job
        for job in candidates
        if job.started_at is not None
        and job.started_at + timedelta(seconds=job.timeout_s + grace) < now
    ]
    for job in overdue:
        _end_timed_out(runtime, job, now)
    return len(overdue)


def _end_timed_out(runtime: Runtime, job: JobRecord, now: datetime) -> None:
    error = {
        "error": f"timed out after {job.timeout_s:g}s",
        "error_type": "TimeoutError",
        "traceback": None,
    }
    if has_attempts_left(job.attempt, job.max_attempts):
        try:
            policy = runtime.yard.definition(job.type).retry
            delay = backoff_delay_s(policy, job.attempt)
        except UnknownJobType:
            delay = 0.0
        target = JobState.RETRYING
        values = {"run_after": now + timedelta(seconds=delay), **error}
    else:
        target, values = JobState.FAILED, {"finished_at": now, **error}
    with runtime.db.write() as conn:
        moved = jobs.transition(
            conn,
            job.id,
            source=JobState.RUNNING,
            target=target,
            now=now,
            attempt=job.attempt,
            values=values,
            ends=jobs.AttemptEnd(AttemptOutcome.TIMED_OUT.value, **error),
        )
    if moved is not None:
        runtime.events.publish([state_event(moved)])
        log.warning(
            "job %s timed out (attempt %d)",
            job.id,
            job.attempt,
            extra={"action": "reap_timeout", "job_id": job.id},
        )
