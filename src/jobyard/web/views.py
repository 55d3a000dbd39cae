"""Dashboard pages and the fragments that live updates refresh (server-rendered)."""

from __future__ import annotations

import uuid
from dataclasses import asdict, dataclass
from datetime import timedelta
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse

from jobyard.access import Principal
from jobyard.api.auth import require
from jobyard.api.deps import RuntimeDep
from jobyard.api.routes.pools import alive_workers, capacity, list_pools, recent_type_stats
from jobyard.domain.roles import Role
from jobyard.domain.states import CANCELLABLE_STATES, RETRYABLE_BY_USER_STATES, JobState
from jobyard.runtime import Runtime
from jobyard.store import artifacts, audit, job_counts, jobs, logs, workers
from jobyard.store import schedules as schedule_store
from jobyard.store.records import JobRecord
from jobyard.web import forms
from jobyard.web.render import page

router = APIRouter(include_in_schema=False, dependencies=[Depends(require(Role.VIEWER))])
PAGE_SIZE = 50
STATES = [s.value for s in JobState]


@dataclass(frozen=True)
class JobFilters:
    """The jobs list's filters, as the query string carries them."""

    state: str | None = None
    type: str | None = None
    pool: str | None = None
    q: str | None = None
    sort: str = "newest"

    def query(self, **extra: str) -> str:
        """The query string of these filters (plus `extra`)."""
        values = {
            k: v for k, v in asdict(self).items() if v and not (k == "sort" and v == "newest")
        }
        return urlencode({**values, **extra})


def parse_filters(
    state: str | None, type_: str | None, pool: str | None, q: str | None, sort: str | None
) -> JobFilters:
    """Filters from query or form values; unknown values are ignored."""
    return JobFilters(
        state=state if state in STATES else None,
        type=type_ or None,
        pool=pool or None,
        q=(q or "").strip() or None,
        sort="oldest" if sort == "oldest" else "newest",
    )


def find_jobs(
    runtime: Runtime, filters: JobFilters, cursor: uuid.UUID | None, limit: int
) -> list[JobRecord]:
    """The jobs matching the filters, in the chosen order, past the cursor."""
    state = JobState(filters.state) if filters.state else None
    with runtime.db.read() as conn:
        if filters.q:
            try:
                found = jobs.fetch(conn, uuid.UUID(filters.q))
            except ValueError:
                found = None
            if found is not None:
                return [found]
        return jobs.page(
            conn,
            state=state,
            type_=filters.type,
            pool=filters.pool,
            text=filters.q,
            oldest_first=filters.sort == "oldest",
            before=cursor,
            limit=limit,
        )


@router.get("/", response_class=HTMLResponse)
def overview(request: Request, runtime: RuntimeDep) -> HTMLResponse:
    """Jobs by state, pools, failures of the last hour, live charts."""
    return page(request, "overview.html", {"page": "overview", **_overview(runtime)})


@router.get("/ui/fragments/overview", response_class=HTMLResponse)
def overview_fragment(request: Request, runtime: RuntimeDep) -> HTMLResponse:
    """The overview's numbers, refreshed live."""
    return page(request, "fragments/overview_stats.html", _overview(runtime))


def _overview(runtime: Runtime) -> dict[str, Any]:
    since = runtime.clock() - timedelta(hours=1)
    with runtime.db.read() as conn:
        counts: dict[str, int] = {}
        for state, _type, _pool, count in job_counts.counts(conn):
            counts[state] = counts.get(state, 0) + count
        failed = job_counts.count_finished_since(conn, JobState.FAILED, since)
    return {
        "states": STATES,
        "counts": counts,
        "failed_last_hour": failed,
        "pools": list_pools(runtime),
        "pool_names": list(runtime.settings.pools),
    }


def filters_query(
    state: str | None = None,
    type: str | None = None,
    pool: str | None = None,
    q: str | None = None,
    sort: str | None = None,
) -> JobFilters:
    """The jobs list's filters from the query string."""
    return parse_filters(state, type, pool, q, sort)


FiltersDep = Annotated[JobFilters, Depends(filters_query)]


