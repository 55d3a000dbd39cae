"""Running one attempt of a job: claim, call the function, record the outcome.

Every step is a guarded transition, so a duplicate or late message is a no-op and a job never
completes twice. The broker-specific parts (Celery signals, time-limit exceptions) stay in
`execution.celery`.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import traceback
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import Connection

from jobyard.app import JobDefinition
from jobyard.context import Fail, JobContext, Retry
from jobyard.domain.results import storable_result
from jobyard.domain.retries import backoff_delay_s, has_attempts_left
from jobyard.domain.states import AttemptOutcome, JobState
from jobyard.errors import JobyardError, ResultNotSerializable, ResultTooLarge, UnknownJobType
from jobyard.events.types import log_event, state_event
from jobyard.execution.hooks import AttemptHooks
from jobyard.execution.joblog import BufferingJobHandler, job_logger
from jobyard.execution.leases import LeaseKeeper
from jobyard.execution.overtaken import discard_overtaken, retry_lost_attempt
from jobyard.execution.owners import is_dead_local_owner
from jobyard.runtime import Runtime
from jobyard.storage.job_artifacts import JobArtifacts
from jobyard.store import jobs, logs
from jobyard.store.records import JobRecord

log = logging.getLogger(__name__)
#: How long a claim retries an unavailable database before the message goes back to the broker.
CLAIM_RETRY_WINDOW_S = 5.0


@dataclass
class ProcessState:
    """What one worker process needs to run attempts."""

    runtime: Runtime
    owner: str
    leases: LeaseKeeper
    #: Exceptions that mean "the attempt ran out of time" (Celery's soft time limit).
    timeout_errors: tuple[type[BaseException], ...] = ()
    #: Threads of this process inside `claim` for a job: only a claim that is alone on its job
    #: may carry on a claim of its own whose answer was lost (threads pools get duplicates).
    claiming: dict[uuid.UUID, set[int]] = dataclasses.field(default_factory=dict)
    claiming_lock: threading.Lock = dataclasses.field(default_factory=threading.Lock)


@dataclass(frozen=True)
class Failure:
    """How an attempt failed."""

    outcome: AttemptOutcome
    error: str
    error_type: str
    traceback: str | None
    retry_after_s: float | None = None
    permanent: bool = False


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
    me = threading.get_ident()
    with state.claiming_lock:
        state.claiming.setdefault(job_id, set()).add(me)
    try:
        return state.runtime.db.retry(
            lambda: _claim_once(state, job_id),
            what=f"claiming job {job_id}",
            give_up_after_s=CLAIM_RETRY_WINDOW_S,
        )
    finally:
        with state.claiming_lock:
            threads = state.claiming.get(job_id, set())
            threads.discard(me)
            if not threads:
                state.claiming.pop(job_id, None)


def start_attempt(state: ProcessState, job_id: uuid.UUID, now: datetime) -> JobRecord | None:
    """The guarded `queued → running` of a new attempt, leased to this process; None when the
    job is not queued (cancelled, or claimed by someone else). Workers and launchers alike."""
    with state.runtime.db.single() as conn:
        return jobs.transition(
            conn,
            job_id,
            source=JobState.QUEUED,
            target=JobState.RUNNING,
            now=now,
            values=claim_values(state, now),
            next_attempt=True,
        )


def _claim_once(state: ProcessState, job_id: uuid.UUID) -> JobRecord | None:
    runtime = state.runtime
    now = runtime.clock()
    values = claim_values(state, now)
    job = start_attempt(state, job_id, now)
    if job is not None:
        # Held before `claim` returns, so no other thread can mistake it for a lost claim.
        state.leases.hold(job.id, job.attempt)
        runtime.events.publish([state_event(job)])
        return job
    return take_over_or_skip(state, job_id, values, now)


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


def claim_values(state: ProcessState, now: datetime) -> dict[str, Any]:
    lease_s = state.runtime.settings.worker.lease_s
    return {
        "started_at": now,
        "finished_at": None,
        "lease_owner": state.owner,
        "lease_expires_at": now + timedelta(seconds=lease_s),
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


class SuccessSink(Protocol):
    """Takes successes to record later, in bulk (`execution.chunks`)."""

    def add(self, job: JobRecord, result: Any, finished_at: datetime) -> None:
        """Record this success soon; the job's lease is still held."""


def run_attempt(state: ProcessState, job: JobRecord, successes: SuccessSink | None = None) -> str:
    """Call the job function for the claimed attempt and store the outcome.

    With `successes`, a success is handed over to be recorded with others instead of at once
    (failures are always recorded at once).
    """
    handler = BufferingJobHandler(job.id, job.attempt)
    hooks = AttemptHooks(state.runtime, job, handler, state.leases)
    handler.sink = hooks.write_logs
    # The lease is held until the outcome is recorded, however long the database is away.
    state.leases.hold(job.id, job.attempt)
    try:
        definition = state.runtime.yard.definition(job.type)
        outputs = JobArtifacts(
            lambda: state.runtime.storage,
            str(job.id),
            job.attempt,
            hooks.record_artifact,
            state.runtime.clock,
        )
        ctx = JobContext(str(job.id), job.attempt, job_logger(handler), hooks, outputs)
        result = definition.call(ctx, job.args)
    except UnknownJobType as exc:
        return _fail(state, job, None, handler, _failure(exc, permanent=True))
    except Fail as exc:
        return _fail(state, job, definition, handler, _failure(exc, permanent=True))
    except Retry as exc:
        log.info("job %s asked to retry: %s", job.id, exc.reason, extra={"job_id": job.id})
        failure = Failure(AttemptOutcome.FAILED, exc.reason, "Retry", None, exc.after_s)
        return _fail(state, job, definition, handler, failure)
    except state.timeout_errors as exc:
        failure = dataclasses.replace(
            _failure(exc, outcome=AttemptOutcome.TIMED_OUT),
            error=f"timed out after {job.timeout_s:g}s",
        )
        return _fail(state, job, definition, handler, failure)
    except Exception as exc:
        return _fail(state, job, definition, handler, _failure(exc))
    else:
        return _succeed(state, job, definition, handler, result, successes)
    finally:
        state.leases.release(job.id)


