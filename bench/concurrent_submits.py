"""Many HTTP clients submitting at once: accepted submits/s and latency, per `web.workers`.

    .venv/bin/python bench/concurrent_submits.py [--clients 50] [--submits 5000] [--web 1,2]

Each client holds one keep-alive connection and sends `POST /api/v1/jobs` one after another;
the load generator speaks HTTP/1.1 over raw asyncio streams so that it costs the 2 shared cores
little (an HTTP library would be the bottleneck). A worker drains the pool meanwhile, as in
production. Every 201 is checked against the database afterwards: accepted means committed.
No peer has an HTTP submit endpoint, so there is no peer row; the issue's target is absolute
(≥ 2,000 accepted submits/s, p99 ≤ 50 ms).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import sys
import tempfile
import time
from pathlib import Path

import httpx
import redis
from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.throughput import (
    REDIS,
    bench_database,
    env_of,
    jobyard_settings,
    migrated,
    percentiles,
    spawn,
    stop,
    wait_until,
)
from jobyard.config import Settings
from jobyard.store.db import Database

BODY = json.dumps({"type": "bench.noop", "args": {}}).encode()


async def client(port: int, count: int, latencies_ms: list[float], statuses: list[int]) -> None:
    """One keep-alive connection sending `count` submits in turn."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    request = (
        b"POST /api/v1/jobs HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json\r\n"
        + f"Content-Length: {len(BODY)}\r\n\r\n".encode()
        + BODY
    )
    try:
        for _ in range(count):
            began = time.perf_counter()
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":", 1)[1])
            await reader.readexactly(length)
            latencies_ms.append((time.perf_counter() - began) * 1000)
            statuses.append(int(head.split(b" ", 2)[1]))
    finally:
        writer.close()


async def load(port: int, clients: int, submits: int) -> tuple[float, list[float], list[int]]:
    latencies: list[float] = []
    statuses: list[int] = []
    each = submits // clients
    gc.disable()  # the load generator's own collector pauses are not the server's latency
    try:
        began = time.perf_counter()
        await asyncio.gather(*(client(port, each, latencies, statuses) for _ in range(clients)))
        return time.perf_counter() - began, latencies, statuses
    finally:
        gc.enable()


def measure(web_processes: int, clients: int, submits: int, logs: Path) -> dict[str, object]:
    port = 18900 + web_processes
    with bench_database() as database_url:
        settings = migrated(jobyard_settings(database_url, 2, port, 50))
        env = {**env_of(settings), "JOBYARD_WEB__WORKERS": str(web_processes)}
        base = [sys.executable, "-m", "jobyard"]
        web = spawn([*base, "web"], env, logs / f"web-{web_processes}.log")
        worker = spawn([*base, "worker", "--pool", "bench"], env, logs / "worker.log")
        try:
            wait_until(lambda: _ready(port), 60, "jobyard web")
            asyncio.run(load(port, clients, clients * 2))  # every connection opened once
            # ... and the worker's processes started: measured is the steady state.
            wait_until(lambda: _succeeded(settings) == clients * 2, 60, "the warm-up jobs")
            seconds, latencies, statuses = asyncio.run(load(port, clients, submits))
        finally:
            for process in (worker, web):
                stop(process)
            redis.Redis.from_url(REDIS).flushdb()
        db = Database(settings.database)
        with db.read() as conn:
            stored = conn.exec_driver_sql("SELECT count(*) FROM jobyard_jobs").scalar_one()
        db.close()
    accepted = statuses.count(201)
    return {
        "web": web_processes,
        "rate": accepted / seconds,
        "latency": percentiles(latencies),
        "accepted": accepted,
        "stored": int(stored) - clients * 2,
        "other": len(statuses) - accepted,
    }


def _succeeded(settings: Settings) -> int:
    db = Database(settings.database)
    try:
        with db.read() as conn:
            query = "SELECT count(*) FROM jobyard_jobs WHERE state = 'succeeded'"
            return int(conn.exec_driver_sql(query).scalar_one())
    finally:
        db.close()


def _ready(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--submits", type=int, default=5000)
    parser.add_argument("--web", default="1,2", help="web.workers values to measure")
    parser.add_argument("--logs", type=Path, help="keep the processes' logs in this folder")
    options = parser.parse_args()
    console = Console(width=150)
    table = Table(title=f"{options.clients} concurrent HTTP clients, one submit at a time each")
    for column in ("web processes", "accepted/s", "p50 ms", "p95 ms", "p99 ms", "committed"):
        table.add_column(column, justify="right")
    with tempfile.TemporaryDirectory() as folder:  # the processes' logs
        logs = options.logs or Path(folder)
        logs.mkdir(parents=True, exist_ok=True)
        for processes in (int(p) for p in options.web.split(",")):
            with console.status(f"{options.submits} submits, {processes} web process(es)…"):
                got = measure(processes, options.clients, options.submits, logs)
            latency = got["latency"]
            assert isinstance(latency, dict)
            table.add_row(
                str(processes),
                f"{got['rate']:,.0f}",
                f"{latency['p50']:.1f}",
                f"{latency['p95']:.1f}",
                f"{latency['p99']:.1f}",
                f"{got['stored']} of {got['accepted']} (+{got['other']} refused)",
            )
    console.print(table)


if __name__ == "__main__":
    main()
