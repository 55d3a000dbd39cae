"""The bulk claims and successes of chunked pools keep the single path's guards."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from jobyard import actions
from jobyard.dispatch import submit
from jobyard.domain.states import JobState
from jobyard.runtime import Runtime
from jobyard.store import batches, jobs, pg_hot
from tests.factories import Backend, make_settings


def test_bulk_claim_and_success_are_guarded(backend: Backend, tmp_path: Path) -> None:
    runtime = Runtime.open(make_settings(backend, tmp_path / "data"))
    try:
        requests = [submit.JobRequest("t.echo", {"message": f"m{i}"}) for i in range(4)]
        ids = [s.job.id for s in submit.submit_many(runtime, requests, submitted_by="t")]
        now = runtime.clock()
        with runtime.db.write() as conn:
            claimed = batches.claim_many(
                conn, ids[:3], now=now, owner="w1", lease_until=now + timedelta(seconds=30)
            )
        assert set(claimed) == set(ids[:3])
        assert all(job.state is JobState.RUNNING and job.attempt == 1 for job in claimed.values())
        with runtime.db.write() as conn:  # a second claim of the same jobs takes nothing
            again = batches.claim_many(
                conn, ids, now=now, owner="w2", lease_until=now + timedelta(seconds=30)
            )
        assert set(again) == {ids[3]}

        actions.cancel(runtime, ids[1])  # cancelled while waiting in the worker
        finished_at = runtime.clock()
        successes = [
            batches.Success(claimed[job_id], {"n": index}, finished_at)
            for index, job_id in enumerate(ids[:3])
        ]
        with runtime.db.write() as conn:
            done = batches.succeed_many(conn, successes)
        assert {job.id for job in done} == {ids[0], ids[2]}
        with runtime.db.write() as conn:  # recorded once: a repeat changes nothing
            assert batches.succeed_many(conn, successes) == []

        first = jobs.get(runtime.db, ids[0])
        assert first.state is JobState.SUCCEEDED and first.result == {"n": 0}
        assert first.progress == 1.0 and first.finished_at is not None
        answered = {job.id: job for job in done}[ids[0]]  # built from what was sent
        assert answered == first
        assert jobs.get(runtime.db, ids[1]).state is JobState.CANCELLED
        with runtime.db.read() as conn:
            recorded = [(a.attempt, a.outcome, a.worker) for a in jobs.attempts(conn, ids[2])]
            assert jobs.attempts(conn, ids[1]) == []
        assert recorded == [(1, "succeeded", "w1")]
    finally:
        runtime.close()


@pytest.mark.parametrize("backend", ["postgres-redis"], indirect=True)
def test_a_group_claim_reads_its_jobs_by_id_whatever_the_backlog(
    backend: Backend, tmp_path: Path
) -> None:
    """Thousands of jobs queued faster than autovacuum analyses them: the claim of 50 of them
    is not planned through the state index (stale statistics made that look cheapest, and
    it read every queued row per claim)."""
    runtime = Runtime.open(make_settings(backend, tmp_path / "data"))
    try:
        requests = [submit.JobRequest("t.noop") for _ in range(5000)]
        ids = [s.job.id for s in submit.submit_many(runtime, requests, submitted_by="t")]
        now = runtime.clock()
        params = {"ids": ids[:50], "now": now, "owner": "w1", "lease_until": now}
        plan = _plan(runtime, pg_hot.CLAIM_SQL, params)  # as `claim_many` runs it
        # Which of the primary key or a scan is cheaper depends on the table's size; an index
        # on the state is never the way (it covers every queued job).
        assert "ix_jobyard_jobs_state" not in plan, plan
        with runtime.db.single() as conn:
            claimed = batches.claim_many(conn, ids[:50], now=now, owner="w1", lease_until=now)
        assert set(claimed) == set(ids[:50])
    finally:
        runtime.close()


@pytest.mark.parametrize("backend", ["postgres-redis"], indirect=True)
def test_recording_successes_reads_the_jobs_by_id_whatever_ran_before(
    backend: Backend, tmp_path: Path
) -> None:
    """Thousands of jobs just taken to `running`: recording 50 successes is not planned through
    the state index, whose `running` entries include every version that jobs left behind
    since the last vacuum (it made a one-job success cost a millisecond and growing)."""
    runtime = Runtime.open(make_settings(backend, tmp_path / "data"))
    try:
        requests = [submit.JobRequest("t.noop") for _ in range(5000)]
        ids = [s.job.id for s in submit.submit_many(runtime, requests, submitted_by="t")]
        now = runtime.clock()
        with runtime.db.single() as conn:
            claimed = batches.claim_many(conn, ids, now=now, owner="w1", lease_until=now)
        params = pg_hot.succeed_params(
            (job_id, claimed[job_id].attempt, None, now) for job_id in ids[:50]
        )
        plan = _plan(runtime, pg_hot.SUCCEED_SQL, params)  # as `succeed_many` runs it
        assert "ix_jobyard_jobs_state" not in plan, plan
        with runtime.db.single() as conn:
            done = batches.succeed_many(
                conn, [batches.Success(claimed[job_id], None, now) for job_id in ids[:50]]
            )
        assert {job.id for job in done} == set(ids[:50])
    finally:
        runtime.close()


def _plan(runtime: Runtime, sql: str, params: dict[str, Any]) -> str:
    """PostgreSQL's plan for a `pg_hot` statement, run on the driver's connection as it is."""
    with runtime.db.read() as conn:
        raw = conn.connection.driver_connection
        assert raw is not None
        cursor = raw.execute(f"EXPLAIN {sql}", params)
        return "\n".join(row[0] for row in cursor.fetchall())