def record_success(state: ProcessState, job: JobRecord, result: Any) -> str:
    """Record an attempt that ran elsewhere (a pod-per-job process) as succeeded."""
    handler = BufferingJobHandler(job.id, job.attempt)
    return _succeed(state, job, _definition_or_none(state, job), handler, result)


def record_failure(state: ProcessState, job: JobRecord, failure: Failure) -> str:
    """Record an attempt that ran elsewhere as failed: retried per its type, or final."""
    handler = BufferingJobHandler(job.id, job.attempt)
    return _fail(state, job, _definition_or_none(state, job), handler, failure)


def _definition_or_none(state: ProcessState, job: JobRecord) -> JobDefinition | None:
    try:
        return state.runtime.yard.definition(job.type)
    except UnknownJobType:
        return None


def _failure(
    exc: BaseException,
    *,
    outcome: AttemptOutcome = AttemptOutcome.FAILED,
    permanent: bool = False,
) -> Failure:
    text = exc.message if isinstance(exc, JobyardError) else str(exc)
    return Failure(
        outcome=outcome,
        error=text or type(exc).__name__,
        error_type=type(exc).__name__,
        traceback="".join(traceback.format_exception(exc)),
        permanent=permanent,
    )


def _succeed(
    state: ProcessState,
    job: JobRecord,
    definition: JobDefinition | None,
    handler: BufferingJobHandler,
    result: Any,
    successes: SuccessSink | None = None,
) -> str:
    try:
        stored = storable_result(result)
    except (ResultTooLarge, ResultNotSerializable) as exc:
        return _fail(state, job, definition, handler, _failure(exc, permanent=True))
    now = state.runtime.clock()
    if successes is not None:
        write_logs(state, job, handler.take())
        successes.add(job, stored, now)
        return JobState.SUCCEEDED.value
    values = {
        "result": stored,
        "progress": 1.0,
        "finished_at": now,
        "error": None,
        "error_type": None,
        "traceback": None,
    }
    ends = jobs.AttemptEnd(AttemptOutcome.SUCCEEDED.value)
    return _finish(state, job, handler, JobState.SUCCEEDED, values, ends, now)


def _finish(
    state: ProcessState,
    job: JobRecord,
    handler: BufferingJobHandler,
    target: JobState,
    values: dict[str, Any],
    ends: jobs.AttemptEnd,
    now: datetime,
) -> str:
    """End the attempt: one statement for state and attempt record, then any log lines.

    Retried until the database answers: the message is acknowledged only after this returns,
    and an outcome once reached is never dropped (a restart must not make it run again).
    """
    db = state.runtime.db

    def record() -> JobRecord | None:
        with db.single() as conn:
            return jobs.transition(
                conn,
                job.id,
                source=JobState.RUNNING,
                target=target,
                now=now,
                attempt=job.attempt,
                values=values,
                ends=ends,
            )

    done = db.retry(record, what=f"recording the outcome of job {job.id}")
    write_logs(state, job, handler.take())
    if done is not None:
        state.runtime.events.publish([state_event(done)])
        _log_outcome(done, job.attempt, ends)
        return target.value

    def discard() -> str:
        with db.write() as conn:
            return discard_overtaken(conn, job, now)

    return db.retry(discard, what=f"recording the outcome of job {job.id}")


def _log_outcome(job: JobRecord, attempt: int, ends: jobs.AttemptEnd) -> None:
    """One line per finished attempt: what a person watching `jobyard up` wants to see."""
    took = ""
    if job.started_at is not None and job.updated_at is not None:
        took = f" in {(job.updated_at - job.started_at).total_seconds():.2f}s"
    error = f": {ends.error}" if ends.error else ""
    log.info(
        "job %s %s attempt %d %s%s%s",
        job.type,
        job.id,
        attempt,
        ends.outcome,
        took,
        error[:300],
        extra={"job_id": job.id, "action": ends.outcome},
    )


def write_logs(state: ProcessState, job: JobRecord, rows: list[dict[str, Any]]) -> None:
    """Store log rows of the attempt (retried until the database answers) and publish them."""
    if not rows:
        return
    db = state.runtime.db

    def append() -> None:
        with db.write() as conn:
            logs.append(conn, rows)

    db.retry(append, what=f"writing the log of job {job.id}")
    state.runtime.events.publish([log_event(job, row) for row in rows])


def _fail(
    state: ProcessState,
    job: JobRecord,
    definition: JobDefinition | None,
    handler: BufferingJobHandler,
    failure: Failure,
) -> str:
    now = state.runtime.clock()
    error = {
        "error": failure.error,
        "error_type": failure.error_type,
        "traceback": failure.traceback,
    }
    retry = (
        definition is not None
        and not failure.permanent
        and has_attempts_left(job.attempt, job.max_attempts)
    )
    if retry:
        assert definition is not None
        delay = failure.retry_after_s
        if delay is None:
            delay = backoff_delay_s(definition.retry, job.attempt)
        target, values = JobState.RETRYING, {"run_after": now + timedelta(seconds=delay)}
    else:
        target, values = JobState.FAILED, {"finished_at": now}
    ends = jobs.AttemptEnd(failure.outcome.value, **error)
    return _finish(state, job, handler, target, {**values, **error}, ends, now)
