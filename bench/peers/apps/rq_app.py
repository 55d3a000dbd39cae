"""RQ: default Queue ("default"), default forking Worker, default result_ttl."""

from __future__ import annotations

from common import record_done, record_start
from redis import Redis
from rq import Queue

URL = "redis://127.0.0.1:6379/1"


def queue() -> Queue:
    return Queue("default", connection=Redis.from_url(URL))


def noop(run: str, n: int) -> None:
    record_done(run, n)


def lat(run: str) -> None:
    record_start(run)
