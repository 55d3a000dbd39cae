"""jobyard vs raw Celery on the same Redis, measured in one run on this machine.

    .venv/bin/python bench/throughput.py [--jobs 20000] [--workers 2]

Columns: enqueue rate (one at a time, and batched), end-to-end throughput of N no-op jobs with
2 worker processes (enqueue + execution, until the last one finished), submit→start latency
percentiles (jobyard over HTTP), and peak RSS of jobyard's worker and web processes. jobyard
records every job in PostgreSQL; raw Celery records nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psycopg
import redis
from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from jobyard.config import Settings, load_settings  # noqa: E402
from jobyard.dispatch import submit  # noqa: E402
from jobyard.runtime import Runtime  # noqa: E402
from jobyard.store import migrate  # noqa: E402
from jobyard.store.db import Database  # noqa: E402

POSTGRES = os.environ.get("BENCH_POSTGRES", "postgresql://postgres@127.0.0.1:5432")
REDIS = os.environ.get("BENCH_REDIS", "redis://127.0.0.1:6379/9")
console = Console(width=170)


@dataclass
class Row:
    """One system's figures."""

    name: str
    single_per_s: float = 0.0
    single_how: str = ""
    batch_per_s: float = 0.0
    batch_how: str = ""
    e2e_per_s: float = 0.0
    latency_ms: dict[str, float] = field(default_factory=dict)
    latency_how: str = ""
    worker_rss_mb: float | None = None
    web_rss_mb: float | None = None


# -- process helpers ----------------------------------------------------------------------------


def _tree_rss_mb(pid: int) -> float:
    total, stack = 0, [pid]
    while stack:
        current = stack.pop()
        try:
            status = Path(f"/proc/{current}/status").read_text()
            total += int(
                next(line for line in status.splitlines() if line.startswith("VmRSS")).split()[1]
            )
            stack += [
                int(c) for c in Path(f"/proc/{current}/task/{current}/children").read_text().split()
            ]
        except (OSError, StopIteration):
            continue
    return total / 1024


class PeakRss:
    """Samples the RSS of a process tree every 100 ms and keeps the peak."""

    def __init__(self, pid: int) -> None:
        self.pid, self.peak = pid, 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.1):
            self.peak = max(self.peak, _tree_rss_mb(self.pid))

    def stop(self) -> float:
        self._stop.set()
        self._thread.join()
        return self.peak


