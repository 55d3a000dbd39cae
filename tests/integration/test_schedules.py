"""Schedules over real databases and brokers: API, firing, policies, edits, config sync.

The scheduler runs in-process (`Scheduler.step`) on the app's own runtime, whose clock the
test moves by hand: no sleeping through real minutes.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from jobyard.api.app import create_app
from jobyard.config import Settings
from jobyard.domain.states import JobState
from jobyard.runtime import Runtime
from jobyard.scheduler.loop import Scheduler
from jobyard.store import jobs
from jobyard.store.records import JobRecord
from tests.factories import Backend, FakeClock, make_settings

START = datetime.now(UTC).replace(microsecond=0)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(START)


@pytest.fixture
def api(client: TestClient, clock: FakeClock) -> TestClient:
    """The app, on the test's clock."""
    runtime(client).clock = clock
    return client


def runtime(client: TestClient) -> Runtime:
    found: Runtime = client.app.state.runtime  # type: ignore[attr-defined]
    return found


def create(api: TestClient, **body: Any) -> dict[str, Any]:
    payload = {"name": "every-minute", "type": "t.echo", "args": {"message": "tick"}, **body}
    if "cron" not in payload and "interval_s" not in payload:
        payload["interval_s"] = 60
    response = api.post("/api/v1/schedules", json=payload)
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


def fired(api: TestClient, schedule_id: str) -> list[JobRecord]:
    with runtime(api).db.read() as conn:
        found = jobs.page(conn, schedule_id=uuid.UUID(schedule_id), limit=1000)
    return sorted(found, key=lambda j: j.scheduled_for or START)


def at(seconds: float) -> datetime:
    return START + timedelta(seconds=seconds)


def test_interval_schedule_fires_each_tick_once(api: TestClient, clock: FakeClock) -> None:
    schedule = create(api, overlap="allow")
    assert schedule["next_fire_at"] == at(60).isoformat().replace("+00:00", "Z")
    scheduler = Scheduler(runtime(api))
    clock.advance(59)
    scheduler.step()
    assert fired(api, schedule["id"]) == []
    clock.advance(1)
    report = scheduler.step()
    assert report is not None and report.fired == 1
    scheduler.step()  # the same tick again: nothing more
    clock.advance(60)
    scheduler.step()
    runs = fired(api, schedule["id"])
    assert [j.scheduled_for for j in runs] == [at(60), at(120)]
    assert all(
        j.state is JobState.QUEUED and j.submitted_by == "schedule:every-minute" for j in runs
    )
    assert all(j.args == {"message": "tick", "count": 1} for j in runs)
    # Scheduled runs are ordinary jobs: in the jobs list and the job API, with their schedule.
    body = api.get(f"/api/v1/jobs/{runs[0].id}").json()
    assert body["schedule_id"] == schedule["id"] and body["scheduled_for"].startswith(
        at(60).strftime("%Y-%m-%dT%H:%M:%S")
    )
    listed = api.get("/api/v1/jobs", params={"schedule": schedule["id"]}).json()["items"]
    assert len(listed) == 2
    stored = api.get("/api/v1/schedules/every-minute").json()
    assert stored["fired_count"] == 2 and stored["last_job_id"] == str(runs[1].id)


def test_overlap_skip_waits_for_the_previous_run(api: TestClient, clock: FakeClock) -> None:
    schedule = create(api, overlap="skip")
    scheduler = Scheduler(runtime(api))
    clock.advance(60)
    scheduler.step()
    clock.advance(60)
    scheduler.step()  # the first run is still queued (no workers): skipped
    assert len(fired(api, schedule["id"])) == 1
    assert api.get("/api/v1/schedules/every-minute").json()["skipped_count"] == 1
    api.post(f"/api/v1/jobs/{fired(api, schedule['id'])[0].id}/cancel")
    clock.advance(60)
    scheduler.step()
    assert [j.scheduled_for for j in fired(api, schedule["id"])] == [at(60), at(180)]


def test_overlap_cancel_previous(api: TestClient, clock: FakeClock) -> None:
    schedule = create(api, overlap="cancel_previous")
    scheduler = Scheduler(runtime(api))
    clock.advance(60)
    scheduler.step()
    clock.advance(60)
    scheduler.step()
    runs = fired(api, schedule["id"])
    assert [j.state for j in runs] == [JobState.CANCELLED, JobState.QUEUED]


@pytest.mark.parametrize(
    ("catchup", "expected"),
    [
        ("run_all", [at(300 * i) for i in range(1, 11)]),
        ("run_once", [at(3000)]),
        ("skip_missed", []),
    ],
)
def test_catchup_after_downtime(
    api: TestClient, clock: FakeClock, catchup: str, expected: list[datetime]
) -> None:
    schedule = create(api, overlap="allow", catchup=catchup, interval_s="5m")
    scheduler = Scheduler(runtime(api))
    clock.advance(3000 + 90)  # ten fire times passed while no scheduler ran; the last 90 s late
    scheduler.step()
    assert [j.scheduled_for for j in fired(api, schedule["id"])] == expected
    stored = api.get(f"/api/v1/schedules/{schedule['id']}").json()
    assert stored["fired_count"] == len(expected)
    assert stored["skipped_count"] == 10 - len(expected)
    clock.advance(210)  # the next fire time, on time: every policy runs it
    scheduler.step()
    assert fired(api, schedule["id"])[-1].scheduled_for == at(3300)


