"""The jobyard side of the benchmark: one no-op job type."""

from __future__ import annotations

import os
import time

import redis

from jobyard import JobContext, Yard

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


_signals: dict[int, redis.Redis] = {}


@yard.job("bench.signal_start", pool="bench")
def signal_start(ctx: JobContext, key: str) -> None:
    """Note the first line's time (`bench/latency_breakdown.py`) and tell the waiting
    submitter, on a Redis list, that the job started."""
    from bench.latency_trace import mark

    began = time.time()
    mark("first_line", ctx.job_id, began)
    client = _signals.get(os.getpid())
    if client is None:  # one connection per process (prefork children fork the parent's)
        url = os.environ.get("BENCH_REDIS", "redis://127.0.0.1:6379/9")
        client = _signals[os.getpid()] = redis.Redis.from_url(url)
    client.rpush(key, began)
