"""Job events over the real bus (Redis pub/sub, RabbitMQ fanout) to WebSocket clients."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from fastapi.testclient import TestClient
from starlette.testclient import WebSocketTestSession
from starlette.websockets import WebSocketDisconnect

from jobyard.dispatch import submit
from tests.factories import Stack, finished


def _ready(client: TestClient) -> None:
    hub = client.app.state.events  # type: ignore[attr-defined]
    assert hub.wait_ready(10), "the event listener did not subscribe"


def _events_until(ws: WebSocketTestSession, done: Any) -> list[dict[str, Any]]:
    """Read event batches until `done(event)` is true for one; returns all events read."""
    seen: list[dict[str, Any]] = []
    while True:
        message = ws.receive_json()
        assert message["kind"] == "events", message
        seen.extend(message["events"])
        if any(done(e) for e in message["events"]):
            return seen


def test_submitted_job_appears_as_a_queued_event(client: TestClient) -> None:
    _ready(client)
    with client.websocket_connect("/api/v1/events") as ws:
        assert ws.receive_json() == {"kind": "snapshot", "jobs": []}
        job = client.post("/api/v1/jobs", json={"type": "t.echo", "args": {"message": "x"}})
        job_id = job.json()["id"]
        events = _events_until(ws, lambda e: e["job_id"] == job_id)
    queued = next(e for e in events if e["job_id"] == job_id)
    assert queued["kind"] == "state" and queued["state"] == "queued"
    assert queued["type"] == "t.echo" and queued["pool"] == "general"


def test_live_progress_logs_and_final_state_of_one_job(client: TestClient, stack: Stack) -> None:
    _ready(client)
    stack.worker("media")
    request = submit.JobRequest("t.progress", {"steps": 3, "delay_s": 0.3})
    job_id = str(submit.submit_one(stack.runtime, request, submitted_by="test").job.id)
    with client.websocket_connect(f"/api/v1/events?job_id={job_id}") as ws:
        snapshot = ws.receive_json()
        assert snapshot["kind"] == "snapshot" and [j["id"] for j in snapshot["jobs"]] == [job_id]
        events = _events_until(ws, lambda e: e["kind"] == "state" and e["state"] == "succeeded")
    assert {e["job_id"] for e in events} == {job_id}
    kinds = [e["kind"] for e in events]
    assert "progress" in kinds and "log" in kinds
    progress = [e["progress"] for e in events if e["kind"] == "progress"]
    assert progress == sorted(progress) and progress[-1] == 1.0
    assert [e["message"] for e in events if e["kind"] == "log"][:1] == ["did step 1"]
    # A client that connects after the end reads the final state first.
    finished(stack, uuid.UUID(job_id))
    with client.websocket_connect(f"/api/v1/events?job_id={job_id}") as late:
        assert late.receive_json()["jobs"][0]["state"] == "succeeded"


def test_filters_by_type_and_pool(client: TestClient) -> None:
    _ready(client)
    with client.websocket_connect("/api/v1/events?pool=media") as ws:
        ws.receive_json()
        client.post("/api/v1/jobs", json={"type": "t.echo", "args": {"message": "general"}})
        media = client.post("/api/v1/jobs", json={"type": "t.progress", "args": {}}).json()
        events = _events_until(ws, lambda e: e["job_id"] == media["id"])
    assert {e["pool"] for e in events} == {"media"}


def test_unknown_job_is_an_error_message(client: TestClient) -> None:
    missing = uuid.uuid4()
    with client.websocket_connect(f"/api/v1/events?job_id={missing}") as ws:
        message = ws.receive_json()
    assert message["kind"] == "error" and message["code"] == "job_not_found"


@pytest.mark.parametrize(
    ("query", "says"),
    [
        ("type=t.echo%00", "'type'"),
        ("pool=" + "p" * 65, "longer than 64"),
        ("job_id=not-a-uuid", "not a UUID"),
        ("state=sleeping", "'state'"),
    ],
)
def test_a_filter_that_cannot_match_is_an_error_message(
    client: TestClient, query: str, says: str
) -> None:
    with client.websocket_connect(f"/api/v1/events?{query}") as ws:
        message = ws.receive_json()
        with pytest.raises(WebSocketDisconnect) as closed:
            ws.receive_json()
    assert message["kind"] == "error" and message["code"] == "invalid_request"
    assert says in message["message"]
    assert closed.value.code == 4422
