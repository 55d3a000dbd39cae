"""Running a claimed batch: one call of the function, then each job's own outcome.

Successes are recorded together (one statement on PostgreSQL) before the message is
acknowledged. When the call raises or times out, the fault may lie with any one input, so
each job is run again alone, in this process, with its time limit starting over: one bad
image fails only its own job, and a batch never fails jobs that would have succeeded.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Sequence

from jobyard.app import JobDefinition
from jobyard.context import BatchContext
from jobyard.errors import UnknownJobType
from jobyard.execution import executor
from jobyard.execution.batching.gather import gather
from jobyard.execution.chunks import BulkSuccesses
from jobyard.execution.joblog import JOBS_LOGGER
from jobyard.execution.time_limit import CallTimedOut, call_with_time_limit
from jobyard.store import batches
from jobyard.store.records import JobRecord

log = logging.getLogger(__name__)


def run_claimed(state: executor.ProcessState, job: JobRecord, successes: BulkSuccesses) -> str:
    """Run a claimed job: alone, or in a batch of its type when the type is batched."""
    try:
        definition = state.runtime.yard.definition(job.type)
    except UnknownJobType:
        return executor.run_attempt(state, job)  # which records why it cannot run
    if definition.batch is None or definition.batch.max_size == 1:
        return executor.run_attempt(state, job)
    claimed = gather(state, job, definition.batch)
    return ",".join(run_batch(state, definition, claimed, successes))


def run_batch(
    state: executor.ProcessState,
    definition: JobDefinition,
    claimed: Sequence[JobRecord],
    successes: BulkSuccesses,
) -> list[str]:
    """Call the function once for the claimed jobs; every outcome is recorded on return."""
    attempts = [executor.open_attempt(state, job) for job in claimed]
    ctx = BatchContext([a.ctx for a in attempts], _batch_logger(attempts))
    call = functools.partial(definition.call_batch, ctx, [job.args for job in claimed])
    began = time.monotonic()
    try:
        try:
            results = call_with_time_limit(claimed[0].timeout_s, call)
        except (Exception, CallTimedOut) as exc:
            if len(attempts) == 1:
                first = attempts[0]
                return [executor.fail_with(state, first.job, definition, first.handler, exc)]
            return _each_alone(state, attempts, exc)
        outcomes = [
            executor.fail_with(state, a.job, definition, a.handler, result)
            if isinstance(result, BaseException)
            else executor.succeed(state, a.job, definition, a.handler, result, successes)
            for a, result in zip(attempts, results, strict=True)
        ]
        successes.flush()
    finally:
        for job in claimed:
            state.leases.release(job.id)
    log.info(
        "batch of %d %s jobs ran in %.2fs",
        len(claimed),
        definition.name,
        time.monotonic() - began,
        extra={"action": "batch"},
    )
    return outcomes


def _each_alone(
    state: executor.ProcessState, attempts: Sequence[executor.Attempt], exc: BaseException
) -> list[str]:
    reason = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    log.warning(
        "batch of %d %s jobs failed (%s); running each alone",
        len(attempts),
        attempts[0].job.type,
        reason[:300],
        extra={"action": "batch_split"},
    )
    outcomes = []
    for attempt in attempts:
        job = attempt.job
        attempt.ctx.log.warning(
            "the batch of %d jobs this job ran in failed (%s); running it alone",
            len(attempts),
            reason[:500],
        )
        executor.write_logs(state, job, attempt.handler.take())
        if not _restart_clock(state, job):
            outcomes.append("skipped")  # cancelled or taken over meanwhile
            continue
        outcomes.append(executor.run_attempt(state, job))
    return outcomes


def _restart_clock(state: executor.ProcessState, job: JobRecord) -> bool:
    db = state.runtime.db

    def restart() -> bool:
        with db.write() as conn:
            return batches.restart_attempt_clock(conn, job.id, job.attempt, state.runtime.clock())

    return db.retry(restart, what=f"restarting job {job.id} alone")


def _batch_logger(attempts: Sequence[executor.Attempt]) -> logging.Logger:
    """A logger whose records go to every job of the batch."""
    logger = logging.Logger(f"{JOBS_LOGGER}.batch", logging.DEBUG)
    logger.parent = logging.getLogger(JOBS_LOGGER)
    for attempt in attempts:
        logger.addHandler(attempt.handler)
    return logger
