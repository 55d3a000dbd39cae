"""The raw Celery baseline: the same no-op, Celery defaults, no result backend.

A counter in Redis tells the benchmark when every task ran; the task also records how long its
message waited (for the latency column). A module-level app is what `celery -A` expects.
"""

from __future__ import annotations

import os
import time

import redis
from celery import Celery

app = Celery("raw", broker=os.environ.get("BENCH_BROKER", "redis://127.0.0.1:6379/9"))
app.conf.update(task_ignore_result=True, worker_hijack_root_logger=False)
_counter: list[redis.Redis] = []


def _client() -> redis.Redis:
    if not _counter:
        _counter.append(
            redis.Redis.from_url(os.environ.get("BENCH_COUNTER", "redis://127.0.0.1:6379/9"))
        )
    return _counter[0]


@app.task(name="bench.noop")  # type: ignore[untyped-decorator]
def noop(sent_at: float | None = None) -> None:
    client = _client()
    if sent_at is not None:
        client.rpush("bench:latency", time.time() - sent_at)
    client.incr("bench:done")