def test_edits_take_effect_on_the_next_tick(api: TestClient, clock: FakeClock) -> None:
    schedule = create(api, overlap="allow")
    scheduler = Scheduler(runtime(api))
    clock.advance(30)
    changed = api.patch("/api/v1/schedules/every-minute", json={"interval_s": "1h"})
    assert changed.status_code == 200, changed.text
    assert changed.json()["interval_s"] == 3600
    clock.advance(30)  # the old fire time: no run, and no immediate run caused by the edit
    scheduler.step()
    assert fired(api, schedule["id"]) == []
    clock.advance(3600 - 30)
    scheduler.step()
    assert [j.scheduled_for for j in fired(api, schedule["id"])] == [at(30 + 3600)]
    # From interval to cron: the other trigger is cleared.
    as_cron = api.patch("/api/v1/schedules/every-minute", json={"cron": "*/5 * * * *"}).json()
    assert as_cron["cron"] == "*/5 * * * *" and as_cron["interval_s"] is None


def test_pause_resume_delete_without_restart(api: TestClient, clock: FakeClock) -> None:
    schedule = create(api, overlap="allow", catchup="run_all")
    scheduler = Scheduler(runtime(api))
    paused = api.post("/api/v1/schedules/every-minute/pause").json()
    assert paused["paused"] is True and paused["next_fire_at"] is None
    clock.advance(300)
    scheduler.step()
    assert fired(api, schedule["id"]) == []
    resumed = api.post("/api/v1/schedules/every-minute/resume").json()
    # What was missed while paused is not caught up; the next fire time is after the resume.
    assert resumed["next_fire_at"].startswith(at(360).strftime("%Y-%m-%dT%H:%M:%S"))
    scheduler.step()
    assert fired(api, schedule["id"]) == []
    clock.advance(60)
    scheduler.step()
    assert [j.scheduled_for for j in fired(api, schedule["id"])] == [at(360)]
    assert api.delete("/api/v1/schedules/every-minute").status_code == 204
    clock.advance(600)
    scheduler.step()
    assert len(fired(api, schedule["id"])) == 1  # history stays, nothing new fires
    assert api.get("/api/v1/schedules/every-minute").status_code == 404


def test_a_follower_never_fires(api: TestClient, clock: FakeClock) -> None:
    schedule = create(api, overlap="allow")
    leader, follower = Scheduler(runtime(api)), Scheduler(runtime(api))
    leader.step()
    clock.advance(60)
    assert follower.step() is None and fired(api, schedule["id"]) == []
    leader.step()
    assert len(fired(api, schedule["id"])) == 1
    old_token = leader.leader.token
    assert old_token is not None
    leader.leader.release()  # a clean stop hands over at once
    clock.advance(60)
    assert follower.step() is not None
    assert len(fired(api, schedule["id"])) == 2
    assert follower.leader.token == old_token + 1  # a new fencing token
    assert leader.step() is None  # the old leader is now the follower


def test_upcoming_fire_times(api: TestClient) -> None:
    create(api, name="berlin-nightly", cron="30 2 * * *", timezone="Europe/Berlin")
    body = api.get("/api/v1/schedules/berlin-nightly/next", params={"count": 3}).json()
    assert len(body["fires"]) == 3 and all("02:30:00+0" in t for t in body["local"])


@pytest.mark.parametrize(
    ("body", "status", "code", "field"),
    [
        ({"cron": "99 * * * *"}, 422, "invalid_request", "cron"),
        ({"cron": "0 * * * *", "timezone": "Nowhere/City"}, 422, "invalid_request", "timezone"),
        ({"type": "t.nope"}, 422, "unknown_job_type", None),
        ({"type": "t.model", "args": {"x": "one"}}, 422, "invalid_args", "args.x"),
        ({"type": "t.echo", "args": {}}, 422, "invalid_args", "args.message"),
        ({"overlap": "never"}, 422, "invalid_request", "overlap"),
        ({"catchup": "all"}, 422, "invalid_request", "catchup"),
        ({"name": "bad name"}, 422, "invalid_request", "name"),
        ({"interval_s": 0}, 422, "invalid_request", None),
        ({"extra": 1}, 422, "invalid_request", "extra"),
    ],
)
def test_bad_input_is_rejected_and_nothing_saved(
    api: TestClient, body: dict[str, Any], status: int, code: str, field: str | None
) -> None:
    payload: dict[str, Any] = {"name": "s", "type": "t.echo", "args": {"message": "m"}}
    payload.update(body)
    if "cron" not in payload:
        payload.setdefault("interval_s", 60)
    response = api.post("/api/v1/schedules", json=payload)
    assert response.status_code == status, response.text
    problem = response.json()
    assert problem["code"] == code
    if field is not None:
        assert field in [e["field"] for e in problem["errors"]], problem
    assert api.get("/api/v1/schedules").json()["items"] == []


