"""Dramatiq: RedisBroker with default middleware, default queue "default".

Workers run with the CLI defaults: --processes = cpu count (2), --threads 8.
"""

from __future__ import annotations

import dramatiq
from common import record_done, record_start
from dramatiq.brokers.redis import RedisBroker

broker = RedisBroker(url="redis://127.0.0.1:6379/1")
dramatiq.set_broker(broker)


@dramatiq.actor
def noop(run: str, n: int) -> None:
    record_done(run, n)


@dramatiq.actor
def lat(run: str) -> None:
    record_start(run)
