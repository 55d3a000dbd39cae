"""`POST /api/v1/jobs/rerun`: re-run matching past jobs, one resumable step per call."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field

from jobyard import access
from jobyard.api.auth import Operator, client_of
from jobyard.api.deps import RuntimeDep
from jobyard.api.responses import COMMON
from jobyard.api.schemas import Problem
from jobyard.domain.limits import MAX_PRIORITY, MIN_PRIORITY
from jobyard.domain.states import JobState
from jobyard.reprocess import campaign as campaigns
from jobyard.reprocess.selection import RerunSelection

router = APIRouter(prefix="/api/v1/jobs", tags=["jobs"], responses=COMMON)


class RerunCreate(BaseModel):
    """Which past jobs to re-run, and how."""

    model_config = ConfigDict(extra="forbid")

    type: str = Field(min_length=1, max_length=200, description="The job type to re-run.")
    states: list[JobState] = Field(
        default_factory=lambda: [JobState.SUCCEEDED],
        min_length=1,
        description="Re-run jobs in these final states.",
    )
    since: datetime | None = Field(None, description="Created at or after this moment.")
    until: datetime | None = Field(None, description="Created before this moment.")
    args_patch: dict[str, Any] = Field(
        default_factory=dict, description="JSON merge patch (RFC 7386) applied to the args."
    )
    campaign: str | None = Field(
        None, max_length=80, description="Campaign name; default derived from the filter."
    )
    limit: int = Field(500, ge=1, le=campaigns.MAX_STEP, description="Re-runs this call.")
    dry_run: bool = Field(False, description="Only count.")
    priority: int | None = Field(None, ge=MIN_PRIORITY, le=MAX_PRIORITY)


class RerunStep(BaseModel):
    """Where the campaign stands; call again with the same body while `remaining` > 0."""

    campaign: str
    matched: int = Field(description="Jobs the filter selects.")
    done: int = Field(description="Of those, re-run in this campaign so far.")
    remaining: int
    submitted: list[uuid.UUID] = Field(description="The re-runs this call created.")


@router.post("/rerun", responses={400: {"model": Problem}, 422: {"model": Problem}})
def rerun_jobs(
    body: RerunCreate, runtime: RuntimeDep, caller: Operator, request: Request
) -> RerunStep:
    """Re-run up to `limit` more matching jobs as new jobs linked to them (`rerun_of`).

    Resumable: each original is re-run at most once per campaign, however often it is called.
    """
    selection = RerunSelection(
        type=body.type,
        states=tuple(body.states),
        since=body.since,
        until=body.until,
        args_patch=body.args_patch,
        campaign=body.campaign,
    )
    if body.dry_run:
        figures = campaigns.count(runtime, selection)
    else:
        figures = campaigns.rerun_step(
            runtime,
            selection,
            limit=body.limit,
            submitted_by=caller.name,
            priority=body.priority,
        )
    if figures.submitted:
        details = {"campaign": figures.campaign, "jobs": len(figures.submitted)}
        first = figures.submitted[0].id
        access.record(runtime, caller, "job.rerun", first, details, client_of(request))
    return RerunStep(
        campaign=figures.campaign,
        matched=figures.matched,
        done=figures.done,
        remaining=figures.remaining,
        submitted=[job.id for job in figures.submitted],
    )
