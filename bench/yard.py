"""The jobyard side of the benchmark: one no-op job type."""

from __future__ import annotations

import time

from jobyard import Yard

yard = Yard("bench")


@yard.job("bench.noop", pool="bench")
def noop() -> None:
    """Do nothing: the benchmark measures the platform, not the job."""
    return None


@yard.job("bench.started", pool="bench")
def started(hold_s: float = 0.0) -> float:
    """When the job's code began (wall clock), after holding its slot `hold_s` seconds."""
    began = time.time()
    if hold_s:
        time.sleep(hold_s)
    return began


@yard.job("bench.pod_started", pool="pods")
def pod_started(hold_s: float = 0.0) -> float:
    """The same in a pod-per-job pool: a fresh `jobyard run-job` process per job."""
    began = time.time()
    if hold_s:
        time.sleep(hold_s)
    return began
