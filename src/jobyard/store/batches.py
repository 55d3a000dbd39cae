"""Many jobs in one statement: the claims and successes of `dispatch_chunk` pools.

Jobs of a few milliseconds spend more time in database round trips than in their own code;
a chunk of them is claimed with one guarded UPDATE and their successes are recorded with one
more (state, result and attempt record together on PostgreSQL). The guards are those of
`jobs.transition`: a job is claimed only from `queued`, and finished only while it is still
`running` in the same attempt, so a late or duplicate write remains a no-op.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, String, bindparam, literal, select, update

from jobyard.domain.states import AttemptOutcome, JobState
from jobyard.store import jobs, pg_hot
from jobyard.store.models import jobs_table
from jobyard.store.records import JobRecord
from jobyard.store.types import UTCDateTime

J = jobs_table.c


@dataclass(frozen=True)
class Success:
    """A finished attempt waiting to be recorded."""

    job: JobRecord
    result: Any
    finished_at: datetime


def claim_many(
    conn: Connection,
    job_ids: Sequence[uuid.UUID],
    *,
    now: datetime,
    owner: str,
    lease_until: datetime,
) -> dict[uuid.UUID, JobRecord]:
    """Take every still-queued job of `job_ids` to `running` as its next attempt."""
    if conn.dialect.name == "postgresql":
        found = pg_hot.claim(conn, job_ids, now=now, owner=owner, lease_until=lease_until)
        return {job.id: job for job in found}
    params = {"ids": list(job_ids), "now": now, "owner": owner, "lease_until": lease_until}
    claimed = [JobRecord.from_row(row) for row in conn.execute(CLAIM_MANY, params).mappings()]
    return {job.id: job for job in claimed}


def _claim_values(now: Any, owner: Any, lease_until: Any) -> dict[str, Any]:
    """The claim's new values (datetimes and owner, or bind parameters standing for them)."""
    return {
        "state": JobState.RUNNING.value,
        "updated_at": now,
        "attempt": J.attempt + 1,
        "started_at": now,
        "finished_at": None,
        "lease_owner": owner,
        "lease_expires_at": lease_until,
        "progress": None,
        "progress_message": None,
    }


#: SQLite's claim (PostgreSQL's, the same statement as plain SQL, is `pg_hot.CLAIM_SQL`), built
#: once: building and keying the statement per call cost more than running it. Its state guard
#: is the expression `pg_hot` explains.
CLAIM_MANY = (
    update(jobs_table)
    .where(
        J.id.in_(bindparam("ids", expanding=True)),
        (J.state + literal("")) == JobState.QUEUED.value,
    )
    .values(
        _claim_values(
            bindparam("now", type_=UTCDateTime),
            bindparam("owner", type_=String),
            bindparam("lease_until", type_=UTCDateTime),
        )
    )
    .returning(*jobs_table.c)
)


def succeed_many(conn: Connection, successes: Sequence[Success]) -> list[JobRecord]:
    """Record attempts that succeeded; returns the jobs that were still theirs to finish, as
    they are now."""
    if not successes:
        return []
    if conn.dialect.name != "postgresql":
        done = []
        for item in successes:
            moved = jobs.transition(
                conn,
                item.job.id,
                source=JobState.RUNNING,
                target=JobState.SUCCEEDED,
                now=item.finished_at,
                attempt=item.job.attempt,
                values=_success_values(item),
                ends=jobs.AttemptEnd(AttemptOutcome.SUCCEEDED.value),
            )
            if moved is not None:
                done.append(moved)
        return done
    finished = pg_hot.succeed(
        conn,
        ((item.job.id, item.job.attempt, item.result, item.finished_at) for item in successes),
    )
    return [
        dataclasses.replace(
            item.job,
            state=JobState.SUCCEEDED,
            updated_at=item.finished_at,
            **_success_values(item),
        )
        for item in successes
        if item.job.id in finished
    ]


def _success_values(item: Success) -> dict[str, Any]:
    return {
        "result": item.result,
        "progress": 1.0,
        "finished_at": item.finished_at,
        "error": None,
        "error_type": None,
        "traceback": None,
    }


def claim_queued_of_type(
    conn: Connection,
    job_type: str,
    limit: int,
    *,
    now: datetime,
    owner: str,
    lease_until: datetime,
) -> list[JobRecord]:
    """Take up to `limit` queued jobs of one type to `running` (a batched type's call).

    Highest priority first, then oldest. On PostgreSQL the rows are chosen with `FOR UPDATE
    SKIP LOCKED`, so workers gathering batches at once never wait on each other or take the
    same job; the outer guard on `queued` keeps every claim exactly-once either way. Their
    own broker messages, delivered later, find them no longer queued and are dropped.
    """
    if limit <= 0:
        return []
    # Materialized: chosen once. As a plain subquery PostgreSQL may run it again per row,
    # and each run skips the rows just claimed and picks others, past `limit`.
    chosen = (
        select(J.id)
        .where(J.state == JobState.QUEUED.value, J.type == job_type)
        .order_by(J.priority.desc(), J.created_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
        .cte("chosen")
        .prefix_with("MATERIALIZED", dialect="postgresql")
    )
    statement = (
        update(jobs_table)
        .add_cte(chosen)
        .where(J.id.in_(select(chosen.c.id)), J.state == JobState.QUEUED.value)
        .values(_claim_values(now, owner, lease_until))
        .returning(*jobs_table.c)
    )
    claimed = [JobRecord.from_row(row) for row in conn.execute(statement).mappings()]
    claimed.sort(key=lambda job: (-job.priority, job.created_at))
    return claimed


def restart_attempt_clock(conn: Connection, job_id: uuid.UUID, attempt: int, now: datetime) -> bool:
    """Count the running attempt's time from `now` (a batched job run again alone after its
    batch failed: its `timeout_s` starts over); False if the attempt is no longer running."""
    result = conn.execute(
        update(jobs_table)
        .where(J.id == job_id, J.state == JobState.RUNNING.value, J.attempt == attempt)
        .values(started_at=now, updated_at=now)
    )
    return bool(result.rowcount)
