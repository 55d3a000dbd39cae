"""Input the database could not store exactly gets a 4xx naming the field; nothing is stored.

Each case answered 500 (or stored other args than sent) before the hardening issue.
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from fastapi.testclient import TestClient

from jobyard.dispatch import submit
from jobyard.runtime import Runtime

# The checks run before any backend is touched; PostgreSQL is where these inputs used to fail.
pytestmark = pytest.mark.parametrize("backend", ["postgres-redis"], indirect=True)


def _jobs(client: TestClient) -> int:
    return len(client.get("/api/v1/jobs", params={"limit": 500}).json()["items"])


def _echo(message: Any, **extra: Any) -> dict[str, Any]:
    return {"type": "t.echo", "args": {"message": message, **extra}}


@pytest.mark.parametrize(
    ("body", "field", "says"),
    [
        (_echo("nul\x00here"), "args.message", "NUL"),
        (_echo("x", **{"k\x00": 1}), "args", "NUL"),
        (_echo("lone \ud800 surrogate"), "args.message", "surrogate"),
        ({**_echo("x"), "idempotency_key": "key\x00"}, None, "NUL"),
    ],
)
def test_unstorable_text_is_refused(
    client: TestClient, body: dict[str, Any], field: str | None, says: str
) -> None:
    raw = json.dumps(body)  # escapes \u0000 and lone surrogates as JSON allows
    response = client.post(
        "/api/v1/jobs", content=raw, headers={"content-type": "application/json"}
    )
    assert response.status_code == 422, response.text
    problem = response.json()
    assert says in problem["message"]
    if field:
        assert problem["code"] == "invalid_args" and field in problem["message"]
    assert _jobs(client) == 0


@pytest.mark.parametrize("number", ["NaN", "Infinity", "-Infinity", "1e400"])
def test_numbers_json_cannot_hold_are_refused(client: TestClient, number: str) -> None:
    raw = '{"type": "t.echo", "args": {"message": "m", "extra": NUMBER}}'.replace("NUMBER", number)
    response = client.post(
        "/api/v1/jobs", content=raw, headers={"content-type": "application/json"}
    )
    assert response.status_code == 422, response.text
    assert response.json()["code"] == "invalid_args"
    assert "args.extra" in response.json()["message"]
    assert _jobs(client) == 0


def test_deep_nesting_is_refused_and_one_bad_job_rejects_the_batch(client: TestClient) -> None:
    deep: Any = "leaf"
    for _ in range(100):
        deep = [deep]
    response = client.post("/api/v1/jobs", json=_echo("m", deep=deep))
    assert response.status_code == 422 and "nested deeper than 64" in response.json()["message"]
    batch = {"jobs": [_echo("fine"), _echo("bad\x00")]}
    response = client.post("/api/v1/jobs/batch", json=batch)
    assert response.status_code == 422, response.text
    assert response.json()["errors"][0]["index"] == 1
    assert _jobs(client) == 0


def test_query_parameters_and_cursors(client: TestClient) -> None:
    for params in ({"type": "a\x00b"}, {"pool": "p\x00"}, {"q": "x\x00"}):
        response = client.get("/api/v1/jobs", params=params)
        assert response.status_code == 422, (params, response.text)
        assert next(iter(params)) in response.json()["message"]
    job_id = client.post("/api/v1/jobs", json=_echo("m")).json()["id"]
    response = client.get(f"/api/v1/jobs/{job_id}/logs", params={"after": 2**70})
    assert response.status_code == 422 and response.json()["code"] == "invalid_request"
    for cursor in (2**70, -1):
        response = client.get("/api/v1/audit", params={"cursor": cursor})
        assert response.status_code == 422, response.text


def test_schedules_refuse_unstorable_args_and_text(client: TestClient) -> None:
    schedule = {"name": "s1", "type": "t.echo", "args": {"message": "x"}, "interval_s": 60}
    bad = [{**schedule, "args": {"message": "a\x00"}}, {**schedule, "description": "d\x00"}]
    for body in bad:
        response = client.post("/api/v1/schedules", json=body)
        assert response.status_code == 422, response.text
    assert client.get("/api/v1/schedules").json()["items"] == []
    assert client.post("/api/v1/schedules", json=schedule).status_code == 201
    response = client.patch("/api/v1/schedules/s1", json={"description": "d\x00"})
    assert response.status_code == 422, response.text


def test_concurrent_submits_with_one_idempotency_key_get_one_job(client: TestClient) -> None:
    runtime: Runtime = client.app.state.runtime  # type: ignore[attr-defined]
    request = submit.JobRequest("t.echo", {"message": "once"}, idempotency_key="race-1")

    def one(_: int) -> str:
        return str(submit.submit_one(runtime, request, submitted_by="test").job.id)

    with ThreadPoolExecutor(max_workers=16) as pool:
        ids = set(pool.map(one, range(50)))
    assert len(ids) == 1
    assert _jobs(client) == 1


def test_too_deep_to_parse_is_malformed_json_and_405_says_allow(client: TestClient) -> None:
    body = '{"type": "t.echo", "args": {"message": ' + "[" * 5000 + "]" * 5000 + "}}"
    response = client.post(
        "/api/v1/jobs", content=body, headers={"content-type": "application/json"}
    )
    assert response.status_code == 400 and response.json()["code"] == "malformed_json"
    response = client.put("/api/v1/jobs", json={})
    assert response.status_code == 405 and response.json()["code"] == "method_not_allowed"
    assert "POST" in response.headers["allow"]
    assert _jobs(client) == 0


def test_request_bodies_are_capped(client: TestClient) -> None:
    big = {"type": "t.echo", "args": {"message": "x" * (3 * 1024 * 1024)}}
    response = client.post("/api/v1/jobs", json=big)
    assert response.status_code == 413
    assert response.json()["code"] == "payload_too_large"
    assert "web.max_body_bytes" in response.json()["message"]

    def streamed() -> Any:  # no Content-Length: counted as it arrives
        yield b'{"type": "t.echo", "args": {"message": "'
        for _ in range(40):
            yield b"y" * 65536
        yield b'"}}'

    chunked = client.post("/api/v1/jobs", content=streamed())
    assert chunked.status_code == 413 and chunked.json()["code"] == "payload_too_large"
    # A batch may be larger than one job's body (web.max_batch_body_bytes).
    batch = {"jobs": [_echo("z" * 900_000) for _ in range(3)]}
    assert client.post("/api/v1/jobs/batch", json=batch).status_code == 201
    assert _jobs(client) == 3


def test_dashboard_forms_refuse_unstorable_text(client: TestClient) -> None:
    client.cookies.set("jobyard_csrf", "token")
    response = client.post(
        "/ui/jobs/bulk",
        data={"csrf_token": "token", "action": "cancel_filtered", "filter_type": "t.echo\x00"},
        follow_redirects=False,
    )
    assert response.status_code == 422
    assert response.json()["code"] == "invalid_request"
    assert "form field 'filter_type'" in response.json()["message"]
    assert "NUL" in response.json()["message"]
