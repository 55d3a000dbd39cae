"""Submitting jobs: validate, commit the rows, then publish (one path for API, CLI, Python)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from jobyard.app import JobDefinition
from jobyard.domain.ids import uuid7
from jobyard.domain.limits import MAX_ARGS_BYTES, MAX_BATCH_JOBS, MAX_PRIORITY, MIN_PRIORITY
from jobyard.domain.states import JobState
from jobyard.domain.storable import json_problem, text_problem
from jobyard.errors import (
    ArgsTooLarge,
    BatchTooLarge,
    Conflict,
    IdempotencyConflict,
    InvalidArgs,
    InvalidRequest,
    JobyardError,
)
from jobyard.events.types import state_event
from jobyard.runtime import Runtime
from jobyard.store import audit, job_inserts, jobs
from jobyard.store.db import is_unique_violation
from jobyard.store.jobs import Dispatch
from jobyard.store.records import JobRecord


@dataclass(frozen=True)
class JobRequest:
    """One job to submit, as a caller states it."""

    type: str
    args: dict[str, Any] = field(default_factory=dict)
    priority: int | None = None
    idempotency_key: str | None = None
    #: The job this one re-runs (`jobs rerun`).
    rerun_of: uuid.UUID | None = None


@dataclass(frozen=True)
class Submitted:
    """A stored job and whether this call created it (False: idempotency key matched)."""

    job: JobRecord
    created: bool


#: The audit entries (`jobyard_audit` rows) to store with the new jobs, atomically.
OnStored = Callable[[list[JobRecord]], Sequence[dict[str, Any]]]


def submit_one(
    runtime: Runtime,
    request: JobRequest,
    *,
    submitted_by: str | None,
    on_stored: OnStored | None = None,
) -> Submitted:
    """Validate, store and publish one job.

    Raises:
        InvalidRequest: unknown type, invalid or oversized args, bad priority.
        IdempotencyConflict: the key belongs to a job with another type or args.
    """
    outcome = submit_many(
        runtime, [request], submitted_by=submitted_by, batch=False, on_stored=on_stored
    )
    return outcome[0]


def submit_many(
    runtime: Runtime,
    requests: Sequence[JobRequest],
    *,
    submitted_by: str | None,
    batch: bool = True,
    on_stored: OnStored | None = None,
) -> list[Submitted]:
    """Validate all, store all in one transaction, then publish; all or nothing.

    `on_stored` gets the jobs it creates (none: not called) and answers audit entries stored
    with them, atomically.

    Raises:
        BatchTooLarge: over 10,000 jobs.
        InvalidRequest: any invalid job; `details["errors"]` names each by index.
    """
    if len(requests) > MAX_BATCH_JOBS:
        raise BatchTooLarge(f"a batch holds at most {MAX_BATCH_JOBS} jobs, got {len(requests)}")
    if not requests:
        raise InvalidRequest("the batch is empty: send at least one job")
    now = runtime.clock()
    rows = _validated_rows(runtime, requests, submitted_by, now, batch=batch)
    outcome = _store(runtime, rows, on_stored)
    announce(runtime, [s.job for s in outcome if s.created])
    return outcome


def announce(runtime: Runtime, fresh: Sequence[JobRecord]) -> None:
    """Send the messages of jobs just committed, then tell the dashboards (the message is
    what the job waits for)."""
    if fresh:
        runtime.sender.send_new([Dispatch.of(j) for j in fresh])
        runtime.events.publish([state_event(job) for job in fresh])


def _validated_rows(
    runtime: Runtime,
    requests: Sequence[JobRequest],
    submitted_by: str | None,
    now: datetime,
    *,
    batch: bool,
) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    errors: list[dict[str, Any]] = []
    keys: set[str] = set()
    first: JobyardError | None = None
    for index, request in enumerate(requests):
        try:
            if request.idempotency_key is not None:
                if request.idempotency_key in keys:
                    raise InvalidRequest(
                        f"idempotency_key '{request.idempotency_key}' appears twice in the batch"
                    )
                keys.add(request.idempotency_key)
            rows.append(job_row(runtime, request, submitted_by, now))
        except InvalidRequest as exc:
            first = first or exc
            errors.extend(_indexed(index, exc))
    if first is None:
        return rows
    if not batch:
        raise first
    raise InvalidRequest(
        f"{len({e['index'] for e in errors})} of {len(requests)} jobs are invalid; "
        "nothing was submitted: " + "; ".join(f"[{e['index']}] {e['message']}" for e in errors[:5]),
        errors=errors,
    ) from first


def _indexed(index: int, exc: InvalidRequest) -> list[dict[str, Any]]:
    field_errors = exc.details.get("errors")
    if isinstance(exc, InvalidArgs) and field_errors:
        return [
            {
                "index": index,
                "code": exc.code,
                "field": f"args.{e['field']}",
                "message": e["message"],
            }
            for e in field_errors
        ]
    return [{"index": index, "code": exc.code, "message": exc.message}]


def job_row(
    runtime: Runtime, request: JobRequest, submitted_by: str | None, now: datetime
) -> dict[str, Any]:
    """A validated `jobyard_jobs` row for one request, not yet stored.

    Raises:
        InvalidRequest: unknown type, invalid or oversized args, bad priority.
    """
    definition = runtime.yard.definition(request.type)
    _check_storable(request)
    size = len(json.dumps(request.args, separators=(",", ":"), default=str))
    if size > MAX_ARGS_BYTES:
        raise ArgsTooLarge(
            f"args of '{request.type}' are {size} bytes; the limit is {MAX_ARGS_BYTES} bytes "
            "(1 MiB): pass a reference such as a URL or path instead",
            size=size,
        )
    args = definition.validate_args(request.args)
    priority = definition.priority if request.priority is None else request.priority
    if not MIN_PRIORITY <= priority <= MAX_PRIORITY:
        raise InvalidRequest(
            f"priority must be between {MIN_PRIORITY} and {MAX_PRIORITY}, got {priority}"
        )
    return _new_row(runtime, definition, args, priority, request, submitted_by, now)


def _check_storable(request: JobRequest) -> None:
    """Args and key must be stored exactly as sent (no NUL, NaN, surrogates, deep nesting).

    Raises:
        InvalidArgs: naming the field (`args.path`) and what is wrong with it.
        InvalidRequest: for the idempotency key.
    """
    if request.idempotency_key is not None:
        problem = text_problem(request.idempotency_key)
        if problem:
            raise InvalidRequest(f"idempotency_key {problem}")
    found = json_problem(request.args, "args")
    if found is not None:
        path, problem = found
        raise InvalidArgs(
            f"args for job type '{request.type}' cannot be stored: {path} {problem}",
            errors=[{"field": path.removeprefix("args."), "message": problem, "type": "value"}],
        )


def _new_row(
    runtime: Runtime,
    definition: JobDefinition,
    args: dict[str, Any],
    priority: int,
    request: JobRequest,
    submitted_by: str | None,
    now: datetime,
) -> dict[str, Any]:
    return {
        "id": uuid7(int(now.timestamp() * 1000)),
        "type": definition.name,
        "pool": definition.pool,
        "queue": runtime.settings.queue_for(definition.pool),
        "args": args,
        "priority": priority,
        "state": JobState.QUEUED.value,
        "attempt": 0,
        "max_attempts": definition.retry.max_attempts,
        "timeout_s": definition.timeout_s,
        "idempotency_key": request.idempotency_key,
        "submitted_by": submitted_by,
        "rerun_of": request.rerun_of,
        "created_at": now,
        "updated_at": now,
        # Marked sent in the same transaction; a failed send clears it (`MessageSender.send_new`).
        "dispatched_at": now,
    }


#: Tries of a store that lost an idempotency-key race (the winner's row is then read).
STORE_TRIES = 3


def _store(
    runtime: Runtime, rows: list[dict[str, Any]], on_stored: OnStored | None
) -> list[Submitted]:
    """Insert the rows, answering with the stored job for keys already used.

    Concurrent submits with one key race on the unique index: the loser reads the winner's
    row on its next try, so every caller gets the same job.
    """
    for tries_left in reversed(range(STORE_TRIES)):
        try:
            return _store_once(runtime, rows, on_stored)
        except Exception as exc:
            if not is_unique_violation(exc) or not tries_left:
                if is_unique_violation(exc):
                    raise Conflict(
                        "another request used the same idempotency_key at the same moment; "
                        "send it again to receive the stored job"
                    ) from exc
                raise
    raise AssertionError("unreachable")


def _store_once(
    runtime: Runtime, rows: list[dict[str, Any]], on_stored: OnStored | None
) -> list[Submitted]:
    keyed = [r["idempotency_key"] for r in rows if r["idempotency_key"] is not None]
    if len(rows) == 1 and not keyed:  # the common submit: one statement on PostgreSQL
        job = JobRecord.from_new_row(rows[0])
        entries = on_stored([job]) if on_stored is not None else ()
        with runtime.db.one_statement() as conn:
            job_inserts.insert_one(conn, rows[0], entries)
        return [Submitted(job, True)]
    with runtime.db.write() as conn:
        existing = jobs.by_idempotency_keys(conn, keyed) if keyed else {}
        new_rows = []
        for row in rows:
            match = existing.get(row["idempotency_key"]) if row["idempotency_key"] else None
            if match is not None:
                _check_same(match, row)
            else:
                new_rows.append(row)
        job_inserts.insert_many(conn, new_rows)
        created = {r["id"]: JobRecord.from_new_row(r) for r in new_rows}
        if on_stored is not None and created:
            audit.append_many(conn, on_stored(list(created.values())))
    return [
        Submitted(created[r["id"]], True)
        if r["id"] in created
        else Submitted(existing[r["idempotency_key"]], False)
        for r in rows
    ]


def _check_same(existing: JobRecord, row: dict[str, Any]) -> None:
    if existing.type != row["type"] or existing.args != row["args"]:
        raise IdempotencyConflict(
            f"idempotency_key '{row['idempotency_key']}' already belongs to job {existing.id} "
            f"({existing.type}) with other args; use a new key for a different job",
            id=str(existing.id),
        )
