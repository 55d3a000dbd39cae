"""`/api/v1/history`: the dashboard's charts from stored data, and the leader's depth samples."""

from __future__ import annotations

import math
import uuid
from datetime import timedelta

from fastapi.testclient import TestClient
from sqlalchemy import update

from jobyard.runtime import Runtime
from jobyard.scheduler.history import HistorySampler
from jobyard.store import history
from jobyard.store.models import jobs_table, pool_samples_table


def submitted(client: TestClient, count: int) -> list[str]:
    ids = []
    for index in range(count):
        answer = client.post(
            "/api/v1/jobs", json={"type": "t.echo", "args": {"message": f"{index}"}}
        )
        assert answer.status_code == 201, answer.text
        ids.append(answer.json()["id"])
    return ids


def test_history_counts_finished_jobs_and_samples_per_bucket(client: TestClient) -> None:
    runtime: Runtime = client.app.state.runtime  # type: ignore[attr-defined]
    now = runtime.clock()
    ids = submitted(client, 4)
    finishes = [
        (ids[0], "succeeded", now - timedelta(minutes=10)),
        (ids[1], "succeeded", now - timedelta(minutes=10)),
        (ids[2], "failed", now - timedelta(minutes=2)),
        (ids[3], "succeeded", now - timedelta(hours=2)),  # outside the hour
    ]
    with runtime.db.write() as conn:
        for job_id, state, moment in finishes:
            conn.execute(
                update(jobs_table)
                .where(jobs_table.c.id == uuid.UUID(job_id))
                .values(state=state, started_at=moment - timedelta(seconds=1), finished_at=moment)
            )
        history.record_samples(conn, now - timedelta(minutes=5), {"general": history.Depth(7, 1)})
        history.record_samples(
            conn, now - timedelta(minutes=5, seconds=1), {"general": history.Depth(3, 0)}
        )

    answer = client.get("/api/v1/history", params={"window": "1h"})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["bucket_s"] == 60 and len(body["times"]) == 60
    assert body["times"][-1] == math.floor(now.timestamp() / 60) * 60

    def at(moment: timedelta) -> int:
        times: list[int] = body["times"]
        return times.index(math.floor((now - moment).timestamp() / 60) * 60)

    assert body["succeeded"][at(timedelta(minutes=10))] == 2
    assert body["failed"][at(timedelta(minutes=2))] == 1
    assert sum(body["succeeded"]) == 2 and sum(body["failed"]) == 1 and sum(body["cancelled"]) == 0
    general = body["queued"]["general"]
    # A bucket holds the most queued of its samples; a bucket without one is null.
    assert general[at(timedelta(minutes=5))] == 7
    assert sum(1 for value in general if value is not None) in (1, 2)  # 1 s apart
    assert set(body["queued"]) == set(runtime.settings.pools)

    day = client.get("/api/v1/history", params={"window": "24h"}).json()
    assert day["bucket_s"] == 900 and sum(day["succeeded"]) == 3


def test_an_unknown_window_is_refused_by_name(client: TestClient) -> None:
    answer = client.get("/api/v1/history", params={"window": "2d"})
    assert answer.status_code == 422
    assert "window" in answer.text


def test_the_leader_samples_each_pool_at_most_once_per_interval(client: TestClient) -> None:
    runtime: Runtime = client.app.state.runtime  # type: ignore[attr-defined]
    submitted(client, 2)
    sampler = HistorySampler(runtime)
    now = runtime.clock()
    interval = runtime.settings.scheduler.history_sample_s
    assert sampler.maybe_sample(now)
    assert not sampler.maybe_sample(now + timedelta(seconds=interval / 2))
    with runtime.db.write() as conn:  # an old sample, past the retention
        history.record_samples(
            conn,
            now - timedelta(hours=runtime.settings.scheduler.history_keep_h + 1),
            {"general": history.Depth(1, 0)},
        )
    assert sampler.maybe_sample(now + timedelta(seconds=interval))
    # A second leader sampling the very same moment (a handover) is no error.
    assert HistorySampler(runtime).maybe_sample(now + timedelta(seconds=interval))
    with runtime.db.read() as conn:
        rows = conn.execute(pool_samples_table.select()).mappings().all()
    assert len(rows) == 2 * len(runtime.settings.pools)  # the old one was pruned
    general = [r for r in rows if r["pool"] == "general"]
    assert [r["queued"] for r in general] == [2, 2]
