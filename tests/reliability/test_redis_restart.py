"""Redis restarts while every worker slot is busy: consumption resumes with no person.

Before the fix (kombu's Redis QoS kept the prefetch credit of an ack that failed, and an idle
socket closed without credit was dropped silently) such a worker never consumed again while
looking healthy. See ../shared/research/celery-redis-stall.md.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from jobyard.domain.states import JobState
from jobyard.store import jobs, workers
from tests import services
from tests.factories import (
    FAST_TIMINGS,
    MADE_SETTINGS,
    TEST_POOLS,
    Backend,
    Stack,
    make_settings,
    wait_for,
)
from tests.reliability.helpers import completions, submit_record

JOBS_PER_POOL = 4
JOB_S = 0.8


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[services.RestartableRedis]:
    server = services.RestartableRedis(services.free_port(), tmp_path / "redis")
    server.start()
    try:
        yield server
    finally:
        server.stop()


#: pool -> (Celery pool kind, prefetch, job type): every combination the stall was seen with.
BUSY_POOLS = {
    "media": ("prefork", 1, "t.record"),
    "bulk": ("prefork", 4, "t.bulk"),
    "general": ("threads", 1, "t.record_general"),
    "io": ("threads", 4, "t.record_io"),
}


@pytest.mark.slow
@pytest.mark.parametrize("outage_s", [2.0, 10.0])
def test_busy_workers_consume_again_after_redis_restart(
    outage_s: float,
    redis_server: services.RestartableRedis,
    tmp_path: Path,
    pg_template: None,
) -> None:
    """Prefork and threads workers, prefetch 1 and 4, every slot busy; Redis is `kill -9`ed and
    restarted from its append-only file: all of them finish every job, each exactly once."""
    del pg_template
    pools = {
        name: {"concurrency": 2, "celery_pool": kind, "prefetch": prefetch, "dispatch_chunk": 1}
        for name, (kind, prefetch, _) in BUSY_POOLS.items()
    }
    out = tmp_path / "out"
    out.mkdir()
    (tmp_path / "logs").mkdir()
    with services.pg_database() as url:
        backend = Backend("pg", url, redis_server.url)
        settings = make_settings(backend, tmp_path / "data", pools=pools)
        # The private server is gone at the session's end: nothing to clean up there.
        MADE_SETTINGS.remove(settings)
        stack = Stack(settings, tmp_path / "logs")
        try:
            stack.workers(*BUSY_POOLS)
            # Messages a worker held unstarted when its connection broke come back through the
            # scheduler's lost-message heal, as in any deployment (kombu cannot restore them
            # while Redis is down).
            stack.scheduler()
            # A worker is registered before its consumer is ready: one job per pool first, so
            # that every pool is consuming when the load starts and all slots overlap.
            warm = tmp_path / "warm"
            warm.mkdir()
            firsts = [
                submit_record(stack, pool, warm, 0.0, job_type=job_type)
                for pool, (_, _, job_type) in BUSY_POOLS.items()
            ]
            wait_for(lambda: _all_succeeded(stack, firsts), timeout_s=30, what="warm-up jobs")
            ids = [
                submit_record(stack, f"{pool}{i}", out, JOB_S, job_type=job_type)
                for i in range(JOBS_PER_POOL)
                for pool, (_, _, job_type) in BUSY_POOLS.items()
            ]
            busy = 2 * len(BUSY_POOLS)
            wait_for(lambda: _running(stack) == busy, timeout_s=30, what="every slot busy")
            redis_server.kill()
            time.sleep(outage_s)
            redis_server.start()
            restarted = time.monotonic()
            wait_for(
                lambda: _all_succeeded(stack, ids),
                timeout_s=45,
                interval_s=0.1,
                what="every job to succeed after the restart",
            )
            recovery_s = time.monotonic() - restarted
        except AssertionError:
            print(stack.logs())  # noqa: T201 - shown only when the test fails
            raise
        finally:
            stack.close()
    print(  # noqa: T201 - the recovery time the hardening issue asks to report
        f"outage={outage_s:g}s: every job done {recovery_s:.1f}s after the restart"
    )
    done = completions(out)
    expected = {f"{pool}{i}" for i in range(JOBS_PER_POOL) for pool in BUSY_POOLS}
    assert {key for key, _ in done} == expected
    assert set(done.values()) == {1}, f"a finished job ran again: {done}"


def _running(stack: Stack) -> int:
    with stack.runtime.db.read() as conn:
        return len(jobs.running(conn, limit=100))


def _all_succeeded(stack: Stack, ids: list[uuid.UUID]) -> bool:
    return all(jobs.get(stack.runtime.db, i).state is JobState.SUCCEEDED for i in ids)


@pytest.mark.slow
def test_stall_guard_reconnects_a_stalled_consumer(
    redis_server: services.RestartableRedis, tmp_path: Path, pg_template: None
) -> None:
    """The safety net on its own: with kombu's original transport a busy prefork worker stalls
    after a Redis restart; the guard sees free slots, messages waiting and nothing received,
    reports the stall and reconnects the consumer, well within 30 s. Remote control is off:
    its subscription socket notices the restart and would bring the consumer back by itself."""
    del pg_template
    pools = {**TEST_POOLS, "media": {"concurrency": 2, "celery_pool": "prefork"}}
    out = tmp_path / "out"
    out.mkdir()
    (tmp_path / "logs").mkdir()
    with services.pg_database() as url:
        backend = Backend("pg", url, redis_server.url)
        settings = make_settings(
            backend,
            tmp_path / "data",
            pools=pools,
            worker={
                **FAST_TIMINGS["worker"],
                "stall_after_s": 4.0,
                "kombu_ack_fix": False,
                "remote_control": False,
            },
        )
        MADE_SETTINGS.remove(settings)
        stack = Stack(settings, tmp_path / "logs")
        try:
            stack.worker("media")
            ids = [submit_record(stack, f"p{i}", out, JOB_S) for i in range(JOBS_PER_POOL)]
            wait_for(lambda: _running(stack) == 2, timeout_s=30, what="every slot busy")
            redis_server.kill()
            time.sleep(2.0)
            redis_server.start()
            restarted = time.monotonic()
            wait_for(lambda: _stalled(stack), timeout_s=20, what="the stall to be reported")
            wait_for(
                lambda: _all_succeeded(stack, ids),
                timeout_s=30,
                interval_s=0.1,
                what="every job to succeed after the reconnect",
            )
            recovery_s = time.monotonic() - restarted
            log = (tmp_path / "logs" / "worker-media.log").read_text()
        except AssertionError:
            print(stack.logs())  # noqa: T201 - shown only when the test fails
            raise
        finally:
            stack.close()
    print(f"stall guard: every job done {recovery_s:.1f}s after the restart")  # noqa: T201
    assert "reconnecting to the broker" in log
    assert set(completions(out).values()) == {1}


def _stalled(stack: Stack) -> bool:
    with stack.runtime.db.read() as conn:
        return any(w.stalled_since is not None for w in workers.listing(conn))
