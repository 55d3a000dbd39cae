"""Where a job's submit→start time goes, step by step, on a pool with default settings.

    .venv/bin/python bench/latency_breakdown.py [--jobs 500]

Submits one job at a time with `submit_one` (what `yard.submit()` runs) and waits until it has
started before the next, as the peers bench's latency phase does (`bench/peers/`), against a
`jobyard worker` whose steps are traced (`bench/latency_trace`): the INSERT and the publish in
the submitter, Celery's receipt in the worker process, the task's start in the pool process,
the claim statement, and the job's first line. Prints the median and 90th percentile of each
step, and raw Celery's own submit→start on the same Redis for comparison (`bench/raw_celery.py`,
prefork 2). Celery itself takes the submit's publish, the two hand-overs and the task start;
the INSERT and the claim, each waiting for a WAL flush, are what recording every job adds.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import redis
from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.throughput import (
    REDIS,
    bench_database,
    bench_settings,
    env_of,
    migrated,
    spawn,
    spawn_celery_worker,
    stop,
)
from jobyard.config import Settings
from jobyard.dispatch import submit
from jobyard.runtime import Runtime
from jobyard.store import job_inserts

TRACE = str(Path(__file__).resolve().parent / "latency_trace")
WARMUP = 30
#: (label, from step, to step); the submitter's own steps are timed in this process. The
#: broker hands the message to the worker before it answers the publisher, so the hand-over
#: counts from the start of the publish.
STEPS = [
    ("submit: INSERT (committed, one statement)", "insert_start", "inserted"),
    ("submit: publish (until the broker answered)", "publish_start", "published"),
    ("submit: the rest (validation, records, events)", "", ""),
    ("publish → Celery receives it (worker process)", "publish_start", "received"),
    ("→ the pool process starts the task", "received", "task_start"),
    ("task start → claim statement", "task_start", "claim_start"),
    ("claim statement (committed)", "claim_start", "claimed"),
    ("claimed → the job's first line", "claimed", "first_line"),
    ("submit → first line", "submit_start", "first_line"),
]
CELERY = "raw Celery, same Redis and prefork 2: apply_async → task start"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--jobs", type=int, default=500, help="jobs measured (after a warm-up)")
    options = parser.parse_args()
    with bench_database() as database_url, tempfile.TemporaryDirectory() as trace_dir:
        settings = migrated(_settings(database_url))
        env = env_of(settings) | {"BENCH_TRACE_DIR": trace_dir, "BENCH_REDIS": REDIS}
        env["PYTHONPATH"] = os.pathsep.join([env["PYTHONPATH"], TRACE])
        worker = spawn(
            [sys.executable, "-m", "jobyard", "worker", "--pool", "bench"],
            env,
            Path(trace_dir) / "worker.log",
        )
        os.environ["BENCH_TRACE_DIR"] = trace_dir
        runtime = Runtime.open(settings)
        try:
            submitted = _run(runtime, options.jobs)
        finally:
            runtime.close()
            stop(worker)
            redis.Redis.from_url(REDIS).flushdb()
        steps = _read(Path(trace_dir), submitted)
        steps[CELERY] = _celery(options.jobs, Path(trace_dir))
    _report(steps, options.jobs)


def _celery(jobs: int, logs: Path) -> list[float]:
    """Raw Celery's `apply_async` → task start on the same Redis, one task at a time."""
    os.environ["BENCH_BROKER"] = os.environ["BENCH_COUNTER"] = REDIS
    from bench import raw_celery

    client = redis.Redis.from_url(REDIS)
    client.flushdb()
    worker = spawn_celery_worker(2, logs)
    waits: list[float] = []
    try:
        for index in range(WARMUP + jobs):
            raw_celery.noop.apply_async(kwargs={"sent_at": time.time()})
            got = client.blpop(["bench:latency"], timeout=60)
            if got is None:
                raise SystemExit("the Celery worker did not start a task within 60 s")
            if index >= WARMUP:
                waits.append(float(got[1]) * 1000)
    finally:
        stop(worker)
        client.flushdb()
    return waits


