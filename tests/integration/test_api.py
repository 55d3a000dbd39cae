"""The REST API over real databases and brokers, with no workers running."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi.testclient import TestClient

from jobyard.api.app import create_app
from jobyard.config import Settings
from jobyard.domain.limits import MAX_BATCH_JOBS
from jobyard.store import workers
from jobyard.store.records import WorkerRecord


def _queued_messages(client: TestClient, settings: Settings, pool: str = "general") -> int:
    runtime = client.app.state.runtime  # type: ignore[attr-defined]
    queue = settings.queue_for(pool)
    return runtime.publisher.queue_lengths([queue])[queue]  # type: ignore[no-any-return]


def _job_count(client: TestClient) -> int:
    return len(client.get("/api/v1/jobs", params={"limit": 500}).json()["items"])


def test_submit_records_and_publishes(client: TestClient, settings: Settings) -> None:
    response = client.post("/api/v1/jobs", json={"type": "t.echo", "args": {"message": "hi"}})
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["state"] == "queued"
    assert body["args"] == {"message": "hi", "count": 1}
    assert body["pool"] == "general" and body["queue"] == settings.queue_for("general")
    fetched = client.get(f"/api/v1/jobs/{body['id']}").json()
    assert fetched["state"] == "queued" and fetched["attempts"] == []
    assert _queued_messages(client, settings) == 1


def test_model_args_and_priority(client: TestClient) -> None:
    response = client.post(
        "/api/v1/jobs", json={"type": "t.model", "args": {"x": 1, "y": 2}, "priority": 9}
    )
    assert response.status_code == 201
    assert response.json()["priority"] == 9


def _assert_problem(response: Any, status: int, code: str, *words: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    assert body["code"] == code
    for word in words:
        assert word in body["message"], body["message"]
    return body


def test_rejections_enqueue_nothing(client: TestClient, settings: Settings) -> None:
    _assert_problem(
        client.post("/api/v1/jobs", json={"type": "t.nope", "args": {}}),
        422,
        "unknown_job_type",
        "t.nope",
        "t.echo",
    )
    body = _assert_problem(
        client.post("/api/v1/jobs", json={"type": "t.echo", "args": {"count": "many"}}),
        422,
        "invalid_args",
        "message",
        "count",
    )
    assert {e["field"] for e in body["errors"]} == {"message", "count"}
    _assert_problem(
        client.post("/api/v1/jobs", json={"type": "t.echo", "args": {"message": "x" * 1_100_000}}),
        413,
        "args_too_large",
        "1 MiB",
    )
    _assert_problem(
        client.post(
            "/api/v1/jobs",
            content=b'{"type": "t.echo", "args": {',
            headers={"content-type": "application/json"},
        ),
        400,
        "malformed_json",
    )
    _assert_problem(
        client.post(
            "/api/v1/jobs", json={"type": "t.echo", "args": {"message": "a"}, "priority": 12}
        ),
        422,
        "invalid_request",
        "priority",
    )
    _assert_problem(
        client.post("/api/v1/jobs", json={"type": "t.echo", "argz": {}}),
        422,
        "invalid_request",
        "argz",
    )
    assert _job_count(client) == 0
    assert _queued_messages(client, settings) == 0


def test_unknown_and_malformed_ids(client: TestClient) -> None:
    missing = uuid.uuid4()
    for path in (f"/api/v1/jobs/{missing}", f"/api/v1/jobs/{missing}/logs"):
        _assert_problem(client.get(path), 404, "job_not_found", str(missing))
    _assert_problem(client.post(f"/api/v1/jobs/{missing}/cancel"), 404, "job_not_found")
    _assert_problem(client.get("/api/v1/jobs/not-a-uuid"), 422, "invalid_request", "job_id")
    _assert_problem(client.get("/api/v1/nowhere"), 404, "not_found")


def test_batch_is_all_or_nothing(client: TestClient, settings: Settings) -> None:
    good = [{"type": "t.echo", "args": {"message": str(i)}} for i in range(200)]
    response = client.post("/api/v1/jobs/batch", json={"jobs": good})
    assert response.status_code == 201, response.text
    assert response.json()["created"] == 200
    # Split into messages of the pool's `dispatch_chunk` (default 50).
    assert settings.pools["general"].dispatch_chunk == 50
    assert _queued_messages(client, settings) == 4

    bad = [*good[:3], {"type": "t.echo", "args": {}}, {"type": "t.missing"}]
    body = _assert_problem(
        client.post("/api/v1/jobs/batch", json={"jobs": bad}),
        422,
        "invalid_request",
        "2 of 5",
        "nothing was submitted",
    )
    assert {e["index"] for e in body["errors"]} == {3, 4}
    too_many = [{"type": "t.noop"}] * (MAX_BATCH_JOBS + 1)
    _assert_problem(
        client.post("/api/v1/jobs/batch", json={"jobs": too_many}),
        413,
        "batch_too_large",
    )
    _assert_problem(client.post("/api/v1/jobs/batch", json={"jobs": []}), 422, "invalid_request")
    assert _job_count(client) == 200
    assert _queued_messages(client, settings) == 4


def test_idempotency_key(client: TestClient, settings: Settings) -> None:
    payload = {"type": "t.echo", "args": {"message": "once"}, "idempotency_key": "order-17"}
    first = client.post("/api/v1/jobs", json=payload)
    second = client.post("/api/v1/jobs", json=payload)
    assert (first.status_code, second.status_code) == (201, 200)
    assert first.json()["id"] == second.json()["id"]
    _assert_problem(
        client.post("/api/v1/jobs", json={**payload, "args": {"message": "other"}}),
        409,
        "idempotency_conflict",
        "order-17",
    )
    assert _queued_messages(client, settings) == 1


def test_cancel_queued_then_retry(client: TestClient, settings: Settings) -> None:
    job = client.post("/api/v1/jobs", json={"type": "t.noop"}).json()
    cancelled = client.post(f"/api/v1/jobs/{job['id']}/cancel")
    assert cancelled.status_code == 200 and cancelled.json()["state"] == "cancelled"
    _assert_problem(
        client.post(f"/api/v1/jobs/{job['id']}/cancel"), 409, "invalid_state", "cancelled"
    )
    retried = client.post(f"/api/v1/jobs/{job['id']}/retry")
    assert retried.status_code == 200 and retried.json()["state"] == "queued"
    _assert_problem(client.post(f"/api/v1/jobs/{job['id']}/retry"), 409, "invalid_state")
    assert _queued_messages(client, settings) == 2


def test_list_filters_and_cursor(client: TestClient) -> None:
    ids = [
        client.post("/api/v1/jobs", json={"type": t, "args": a}).json()["id"]
        for t, a in [("t.noop", {}), ("t.echo", {"message": "a"}), ("t.progress", {})] * 3
    ]
    page = client.get("/api/v1/jobs", params={"limit": 4}).json()
    assert [j["id"] for j in page["items"]] == list(reversed(ids))[:4]
    rest = client.get("/api/v1/jobs", params={"limit": 10, "cursor": page["next_cursor"]}).json()
    assert [j["id"] for j in rest["items"]] == list(reversed(ids))[4:]
    assert rest["next_cursor"] is None
    assert {j["type"] for j in client.get("/api/v1/jobs?type=t.echo").json()["items"]} == {"t.echo"}
    media = client.get("/api/v1/jobs?pool=media").json()["items"]
    assert len(media) == 3 and {j["pool"] for j in media} == {"media"}
    assert client.get("/api/v1/jobs?state=failed").json()["items"] == []
    _assert_problem(client.get("/api/v1/jobs?state=exploded"), 422, "invalid_request", "state")


def test_pools_workers_health_metrics(client: TestClient) -> None:
    client.post("/api/v1/jobs", json={"type": "t.progress"})
    pools = {p["name"]: p for p in client.get("/api/v1/pools").json()}
    assert pools["media"]["queued"] == 1 and pools["general"]["queued"] == 0
    assert pools["media"]["oldest_queued_age_s"] is not None
    assert pools["media"]["workers_alive"] == 0
    assert "t.progress" in pools["media"]["job_types"]
    assert client.get("/api/v1/workers").json() == []
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["database"] == "ok"
    metrics = client.get("/metrics").text
    assert 'jobyard_queue_depth{pool="media"} 1.0' in metrics
    assert 'jobyard_jobs{pool="media",state="queued",type="t.progress"} 1.0' in metrics
    assert "jobyard_job_duration_seconds" in metrics
    paths = client.get("/openapi.json").json()["paths"]
    submit_responses = paths["/api/v1/jobs"]["post"]["responses"]
    assert {"200", "201", "401", "403", "413", "422", "503"} <= set(submit_responses)
    assert "idempotency key matched" in submit_responses["200"]["description"]
    assert {"401", "403", "503"} <= set(paths["/api/v1/pools"]["get"]["responses"])
    assert client.get("/docs").status_code == 200
    types = {t["name"]: t for t in client.get("/api/v1/job-types").json()}
    assert types["t.echo"]["args_schema"]["required"] == ["message"]


def test_a_stalled_worker_shows_in_pools_workers_and_metrics(client: TestClient) -> None:
    runtime = client.app.state.runtime  # type: ignore[attr-defined]
    now = runtime.clock()
    record = WorkerRecord("media@h:1", "media", "h", 1, 2, "prefork", "q", now, now, None)
    with runtime.db.write() as conn:
        workers.heartbeat(conn, record, now, stalled_since=now)
    pools = {p["name"]: p for p in client.get("/api/v1/pools").json()}
    assert pools["media"]["workers_alive"] == 1 and pools["media"]["workers_stalled"] == 1
    assert pools["general"]["workers_stalled"] == 0
    capacity = {c["pool"]: c for c in client.get("/api/v1/capacity").json()}
    assert capacity["media"] == {
        "pool": "media", "mode": "workers", "workers": 1, "slots": 2, "used": 0, "free": 2,
        "queued": 0, "nodes": None,
    }  # fmt: skip
    assert capacity["general"]["slots"] == 0
    (worker,) = client.get("/api/v1/workers").json()
    assert worker["alive"] and worker["stalled_since"] is not None
    assert 'jobyard_workers_stalled{pool="media"} 1.0' in client.get("/metrics").text
    assert "stalled" in client.get("/ui/fragments/pools").text


def test_readyz_reports_unreachable_broker(settings: Settings) -> None:
    broken = settings.model_copy(update={"broker_url": "redis://127.0.0.1:1/0"})
    with TestClient(create_app(broken)) as client:
        response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["database"] == "ok"
    assert "unreachable" in response.json()["broker"]


def test_security_headers(client: TestClient) -> None:
    page = client.get("/", headers={"accept": "text/html"})
    policy = page.headers["content-security-policy"]
    assert "default-src 'self'" in policy and "frame-ancestors 'none'" in policy
    for response in (page, client.get("/api/v1/pools"), client.get("/docs")):
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["referrer-policy"] == "same-origin"
    docs = client.get("/docs")
    assert "content-security-policy" not in docs.headers  # Swagger UI's inline start script
    assert "/docs/assets/swagger-ui-bundle.js" in docs.text and "cdn" not in docs.text
    assert client.get("/docs/assets/swagger-ui-bundle.js").status_code == 200