def spawn(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with open(log, "ab") as out:
        return subprocess.Popen(
            args, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True, cwd=ROOT
        )


def stop(process: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(30)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        os.killpg(process.pid, signal.SIGKILL)


#: Both systems are polled at the same pace, so the polling costs them alike.
POLL_S = 0.1


def wait_until(probe: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not probe():
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        time.sleep(POLL_S)


def percentiles(values_ms: list[float]) -> dict[str, float]:
    ordered = sorted(values_ms)
    pick = lambda q: ordered[min(int(q * len(ordered)), len(ordered) - 1)]  # noqa: E731
    return {"p50": pick(0.50), "p95": pick(0.95), "p99": pick(0.99)}


# -- raw Celery ---------------------------------------------------------------------------------


def spawn_celery_worker(workers: int, logs: Path) -> subprocess.Popen[bytes]:
    """A raw Celery worker (`bench.raw_celery`) on the benchmark's Redis, prefork."""
    env = {**os.environ, "BENCH_BROKER": REDIS, "BENCH_COUNTER": REDIS, "PYTHONPATH": str(ROOT)}
    return spawn(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "bench.raw_celery",
            "worker",
            "-c",
            str(workers),
            "-P",
            "prefork",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
            "-l",
            "WARNING",
        ],
        env,
        logs / "celery-worker.log",
    )


def bench_celery(jobs: int, workers: int, logs: Path) -> Row:
    # The producer here and the worker process must use the same Redis database: the app
    # reads its broker from the environment when the module is first imported.
    os.environ["BENCH_BROKER"] = os.environ["BENCH_COUNTER"] = REDIS
    from bench import raw_celery

    row = Row("raw Celery (Redis, no result store)")
    client = redis.Redis.from_url(REDIS)
    client.flushdb()
    worker = spawn_celery_worker(workers, logs)
    done = lambda n: int(client.get("bench:done") or 0) >= n  # noqa: E731
    try:
        raw_celery.noop.delay()
        wait_until(lambda: done(1), 60, "celery worker start")
        expected = 1

        count = 2000
        start = time.perf_counter()
        for _ in range(count):
            raw_celery.noop.delay()
        row.single_per_s, row.single_how = count / (time.perf_counter() - start), "task.delay()"
        expected += count
        wait_until(lambda: done(expected), 300, "celery drain")

        start = time.perf_counter()
        with raw_celery.app.producer_or_acquire() as producer:
            for _ in range(jobs):
                raw_celery.noop.apply_async(producer=producer)
        row.batch_per_s = jobs / (time.perf_counter() - start)
        row.batch_how = "apply_async, one producer"
        expected += jobs
        wait_until(lambda: done(expected), 600, "celery drain")

        start = time.perf_counter()
        with raw_celery.app.producer_or_acquire() as producer:
            for _ in range(jobs):
                raw_celery.noop.apply_async(producer=producer)
        expected += jobs
        wait_until(lambda: done(expected), 600, "celery e2e")
        row.e2e_per_s = jobs / (time.perf_counter() - start)

        client.delete("bench:latency")
        for _ in range(300):
            raw_celery.noop.apply_async(kwargs={"sent_at": time.time()})
            time.sleep(0.01)
        expected += 300
        wait_until(lambda: done(expected), 120, "celery latency")
        waits = [float(v) * 1000 for v in client.lrange("bench:latency", 0, -1)]
        row.latency_ms, row.latency_how = percentiles(waits), "apply_async → task start"
    finally:
        stop(worker)
        client.flushdb()
    return row


# -- jobyard ------------------------------------------------------------------------------------


@contextmanager
def bench_database() -> Iterator[str]:
    name = f"jobyard_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(f"{POSTGRES}/postgres", autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    try:
        yield f"{POSTGRES}/{name}"
    finally:
        with psycopg.connect(f"{POSTGRES}/postgres", autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def bench_settings(database_url: str, pools: dict[str, Any], **more: Any) -> Settings:
    """Settings for `bench/yard.py`'s jobs on a fresh database and the benchmark's Redis, in a
    queue namespace of their own."""
    return load_settings(
        None,
        environ={},
        database_url=database_url,
        broker_url=REDIS,
        yard="bench.yard:yard",
        queue_prefix=f"bench-{uuid.uuid4().hex[:6]}",
        pools=pools,
        **more,
    )


def jobyard_settings(database_url: str, workers: int, port: int, chunk: int) -> Settings:
    return bench_settings(
        database_url,
        {
            "bench": {
                "concurrency": workers,
                "celery_pool": "prefork",
                "prefetch": 4,
                "dispatch_chunk": chunk,
            },
            # bench/yard.py's pod-per-job type (bench/pods.py) needs its pool declared; nothing
            # here submits to it.
            "pods": {"mode": "pod-per-job", "max_parallel": 1},
        },
        web={"port": port},
    )


def migrated(settings: Settings) -> Settings:
    """The settings, once their fresh database has jobyard's tables."""
    db = Database(settings.database)
    migrate.upgrade(db)
    db.close()
    return settings


def env_of(settings: Settings) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("JOBYARD_")}
    for key, value in settings.model_dump(mode="json", exclude_none=True).items():
        env[f"JOBYARD_{key.upper()}"] = json.dumps(value) if isinstance(value, dict) else str(value)
    # BENCH_PYTHONPATH: more for the jobyard processes (a `sitecustomize` that traces, say).
    extra = os.environ.get("BENCH_PYTHONPATH")
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), extra] if extra else [str(ROOT)])
    return env


def drained(runtime: Runtime) -> bool:
    """No job left queued, running or retrying (a small, shrinking index range to count)."""
    from sqlalchemy import func, select

    from jobyard.store.models import jobs_table

    active = ("queued", "running", "retrying")
    with runtime.db.read() as conn:
        left = conn.execute(select(func.count()).where(jobs_table.c.state.in_(active))).scalar_one()
    return int(left) == 0


def bench_jobyard(jobs: int, workers: int, logs: Path, port: int, chunk: int) -> Row:
    label = "" if chunk == 1 else f", dispatch_chunk={chunk}"
    row = Row(f"jobyard (PostgreSQL + Redis, every job recorded{label})")
    redis.Redis.from_url(REDIS).flushdb()
    with bench_database() as database_url:
        settings = migrated(jobyard_settings(database_url, workers, port, chunk))
        env = env_of(settings)
        base = [sys.executable, "-m", "jobyard"]
        web = spawn([*base, "web"], env, logs / "jobyard-web.log")
        worker = spawn([*base, "worker", "--pool", "bench"], env, logs / "jobyard-worker.log")
        scheduler = spawn([*base, "scheduler"], env, logs / "jobyard-scheduler.log")
        worker_rss, web_rss = PeakRss(worker.pid), PeakRss(web.pid)
        runtime = Runtime.open(settings)
        try:
            _measure_jobyard(row, runtime, jobs, port)
        finally:
            row.worker_rss_mb, row.web_rss_mb = worker_rss.stop(), web_rss.stop()
            runtime.close()
            for process in (scheduler, worker, web):
                stop(process)
            redis.Redis.from_url(REDIS).flushdb()  # leave the shared Redis as found
    return row