def test_bad_edits_and_conflicts(api: TestClient) -> None:
    create(api)
    create(api, name="other")
    response = api.patch("/api/v1/schedules/every-minute", json={"cron": "0 25 * * *"})
    assert response.status_code == 422 and "cron" in response.json()["message"]
    assert api.patch("/api/v1/schedules/every-minute", json={"name": "other"}).status_code == 409
    response = api.patch("/api/v1/schedules/every-minute", json={"args": {"message": 5}})
    assert response.status_code == 422 and response.json()["errors"][0]["field"] == "args.message"
    assert api.get("/api/v1/schedules/every-minute").json()["interval_s"] == 60
    duplicate = api.post(
        "/api/v1/schedules", json={"name": "other", "type": "t.noop", "interval_s": 5}
    )
    assert duplicate.status_code == 409 and duplicate.json()["code"] == "schedule_name_taken"
    missing = api.get("/api/v1/schedules/nope")
    assert missing.status_code == 404 and missing.json()["code"] == "schedule_not_found"


CONFIG_SCHEDULES = [
    {"name": "hourly-report", "type": "t.echo", "args": {"message": "r"}, "cron": "0 * * * *"},
    {"name": "heartbeat", "type": "t.noop", "interval_s": "30s"},
]


@pytest.fixture
def config_settings(backend: Backend, tmp_path: Path) -> Iterator[Settings]:
    yield make_settings(backend, tmp_path / "data", schedules=CONFIG_SCHEDULES)


def test_config_schedules_sync_and_resync(config_settings: Settings, clock: FakeClock) -> None:
    with TestClient(create_app(config_settings)) as api:
        runtime(api).clock = clock
        made_by_api = create(api, name="mine")
        first = Scheduler(runtime(api))
        first.step()  # elected: syncs [[schedules]]
        listed = {s["name"]: s for s in api.get("/api/v1/schedules").json()["items"]}
        assert set(listed) == {"hourly-report", "heartbeat", "mine"}
        assert listed["heartbeat"]["managed_by"] == "config"
        assert listed["heartbeat"]["interval_s"] == 30
        refused = api.patch("/api/v1/schedules/heartbeat", json={"interval_s": 10})
        assert refused.status_code == 409
        assert refused.json()["code"] == "schedule_managed_by_config"
        assert api.delete("/api/v1/schedules/heartbeat").status_code == 409
        assert api.post("/api/v1/schedules/heartbeat/pause").status_code == 200
        first.leader.release()  # a clean stop; the next scheduler is elected and syncs

    edited = config_settings.model_copy(
        update={
            "schedules": [
                config_settings.schedules[0].model_copy(update={"cron": "15 * * * *"}),
                config_settings.schedules[0].model_copy(
                    update={"name": "daily", "cron": "0 0 * * *"}
                ),
            ]
        }
    )
    with TestClient(create_app(edited)) as api:
        runtime(api).clock = clock
        Scheduler(runtime(api)).step()
        listed = {s["name"]: s for s in api.get("/api/v1/schedules").json()["items"]}
        assert set(listed) == {"hourly-report", "daily", "mine"}
        assert listed["hourly-report"]["cron"] == "15 * * * *"
        assert listed["mine"]["id"] == made_by_api["id"]


def test_config_schedule_with_bad_args_fails_at_start(backend: Backend, tmp_path: Path) -> None:
    from jobyard.errors import ConfigError

    bad = make_settings(
        backend,
        tmp_path / "data",
        schedules=[{"name": "x", "type": "t.model", "args": {"x": "no"}, "cron": "@daily"}],
    )
    with pytest.raises(ConfigError, match=r"schedules\[0\]\.args\.x"):
        Runtime.open(bad)
    unknown = make_settings(
        backend, tmp_path / "data", schedules=[{"name": "y", "type": "t.nope", "cron": "@daily"}]
    )
    with pytest.raises(ConfigError, match=r"schedules\[0\]\.type: unknown job type 't.nope'"):
        Runtime.open(unknown)


def test_metrics_report_the_leader_and_overdue_schedules(api: TestClient, clock: FakeClock) -> None:
    create(api)
    create(api, name="held", paused=True)
    before = api.get("/metrics").text
    assert "jobyard_scheduler_leader 0.0" in before
    assert 'jobyard_schedules{state="active"} 1.0' in before
    assert 'jobyard_schedules{state="paused"} 1.0' in before
    clock.advance(600)  # due for 540 s and no scheduler running
    assert "jobyard_schedule_overdue_seconds 540.0" in api.get("/metrics").text
    Scheduler(runtime(api)).step()
    after = api.get("/metrics").text
    assert "jobyard_scheduler_leader 1.0" in after
    assert "jobyard_schedule_overdue_seconds 0.0" in after
