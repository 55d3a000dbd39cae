"""SIGKILL in the middle of a job: the job runs again and completes exactly once."""

from __future__ import annotations

import os
import signal
from pathlib import Path

from jobyard.domain.states import JobState
from tests.factories import Stack, wait_for
from tests.reliability.helpers import attempts, completions, finished, submit_record


def test_killed_child_job_finishes_on_next_attempt(running: Stack, tmp_path: Path) -> None:
    job_id = submit_record(running, "child", tmp_path, sleep_s=1.5)
    started = tmp_path / "child.started"
    wait_for(started.exists, timeout_s=20, what="job start")
    os.kill(int(started.read_text()), signal.SIGKILL)

    job = finished(running, job_id)
    assert job.state is JobState.SUCCEEDED and job.result == 2
    assert attempts(running, job_id) == [(1, "lost"), (2, "succeeded")]
    assert completions(tmp_path) == {("child", 2): 1}


def test_killed_worker_job_recovers_via_lease(running: Stack, tmp_path: Path) -> None:
    """The whole worker dies (main process and children); another worker takes the job."""
    job_id = submit_record(running, "whole", tmp_path, sleep_s=1.5)
    started = tmp_path / "whole.started"
    wait_for(started.exists, timeout_s=20, what="job start")
    running.stop("worker-media", signal.SIGKILL)
    running.worker("media")  # a new process under the same name keeps the module's stack whole
    job = finished(running, job_id)
    assert job.state is JobState.SUCCEEDED
    assert attempts(running, job_id) == [(1, "lost"), (2, "succeeded")]
    assert completions(tmp_path) == {("whole", 2): 1}


def test_killed_mid_chunk_every_job_finishes_once(running: Stack, tmp_path: Path) -> None:
    """SIGKILL while a multi-job message is half done: the rest still run, each once."""
    from jobyard.dispatch import submit

    requests = [
        submit.JobRequest("t.bulk", {"key": f"c{i}", "directory": str(tmp_path), "sleep_s": 0.3})
        for i in range(10)
    ]
    ids = [s.job.id for s in submit.submit_many(running.runtime, requests, submitted_by="t")]
    started = tmp_path / "c3.started"
    wait_for(started.exists, timeout_s=30, what="the fourth job of the chunk")
    os.kill(int(started.read_text()), signal.SIGKILL)

    jobs_done = [finished(running, job_id) for job_id in ids]
    assert {job.state for job in jobs_done} == {JobState.SUCCEEDED}
    assert attempts(running, ids[3]) == [(1, "lost"), (2, "succeeded")]
    done = completions(tmp_path)
    assert sum(done.values()) == 10 and set(done.values()) == {1}