@router.get("/jobs", response_class=HTMLResponse)
def jobs_page(
    request: Request, runtime: RuntimeDep, filters: FiltersDep, cursor: uuid.UUID | None = None
) -> HTMLResponse:
    """Filter, search, sort and page through jobs; bulk cancel and retry."""
    return page(request, "jobs.html", {"page": "jobs", **_jobs(runtime, filters, cursor)})


@router.get("/ui/fragments/jobs", response_class=HTMLResponse)
def jobs_fragment(
    request: Request, runtime: RuntimeDep, filters: FiltersDep, cursor: uuid.UUID | None = None
) -> HTMLResponse:
    """The jobs table, refreshed live."""
    return page(request, "fragments/jobs_table.html", _jobs(runtime, filters, cursor))


def _jobs(runtime: Runtime, filters: JobFilters, cursor: uuid.UUID | None) -> dict[str, Any]:
    found = find_jobs(runtime, filters, cursor, PAGE_SIZE + 1)
    more = len(found) > PAGE_SIZE
    found = found[:PAGE_SIZE]
    extra = {"cursor": str(cursor)} if cursor else {}
    return {
        "jobs": found,
        "filters": asdict(filters),
        "states": STATES,
        "job_types": sorted(runtime.yard.jobs),
        "pool_names": list(runtime.settings.pools),
        "query": filters.query(**extra),
        "query_without_cursor": filters.query(),
        "next_cursor": found[-1].id if more else None,
        "prev_cursor": cursor,
    }


@router.get("/jobs/{job_id}", response_class=HTMLResponse)
def job_page(job_id: uuid.UUID, request: Request, runtime: RuntimeDep) -> HTMLResponse:
    """One job: args, result, error, attempts, live progress and log."""
    context = _job(runtime, job_id)
    with runtime.db.read() as conn:
        context["log_lines"] = logs.page(conn, job_id, after_id=0, limit=1000)
    return page(request, "job.html", {"page": "job", **context})


@router.get("/ui/fragments/jobs/{job_id}", response_class=HTMLResponse)
def job_fragment(job_id: uuid.UUID, request: Request, runtime: RuntimeDep) -> HTMLResponse:
    """A job's details and actions, refreshed live."""
    return page(request, "fragments/job_details.html", _job(runtime, job_id))


def _job(runtime: Runtime, job_id: uuid.UUID) -> dict[str, Any]:
    record = jobs.get(runtime.db, job_id)
    with runtime.db.read() as conn:
        attempts = jobs.attempts(conn, job_id)
        files = artifacts.for_job(conn, job_id)
    pool = runtime.settings.pools.get(record.pool)
    return {
        "job": record,
        "attempts": attempts,
        "artifacts": files,
        "cancel_hint": _cancel_hint(
            runtime,
            "pod-per-job"
            if pool and pool.mode == "pod-per-job"
            else pool.celery_pool
            if pool
            else None,
        ),
        "cancellable": {s.value for s in CANCELLABLE_STATES},
        "retryable": {s.value for s in RETRYABLE_BY_USER_STATES},
    }


def _cancel_hint(runtime: Runtime, celery_pool: str | None) -> str:
    """What Cancel does to a running job of this pool kind (the button's tooltip)."""
    if celery_pool == "pod-per-job":
        grace = runtime.settings.worker.cancel_grace_s
        return (
            "The job's own process (or Kubernetes Job) gets SIGTERM at once, and is killed "
            f"{grace:g}s later if it is still running."
        )
    if celery_pool == "prefork":
        grace = runtime.settings.worker.cancel_grace_s
        return (
            "A running job sees ctx.cancelled(); if it is still running "
            f"{grace:g}s after its worker notices, its worker process is ended."
        )
    return (
        "A running job of this pool stops only when its code checks ctx.cancelled(): "
        "threads cannot be ended from outside."
    )


@router.get("/submit", response_class=HTMLResponse)
def submit_page(request: Request, runtime: RuntimeDep, type: str | None = None) -> HTMLResponse:
    """A form generated from the chosen job type's args schema."""
    return render_submit(request, runtime, type, None)


