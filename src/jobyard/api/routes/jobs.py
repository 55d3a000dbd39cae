"""`/api/v1/jobs`: submit, list, inspect, follow logs, cancel, retry."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response, status

from jobyard import access, actions
from jobyard.api.auth import Operator, Viewer, client_of
from jobyard.api.deps import RuntimeDep
from jobyard.api.responses import COMMON
from jobyard.api.schemas import (
    BatchCreated,
    JobBatchCreate,
    JobCreate,
    JobPublic,
    JobsPage,
    LogPublic,
    LogsPage,
    Problem,
)
from jobyard.dispatch import submit
from jobyard.domain.limits import MAX_PAGE_SIZE
from jobyard.domain.states import JobState
from jobyard.domain.storable import MAX_INT
from jobyard.store import artifacts, jobs, logs
from jobyard.store.records import JobRecord

JSON_TYPE = "application/json"

router = APIRouter(prefix="/api/v1/jobs", tags=["jobs"], responses=COMMON)
ERRORS: dict[int | str, dict[str, object]] = {
    code: {"model": Problem} for code in (400, 404, 409, 413, 422)
}


def _request(body: JobCreate) -> submit.JobRequest:
    return submit.JobRequest(body.type, body.args, body.priority, body.idempotency_key)


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=JobPublic,
    responses={
        **ERRORS,
        200: {
            "model": JobPublic,
            "description": "The idempotency key matched an earlier submit with the same type "
            "and args: the stored job, nothing new created.",
        },
    },
)
def create_job(
    body: JobCreate, runtime: RuntimeDep, caller: Operator, request: Request
) -> Response:
    """Submit a job. 201 when created; 200 with the stored job when the idempotency key matched."""
    client = client_of(request)

    def audit(created: list[JobRecord]) -> list[dict[str, Any]]:
        details = {"type": body.type}
        return [access.audit_entry(runtime, caller, "job.submit", created[0].id, details, client)]

    outcome = submit.submit_one(runtime, _request(body), submitted_by=caller.name, on_stored=audit)
    # The stored record is valid by construction: serialised as is, not validated again
    # (twice, with FastAPI's response check), which cost a fifth of a single submit.
    document = JobPublic.trusted(outcome.job).model_dump_json()
    code = status.HTTP_201_CREATED if outcome.created else status.HTTP_200_OK
    return Response(document, status_code=code, media_type=JSON_TYPE)


@router.post(
    "/batch",
    status_code=status.HTTP_201_CREATED,
    responses=ERRORS,
    response_model=BatchCreated,
)
def create_batch(
    body: JobBatchCreate, runtime: RuntimeDep, caller: Operator, request: Request
) -> Response:
    """Submit up to 10,000 jobs in one transaction: all are stored, or none."""
    requests = [_request(job) for job in body.jobs]
    client = client_of(request)

    def audit(created: list[JobRecord]) -> list[dict[str, Any]]:
        details = {"jobs": len(created), "types": sorted({j.type for j in body.jobs})}
        action = "job.submit_batch"
        return [access.audit_entry(runtime, caller, action, created[0].id, details, client)]

    outcome = submit.submit_many(runtime, requests, submitted_by=caller.name, on_stored=audit)
    created_count = sum(1 for s in outcome if s.created)
    listed = [JobPublic.trusted(s.job) for s in outcome]
    document = BatchCreated.model_construct(created=created_count, jobs=listed)
    return Response(
        document.model_dump_json(), status_code=status.HTTP_201_CREATED, media_type=JSON_TYPE
    )


@router.get("", responses=ERRORS)
def list_jobs(
    runtime: RuntimeDep,
    _caller: Viewer,
    state: JobState | None = None,
    type: Annotated[str | None, Query(max_length=200)] = None,
    pool: Annotated[str | None, Query(max_length=64)] = None,
    schedule: Annotated[uuid.UUID | None, Query(description="Fired by this schedule id.")] = None,
    cursor: uuid.UUID | None = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)] = 50,
) -> JobsPage:
    """Jobs, newest first, filtered by state, type and pool."""
    with runtime.db.read() as conn:
        items = jobs.page(
            conn,
            state=state,
            type_=type,
            pool=pool,
            schedule_id=schedule,
            before=cursor,
            limit=limit + 1,
        )
    more = len(items) > limit
    items = items[:limit]
    return JobsPage(
        items=[JobPublic.of(j) for j in items], next_cursor=items[-1].id if more else None
    )


@router.get("/{job_id}", responses=ERRORS)
def get_job(job_id: uuid.UUID, runtime: RuntimeDep, _caller: Viewer) -> JobPublic:
    """One job with every finished attempt."""
    record = jobs.get(runtime.db, job_id)
    with runtime.db.read() as conn:
        attempts = jobs.attempts(conn, job_id)
        files = artifacts.for_job(conn, job_id)
    return JobPublic.of(record, attempts, files)


@router.get("/{job_id}/logs", responses=ERRORS)
def get_logs(
    job_id: uuid.UUID,
    runtime: RuntimeDep,
    _caller: Viewer,
    after: Annotated[int, Query(ge=0, le=MAX_INT)] = 0,
    limit: Annotated[int, Query(ge=1, le=5000)] = 1000,
) -> LogsPage:
    """Log lines the job wrote, after the `after` cursor."""
    jobs.get(runtime.db, job_id)
    with runtime.db.read() as conn:
        items = logs.page(conn, job_id, after_id=after, limit=limit)
    return LogsPage(
        items=[LogPublic.of(i) for i in items], next_cursor=items[-1].id if items else after
    )


@router.post("/{job_id}/cancel", responses=ERRORS)
def cancel_job(
    job_id: uuid.UUID, runtime: RuntimeDep, caller: Operator, request: Request
) -> JobPublic:
    """Cancel a queued, retrying or running job."""
    cancelled = actions.cancel(runtime, job_id)
    access.record(runtime, caller, "job.cancel", job_id, None, client_of(request))
    return JobPublic.of(cancelled)


@router.post("/{job_id}/retry", responses=ERRORS)
def retry_job(
    job_id: uuid.UUID, runtime: RuntimeDep, caller: Operator, request: Request
) -> JobPublic:
    """Queue a failed or cancelled job again."""
    retried = actions.retry(runtime, job_id)
    access.record(runtime, caller, "job.retry", job_id, None, client_of(request))
    return JobPublic.of(retried)
