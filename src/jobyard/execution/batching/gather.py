"""Claiming a batch: the message's job, then more queued jobs of its type.

The jobs beyond the first come from the database, not the broker: one guarded statement claims
up to the rest of the batch (skipping rows other workers are claiming), polled for at most
`max_wait_ms` while the batch is not full. Their own messages arrive later, find the jobs no
longer queued and are dropped, so the broker needs nothing special and any broker works.
"""

from __future__ import annotations

import logging
import time

from jobyard.domain.batch import Batch
from jobyard.events.types import state_event
from jobyard.execution.claims import lease_until
from jobyard.execution.executor import ProcessState
from jobyard.store import batches
from jobyard.store.db import describe, is_transient
from jobyard.store.records import JobRecord

log = logging.getLogger(__name__)
#: How often a batch that is not full looks for more queued jobs while it may wait.
POLL_S = 0.01


def gather(state: ProcessState, first: JobRecord, batch: Batch) -> list[JobRecord]:
    """`first` (already claimed) and up to `batch.max_size - 1` more claimed jobs of its type.

    Every job's lease is held as shared: cancelling one job of a batch never ends the process
    that runs the others. A database error while gathering ends the gathering, not the batch.
    """
    state.leases.hold(first.id, first.attempt, shared=True)
    claimed = [first]
    deadline = time.monotonic() + batch.max_wait_ms / 1000
    while len(claimed) < batch.max_size:
        try:
            more = _claim_more(state, first.type, batch.max_size - len(claimed))
        except Exception as exc:
            if not is_transient(exc):
                raise
            log.warning("gathering a batch of %s stopped: %s", first.type, describe(exc))
            break
        claimed.extend(more)
        left = deadline - time.monotonic()
        if len(claimed) >= batch.max_size or left <= 0:
            break
        time.sleep(min(POLL_S, left))
    return claimed


def _claim_more(state: ProcessState, job_type: str, limit: int) -> list[JobRecord]:
    runtime = state.runtime
    now = runtime.clock()
    with runtime.db.write() as conn:
        more = batches.claim_queued_of_type(
            conn, job_type, limit, now=now, owner=state.owner, lease_until=lease_until(state, now)
        )
    for job in more:
        state.leases.hold(job.id, job.attempt, shared=True)
    if more:
        runtime.events.publish([state_event(job) for job in more])
    return more
