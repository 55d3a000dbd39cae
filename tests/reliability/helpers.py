"""Shared steps of the reliability tests."""

from __future__ import annotations

import uuid
from collections import Counter
from pathlib import Path

from jobyard.dispatch import submit
from tests.factories import Stack, attempts, finished

__all__ = ["attempts", "completions", "finished", "submit_record"]


def submit_record(
    stack: Stack, key: str, directory: Path, sleep_s: float, *, job_type: str = "t.record"
) -> uuid.UUID:
    request = submit.JobRequest(
        job_type, {"key": key, "directory": str(directory), "sleep_s": sleep_s}
    )
    return submit.submit_one(stack.runtime, request, submitted_by="test").job.id


def completions(directory: Path) -> Counter[tuple[str, int]]:
    """(key, attempt) -> how many times that attempt reached its end."""
    path = directory / "completions.log"
    if not path.exists():
        return Counter()
    lines = path.read_text().split()
    return Counter((lines[i], int(lines[i + 1])) for i in range(0, len(lines), 2))
