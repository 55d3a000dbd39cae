"""Transactional outbox: publish after commit, and re-publish what never got out.

A job row is committed before its message is sent. If the send fails (broker down) the row
stays `queued` with `dispatched_at` unset, and the scheduler's `redispatch_stale` publishes it
later. A duplicate message is harmless: the worker's guarded claim turns it into a no-op. Jobs
of pod-per-job pools get no message: their launcher takes them from the database, so they are
only marked dispatched.

New submits are stored already marked dispatched and sent by `dispatch.sender`, which saves a
second transaction per submit: a failed send clears the mark at once, and a submitter killed
between its commit and its send leaves a job the lost-message heal publishes (its queue is
empty while the job waits), exactly as after a broker that lost the message.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import timedelta

from jobyard.domain.states import JobState
from jobyard.events.types import state_event
from jobyard.runtime import Runtime
from jobyard.store import jobs, outbox_queries
from jobyard.store.jobs import Dispatch
from jobyard.store.records import JobRecord

log = logging.getLogger(__name__)
BATCH = 1000


def publish_committed(runtime: Runtime, dispatches: Sequence[Dispatch]) -> bool:
    """Publish committed queued jobs and record that they went out.

    Returns:
        False when the broker was unreachable; the jobs stay in the outbox.
    """
    if not dispatches:
        return True
    if not runtime.sender.send_now(dispatches):
        return False
    with runtime.db.write() as conn:
        outbox_queries.mark_dispatched(conn, [d.id for d in dispatches], runtime.clock())
    return True


def redispatch_stale(runtime: Runtime) -> int:
    """Publish queued jobs left unpublished for longer than the dispatch grace."""
    cutoff = runtime.clock() - timedelta(seconds=runtime.settings.scheduler.dispatch_grace_s)
    with runtime.db.read() as conn:
        stale = outbox_queries.undispatched(conn, updated_before=cutoff, limit=BATCH)
    if stale and publish_committed(runtime, stale):
        log.info("re-dispatched %d job(s)", len(stale), extra={"action": "redispatch"})
        return len(stale)
    return 0


def promote_due_retries(runtime: Runtime) -> int:
    """Move jobs whose retry backoff passed back to `queued` and publish them."""
    now = runtime.clock()
    with runtime.db.read() as conn:
        due = outbox_queries.due_retries(conn, now=now, limit=BATCH)
    promoted: list[JobRecord] = []
    with runtime.db.write() as conn:
        for job_id in due:
            record = jobs.transition(
                conn,
                job_id,
                source=JobState.RETRYING,
                target=JobState.QUEUED,
                now=now,
                values={"dispatched_at": None, "run_after": None},
            )
            if record is not None:
                promoted.append(record)
    runtime.events.publish([state_event(r) for r in promoted])
    publish_committed(runtime, [Dispatch.of(r) for r in promoted])
    return len(promoted)


def heal_lost_messages(runtime: Runtime) -> int:
    """Publish again queued jobs whose messages the broker lost.

    A pool whose broker queue is empty while the database holds jobs queued and published more
    than `lost_message_after_s` ago has lost their messages (a broker restart without
    persistence, a purge). Messages a worker prefetched but has not started may be published
    twice; the duplicate is a no-op.
    """
    now = runtime.clock()
    before = now - timedelta(seconds=runtime.settings.scheduler.lost_message_after_s)
    with runtime.db.read() as conn:
        waiting = outbox_queries.queues_waiting_since(conn, dispatched_before=before)
    queues = [q for q in waiting if q not in runtime.settings.launched_queues]
    if not queues:
        return 0
    lengths = runtime.publisher.queue_lengths(queues)
    healed = 0
    for queue in queues:
        if lengths.get(queue, 0) > 0:
            continue
        with runtime.db.read() as conn:
            lost = outbox_queries.dispatched_before(conn, queue, before=before, limit=BATCH)
        runtime.publisher.publish(lost)
        with runtime.db.write() as conn:
            outbox_queries.mark_redispatched(conn, [d.id for d in lost], now)
        healed += len(lost)
        log.warning(
            "queue %s was empty while %d job(s) waited; published them again",
            queue,
            len(lost),
            extra={"action": "heal_lost_messages"},
        )
    return healed
