"""taskiq with taskiq-redis ListQueueBroker (LPUSH/BRPOP), no result backend.

Workers: `taskiq worker` defaults (--workers 2, --max-async-tasks 100,
ack when received)."""

from __future__ import annotations

from common import record_done, record_start
from taskiq_redis import ListQueueBroker

broker = ListQueueBroker(url="redis://127.0.0.1:6379/1")


@broker.task(task_name="noop")
async def noop(run: str, n: int) -> None:
    record_done(run, n)


@broker.task(task_name="lat")
async def lat(run: str) -> None:
    record_start(run)
