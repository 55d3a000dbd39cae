"""Producer side of the benchmark, run once per phase in a fresh process.

    python driver.py LIB PHASE N RUN_ID [TIMEOUT_S]

LIB: celery-redis | celery-rabbitmq | rq | rq-simple | dramatiq | huey | arq | taskiq | procrastinate
     | jobyard-py | jobyard-http | jobyard-batch
PHASE:
  reset    clear the library's broker state (workers must be stopped)
  enqueue  enqueue N no-op jobs one call at a time, report jobs/s
  e2e      enqueue N no-op jobs (workers running), wait for the last to finish
  latency  N sequential jobs: submit, wait until the job has started, repeat

Prints one JSON object on stdout. Enqueueing is always one library call per
job (no batch/bulk APIs); async libraries await each call in turn.
Exception: jobyard-batch, which measures jobyard's batch API on purpose
(POST /api/v1/jobs/batch, JOBYARD_BATCH jobs per request, default 500; its
latency phase sends a batch of one job per request).
jobyard variants read $JOBYARD_CONFIG (jobyard_cfg/*.toml); jobyard-http and
jobyard-batch talk to a running `jobyard web` at $JOBYARD_WEB_URL.
"""

from __future__ import annotations

import asyncio
import importlib
import json
import math
import os
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "apps"))

import redis  # noqa: E402

# redis-py >= 6 defaults to socket_timeout=5 s; our BLPOPs may wait longer
SIDE = redis.Redis.from_url(
    os.environ.get("BENCH_SIDE_URL", "redis://127.0.0.1:6379/2"), socket_timeout=None
)
BROKER_DB_URL = "redis://127.0.0.1:6379/1"
WARMUP = 20
JOBYARD_BROKER_URL = "redis://127.0.0.1:6379/3"
JOBYARD_DSN = "postgresql://postgres@127.0.0.1:5432/peer_bench_jobyard"
JOBYARD_WEB_URL = os.environ.get("JOBYARD_WEB_URL", "http://127.0.0.1:18765")
# jobs per submit call in the throughput phases (1 = one call per job)
PER_CALL = {"jobyard-batch": int(os.environ.get("JOBYARD_BATCH", "500"))}


def _app(name: str) -> Any:
    """One of apps/*.py (typed loosely: each library's task objects have their own API)."""
    return importlib.import_module(name)


# --------------------------------------------------------------------------
# per-library "submit one job" factories: each returns (submit_noop, submit_lat, close)
# sync libs return plain callables; async libs return coroutine functions.
def sync_adapter(lib: str) -> tuple[Callable[..., Any], Callable[[str], Any], Callable[[], Any]]:
    if lib.startswith("celery"):
        os.environ["BENCH_BROKER"] = "amqp" if lib == "celery-rabbitmq" else "redis"
        m = _app("celery_app")

        return (lambda run, n: m.noop.delay(run, n)), (lambda run: m.lat.delay(run)), (lambda: None)
    if lib in ("rq", "rq-simple"):
        m = _app("rq_app")

        q = m.queue()
        return (
            (lambda run, n: q.enqueue(m.noop, run, n)),
            (lambda run: q.enqueue(m.lat, run)),
            (lambda: None),
        )
    if lib == "dramatiq":
        m = _app("dramatiq_app")

        return (lambda run, n: m.noop.send(run, n)), (lambda run: m.lat.send(run)), (lambda: None)
    if lib == "huey":
        m = _app("huey_app")

        return (lambda run, n: m.noop(run, n)), (lambda run: m.lat(run)), (lambda: None)
    if lib == "procrastinate":
        m = _app("procrastinate_app")

        m.app.open()
        return (
            (lambda run, n: m.noop.defer(run=run, n=n)),
            (lambda run: m.lat.defer(run=run)),
            m.app.close,
        )
    if lib == "jobyard-py":
        # the Python API: yard.submit() one call per job. The runtime (DB engine, Celery
        # publisher) is opened before timing, like procrastinate's app.open() above.
        m = _app("jobyard_app")

        from jobyard.config import load_settings

        opened = m.yard.open(load_settings())
        opened.__enter__()
        return (
            (lambda run, n, _k=1: m.yard.submit("noop", {"run": run, "n": n})),
            (lambda run: m.yard.submit("lat", {"run": run})),
            (lambda: opened.__exit__(None, None, None)),
        )
    if lib in ("jobyard-http", "jobyard-batch"):
        # The standard library's keep-alive connection: httpx spends ~0.4 ms of client CPU per
        # request (measured against a server that answers at once: 0.65 vs 0.22 ms), on the
        # same 2 cores as the server and the workers; the server's cost is what is compared.
        import http.client as http_client
        from urllib.parse import urlsplit

        where = urlsplit(JOBYARD_WEB_URL)
        connection = http_client.HTTPConnection(
            where.hostname or "127.0.0.1", where.port, timeout=60
        )
        headers = {"Content-Type": "application/json"}
        connection.request("GET", "/healthz")  # open the connection before timing
        health = connection.getresponse()
        health.read()
        if health.status != 200:
            raise RuntimeError(f"GET /healthz -> {health.status}")

        def post(path: str, body: dict[str, Any]) -> None:
            connection.request("POST", path, body=json.dumps(body).encode(), headers=headers)
            response = connection.getresponse()
            text = response.read()
            if response.status != 201:
                raise RuntimeError(f"POST {path} -> {response.status}: {text[:500]!r}")

        if lib == "jobyard-http":
            return (
                (
                    lambda run, n, _k=1: post(
                        "/api/v1/jobs", {"type": "noop", "args": {"run": run, "n": n}}
                    )
                ),
                (lambda run: post("/api/v1/jobs", {"type": "lat", "args": {"run": run}})),
                connection.close,
            )
        return (
            (
                lambda run, n, k: post(
                    "/api/v1/jobs/batch",
                    {"jobs": [{"type": "noop", "args": {"run": run, "n": n}}] * k},
                )
            ),
            (
                lambda run: post(
                    "/api/v1/jobs/batch", {"jobs": [{"type": "lat", "args": {"run": run}}]}
                )
            ),
            connection.close,
        )
    raise KeyError(lib)


