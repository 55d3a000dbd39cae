"""Running the jobs of one `dispatch_chunk` message with few database round trips.

A chunk carries up to `dispatch_chunk` jobs of a pool whose jobs take milliseconds, where two
guarded statements per job cost more than the jobs. Here jobs are claimed in groups that
grow while they finish fast (1, 2, 4 … up to 64; back to 1 after a slow group, so a long job
is claimed alone and its timeout counts from its own start), and successes are recorded in
bulk by a background thread within `FLUSH_S`. The message is acknowledged only after every
success of the chunk is recorded (`run_chunk` flushes before returning), so a worker that
dies mid-chunk loses nothing: its unrecorded jobs are still `running`, their leases expire,
and the reaper retries them. Failures are recorded at once, as in the single-job path.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from jobyard.events.types import state_event
from jobyard.execution import claims, executor, overtaken
from jobyard.store import batches
from jobyard.store.db import is_transient
from jobyard.store.records import JobRecord

log = logging.getLogger(__name__)
FLUSH_S = 0.05
MAX_GROUP = 64
FAST_GROUP_S = 0.05


class BulkSuccesses:
    """Successes waiting to be recorded; a daemon thread writes them every `FLUSH_S`."""

    def __init__(self, state: executor.ProcessState) -> None:
        self._state = state
        self._pending: list[batches.Success] = []
        self._lock = threading.Lock()
        self._flushing = threading.Lock()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    def add(self, job: JobRecord, result: Any, finished_at: datetime) -> None:
        """Queue a success for the next flush (at most `FLUSH_S` away)."""
        with self._lock:
            self._pending.append(batches.Success(job, result, finished_at))
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._loop, name="jobyard-bulk-successes", daemon=True
                )
                self._thread.start()
        self._wake.set()

    def flush(self) -> None:
        """Record everything queued so far; returns when it is committed.

        An unavailable database is retried until it is back: these jobs' message is
        acknowledged only after this returns, and their successes must never be dropped.
        """
        with self._flushing:
            with self._lock:
                pending, self._pending = self._pending, []
            if not pending:
                return
            runtime = self._state.runtime

            def record() -> list[JobRecord]:
                with runtime.db.write() as conn:
                    done = batches.succeed_many(conn, pending)
                    finished = {job.id for job in done}
                    for item in pending:
                        if item.job.id not in finished:
                            overtaken.discard_overtaken(conn, item.job, item.finished_at)
                return done

            done = runtime.db.retry(record, what=f"recording {len(pending)} finished jobs")
            runtime.events.publish([state_event(job) for job in done])

    def _loop(self) -> None:
        while True:
            self._wake.wait()
            time.sleep(FLUSH_S)
            self._wake.clear()
            try:
                self.flush()
            except Exception:  # the task's own flush retries and reports it
                log.warning("recording finished jobs failed", exc_info=True)


class ClaimUnavailable(Exception):
    """The database failed before these jobs were claimed: deliver them again later."""

    def __init__(self, remaining: Sequence[uuid.UUID]) -> None:
        super().__init__(f"{len(remaining)} jobs not claimed")
        self.remaining = list(remaining)


def run_chunk(
    state: executor.ProcessState, job_ids: Sequence[uuid.UUID], successes: BulkSuccesses
) -> list[str]:
    """Run the jobs of one message in order; every outcome is recorded when this returns."""
    outcomes: list[str] = []
    group = 1
    index = 0
    try:
        while index < len(job_ids):
            ids = job_ids[index : index + group]
            began = time.monotonic()
            try:
                claimed = state.runtime.db.retry(
                    functools.partial(_claim_group, state, ids),
                    what=f"claiming {len(ids)} jobs",
                    give_up_after_s=claims.CLAIM_RETRY_WINDOW_S,
                )
            except Exception as exc:
                if not is_transient(exc):
                    raise
                raise ClaimUnavailable(job_ids[index:]) from exc
            for job_id in ids:
                job = claimed.get(job_id)
                if job is None:
                    now = state.runtime.clock()
                    values = claims.claim_values(state, now)
                    job = claims.take_over_or_skip(state, job_id, values, now)
                if job is None:
                    outcomes.append("skipped")
                    continue
                # Slow jobs (a group of one) are recorded at once, as in the single path.
                sink = successes if group > 1 else None
                outcomes.append(executor.run_attempt(state, job, sink))
            index += len(ids)
            fast = time.monotonic() - began < FAST_GROUP_S
            group = min(group * 2, MAX_GROUP) if fast else 1
    finally:
        successes.flush()
    return outcomes


def _claim_group(
    state: executor.ProcessState, job_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, JobRecord]:
    runtime = state.runtime
    now = runtime.clock()
    values = claims.claim_values(state, now)
    with runtime.db.write() as conn:
        claimed = batches.claim_many(
            conn,
            job_ids,
            now=now,
            owner=state.owner,
            lease_until=values["lease_expires_at"],
        )
    for job in claimed.values():
        state.leases.hold(job.id, job.attempt)
    runtime.events.publish([state_event(job) for job in claimed.values()])
    return claimed
