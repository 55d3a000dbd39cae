"""Celery 5 app. BENCH_BROKER=redis (default) or amqp (RabbitMQ).

Settings are Celery's defaults: no result backend (results disabled),
acks_late=False, worker_prefetch_multiplier=4, prefork pool, JSON serializer,
persistent messages / durable queue on RabbitMQ, default queue "celery".
"""

from __future__ import annotations

import os

from celery import Celery
from common import record_done, record_start

BROKER = os.environ.get("BENCH_BROKER", "redis")
URL = {
    "redis": "redis://127.0.0.1:6379/1",
    "amqp": "amqp://guest:guest@127.0.0.1:5672//",
}[BROKER]

app = Celery("bench", broker=URL)
app.conf.broker_connection_retry_on_startup = True


@app.task(name="noop")
def noop(run: str, n: int) -> None:
    record_done(run, n)


@app.task(name="lat")
def lat(run: str) -> None:
    record_start(run)