async def async_adapter(
    lib: str,
) -> tuple[
    Callable[..., Awaitable[Any]], Callable[[str], Awaitable[Any]], Callable[[], Awaitable[Any]]
]:
    if lib == "arq":
        m = _app("arq_app")
        from arq import create_pool

        pool = await create_pool(m.REDIS)

        async def close() -> None:
            await pool.aclose()

        return (
            (lambda run, n: pool.enqueue_job("noop", run, n)),
            (lambda run: pool.enqueue_job("lat", run)),
            close,
        )
    if lib == "taskiq":
        m = _app("taskiq_app")

        await m.broker.startup()
        return (lambda run, n: m.noop.kiq(run, n)), (lambda run: m.lat.kiq(run)), m.broker.shutdown
    raise KeyError(lib)


ASYNC_LIBS = {"arq", "taskiq"}


# --------------------------------------------------------------------------
def reset(lib: str) -> dict[str, str]:
    if lib.startswith("jobyard"):
        import psycopg

        tables = [
            "jobyard_jobs",
            "jobyard_job_attempts",
            "jobyard_job_logs",
            "jobyard_workers",
            "jobyard_audit",
        ]
        with psycopg.connect(JOBYARD_DSN, autocommit=True) as c:
            c.execute("TRUNCATE " + ", ".join(tables) + " CASCADE")
            # the scheduler's leader lease row is seeded by migration 0002 and must stay; free it
            # (no scheduler runs during reset) so the next scheduler becomes leader at once
            c.execute(
                "INSERT INTO jobyard_leases (name, holder, token, expires_at, acquired_at) "
                "VALUES ('scheduler', NULL, 0, 0, 0) ON CONFLICT (name) DO NOTHING"
            )
            c.execute(
                "UPDATE jobyard_leases SET holder = NULL, expires_at = 0 WHERE name = 'scheduler'"
            )
            for t in [*tables, "jobyard_leases"]:
                c.execute(f"VACUUM ANALYZE {t}")
        redis.Redis.from_url(JOBYARD_BROKER_URL).flushdb()
        return {
            "reset": "truncated jobyard job tables, freed the scheduler lease, flushed redis db 3"
        }
    if lib == "procrastinate":
        m = _app("procrastinate_app")
        import psycopg

        with psycopg.connect(m.DSN, autocommit=True) as c:
            row = c.execute("select to_regclass('procrastinate_jobs')").fetchone()
            if row is None or row[0] is None:
                with m.app.open():
                    m.app.schema_manager.apply_schema()
            c.execute("TRUNCATE procrastinate_jobs RESTART IDENTITY CASCADE")
            c.execute("VACUUM ANALYZE procrastinate_jobs")
        return {"reset": "truncated procrastinate_jobs"}
    if lib == "celery-rabbitmq":
        os.environ["BENCH_BROKER"] = "amqp"
        m = _app("celery_app")

        with m.app.connection_for_write() as conn:
            try:
                purged = conn.default_channel.queue_purge("celery")
            except Exception as e:  # queue not declared yet
                purged = repr(e)
        return {"reset": f"purged celery queue: {purged}"}
    redis.Redis.from_url(BROKER_DB_URL).flushdb()
    return {"reset": "flushed redis db 1"}


