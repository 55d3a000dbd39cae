"""The dashboard at scale: 1,000,000 jobs in PostgreSQL, and 200 live WebSocket clients.

    .venv/bin/python bench/dashboard.py [--jobs 1000000] [--clients 200] [--rate 1000]

Part 1 loads N jobs (mixed states, types and pools) into a fresh PostgreSQL database, starts
`jobyard web`, and times the jobs list API and page, unfiltered and filtered (p50/p95/p99 of
sequential requests). Part 2 connects C WebSocket clients to /api/v1/events, publishes R
events per second through the same bus workers use (Redis pub/sub), and meanwhile times
single submits over HTTP. Raw Celery has no job list (Flower keeps its events in memory) and no
WebSocket, so the comparison row is Celery's own enqueue (`apply_async`) on the same machine,
the floor under any submit API.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import psycopg
import redis
import websockets
from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.throughput import (  # noqa: E402
    REDIS,
    bench_database,
    bench_settings,
    env_of,
    percentiles,
    spawn,
    stop,
    wait_until,
)
from jobyard.config import Settings  # noqa: E402
from jobyard.domain.ids import uuid7  # noqa: E402
from jobyard.events.redis_bus import RedisEventPublisher  # noqa: E402
from jobyard.events.types import JobEvent  # noqa: E402
from jobyard.store import migrate  # noqa: E402

console = Console(width=150)
STATES = ["succeeded"] * 6 + ["failed"] * 2 + ["queued", "cancelled"]
TYPES = ["bench.noop", "bench.resize", "bench.report"]
POOLS = ["bench", "media", "gpu"]
REQUESTS = 200


def settings_for(database_url: str, port: int) -> Settings:
    return bench_settings(database_url, {"bench": {}, "media": {}, "gpu": {}}, web={"port": port})


def load_jobs(database_url: str, count: int) -> float:
    """COPY `count` jobs in; returns seconds taken."""
    started = time.perf_counter()
    base = datetime.now(UTC) - timedelta(days=30)
    step_ms = 30 * 86400 * 1000 // max(count, 1)
    columns = (
        "id, type, pool, queue, args, priority, state, attempt, max_attempts, timeout_s, "
        "submitted_by, created_at, updated_at, finished_at"
    )
    random.seed(7)
    with psycopg.connect(database_url) as conn, conn.cursor() as cursor:
        with cursor.copy(f"COPY jobyard_jobs ({columns}) FROM STDIN") as copy:
            for n in range(count):
                created = base + timedelta(milliseconds=n * step_ms)
                state = random.choice(STATES)
                type_ = TYPES[n % 3]
                pool = POOLS[n % 3]
                finished = created + timedelta(seconds=1) if state != "queued" else None
                copy.write_row(
                    (
                        uuid7(int(created.timestamp() * 1000)),
                        type_,
                        pool,
                        f"bench.{pool}",
                        json.dumps({"n": n, "tag": f"customer-{n % 5000}"}),
                        5,
                        state,
                        1 if state != "queued" else 0,
                        1,
                        3600.0,
                        "bench",
                        created,
                        finished or created,
                        finished,
                    )
                )
        conn.execute("ANALYZE jobyard_jobs")
        conn.commit()
    return time.perf_counter() - started


def time_requests(http: httpx.Client, path: str) -> dict[str, float]:
    durations = []
    for _ in range(REQUESTS):
        started = time.perf_counter()
        response = http.get(path)
        durations.append((time.perf_counter() - started) * 1000)
        if response.status_code != 200:
            raise SystemExit(f"GET {path} answered {response.status_code}: {response.text[:200]}")
    return percentiles(durations)


def list_figures(base: str) -> list[tuple[str, dict[str, float]]]:
    cases = [
        ("API, unfiltered", "/api/v1/jobs?limit=50"),
        ("API, state=failed", "/api/v1/jobs?state=failed&limit=50"),
        ("API, type=bench.resize", "/api/v1/jobs?type=bench.resize&limit=50"),
        ("API, pool=gpu", "/api/v1/jobs?pool=gpu&limit=50"),
        ("page /jobs, unfiltered", "/jobs"),
        ("page /jobs, state=failed", "/jobs?state=failed"),
        ("page /jobs, pool=media", "/jobs?pool=media"),
    ]
    with httpx.Client(base_url=base, timeout=30) as http:
        first = http.get("/api/v1/jobs?limit=50").json()
        cursor = first["next_cursor"]
        cases.append(("API, 2nd page (cursor)", f"/api/v1/jobs?limit=50&cursor={cursor}"))
        for _name, path in cases[:2]:  # warm the caches the way a live dashboard keeps them
            time_requests(http, path)
        return [(name, time_requests(http, path)) for name, path in cases]


async def websocket_run(
    base: str, clients: int, rate: int, seconds: float, settings: Settings
) -> dict[str, float]:
    """C clients listen while R events/s are published and single submits are timed."""
    url = base.replace("http://", "ws://") + "/api/v1/events"
    received = [0] * clients
    overflows = [0]
    lags: list[float] = []

    async def client(index: int) -> None:
        async with websockets.connect(url, max_size=None) as socket:
            await socket.recv()  # the snapshot
            ready.set() if index == clients - 1 else None
            try:
                while True:
                    text = await socket.recv()
                    assert isinstance(text, str)
                    if '"kind":"overflow"' in text:
                        overflows[0] += 1
                    # Only client 0 parses (for the lag); the rest count, so the 200 clients
                    # sharing this process and its 2 cores with the server cost little.
                    received[index] += text.count('"kind":"progress"')  # the published ones
                    if index == 0:
                        now = time.time()
                        lags.extend(
                            now - float(e["message"])
                            for e in json.loads(text).get("events", [])
                            if e["kind"] == "progress"  # the synthetic ones carry a timestamp
                        )
            except websockets.ConnectionClosed:
                return

    ready = asyncio.Event()
    tasks = [asyncio.create_task(client(i)) for i in range(clients)]
    await asyncio.wait_for(ready.wait(), 60)
    await asyncio.sleep(1)
    publisher = RedisEventPublisher(settings.events, f"{settings.queue_prefix}.events")
    stop_flag = threading.Event()
    published = [0]
    submit_ms: list[float] = []
    threads = [
        threading.Thread(target=publish_loop, args=(publisher, rate, stop_flag, published)),
        threading.Thread(target=submit_loop, args=(base, stop_flag, submit_ms)),
    ]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    await asyncio.sleep(seconds)
    stop_flag.set()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    await asyncio.sleep(2)  # let the last batches arrive
    publisher.close()
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    lag = percentiles([x * 1000 for x in lags]) if lags else {"p50": 0, "p95": 0, "p99": 0}
    submit = percentiles(submit_ms)
    return {
        "published_per_s": published[0] / elapsed,
        "delivered_min": min(received) / max(published[0], 1),
        "delivered_per_client_per_s": sum(received) / clients / elapsed,
        "lag_p50": lag["p50"],
        "lag_p99": lag["p99"],
        "submit_p50": submit["p50"],
        "submit_p95": submit["p95"],
        "submit_p99": submit["p99"],
        "submits": len(submit_ms),
        "overflows": overflows[0],
        "received_min": min(received),
        "received_max": max(received),
    }


def publish_loop(
    publisher: RedisEventPublisher, rate: int, stop_flag: threading.Event, published: list[int]
) -> None:
    """Publish `rate` events per second (in 10 ms ticks) until stopped."""
    interval = 0.01
    per_tick = max(1, int(rate * interval))
    next_at = time.perf_counter()
    while not stop_flag.is_set():
        now = datetime.now(UTC).isoformat()
        batch = [
            JobEvent("progress", str(uuid.uuid4()), "bench.noop", "bench", "running", 1, now,
                     0.5, str(time.time()))
            for _ in range(per_tick)
        ]  # fmt: skip
        publisher.publish(batch)
        published[0] += len(batch)
        next_at += interval
        time.sleep(max(0.0, next_at - time.perf_counter()))


def submit_loop(base: str, stop_flag: threading.Event, submit_ms: list[float]) -> None:
    """Submit single jobs over HTTP, 50 per second at most, timing each, until stopped."""
    with httpx.Client(base_url=base, timeout=30) as http:
        while not stop_flag.is_set():
            started = time.perf_counter()
            response = http.post("/api/v1/jobs", json={"type": "bench.noop", "args": {}})
            submit_ms.append((time.perf_counter() - started) * 1000)
            if response.status_code != 201:
                raise SystemExit(f"submit answered {response.status_code}: {response.text}")
            time.sleep(0.02)


def celery_enqueue_p99(count: int = 500) -> dict[str, float]:
    from bench import raw_celery

    durations = []
    for _ in range(count):
        started = time.perf_counter()
        raw_celery.noop.apply_async()
        durations.append((time.perf_counter() - started) * 1000)
    raw_celery.app.control.purge()  # no worker runs: drop what was enqueued
    return percentiles(durations)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--jobs", type=int, default=1_000_000)
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--rate", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=20.0)
    options = parser.parse_args()
    logs = ROOT / "test-output" / "bench"
    logs.mkdir(parents=True, exist_ok=True)
    port = 8700 + random.randint(0, 200)
    with bench_database() as database_url:
        migrate.upgrade_url(database_url.replace("postgresql://", "postgresql+psycopg://"))
        settings = settings_for(database_url, port)
        with console.status(f"loading {options.jobs:,} jobs"):
            load_s = load_jobs(database_url, options.jobs)
        console.print(f"loaded {options.jobs:,} jobs in {load_s:.0f}s")
        web = spawn([sys.executable, "-m", "jobyard", "web"], env_of(settings), logs / "web.log")
        base = f"http://127.0.0.1:{port}"
        try:
            wait_until(lambda: _ready(base), 60, "jobyard web")
            with console.status("timing the jobs list"):
                figures = list_figures(base)
            with console.status(f"{options.clients} WebSocket clients at {options.rate} events/s"):
                live = asyncio.run(
                    websocket_run(base, options.clients, options.rate, options.seconds, settings)
                )
        finally:
            stop(web)
    celery = celery_enqueue_p99()
    redis.Redis.from_url(REDIS).flushdb()  # the benchmark's own database: leave it empty
    report(options, figures, live, celery)


def _ready(base: str) -> bool:
    try:
        return httpx.get(f"{base}/readyz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def report(
    options: argparse.Namespace,
    figures: list[tuple[str, dict[str, float]]],
    live: dict[str, float],
    celery: dict[str, float],
) -> None:
    table = Table(title=f"jobs list with {options.jobs:,} jobs in PostgreSQL (target p95 ≤ 100 ms)")
    for column in ("request", "p50 ms", "p95 ms", "p99 ms"):
        table.add_column(column, justify="right" if "ms" in column else "left")
    for name, p in figures:
        table.add_row(name, f"{p['p50']:.1f}", f"{p['p95']:.1f}", f"{p['p99']:.1f}")
    console.print(table)
    live_table = Table(
        title=f"{options.clients} WebSocket clients, {options.rate} events/s published "
        "(target: all delivered, submit p99 ≤ 50 ms)"
    )
    for column in (
        "system",
        "events/s published",
        "delivered to slowest client",
        "events/s per client",
        "lag p50 / p99 ms",
        "submit p50 / p95 / p99 ms",
    ):
        live_table.add_column(column, justify="right")  # fmt: skip
    live_table.add_row(
        "jobyard (HTTP submit, WebSocket fan-out)",
        f"{live['published_per_s']:.0f}",
        f"{live['delivered_min'] * 100:.1f} %",
        f"{live['delivered_per_client_per_s']:.0f}",
        f"{live['lag_p50']:.0f} / {live['lag_p99']:.0f}",
        f"{live['submit_p50']:.1f} / {live['submit_p95']:.1f} / {live['submit_p99']:.1f}",
    )
    live_table.add_row(
        "raw Celery (apply_async, no record, no events)",
        "—", "—", "—", "—",
        f"{celery['p50']:.1f} / {celery['p95']:.1f} / {celery['p99']:.1f}",
    )  # fmt: skip
    console.print(live_table)


if __name__ == "__main__":
    main()
