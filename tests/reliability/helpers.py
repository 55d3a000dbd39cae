"""Shared steps of the reliability tests."""

from __future__ import annotations

import uuid
from collections import Counter
from pathlib import Path

from jobyard.dispatch import submit
from jobyard.domain.states import TERMINAL_STATES
from jobyard.store import jobs
from jobyard.store.records import JobRecord
from tests.factories import Stack, wait_for


def submit_record(stack: Stack, key: str, directory: Path, sleep_s: float) -> uuid.UUID:
    request = submit.JobRequest(
        "t.record", {"key": key, "directory": str(directory), "sleep_s": sleep_s}
    )
    return submit.submit_one(stack.runtime, request, submitted_by="test").job.id


def finished(stack: Stack, job_id: uuid.UUID, timeout_s: float = 60) -> JobRecord:
    def probe() -> JobRecord | None:
        job = jobs.get(stack.runtime.db, job_id)
        return job if job.state in TERMINAL_STATES else None

    try:
        return wait_for(probe, timeout_s=timeout_s, what=f"job {job_id} to finish")
    except AssertionError:
        print(stack.logs())  # noqa: T201 - shown only when the test fails
        raise


def attempts(stack: Stack, job_id: uuid.UUID) -> list[tuple[int, str]]:
    with stack.runtime.db.read() as conn:
        return [(a.attempt, a.outcome) for a in jobs.attempts(conn, job_id)]


def completions(directory: Path) -> Counter[tuple[str, int]]:
    """(key, attempt) -> how many times that attempt reached its end."""
    path = directory / "completions.log"
    if not path.exists():
        return Counter()
    lines = path.read_text().split()
    return Counter((lines[i], int(lines[i + 1])) for i in range(0, len(lines), 2))
