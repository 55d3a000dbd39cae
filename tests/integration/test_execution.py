"""Jobs executed by real `jobyard worker` processes on every backend."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

from jobyard.dispatch import submit
from jobyard.domain.states import JobState
from jobyard.store import jobs, logs
from jobyard.store.records import JobRecord
from tests.factories import Stack, attempts, finished, wait_for


def _submit(stack: Stack, type_: str, **args: object) -> uuid.UUID:
    request = submit.JobRequest(type_, dict(args))
    return submit.submit_one(stack.runtime, request, submitted_by="test").job.id


def test_outcomes(running: Stack) -> None:
    """Success, retry after failure, final failure, Retry, oversized and bad results."""
    ids = {
        "echo": _submit(running, "t.echo", message="hi", count=2),
        "model": _submit(running, "t.model", x=2, y=3),
        "flaky": _submit(running, "t.flaky"),
        "fail": _submit(running, "t.fail", reason="bad input"),
        "retry": _submit(running, "t.retry"),
        "big": _submit(running, "t.big_result"),
        "odd": _submit(running, "t.unserializable"),
    }
    done = {name: finished(running, job_id) for name, job_id in ids.items()}

    assert done["echo"].state is JobState.SUCCEEDED
    assert done["echo"].result == {"message": "hi", "count": 2}
    assert done["model"].result == 5
    assert (done["flaky"].state, done["flaky"].result) == (JobState.SUCCEEDED, 2)
    assert attempts(running, ids["flaky"]) == [(1, "failed"), (2, "succeeded")]
    assert done["fail"].state is JobState.FAILED
    assert done["fail"].error == "bad input" and done["fail"].error_type == "ValueError"
    assert "Traceback" in (done["fail"].traceback or "")
    assert attempts(running, ids["fail"]) == [(1, "failed"), (2, "failed")]
    assert (done["retry"].state, done["retry"].result) == (JobState.SUCCEEDED, 2)
    assert done["big"].state is JobState.FAILED and "1 MiB" in (done["big"].error or "")
    assert attempts(running, ids["big"]) == [(1, "failed")]
    assert done["odd"].state is JobState.FAILED
    assert "JSON" in (done["odd"].error or "")


def test_progress_and_logs_are_visible_while_running(running: Stack) -> None:
    job_id = _submit(running, "t.progress", steps=4, delay_s=0.4)

    def midway() -> JobRecord | None:
        job = jobs.get(running.runtime.db, job_id)
        return job if job.state is JobState.RUNNING and (job.progress or 0) >= 0.25 else None

    seen = wait_for(midway, timeout_s=20, what="progress while running")
    assert seen.progress_message and seen.progress_message.startswith("step")
    done = finished(running, job_id)
    assert done.state is JobState.SUCCEEDED and done.progress == 1.0
    with running.runtime.db.read() as conn:
        lines = [line.message for line in logs.page(conn, job_id)]
    assert lines == [f"did step {n}" for n in range(1, 5)]


def test_cancel_running_job(running: Stack, tmp_path: Path) -> None:
    from jobyard import actions

    marker = tmp_path / "started"
    job_id = _submit(running, "t.until_cancelled", marker=str(marker))
    wait_for(marker.exists, timeout_s=20, what="job start")
    assert actions.cancel(running.runtime, job_id).state is JobState.CANCELLED

    def attempt_recorded() -> list[tuple[int, str]]:
        return attempts(running, job_id)

    assert wait_for(attempt_recorded, timeout_s=20, what="attempt end") == [(1, "cancelled")]
    assert jobs.get(running.runtime.db, job_id).state is JobState.CANCELLED


def test_hard_cancel_ends_a_prefork_job_that_ignores_it(running: Stack, tmp_path: Path) -> None:
    """`media` is a prefork pool: its child is ended, the pool carries on with a new one."""
    from jobyard import actions

    marker = tmp_path / "pid"
    job_id = _submit(running, "t.ignores_cancel", marker=str(marker))
    wait_for(lambda: marker.exists() and marker.read_text(), timeout_s=20, what="job start")
    child = int(marker.read_text())
    actions.cancel(running.runtime, job_id)
    wait_for(lambda: not _alive(child), timeout_s=20, what="the child to be ended")
    assert attempts(running, job_id) == [(1, "cancelled")]
    assert jobs.get(running.runtime.db, job_id).state is JobState.CANCELLED
    after = finished(running, _submit(running, "t.progress", steps=1, delay_s=0))
    assert after.state is JobState.SUCCEEDED


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_timeout_stops_the_attempt(running: Stack) -> None:
    job_id = _submit(running, "t.slow_timeout")
    job = finished(running, job_id, timeout_s=30)
    assert job.state is JobState.FAILED
    assert "timed out" in (job.error or "")
    assert attempts(running, job_id) == [(1, "timed_out")]


def test_redelivered_message_for_finished_job_is_noop(running: Stack) -> None:
    from jobyard.store.jobs import Dispatch

    job_id = _submit(running, "t.echo", message="once")
    job = finished(running, job_id)
    running.runtime.publisher.publish([Dispatch.of(job)])
    marker_id = _submit(running, "t.noop")
    finished(running, marker_id)  # the duplicate was consumed before or alongside this one
    again = jobs.get(running.runtime.db, job_id)
    assert again.state is JobState.SUCCEEDED and again.attempt == 1
    assert again.updated_at == job.updated_at
    assert attempts(running, job_id) == [(1, "succeeded")]


def test_chunked_pool_runs_every_job_once(running: Stack, tmp_path: Path) -> None:
    """A `dispatch_chunk` pool: 25 jobs in 3 messages, one failing once, all succeed once."""
    requests = [
        submit.JobRequest("t.bulk", {"key": f"b{i}", "directory": str(tmp_path), "fail": i == 7})
        for i in range(25)
    ]
    ids = [s.job.id for s in submit.submit_many(running.runtime, requests, submitted_by="t")]
    done = [finished(running, job_id) for job_id in ids]
    assert {job.state for job in done} == {JobState.SUCCEEDED}
    assert [job.result for job in done] == [2 if i == 7 else 1 for i in range(25)]
    lines = (tmp_path / "completions.log").read_text().split("\n")
    assert sorted(filter(None, lines)) == sorted(f"b{i} {2 if i == 7 else 1}" for i in range(25))


def test_job_type_statistics_come_from_stored_jobs(running: Stack) -> None:
    from jobyard.api.routes.pools import recent_type_stats

    ids = [_submit(running, "t.echo", message="s") for _ in range(3)]
    failing = _submit(running, "t.fail", reason="counted")
    for job_id in [*ids, failing]:
        finished(running, job_id)
    stats = {s.type: s for s in recent_type_stats(running.runtime, 1)}
    assert stats["t.echo"].runs >= 3 and stats["t.echo"].p50_s is not None
    assert stats["t.fail"].failed >= 1 and stats["t.fail"].failure_rate > 0
    assert stats["t.fail"].last_error is not None
