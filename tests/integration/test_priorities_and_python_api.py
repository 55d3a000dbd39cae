"""Priorities reach the worker in order; the Python API submits and reads jobs."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from jobyard.config import Settings
from jobyard.dispatch import submit
from jobyard.domain.states import JobState
from jobyard.errors import InvalidArgs, JobNotFound
from jobyard.store import jobs
from tests import services
from tests.factories import TEST_POOLS, Backend, Stack, make_settings, wait_for
from tests.yards.basic import yard


@pytest.fixture
def serial_settings(backend: Backend, tmp_path: Path) -> Iterator[Settings]:
    """One worker process taking one message at a time: delivery order is observable."""
    built = make_settings(
        backend,
        tmp_path / "data",
        pools={**TEST_POOLS, "general": {"concurrency": 1, "celery_pool": "solo", "prefetch": 1}},
    )
    yield built
    queues = [built.queue_for(pool) for pool in built.pools]
    if backend.broker_url.startswith("amqp"):
        services.delete_amqp_queues(backend.broker_url, queues)
    elif backend.broker_url.startswith("redis://"):
        services.delete_redis_queues(backend.broker_url, built.queue_prefix)


def test_higher_priority_jobs_start_first(serial_settings: Settings, tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    stack = Stack(serial_settings, logs)
    try:
        low = [_submit(stack, priority=1) for _ in range(5)]
        high = [_submit(stack, priority=8) for _ in range(5)]
        stack.worker("general")

        def all_done() -> list[tuple[float, uuid.UUID]] | None:
            records = [jobs.get(stack.runtime.db, job_id) for job_id in low + high]
            if any(r.state is not JobState.SUCCEEDED for r in records):
                return None
            return sorted((r.started_at.timestamp(), r.id) for r in records if r.started_at)

        order = [job_id for _, job_id in wait_for(all_done, timeout_s=60, what="all jobs")]
    finally:
        stack.close()
    assert set(order[:5]) == set(high), "every priority-8 job starts before any priority-1 job"


def _submit(stack: Stack, *, priority: int) -> uuid.UUID:
    request = submit.JobRequest("t.noop", {}, priority=priority)
    return submit.submit_one(stack.runtime, request, submitted_by="test").job.id


def test_python_api_submit_and_get(settings: Settings) -> None:
    with yard.open(settings):
        job = yard.submit("t.echo", {"message": "from python"}, priority=7, idempotency_key="py-1")
        again = yard.submit("t.echo", {"message": "from python"}, idempotency_key="py-1")
        stored = yard.get(str(job.id))
        with pytest.raises(InvalidArgs, match="message"):
            yard.submit("t.echo", {})
        with pytest.raises(JobNotFound):
            yard.get(uuid.uuid4())
        with pytest.raises(JobNotFound, match="not a job id"):
            yard.get("nope")
    assert again.id == job.id
    assert stored.state is JobState.QUEUED and stored.priority == 7
    assert stored.args == {"message": "from python", "count": 1}
    assert stored.submitted_by == "python"
