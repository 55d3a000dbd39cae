"""A worker's claim statement on PostgreSQL: through SQLAlchemy's execution vs `store.pg_hot`.

    .venv/bin/python bench/claim_statements.py [--claims 2000]

Claims queued jobs one at a time and 50 at a time, alternating the two ways of running the
same guarded UPDATE on one held autocommit connection: SQLAlchemy Core (`batches.CLAIM_MANY`,
which PostgreSQL workers ran before `pg_hot` and SQLite's still run: an expanding IN, bind and
result processors) and the fixed SQL on the driver's connection they run now (`pg_hot.claim`).
Prints the CPU time of this process per claim (the database's own work is not in it) and the
wall time.
"""

from __future__ import annotations

import argparse
import sys
import time
import uuid
from collections.abc import Callable, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

import redis
from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.throughput import REDIS, bench_database, jobyard_settings, migrated
from jobyard.dispatch import submit
from jobyard.runtime import Runtime
from jobyard.store import batches, pg_hot
from jobyard.store.records import JobRecord

Claim = Callable[[Any, Sequence[uuid.UUID]], list[JobRecord]]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--claims", type=int, default=2000, help="claims per way and size")
    options = parser.parse_args()
    with bench_database() as database_url:
        runtime = Runtime.open(migrated(jobyard_settings(database_url, 2, 18998, 50)))
        try:
            rows = measure(runtime, options.claims)
        finally:
            runtime.close()
            redis.Redis.from_url(REDIS).flushdb()  # the queued jobs' messages
    table = Table(title="Claiming queued jobs on PostgreSQL, per claim statement")
    for column in ("jobs per claim", "way", "CPU ms (this process)", "wall ms"):
        table.add_column(column, justify="right" if column != "way" else "left")
    for size, way, cpu_ms, wall_ms in rows:
        table.add_row(str(size), way, f"{cpu_ms:.3f}", f"{wall_ms:.3f}")
    Console().print(table)


def measure(runtime: Runtime, claims: int) -> list[tuple[int, str, float, float]]:
    now = runtime.clock()
    until = now + timedelta(seconds=60)

    def through_sqlalchemy(conn: Any, ids: Sequence[uuid.UUID]) -> list[JobRecord]:
        params = {"ids": list(ids), "now": now, "owner": "bench", "lease_until": until}
        return [
            JobRecord.from_row(row) for row in conn.execute(batches.CLAIM_MANY, params).mappings()
        ]

    def through_driver(conn: Any, ids: Sequence[uuid.UUID]) -> list[JobRecord]:
        return pg_hot.claim(conn, ids, now=now, owner="bench", lease_until=until)

    ways: dict[str, Claim] = {"SQLAlchemy Core": through_sqlalchemy, "pg_hot": through_driver}
    rows = []
    for size in (1, 50):
        needed = 2 * len(ways) * (claims + 20) * size
        queued = _queue(runtime, needed)
        spent: dict[str, list[float]] = {way: [0.0, 0.0] for way in ways}
        with runtime.db.single() as conn:
            for round_ in range(claims + 20):  # the first 20 of each way warm up
                for way, claim in ways.items():
                    ids, queued = queued[:size], queued[size:]
                    cpu, wall = time.process_time(), time.perf_counter()
                    claimed = claim(conn, ids)
                    if round_ >= 20:
                        spent[way][0] += time.process_time() - cpu
                        spent[way][1] += time.perf_counter() - wall
                    assert len(claimed) == size, "every job claimed was queued"
        rows += [
            (size, way, cpu * 1e3 / claims, wall * 1e3 / claims)
            for way, (cpu, wall) in spent.items()
        ]
    return rows


def _queue(runtime: Runtime, count: int) -> list[uuid.UUID]:
    ids: list[uuid.UUID] = []
    while len(ids) < count:
        requests = [submit.JobRequest("bench.noop") for _ in range(min(5000, count - len(ids)))]
        made = submit.submit_many(runtime, requests, submitted_by="bench", batch=True)
        ids += [item.job.id for item in made]
    return ids


if __name__ == "__main__":
    main()
