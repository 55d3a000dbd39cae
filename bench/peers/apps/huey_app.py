"""Huey: RedisHuey defaults (blocking BRPOP dequeue, results on, None not stored)."""

from __future__ import annotations

from common import record_done, record_start
from huey import RedisHuey

huey = RedisHuey("bench", url="redis://127.0.0.1:6379/1")


@huey.task()
def noop(run: str, n: int) -> None:
    record_done(run, n)


@huey.task()
def lat(run: str) -> None:
    record_start(run)
