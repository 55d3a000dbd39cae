"""The broker fails between commit and publish, or loses its messages: nothing is lost."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from jobyard.config import Settings
from jobyard.dispatch import submit
from jobyard.dispatch.sender import MessageSender
from jobyard.domain.states import JobState
from jobyard.store import job_inserts, jobs
from jobyard.store.jobs import Dispatch
from jobyard.store.records import JobRecord
from tests import services
from tests.factories import Backend, Stack, make_settings
from tests.reliability.helpers import finished


@pytest.fixture(params=["sqlite", "postgres"])
def outage_stack(
    request: pytest.FixtureRequest, tmp_path: Path, sqlite_template: Path
) -> Iterator[tuple[Stack, int]]:
    """A stack whose broker is a private redis-server the test may stop and restart."""
    port = services.free_port()
    broker = f"redis://127.0.0.1:{port}/0"
    if request.param == "sqlite":
        db_file = tmp_path / "jobyard.db"
        db_file.write_bytes(sqlite_template.read_bytes())
        yield from _stack(Backend("sqlite", f"sqlite:///{db_file}", broker), tmp_path, port)
    else:
        request.getfixturevalue("pg_template")
        with services.pg_database() as url:
            yield from _stack(Backend("postgres", url, broker), tmp_path, port)


def _stack(backend: Backend, tmp_path: Path, port: int) -> Iterator[tuple[Stack, int]]:
    settings: Settings = make_settings(backend, tmp_path / "data")
    logs = tmp_path / "logs"
    logs.mkdir()
    stack = Stack(settings, logs)
    try:
        yield stack, port
    finally:
        stack.close()


def _submit(stack: Stack) -> uuid.UUID:
    request = submit.JobRequest("t.echo", {"message": "survives"})
    return submit.submit_one(stack.runtime, request, submitted_by="test").job.id


def test_broker_down_between_commit_and_publish(outage_stack: tuple[Stack, int]) -> None:
    stack, port = outage_stack
    with services.private_redis(port):
        stack.worker("general")
        stack.scheduler()
    # The broker is down now: the submit is accepted and stored, the publish fails.
    job_id = _submit(stack)
    stored = jobs.get(stack.runtime.db, job_id)
    assert stored.state is JobState.QUEUED and stored.dispatched_at is None
    with services.private_redis(port):
        job = finished(stack, job_id, timeout_s=60)
    assert job.state is JobState.SUCCEEDED and job.result == {"message": "survives", "count": 1}


def test_broker_restart_losing_messages_is_healed(outage_stack: tuple[Stack, int]) -> None:
    stack, port = outage_stack
    with services.private_redis(port):
        stack.scheduler()
        ids = [_submit(stack) for _ in range(5)]
        assert all(jobs.get(stack.runtime.db, i).dispatched_at is not None for i in ids)
    # Restarted without persistence: the five messages are gone, the rows are not.
    with services.private_redis(port):
        stack.worker("general")
        done = [finished(stack, job_id, timeout_s=60) for job_id in ids]
    assert {job.state for job in done} == {JobState.SUCCEEDED}


def test_submitter_killed_between_commit_and_publish(outage_stack: tuple[Stack, int]) -> None:
    """A submit stores its row marked as sent and then publishes; a process killed between
    the two leaves exactly this row and no message: the lost-message heal publishes it."""
    stack, port = outage_stack
    request = submit.JobRequest("t.echo", {"message": "orphan"})
    row = submit.job_row(stack.runtime, request, "test", stack.runtime.clock())
    with stack.runtime.db.write() as conn:
        job_inserts.insert_many(conn, [row])
    assert jobs.get(stack.runtime.db, row["id"]).dispatched_at is not None
    with services.private_redis(port):
        stack.worker("general")
        stack.scheduler()
        job = finished(stack, row["id"], timeout_s=60)
    assert job.state is JobState.SUCCEEDED and job.result == {"message": "orphan", "count": 1}


def test_a_coalesced_send_that_fails_leaves_the_job_to_the_outbox(
    outage_stack: tuple[Stack, int],
) -> None:
    """A submit deferred to the background sender (its queue had a backlog) whose send then
    fails gets its dispatch mark cleared, and the outbox publishes it once the broker is back."""
    stack, port = outage_stack
    runtime = stack.runtime
    sender = MessageSender(runtime.publisher, runtime.db, runtime.settings, backlog_ttl_s=600)
    queue = runtime.settings.queue_for("general")
    with services.private_redis(port):
        warmup = [_stored_row(stack, f"w{i}") for i in range(3)]
        for row in warmup:  # the second finds one message waiting: the third is deferred
            assert sender.send_new([Dispatch.of(JobRecord.from_new_row(row))])
        sender.flush()
        assert runtime.publisher.queue_lengths([queue])[queue] == 3  # a backlog, now known
    row = _stored_row(stack, "deferred")
    assert sender.send_new([Dispatch.of(JobRecord.from_new_row(row))])  # accepted, deferred
    sender.flush()
    assert jobs.get(runtime.db, row["id"]).dispatched_at is None
    sender.close()
    with services.private_redis(port):
        stack.worker("general")
        stack.scheduler()
        job = finished(stack, row["id"], timeout_s=60)
    assert job.state is JobState.SUCCEEDED and job.result == {"message": "deferred", "count": 1}


def _stored_row(stack: Stack, message: str) -> dict[str, Any]:
    """A job row committed as submits store them (marked sent), not yet published."""
    request = submit.JobRequest("t.echo", {"message": message})
    row = submit.job_row(stack.runtime, request, "test", stack.runtime.clock())
    with stack.runtime.db.write() as conn:
        job_inserts.insert_many(conn, [row])
    return row
