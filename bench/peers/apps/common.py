"""Job bodies shared by every adapter.

Every benchmark job is a no-op apart from one bookkeeping round trip to a
side-channel Redis database (db 2), identical for all libraries:

* ``record_done`` (throughput jobs): SET first-start NX + INCR done-counter in
  one pipeline; the job that brings the counter to ``n`` pushes its finish
  timestamp onto ``b:<run>:end`` so the harness can BLPOP on it.
* ``record_start`` (latency jobs): pushes the job's start timestamp onto
  ``b:<run>:lat``; the producer BLPOPs it before submitting the next job.

Timestamps are ``time.time()``; all processes run on the same host/clock.
"""

from __future__ import annotations

import os
import time

import redis

SIDE_URL = os.environ.get("BENCH_SIDE_URL", "redis://127.0.0.1:6379/2")

_client = None
_pid = None


def side() -> redis.Redis:
    global _client, _pid
    if _client is None or _pid != os.getpid():  # new connection after fork
        _client = redis.Redis.from_url(SIDE_URL)
        _pid = os.getpid()
    return _client


def record_done(run: str, n: int) -> None:
    now = time.time()
    r = side()
    p = r.pipeline(transaction=False)
    p.set(f"b:{run}:first", now, nx=True)
    p.incr(f"b:{run}:done")
    _, count = p.execute()
    if count == n:
        r.rpush(f"b:{run}:end", time.time())


def record_start(run: str) -> None:
    side().rpush(f"b:{run}:lat", time.time())
