"""Claiming a job for this process: the guarded `queued → running` of a new attempt.

A duplicate or late message finds the job no longer queued and is dropped; a job left running
by a dead process of this host is taken over at once; a claim whose answer the database lost
is carried on by the thread that made it.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection

from jobyard.domain.states import JobState
from jobyard.events.types import state_event
from jobyard.execution.executor import ProcessState, run_attempt
from jobyard.execution.overtaken import retry_lost_attempt
from jobyard.execution.owners import is_dead_local_owner
from jobyard.store import batches, jobs
from jobyard.store.records import JobRecord

log = logging.getLogger(__name__)
#: How long a claim retries an unavailable database before the message goes back to the broker.
CLAIM_RETRY_WINDOW_S = 5.0


def execute(state: ProcessState, job_id: uuid.UUID) -> str:
    """Run the job's next attempt if it is ours to run; returns what happened, for logs."""
    job = claim(state, job_id)
    if job is None:
        return "skipped"
    return run_attempt(state, job)


def claim(state: ProcessState, job_id: uuid.UUID) -> JobRecord | None:
    """Take the job from `queued` to `running` as a new attempt, or None if not ours.

    A job still `running` under a process of this host that no longer exists (a prefork child
    killed mid-job) is taken over at once; other cases are left to the reaper. A database that
    is unavailable is retried for `CLAIM_RETRY_WINDOW_S`, then the error is raised for the
    caller to hand the message back to the broker.
    """
    with claiming(state, [job_id]):
        return state.runtime.db.retry(
            lambda: _claim_once(state, job_id),
            what=f"claiming job {job_id}",
            give_up_after_s=CLAIM_RETRY_WINDOW_S,
        )


@contextmanager
def claiming(state: ProcessState, job_ids: Sequence[uuid.UUID]) -> Iterator[None]:
    """Note that this thread is claiming these jobs (and running them, for a group), so that
    its retried claim may carry on a claim whose answer the database lost
    (`is_own_unstarted_claim`)."""
    me = threading.get_ident()
    with state.claiming_lock:
        for job_id in job_ids:
            state.claiming.setdefault(job_id, set()).add(me)
    try:
        yield
    finally:
        with state.claiming_lock:
            for job_id in job_ids:
                threads = state.claiming.get(job_id, set())
                threads.discard(me)
                if not threads:
                    state.claiming.pop(job_id, None)


def start_attempt(state: ProcessState, job_id: uuid.UUID, now: datetime) -> JobRecord | None:
    """The guarded `queued → running` of a new attempt, leased to this process; None when the
    job is not queued (cancelled, or claimed by someone else). Workers and launchers alike."""
    return start_attempts(state, [job_id], now).get(job_id)


def start_attempts(
    state: ProcessState, job_ids: Sequence[uuid.UUID], now: datetime
) -> dict[uuid.UUID, JobRecord]:
    """`start_attempt` for several jobs in one statement (one job: on PostgreSQL still the
    cheapest way to run it); the jobs that were queued, by id."""
    with state.runtime.db.single() as conn:
        return batches.claim_many(
            conn, job_ids, now=now, owner=state.owner, lease_until=lease_until(state, now)
        )


def _claim_once(state: ProcessState, job_id: uuid.UUID) -> JobRecord | None:
    runtime = state.runtime
    now = runtime.clock()
    job = start_attempt(state, job_id, now)
    if job is not None:
        # Held before `claim` returns, so no other thread can mistake it for a lost claim.
        state.leases.hold(job.id, job.attempt)
        runtime.events.publish([state_event(job)])
        return job
    return take_over_or_skip(state, job_id, claim_values(state, now), now)


def take_over_or_skip(
    state: ProcessState, job_id: uuid.UUID, values: dict[str, Any], now: datetime
) -> JobRecord | None:
    """A message for a job that is not queued: take it over from a dead local process, or
    ignore the message (the job finished, was cancelled, or runs elsewhere)."""
    runtime = state.runtime
    taken: JobRecord | None = None
    with runtime.db.write() as conn:
        current = jobs.fetch(conn, job_id)
        if current is None:
            log.warning("message for unknown job %s dropped", job_id, extra={"job_id": job_id})
            return None
        if current.state is JobState.RUNNING and is_dead_local_owner(current.lease_owner):
            taken = _take_over(state, conn, current, values, now)
        elif is_own_unstarted_claim(state, current):
            state.leases.hold(current.id, current.attempt)
            return current
    if taken is not None:
        state.leases.hold(taken.id, taken.attempt)  # before anyone could see it unheld
        runtime.events.publish([state_event(taken)])
        return taken
    log.debug("job %s is %s; message ignored", job_id, current.state.value)
    return None


def is_own_unstarted_claim(state: ProcessState, job: JobRecord) -> bool:
    """This process claimed the job, but the database's answer was lost (the connection died
    after the commit) so the attempt never started: the retried claim carries it on.

    Only the thread whose claim that was, alone on the job, may: a duplicate message taken
    by another thread meanwhile must not start the job a second time.
    """
    with state.claiming_lock:
        alone = state.claiming.get(job.id) == {threading.get_ident()}
    return (
        alone
        and job.state is JobState.RUNNING
        and job.lease_owner == state.owner
        and not state.leases.holds(job.id)
    )


def lease_until(state: ProcessState, now: datetime) -> datetime:
    """When a lease taken `now` by this process expires unless renewed."""
    return now + timedelta(seconds=state.runtime.settings.worker.lease_s)


def claim_values(state: ProcessState, now: datetime) -> dict[str, Any]:
    return {
        "started_at": now,
        "finished_at": None,
        "lease_owner": state.owner,
        "lease_expires_at": lease_until(state, now),
        "progress": None,
        "progress_message": None,
    }


def _take_over(
    state: ProcessState,
    conn: Connection,
    lost: JobRecord,
    values: dict[str, Any],
    now: datetime,
) -> JobRecord | None:
    retried = retry_lost_attempt(state.runtime, conn, lost, now, run_after=now)
    if retried is None or retried.state is not JobState.RETRYING:
        return None
    jobs.transition(
        conn,
        lost.id,
        source=JobState.RETRYING,
        target=JobState.QUEUED,
        now=now,
        values={"run_after": None},
    )
    log.info("took over job %s after its worker died", lost.id, extra={"job_id": lost.id})
    return jobs.transition(
        conn,
        lost.id,
        source=JobState.QUEUED,
        target=JobState.RUNNING,
        now=now,
        values=values,
        next_attempt=True,
    )
