"""PostgreSQL restarts (`pg_ctl restart -m immediate`) under running jobs, claims and bulk
success flushes: no finished job runs again, no live worker's attempt is called lost, and no
job waits for the scheduler's lost-message heal.

Each test runs its own cluster (`services.PrivatePostgres`); the shared server is untouched.
"""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from jobyard.api.app import create_app
from jobyard.dispatch import submit
from jobyard.domain.states import JobState
from jobyard.store import jobs, migrate
from jobyard.store.db import Database
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


@pytest.fixture
def private_pg() -> Iterator[services.PrivatePostgres]:
    server = services.PrivatePostgres(services.free_port())
    server.init()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def pg_stack(private_pg: services.PrivatePostgres, tmp_path: Path) -> Iterator[Stack]:
    """Workers and a scheduler over the private cluster and the shared Redis."""
    import psycopg

    with psycopg.connect(private_pg.admin_url, autocommit=True) as conn:
        conn.execute("CREATE DATABASE jobyard")
    url = private_pg.url("jobyard")
    db = Database(url.replace("postgresql://", "postgresql+psycopg://"))
    migrate.upgrade(db)
    db.close()
    pools = {
        **TEST_POOLS,
        "general": {"concurrency": 2, "celery_pool": "threads"},
        "bulk": {"concurrency": 2, "celery_pool": "prefork", "dispatch_chunk": 20},
    }
    services.check_redis(services.REDIS_URL)
    # The lost-message heal could mask a dropped claim: it is kept out of the test's window.
    scheduler = {**FAST_TIMINGS["scheduler"], "lost_message_after_s": 600.0}
    backend = Backend("pg", url, services.REDIS_URL)
    settings = make_settings(backend, tmp_path / "data", pools=pools, scheduler=scheduler)
    (tmp_path / "logs").mkdir()
    stack = Stack(settings, tmp_path / "logs")
    try:
        yield stack
    finally:
        stack.close()
        services.remove_queues(settings)
        MADE_SETTINGS.remove(settings)


def _restarts(server: services.PrivatePostgres, count: int, every_s: float) -> threading.Thread:
    def run() -> None:
        for _ in range(count):
            time.sleep(every_s)
            server.restart("immediate")

    thread = threading.Thread(target=run, name="pg-restarts")
    thread.start()
    return thread


def _settled(stack: Stack, ids: list[uuid.UUID]) -> bool:
    try:
        return all(jobs.get(stack.runtime.db, i).state is JobState.SUCCEEDED for i in ids)
    except Exception:  # the test's own connection meets the restart too
        return False


def _check_exactly_once(stack: Stack, ids: list[uuid.UUID], out: Path) -> None:
    done = completions(out)
    runs = Counter(key for key, _ in done.elements())
    assert len(runs) == len(ids), f"{len(ids) - len(runs)} job(s) never completed"
    assert set(runs.values()) == {1}, f"a finished job ran again: {runs.most_common(5)}"

    def read() -> tuple[set[str], set[int]]:
        with stack.runtime.db.read() as conn:
            outcomes = {a.outcome for i in ids for a in jobs.attempts(conn, i)}
            attempts = {jobs.fetch(conn, i).attempt for i in ids}  # type: ignore[union-attr]
        return outcomes, attempts

    outcomes, attempts = stack.runtime.db.retry(read, what="reading the results")
    assert outcomes == {"succeeded"}, f"attempts ended otherwise: {outcomes}"
    assert attempts == {1}
    scheduler_log = (stack.log_dir / "scheduler.log").read_text()
    assert "published them again" not in scheduler_log, "a job waited for the lost-message heal"


@pytest.mark.slow
def test_restarts_during_running_jobs_and_claims(
    private_pg: services.PrivatePostgres, pg_stack: Stack, tmp_path: Path
) -> None:
    stack = pg_stack
    out = tmp_path / "out"
    out.mkdir()
    stack.workers("media", "general")
    stack.scheduler()
    ids = [
        submit_record(stack, f"{kind}{i}", out, 0.4, job_type=job_type)
        for i in range(10)
        for kind, job_type in (("p", "t.record"), ("t", "t.record_general"))
    ]
    restarts = _restarts(private_pg, count=3, every_s=0.9)
    try:
        wait_for(lambda: _settled(stack, ids), timeout_s=60, interval_s=0.2, what="every job")
    except AssertionError:
        print(stack.logs())  # noqa: T201 - shown only when the test fails
        raise
    finally:
        restarts.join()
    _check_exactly_once(stack, ids, out)


