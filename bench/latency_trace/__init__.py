"""Timestamps of one job's way from submit to its first line, for `bench/latency_breakdown.py`.

`sitecustomize.py` in this folder runs `install()` in the worker that script starts with the
folder on its PYTHONPATH; every traced process appends `step job_id unix_time` lines to its own file
in `$BENCH_TRACE_DIR`, one write per step (a few microseconds each, in every row alike).
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable
from typing import Any

_files: dict[int, Any] = {}


def mark(step: str, job_id: object, at: float | None = None) -> None:
    """Note that `job_id` reached `step` now (or at `at`)."""
    folder = os.environ.get("BENCH_TRACE_DIR")
    if not folder:
        return
    pid = os.getpid()
    out = _files.get(pid)
    if out is None:
        out = _files[pid] = open(os.path.join(folder, f"{pid}.trace"), "a", buffering=1)
    out.write(f"{step} {job_id} {time.time() if at is None else at:.6f}\n")


def install() -> None:
    """Trace the worker: Celery's receipt (worker process), the task's start (pool process),
    and the claim statement around `claims.claim`."""
    from celery import signals

    from jobyard.execution import claims

    def received(request: Any = None, **_: Any) -> None:
        mark("received", request.id)

    def prerun(task_id: str = "", **_: Any) -> None:
        mark("task_start", task_id)

    signals.task_received.connect(received, weak=False)
    signals.task_prerun.connect(prerun, weak=False)
    claims.claim = _traced_claim(claims.claim)  # type: ignore[assignment]


def _traced_claim(claim: Callable[[Any, uuid.UUID], Any]) -> Callable[[Any, uuid.UUID], Any]:
    def traced(state: Any, job_id: uuid.UUID) -> Any:
        mark("claim_start", job_id)
        try:
            return claim(state, job_id)
        finally:
            mark("claimed", job_id)

    return traced