def _measure_jobyard(row: Row, runtime: Runtime, jobs: int, port: int) -> None:
    url = f"http://127.0.0.1:{port}/api/v1/jobs"
    with httpx.Client(timeout=30) as http:
        wait_until(lambda: _ready(http, port), 60, "jobyard web")
        http.post(url, json={"type": "bench.noop"})
        wait_until(lambda: drained(runtime), 60, "jobyard worker start")

        count = 2000
        start = time.perf_counter()
        for _ in range(count):
            http.post(url, json={"type": "bench.noop"}).raise_for_status()
        row.single_per_s, row.single_how = count / (time.perf_counter() - start), "HTTP POST"
        wait_until(lambda: drained(runtime), 600, "jobyard drain")

        body = {"jobs": [{"type": "bench.noop"}] * 1000}
        start = time.perf_counter()
        for _ in range(jobs // 1000):
            http.post(f"{url}/batch", json=body).raise_for_status()
        row.batch_per_s = jobs / (time.perf_counter() - start)
        row.batch_how = "HTTP POST /batch, 1,000 per request"
        wait_until(lambda: drained(runtime), 600, "jobyard drain")

        requests = [submit.JobRequest("bench.noop")] * 1000
        start = time.perf_counter()
        for _ in range(jobs // 1000):
            submit.submit_many(runtime, requests, submitted_by="bench")
        wait_until(lambda: drained(runtime), 900, "jobyard e2e")
        row.e2e_per_s = jobs / (time.perf_counter() - start)

        row.latency_ms = _latency(http, url, runtime)
        row.latency_how = "HTTP POST → job started (DB)"


def _ready(http: httpx.Client, port: int) -> bool:
    try:
        return http.get(f"http://127.0.0.1:{port}/readyz").status_code == 200
    except httpx.HTTPError:
        return False


def _latency(http: httpx.Client, url: str, runtime: Runtime) -> dict[str, float]:
    from jobyard.store import jobs as job_store

    sent: dict[str, float] = {}
    for _ in range(300):
        before = time.time()
        job_id = http.post(url, json={"type": "bench.noop"}).json()["id"]
        sent[job_id] = before
        time.sleep(0.01)
    waits = []
    for job_id, before in sent.items():
        record = wait_for_start(runtime, job_store, job_id)
        waits.append((record - before) * 1000)
    return percentiles(waits)


def wait_for_start(runtime: Runtime, job_store: Any, job_id: str) -> float:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        job = job_store.get(runtime.db, uuid.UUID(job_id))
        if job.started_at is not None:
            return float(job.started_at.timestamp())
        time.sleep(0.05)
    raise SystemExit(f"job {job_id} never started")


# -- report -------------------------------------------------------------------------------------


def report(rows: list[Row], jobs: int, workers: int) -> None:
    table = Table(title=f"{jobs:,} no-op jobs, {workers} worker processes (prefork), same Redis")
    for column in (
        "system",
        "enqueue one by one",
        "enqueue batched",
        "end-to-end",
        "submit→start p50 / p95 / p99",
        "peak RSS worker / web",
    ):
        table.add_column(column, justify="right" if column != "system" else "left")
    for row in rows:
        lat = row.latency_ms
        rss = (
            f"{row.worker_rss_mb:.0f} / {row.web_rss_mb:.0f} MB"
            if row.worker_rss_mb is not None
            else "—"
        )
        table.add_row(
            row.name,
            f"{row.single_per_s:,.0f}/s\n[dim]{row.single_how}[/]",
            f"{row.batch_per_s:,.0f}/s\n[dim]{row.batch_how}[/]",
            f"{row.e2e_per_s:,.0f}/s",
            f"{lat['p50']:.1f} / {lat['p95']:.1f} / {lat['p99']:.1f} ms\n[dim]{row.latency_how}[/]",
            rss,
        )
    console.print(table)
    celery = rows[0]
    for row in rows[1:]:
        console.print(
            f"{row.name}: end-to-end {row.e2e_per_s / celery.e2e_per_s:.2f}x raw Celery "
            f"(target ≥ 1.0x); batch submit {row.batch_per_s:,.0f}/s (target ≥ 5,000/s); "
            f"submit→start p50 {row.latency_ms['p50']:.1f} ms (target ≤ 10 ms)"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=20_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument(
        "--chunk", type=int, default=50, help="dispatch_chunk of the third row's pool"
    )
    args = parser.parse_args()
    logs = ROOT / "bench" / "results" / time.strftime("%Y%m%d-%H%M%S")
    logs.mkdir(parents=True, exist_ok=True)
    console.print(f"logs in {logs}")
    rows = [
        bench_celery(args.jobs, args.workers, logs),
        bench_jobyard(args.jobs, args.workers, logs, args.port, chunk=1),
        bench_jobyard(args.jobs, args.workers, logs, args.port, chunk=args.chunk),
    ]
    report(rows, args.jobs, args.workers)
    (logs / "results.json").write_text(json.dumps([r.__dict__ for r in rows], indent=2))


if __name__ == "__main__":
    main()