def render_submit(
    request: Request,
    runtime: Runtime,
    selected: str | None,
    values: dict[str, Any] | None,
    *,
    errors: dict[str, str] | None = None,
    form_error: str | None = None,
    priority: str | None = None,
    priority_error: str | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    """The submit page, with the values and errors of a rejected post."""
    names = sorted(runtime.yard.jobs)
    chosen = selected if selected in runtime.yard.jobs else (names[0] if names else None)
    fields: list[forms.FormField] = []
    description = None
    if chosen is not None:
        definition = runtime.yard.definition(chosen)
        description = definition.description
        fields = forms.fields_for(definition, values)
        for field in fields:
            field.error = (errors or {}).get(field.name)
    context = {
        "page": "submit",
        "job_types": names,
        "selected": chosen,
        "fields": fields,
        "description": description,
        "form_error": form_error,
        "priority": priority,
        "priority_error": priority_error,
    }
    return page(request, "submit.html", context, status_code=status_code)


@router.get("/pools", response_class=HTMLResponse)
def pools_page(request: Request, runtime: RuntimeDep) -> HTMLResponse:
    """Pools with queue depth and workers with heartbeats; warns of queues nobody consumes."""
    return page(request, "pools.html", {"page": "pools", **_pools(runtime)})


@router.get("/ui/fragments/pools", response_class=HTMLResponse)
def pools_fragment(request: Request, runtime: RuntimeDep) -> HTMLResponse:
    """The pools and workers tables, refreshed live."""
    return page(request, "fragments/pools.html", _pools(runtime))


def _pools(runtime: Runtime) -> dict[str, Any]:
    with runtime.db.read() as conn:
        listing = workers.listing(conn)
    return {
        "pools": list_pools(runtime),
        "capacity": {c.pool: c for c in capacity(runtime)},
        "workers": listing,
        "alive": {w.id for w in alive_workers(runtime, listing)},
    }


@router.get("/job-types", response_class=HTMLResponse)
def job_types_page(
    request: Request,
    runtime: RuntimeDep,
    hours: Annotated[float, Query(gt=0, le=24 * 31)] = 24,
) -> HTMLResponse:
    """Per job type: its pool, runs, failure rate, p50/p95 run time and last failure."""
    stats = {s.type: s for s in recent_type_stats(runtime, hours)}
    names = sorted(set(runtime.yard.jobs) | set(stats))
    rows = [(name, runtime.yard.jobs.get(name), stats.get(name)) for name in names]
    context = {"page": "job-types", "rows": rows, "hours": hours, "windows": WINDOWS_H}
    return page(request, "job_types.html", context)


#: The windows the job-types page offers, in hours.
WINDOWS_H = (1, 6, 24, 168)


@router.get("/schedules", response_class=HTMLResponse)
def schedules_page(request: Request, runtime: RuntimeDep) -> HTMLResponse:
    """Schedules with their next and last runs; pause, resume, delete, create."""
    return render_schedules(request, runtime, {}, None)


def render_schedules(
    request: Request,
    runtime: Runtime,
    form: dict[str, Any],
    form_error: str | None,
    *,
    status_code: int = 200,
) -> HTMLResponse:
    """The schedules page, with the values and error of a rejected form."""
    with runtime.db.read() as conn:
        listed = schedule_store.all_schedules(conn)
    context = {
        "page": "schedules",
        "schedules": listed,
        "job_types": sorted(runtime.yard.jobs),
        "form": form,
        "form_error": form_error,
    }
    return page(request, "schedules.html", context, status_code=status_code)


@router.get("/audit", response_class=HTMLResponse)
def audit_page(
    request: Request,
    runtime: RuntimeDep,
    _caller: Annotated[Principal, Depends(require(Role.ADMIN))],
    actor: str | None = None,
    action: str | None = None,
    cursor: int | None = None,
) -> HTMLResponse:
    """Who submitted, cancelled, retried or changed what (admins only)."""
    with runtime.db.read() as conn:
        entries = audit.page(
            conn, actor=actor or None, action=action or None, before=cursor, limit=PAGE_SIZE + 1
        )
    more = len(entries) > PAGE_SIZE
    entries = entries[:PAGE_SIZE]
    context = {
        "page": "audit",
        "entries": entries,
        "actor": actor,
        "action": action,
        "next_cursor": entries[-1].id if more else None,
    }
    return page(request, "audit.html", context)
