"""Procrastinate 3 on PostgreSQL (psycopg 3). Workers: CLI defaults
(concurrency 1 per worker, LISTEN/NOTIFY on, 5 s polling fallback, jobs kept)."""

from __future__ import annotations

from common import record_done, record_start
from procrastinate import App, PsycopgConnector

DSN = "postgresql://postgres@127.0.0.1:5432/bench"

app = App(connector=PsycopgConnector(conninfo=DSN))


@app.task(name="noop")
def noop(run: str, n: int) -> None:
    record_done(run, n)


@app.task(name="lat")
def lat(run: str) -> None:
    record_start(run)
