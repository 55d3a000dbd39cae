"""Running one claimed attempt of a job: call the function, record the outcome.

Every step is a guarded transition, so a duplicate or late message is a no-op and a job never
completes twice. Claims are in `execution.claims`; the broker-specific parts (Celery signals,
time-limit exceptions) stay in `execution.celery`.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import threading
import traceback
import uuid
from collections.abc import Callable
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
from jobyard.execution.overtaken import discard_overtaken
from jobyard.execution.time_limit import CallTimedOut, call_with_time_limit
from jobyard.runtime import Runtime
from jobyard.storage.job_artifacts import JobArtifacts
from jobyard.store import batches, jobs, logs
from jobyard.store.records import JobRecord

log = logging.getLogger(__name__)


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


class SuccessSink(Protocol):
    """Takes successes to record later, in bulk (`execution.chunks`)."""

    def add(self, job: JobRecord, result: Any, finished_at: datetime) -> None:
        """Record this success soon; the job's lease is still held."""


@dataclass(frozen=True)
class Attempt:
    """One claimed attempt's log buffer and the context its function sees."""

    job: JobRecord
    handler: BufferingJobHandler
    ctx: JobContext


def open_attempt(state: ProcessState, job: JobRecord) -> Attempt:
    """The log buffer, hooks and `JobContext` of a claimed attempt."""
    handler = BufferingJobHandler(job.id, job.attempt)
    hooks = AttemptHooks(state.runtime, job, handler, state.leases)
    handler.sink = hooks.write_logs
    outputs = JobArtifacts(
        lambda: state.runtime.storage,
        str(job.id),
        job.attempt,
        hooks.record_artifact,
        state.runtime.clock,
    )
    ctx = JobContext(str(job.id), job.attempt, job_logger(handler), hooks, outputs)
    return Attempt(job, handler, ctx)


def run_attempt(
    state: ProcessState,
    job: JobRecord,
    successes: SuccessSink | None = None,
    *,
    own_time_limit: bool = False,
) -> str:
    """Call the job function for the claimed attempt and store the outcome.

    With `successes`, a success is handed over to be recorded with others instead of at once
    (failures are always recorded at once). A batched type is called as a batch of one, under
    the executor's own time limit (its message has no Celery soft limit), and so is any job
    with `own_time_limit` (one of a multi-job message, whose Celery limit covers them all).
    """
    attempt = open_attempt(state, job)
    # The lease is held until the outcome is recorded, however long the database is away.
    state.leases.hold(job.id, job.attempt)
    definition: JobDefinition | None = None
    try:
        definition = state.runtime.yard.definition(job.type)
        call = functools.partial(definition.call, attempt.ctx, job.args)
        limited = own_time_limit or definition.batch is not None
        result = call_with_time_limit(job.timeout_s, call) if limited else call()
    except (Exception, CallTimedOut) as exc:
        return fail_with(state, job, definition, attempt.handler, exc)
    else:
        return succeed(state, job, definition, attempt.handler, result, successes)
    finally:
        state.leases.release(job.id)


def fail_with(
    state: ProcessState,
    job: JobRecord,
    definition: JobDefinition | None,
    handler: BufferingJobHandler,
    exc: BaseException,
) -> str:
    """Record the attempt as failed by `exc`: retried per its type, or final."""
    if isinstance(exc, UnknownJobType):
        return _fail(state, job, None, handler, _failure(exc, permanent=True))
    if isinstance(exc, Fail):
        return _fail(state, job, definition, handler, _failure(exc, permanent=True))
    if isinstance(exc, Retry):
        log.info("job %s asked to retry: %s", job.id, exc.reason, extra={"job_id": job.id})
        failure = Failure(AttemptOutcome.FAILED, exc.reason, "Retry", None, exc.after_s)
        return _fail(state, job, definition, handler, failure)
    if isinstance(exc, (CallTimedOut, *state.timeout_errors)):
        failure = dataclasses.replace(
            _failure(exc, outcome=AttemptOutcome.TIMED_OUT),
            error=f"timed out after {job.timeout_s:g}s",
        )
        return _fail(state, job, definition, handler, failure)
    return _fail(state, job, definition, handler, _failure(exc))


def record_success(state: ProcessState, job: JobRecord, result: Any) -> str:
    """Record an attempt that ran elsewhere (a pod-per-job process) as succeeded."""
    handler = BufferingJobHandler(job.id, job.attempt)
    return succeed(state, job, _definition_or_none(state, job), handler, result)


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


def succeed(
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
    success = batches.Success(job, stored, now)

    def record(conn: Connection) -> JobRecord | None:
        # The bulk statement, with one row: on PostgreSQL the cheapest way to record it.
        done = batches.succeed_many(conn, [success])
        return done[0] if done else None

    ends = jobs.AttemptEnd(AttemptOutcome.SUCCEEDED.value)
    return _finish(state, job, handler, JobState.SUCCEEDED, record, ends, now)


def _finish(
    state: ProcessState,
    job: JobRecord,
    handler: BufferingJobHandler,
    target: JobState,
    write: Callable[[Connection], JobRecord | None],
    ends: jobs.AttemptEnd,
    now: datetime,
) -> str:
    """End the attempt: any log lines, then one statement for state and attempt record
    (`write`: the outcome's guarded transition, None when the guard refused it).

    Retried until the database answers: the message is acknowledged only after this returns,
    and an outcome once reached is never dropped (a restart must not make it run again).
    """
    db = state.runtime.db

    def record() -> JobRecord | None:
        with db.single() as conn:
            return write(conn)

    # The attempt's last log lines first: whoever sees the outcome sees every line before it.
    write_logs(state, job, handler.take())
    done = db.retry(record, what=f"recording the outcome of job {job.id}")
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

    def record(conn: Connection) -> JobRecord | None:
        return jobs.transition(
            conn,
            job.id,
            source=JobState.RUNNING,
            target=target,
            now=now,
            attempt=job.attempt,
            values={**values, **error},
            ends=ends,
        )

    return _finish(state, job, handler, target, record, ends, now)
