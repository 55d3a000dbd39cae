"""Running the jobs of one multi-job message with few database round trips.

A message carries up to `dispatch_chunk` jobs (a batch submit, or single submits coalesced
while the queue had a backlog, `dispatch.sender`), where two guarded statements per job would
cost more than jobs that take milliseconds. Here jobs are claimed in groups that grow while
they finish fast (1, 2, 4 … up to 64; back to 1 after a slow group, so a long job is claimed
alone and its timeout counts from its own start; the next message of the same job types starts
where the last one left off, `GroupPace`), each runs under its own time limit enforced
by the executor (`execution.time_limit`), and successes are recorded in bulk by a background
thread within `FLUSH_S`. A job that runs long hands the unclaimed rest back to the queue for
other workers (`execution.handback`). The message is acknowledged only after every success of
the chunk is recorded (`run_chunk` flushes before returning), so a worker that dies mid-chunk
loses nothing: its unrecorded jobs are still `running`, their leases expire, and the reaper
retries them. Failures are recorded at once, as in the single-job path.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from jobyard.events.types import state_event
from jobyard.execution import claims, executor, overtaken
from jobyard.execution.handback import HandBack
from jobyard.store import batches, outbox_queries
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
                with runtime.db.single() as conn:  # one statement on PostgreSQL
                    done = batches.succeed_many(conn, pending)
                finished = {job.id for job in done}
                moved_on = [item for item in pending if item.job.id not in finished]
                if moved_on:  # cancelled or taken over meanwhile: rare, and only noted
                    with runtime.db.write() as conn:
                        for item in moved_on:
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


@dataclass
class GroupPace:
    """The group size a process's next message of the same job type(s) starts with: where its
    last one ended. Fast jobs are then claimed many at a time from the first statement on; a
    type that was slow starts at one job again, and another type does not inherit the pace
    (its jobs could wait behind each other, claimed, with their clocks running)."""

    starts: dict[str, int] = field(default_factory=dict)

    def start(self, kind: str) -> int:
        return self.starts.get(kind, 1)

    def reached(self, kind: str, group: int) -> None:
        self.starts[kind] = group


class ClaimUnavailable(Exception):
    """The database failed before these jobs were claimed: deliver them again later."""

    def __init__(self, remaining: Sequence[uuid.UUID]) -> None:
        super().__init__(f"{len(remaining)} jobs not claimed")
        self.remaining = list(remaining)


def run_chunk(
    state: executor.ProcessState,
    job_ids: Sequence[uuid.UUID],
    successes: BulkSuccesses,
    handback: HandBack | None = None,
    pace: GroupPace | None = None,
    kind: str = "",
) -> list[str]:
    """Run the jobs of one message in order; every outcome is recorded when this returns.

    With `handback`, a group that runs long sends the jobs after it back to the queue, and
    they are left out here ("handed back"). With `pace`, the first group is as large as the
    last one of the last message of the same `kind` (its job types), and the size reached is
    left there.
    """
    outcomes: list[str] = []
    group = pace.start(kind) if pace is not None else 1
    index = 0
    try:
        while index < len(job_ids):
            ids = job_ids[index : index + group]
            rest = job_ids[index + len(ids) :]
            began = time.monotonic()
            # Registered while claimed and run: a retried claim whose first answer was lost
            # finds the jobs running under this process, unheld, and carries them on.
            with claims.claiming(state, ids):
                claimed = _claim_or_give_back(state, ids, job_ids[index:])
                watch = handback.arm(rest) if handback is not None else None
                try:
                    _run_group(state, ids, claimed, successes if group > 1 else None, outcomes)
                finally:
                    handed = handback is not None and handback.disarm(watch)
            index += len(ids)
            if handed:
                outcomes.extend("handed back" for _ in rest)
                break
            fast = time.monotonic() - began < FAST_GROUP_S
            group = min(group * 2, MAX_GROUP) if fast else 1
            if pace is not None:
                pace.reached(kind, group)
    finally:
        successes.flush()
    return outcomes


def _claim_or_give_back(
    state: executor.ProcessState, ids: Sequence[uuid.UUID], unclaimed: Sequence[uuid.UUID]
) -> dict[uuid.UUID, JobRecord]:
    """Claim a group, retrying a database that is away for a while.

    Raises:
        ClaimUnavailable: with the message's `unclaimed` jobs, to deliver again later.
    """
    try:
        return state.runtime.db.retry(
            functools.partial(_claim_group, state, ids),
            what=f"claiming {len(ids)} jobs",
            give_up_after_s=claims.CLAIM_RETRY_WINDOW_S,
        )
    except Exception as exc:
        if not is_transient(exc):
            raise
        raise ClaimUnavailable(unclaimed) from exc


def _run_group(
    state: executor.ProcessState,
    ids: Sequence[uuid.UUID],
    claimed: dict[uuid.UUID, JobRecord],
    sink: BulkSuccesses | None,
    outcomes: list[str],
) -> None:
    """Run a claimed group; slow jobs (a group of one, `sink` None) are recorded at once, as
    in the single path."""
    for job_id in ids:
        job = claimed.get(job_id)
        if job is None:
            now = state.runtime.clock()
            values = claims.claim_values(state, now)
            job = claims.take_over_or_skip(state, job_id, values, now)
        if job is None:
            outcomes.append("skipped")
            continue
        outcomes.append(executor.run_attempt(state, job, sink, own_time_limit=True))


def send_back(state: executor.ProcessState, job_ids: Sequence[uuid.UUID]) -> bool:
    """Publish the still-queued jobs among `job_ids` again, as two messages (`HandBack`)."""
    runtime = state.runtime
    with runtime.db.read() as conn:
        rest = outbox_queries.queued_of(conn, job_ids)
    half = (len(rest) + 1) // 2
    return all([runtime.sender.send_now(rest[:half]), runtime.sender.send_now(rest[half:])])


def _claim_group(
    state: executor.ProcessState, job_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, JobRecord]:
    runtime = state.runtime
    claimed = claims.start_attempts(state, job_ids, runtime.clock())  # one guarded statement
    for job in claimed.values():
        state.leases.hold(job.id, job.attempt)
    runtime.events.publish([state_event(job) for job in claimed.values()])
    return claimed