def wait_end(run: str, n: int, timeout: float) -> tuple[float | None, int]:
    got = SIDE.blpop(f"b:{run}:end", timeout=timeout)
    if got is None:
        done = int(SIDE.get(f"b:{run}:done") or 0)
        return None, done
    return float(got[1]), n


def pct(sorted_vals: list[float], p: float) -> float:
    # nearest-rank percentile: the ceil(p/100 * n)-th smallest value
    k = max(0, min(len(sorted_vals) - 1, math.ceil(p / 100.0 * len(sorted_vals) - 1e-9) - 1))
    return sorted_vals[k]


def lat_summary(lats_ms: list[float]) -> dict[str, float]:
    s = sorted(lats_ms)
    return {
        "count": len(s),
        "p50_ms": pct(s, 50),
        "p95_ms": pct(s, 95),
        "p99_ms": pct(s, 99),
        "mean_ms": sum(s) / len(s),
        "max_ms": s[-1],
        "min_ms": s[0],
    }


def run_sync(lib: str, phase: str, n: int, run: str, timeout: float) -> dict[str, Any]:
    submit_noop, submit_lat, close = sync_adapter(lib)
    try:
        k = PER_CALL.get(lib, 1)

        def submit_all() -> None:
            if k == 1:
                for _ in range(n):
                    submit_noop(run, n)
                return
            left = n
            while left > 0:
                submit_noop(run, n, min(k, left))
                left -= k

        if phase == "enqueue":
            t0 = time.time()
            submit_all()
            dt = time.time() - t0
            return {"seconds": dt, "rate": n / dt}
        if phase == "e2e":
            t0 = time.time()
            submit_all()
            t_enq = time.time() - t0
            end, done = wait_end(run, n, timeout)
            if end is None:
                return {"timeout": True, "done": done, "enqueue_seconds": t_enq}
            return {"seconds": end - t0, "rate": n / (end - t0), "enqueue_seconds": t_enq}
        if phase == "latency":
            key = f"b:{run}:lat"
            lats: list[float] = []
            for i in range(WARMUP + n):
                t0 = time.time()
                submit_lat(run)
                got = SIDE.blpop(key, timeout=timeout)
                if got is None:
                    return {"timeout": True, "done": len(lats)}
                if i >= WARMUP:
                    lats.append((float(got[1]) - t0) * 1000.0)
            return lat_summary(lats)
    finally:
        close()
    raise KeyError(phase)


async def run_async(lib: str, phase: str, n: int, run: str, timeout: float) -> dict[str, Any]:
    import redis.asyncio as aredis

    aside = aredis.Redis.from_url(
        os.environ.get("BENCH_SIDE_URL", "redis://127.0.0.1:6379/2"), socket_timeout=None
    )
    submit_noop, submit_lat, close = await async_adapter(lib)
    try:
        if phase == "enqueue":
            t0 = time.time()
            for _ in range(n):
                await submit_noop(run, n)
            dt = time.time() - t0
            return {"seconds": dt, "rate": n / dt}
        if phase == "e2e":
            t0 = time.time()
            for _ in range(n):
                await submit_noop(run, n)
            t_enq = time.time() - t0
            got = await aside.blpop(f"b:{run}:end", timeout=timeout)
            if got is None:
                done = int(await aside.get(f"b:{run}:done") or 0)
                return {"timeout": True, "done": done, "enqueue_seconds": t_enq}
            end = float(got[1])
            return {"seconds": end - t0, "rate": n / (end - t0), "enqueue_seconds": t_enq}
        if phase == "latency":
            key = f"b:{run}:lat"
            lats: list[float] = []
            for i in range(WARMUP + n):
                t0 = time.time()
                await submit_lat(run)
                got = await aside.blpop(key, timeout=timeout)
                if got is None:
                    return {"timeout": True, "done": len(lats)}
                if i >= WARMUP:
                    lats.append((float(got[1]) - t0) * 1000.0)
            return lat_summary(lats)
    finally:
        await close()
        await aside.aclose()
    raise KeyError(phase)


def main() -> None:
    lib, phase, n, run = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    timeout = float(sys.argv[5]) if len(sys.argv) > 5 else 300.0
    if phase == "reset":
        out = reset(lib)
    elif lib in ASYNC_LIBS:
        out = asyncio.run(run_async(lib, phase, n, run, timeout))
    else:
        out = run_sync(lib, phase, n, run, timeout)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