@pytest.mark.slow
def test_restarts_during_bulk_success_flushes(
    private_pg: services.PrivatePostgres, pg_stack: Stack, tmp_path: Path
) -> None:
    stack = pg_stack
    out = tmp_path / "out"
    out.mkdir()
    stack.workers("bulk")
    stack.scheduler()
    requests = [
        submit.JobRequest("t.bulk", {"key": f"b{i}", "directory": str(out), "sleep_s": 0.01})
        for i in range(400)
    ]
    made = submit.submit_many(stack.runtime, requests, submitted_by="test", batch=True)
    ids = [item.job.id for item in made]
    restarts = _restarts(private_pg, count=3, every_s=0.7)
    try:
        wait_for(lambda: _settled(stack, ids), timeout_s=60, interval_s=0.2, what="every job")
    except AssertionError:
        print(stack.logs())  # noqa: T201 - shown only when the test fails
        raise
    finally:
        restarts.join()
    _check_exactly_once(stack, ids, out)


def test_the_web_answers_503_while_the_database_is_down(
    private_pg: services.PrivatePostgres, pg_stack: Stack, caplog: pytest.LogCaptureFixture
) -> None:
    """Every kind of request gets 503 + Retry-After + a stable code while PostgreSQL is down,
    one log line each and no traceback; after it is back, nothing accepted was lost."""
    job = {"type": "t.echo", "args": {"message": "before"}}
    with TestClient(create_app(pg_stack.settings), raise_server_exceptions=False) as client:
        assert client.post("/api/v1/jobs", json=job).status_code == 201
        private_pg.halt()
        try:
            for method, path in [
                ("POST", "/api/v1/jobs"),
                ("GET", "/api/v1/jobs"),
                ("GET", "/api/v1/pools"),
                ("GET", "/api/v1/schedules"),
                ("GET", "/metrics"),
                ("GET", "/ui/fragments/pools"),
            ]:
                response = client.request(method, path, json=job if method == "POST" else None)
                assert response.status_code == 503, (path, response.text)
                assert response.headers["retry-after"] == "5"
                assert response.json()["code"] == "database_unavailable", path
            page = client.get("/jobs", headers={"accept": "text/html"})
            assert page.status_code == 503 and 'http-equiv="refresh"' in page.text
            ready = client.get("/readyz")
            assert ready.status_code == 503 and "unreachable" in ready.json()["database"]
        finally:
            private_pg.start()
        wait_for(
            lambda: client.post("/api/v1/jobs", json=job).status_code == 201,
            timeout_s=20,
            what="submits to work again",
        )
        assert len(client.get("/api/v1/jobs").json()["items"]) == 2
    assert not [r for r in caplog.records if r.exc_info], "a traceback was logged"
    unavailable = [
        r for r in caplog.records if r.getMessage().endswith(")") and "503" not in r.getMessage()
    ]
    assert any("database unavailable" in r.getMessage() for r in unavailable)


@pytest.mark.slow
def test_http_submits_during_restarts_are_stored_once_each(
    private_pg: services.PrivatePostgres, pg_stack: Stack
) -> None:
    """Concurrent clients submit through `jobyard web` (grouped commits) while PostgreSQL
    restarts: every answer is 201 or 503, every 201 is one stored row with its audit entry,
    and no submit is stored twice."""
    stack = pg_stack
    url = stack.web()
    restarts = _restarts(private_pg, count=3, every_s=0.8)
    try:
        answers = asyncio.run(_submit_until(url, clients=10, seconds=3.5))
    finally:
        restarts.join()
    statuses = Counter(status for status, _, _ in answers)
    assert set(statuses) <= {201, 503}, statuses
    assert statuses[201] > 0 and statuses[503] > 0, statuses  # the restarts were met
    accepted = {job_id: message for status, message, job_id in answers if status == 201}

    def stored() -> tuple[Counter[str], set[str], set[str]]:
        with stack.runtime.db.read() as conn:
            messages = Counter(
                row[0] for row in conn.exec_driver_sql("SELECT args->>'message' FROM jobyard_jobs")
            )
            ids = {str(row[0]) for row in conn.exec_driver_sql("SELECT id FROM jobyard_jobs")}
            audited = {
                row[0]
                for row in conn.exec_driver_sql(
                    "SELECT target FROM jobyard_audit WHERE action = 'job.submit'"
                )
            }
        return messages, ids, audited

    messages, ids, audited = stack.runtime.db.retry(stored, what="reading the submits")
    assert set(accepted) <= ids and set(accepted) <= audited
    assert max(messages.values()) == 1, messages.most_common(3)
    assert all(messages[m] == 1 for m in accepted.values())


async def _submit_until(url: str, clients: int, seconds: float) -> list[tuple[int, str, str]]:
    """Each client submits one job after another (each with its own message) until the time
    is up; the answers as (status, message, job id or "")."""
    answers: list[tuple[int, str, str]] = []
    deadline = time.monotonic() + seconds

    async def client(number: int) -> None:
        async with httpx.AsyncClient(base_url=url, timeout=30) as http:
            sent = 0
            while time.monotonic() < deadline:
                message = f"c{number}-{sent}"
                sent += 1
                body = {"type": "t.echo", "args": {"message": message}}
                response = await http.post("/api/v1/jobs", json=body)
                job_id = response.json().get("id", "") if response.status_code == 201 else ""
                answers.append((response.status_code, message, job_id))

    await asyncio.gather(*(client(n) for n in range(clients)))
    return answers