def _settings(database_url: str) -> Settings:
    """Pool `bench` with jobyard's defaults (the peers bench's configuration)."""
    return bench_settings(
        database_url, {"bench": {}, "pods": {"mode": "pod-per-job", "max_parallel": 1}}
    )


def _run(runtime: Runtime, jobs: int) -> dict[str, dict[str, float]]:
    """Submit one job at a time, each after the last has started; the submitter's steps."""
    side = redis.Redis.from_url(REDIS)
    key = f"latency-{uuid.uuid4().hex[:8]}"
    submitted: dict[str, dict[str, float]] = {}
    with _traced_submitter(runtime) as current:
        for index in range(WARMUP + jobs):
            current.clear()
            began = time.time()
            job = submit.submit_one(
                runtime, submit.JobRequest("bench.signal_start", {"key": key}), submitted_by="b"
            ).job
            ended = time.time()
            if side.blpop([key], timeout=60) is None:
                raise SystemExit(f"job {job.id} did not start within 60 s (see the worker log)")
            if index >= WARMUP:
                submitted[str(job.id)] = {"submit_start": began, "submit_end": ended, **current}
    return submitted


@contextmanager
def _traced_submitter(runtime: Runtime) -> Iterator[dict[str, float]]:
    """Times the INSERT and the publish of the submit in progress (this process only)."""
    current: dict[str, float] = {}
    original_insert = job_inserts.insert_one
    original_publish = runtime.publisher.publish

    def timed(start: str, end: str, call: Callable[..., Any]) -> Callable[..., Any]:
        def run(*args: Any, **kwargs: Any) -> Any:
            current[start] = time.time()
            try:
                return call(*args, **kwargs)
            finally:
                current[end] = time.time()

        return run

    job_inserts.insert_one = timed("insert_start", "inserted", original_insert)
    runtime.publisher.publish = timed("publish_start", "published", original_publish)  # type: ignore[method-assign]
    try:
        yield current
    finally:
        job_inserts.insert_one = original_insert
        runtime.publisher.publish = original_publish  # type: ignore[method-assign]


def _read(folder: Path, submitted: dict[str, dict[str, float]]) -> dict[str, list[float]]:
    """Milliseconds per step for every measured job that every trace saw."""
    seen: dict[str, dict[str, float]] = defaultdict(dict)
    for path in folder.glob("*.trace"):
        for line in path.read_text().splitlines():
            step, job_id, at = line.split()
            seen[job_id][step] = float(at)
    steps: dict[str, list[float]] = defaultdict(list)
    for job_id, mine in submitted.items():
        times = seen.get(job_id, {}) | mine
        if any(start not in times or end not in times for _, start, end in STEPS if start):
            continue
        for label, start, end in STEPS:
            if start and end:
                steps[label].append((times[end] - times[start]) * 1000)
        rest = (times["submit_end"] - times["submit_start"]) - (
            (times["inserted"] - times["insert_start"])
            + (times["published"] - times["publish_start"])
        )
        steps[STEPS[2][0]].append(rest * 1000)
    return steps


def _report(steps: dict[str, list[float]], jobs: int) -> None:
    counted = len(steps.get(STEPS[-1][0], []))
    table = Table(
        title=f"submit → start, one job at a time ({counted} of {jobs} jobs traced end to end)"
    )
    for column in ("step", "p50 ms", "p90 ms"):
        table.add_column(column, justify="left" if column == "step" else "right")
    for label in [label for label, _, _ in STEPS] + [CELERY]:
        values = sorted(steps.get(label, []))
        if not values:
            table.add_row(label, "-", "-")
            continue
        p90 = values[min(len(values) - 1, int(len(values) * 0.9))]
        table.add_row(label, f"{statistics.median(values):.3f}", f"{p90:.3f}")
    Console().print(table)


if __name__ == "__main__":
    main()
