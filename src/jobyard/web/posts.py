"""Dashboard form posts: submit, cancel, retry, re-run, bulk actions, schedule changes.

Each checks the CSRF token, calls the same operation as the API, and redirects (303) with a
message; a rejected submit re-renders its form with the errors next to the fields (422).
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from fastapi import APIRouter, Depends, Request, Response

from jobyard import access, actions, schedules
from jobyard.api.auth import client_of, principal_of, require
from jobyard.api.deps import RuntimeDep
from jobyard.dispatch import submit
from jobyard.domain.limits import MAX_BATCH_JOBS
from jobyard.domain.roles import Role
from jobyard.domain.storable import text_problem
from jobyard.errors import Forbidden, InvalidArgs, InvalidRequest, JobyardError
from jobyard.runtime import Runtime
from jobyard.store import jobs
from jobyard.web import forms
from jobyard.web.render import check_csrf, redirect
from jobyard.web.views import find_jobs, parse_filters, render_schedules, render_submit

router = APIRouter(
    include_in_schema=False,
    dependencies=[Depends(require(Role.OPERATOR, csrf_header=False))],
)


def _audit(
    request: Request,
    runtime: Runtime,
    action: str,
    target: Any = None,
    details: dict[str, Any] | None = None,
) -> None:
    access.record(runtime, principal_of(request), action, target, details, client_of(request))


def _require_admin(request: Request) -> None:
    caller = principal_of(request)
    if not caller.role.allows(Role.ADMIN):
        raise Forbidden(f"this needs the admin role; '{caller.name}' is {caller.role.value}")


async def _form(request: Request) -> dict[str, Any]:
    """The posted form, its CSRF token checked and every value storable.

    Raises:
        InvalidRequest: a field holds text the database cannot store (NUL, a lone
            surrogate): 422 naming the field, before anything reads it.
    """
    posted = await request.form()
    form: dict[str, Any] = {key: value for key, value in posted.items() if isinstance(value, str)}
    form["ids"] = [v for v in posted.getlist("ids") if isinstance(v, str)]
    check_csrf(request, form)
    for key, value in posted.multi_items():
        problem = text_problem(key) or (text_problem(value) if isinstance(value, str) else None)
        if problem:
            raise InvalidRequest(
                f"form field '{key[:40]}' {problem}",
                errors=[{"field": key[:40], "message": problem, "type": "value_error"}],
            )
    return form


@router.post("/submit")
async def submit_form(request: Request, runtime: RuntimeDep) -> Response:
    """Submit from the generated form; errors are shown inline."""
    form = await _form(request)
    job_type = form.get("type", "")
    definition = runtime.yard.jobs.get(job_type)
    if definition is None:
        return render_submit(
            request, runtime, None, None, form_error=f"unknown job type '{job_type}'",
            status_code=422,
        )  # fmt: skip
    fields = forms.fields_for(definition)
    args, errors = forms.parse_form(fields, form)
    values = {f.name: form.get(f"arg.{f.name}", f.value) for f in fields}
    raw_priority = form.get("priority") or ""
    if errors:
        return render_submit(
            request, runtime, job_type, values, errors=errors, priority=raw_priority,
            status_code=422,
        )  # fmt: skip
    try:
        priority = int(raw_priority) if raw_priority else None
        job = submit.submit_one(
            runtime,
            submit.JobRequest(job_type, args, priority),
            submitted_by=principal_of(request).name,
        ).job
    except ValueError:
        return render_submit(
            request, runtime, job_type, values, priority=raw_priority,
            priority_error="must be a whole number from 0 to 9", status_code=422,
        )  # fmt: skip
    except InvalidArgs as exc:
        field_errors = {
            str(e["field"]).split(".")[0]: e["message"] for e in exc.details.get("errors", [])
        }
        return render_submit(
            request, runtime, job_type, values, errors=field_errors, priority=raw_priority,
            form_error="some values do not fit the job type's schema", status_code=422,
        )  # fmt: skip
    except InvalidRequest as exc:
        return render_submit(
            request, runtime, job_type, values, priority=raw_priority,
            priority_error=exc.message if "priority" in exc.message else None,
            form_error=None if "priority" in exc.message else exc.message, status_code=422,
        )  # fmt: skip
    _audit(request, runtime, "job.submit", job.id, {"type": job.type, "via": "dashboard"})
    return redirect(f"/jobs/{job.id}", f"submitted {job.type} as {job.id}")


@router.post("/ui/jobs/{job_id}/cancel")
async def cancel(job_id: uuid.UUID, request: Request, runtime: RuntimeDep) -> Response:
    """Cancel one job."""
    await _form(request)
    return _one(request, runtime, job_id, "cancel", actions.cancel)


@router.post("/ui/jobs/{job_id}/retry")
async def retry(job_id: uuid.UUID, request: Request, runtime: RuntimeDep) -> Response:
    """Retry one failed or cancelled job."""
    await _form(request)
    return _one(request, runtime, job_id, "retry", actions.retry)


def _one(request: Request, runtime: Runtime, job_id: uuid.UUID, verb: str, action: Any) -> Response:
    try:
        action(runtime, job_id)
    except JobyardError as exc:
        return redirect(f"/jobs/{job_id}", f"not done: {exc.message}")
    _audit(request, runtime, f"job.{verb}", job_id, {"via": "dashboard"})
    done = "cancelled" if verb == "cancel" else "queued again"
    return redirect(f"/jobs/{job_id}", f"job {done}")


@router.post("/ui/jobs/{job_id}/rerun")
async def rerun(job_id: uuid.UUID, request: Request, runtime: RuntimeDep) -> Response:
    """Submit a new job of the same type with the edited args."""
    form = await _form(request)
    with runtime.db.read() as conn:
        original = jobs.fetch(conn, job_id)
    if original is None:
        return redirect("/jobs", f"no job with id {job_id}")
    try:
        args = json.loads(form.get("args") or "{}")
        if not isinstance(args, dict):
            raise InvalidRequest("args must be a JSON object")
        job = submit.submit_one(
            runtime,
            submit.JobRequest(original.type, args, original.priority, rerun_of=original.id),
            submitted_by=principal_of(request).name,
        ).job
    except json.JSONDecodeError as exc:
        return redirect(f"/jobs/{job_id}", f"not submitted: args are not valid JSON ({exc.msg})")
    except JobyardError as exc:
        return redirect(f"/jobs/{job_id}", f"not submitted: {exc.message}")
    _audit(request, runtime, "job.submit", job.id, {"type": job.type, "rerun_of": str(job_id)})
    return redirect(f"/jobs/{job.id}", f"submitted {job.type} again as {job.id}")


@router.post("/ui/jobs/bulk")
async def bulk(request: Request, runtime: RuntimeDep) -> Response:
    """Cancel or retry the selected jobs, or every job matching the filters."""
    form = await _form(request)
    action = form.get("action", "")
    verb, _, scope = action.partition("_")
    filters = parse_filters(
        form.get("filter_state"), form.get("filter_type"), form.get("filter_pool"),
        form.get("filter_q"), form.get("filter_sort"),
    )  # fmt: skip
    back = f"/jobs?{filters.query()}"
    if verb not in {"cancel", "retry"} or scope not in {"selected", "filtered"}:
        return redirect(back, f"unknown action '{action}'")
    if scope == "selected":
        try:
            ids = [uuid.UUID(value) for value in form["ids"]]
        except ValueError:
            return redirect(back, "a selected id is not a job id")
    else:
        ids = [job.id for job in find_jobs(runtime, filters, None, MAX_BATCH_JOBS)]
    if not ids:
        return redirect(back, "no jobs selected")
    operation = actions.cancel if verb == "cancel" else actions.retry
    done, reasons = 0, []
    for job_id in ids:
        try:
            operation(runtime, job_id)
            done += 1
        except JobyardError as exc:  # already finished, or not retryable: skipped
            reasons.append(exc.message)
    past = "cancelled" if verb == "cancel" else "retried"
    _audit(request, runtime, f"job.bulk_{verb}", None, {"jobs": done, "asked": len(ids)})
    message = f"{past} {done} of {len(ids)} job(s)"
    if reasons:
        message += f"; {len(reasons)} skipped ({reasons[0]})"
    return redirect(back, message)


@router.post("/ui/schedules")
async def create_schedule(request: Request, runtime: RuntimeDep) -> Response:
    """Create a schedule from the form."""
    form = await _form(request)
    _require_admin(request)
    values: dict[str, Any] = {
        key: form[key]
        for key in ("name", "type", "cron", "timezone", "interval_s", "overlap", "catchup")
        if form.get(key)
    }
    try:
        values["args"] = json.loads(form.get("args") or "{}")
        spec = schedules.parse_spec(values)
        created = schedules.create(runtime, spec)
    except json.JSONDecodeError as exc:
        return render_schedules(
            request, runtime, form, f"args: not valid JSON ({exc.msg})", status_code=422
        )
    except JobyardError as exc:
        return render_schedules(request, runtime, form, exc.message, status_code=422)
    _audit(request, runtime, "schedule.create", created.name, spec.model_dump(mode="json"))
    return redirect("/schedules", f"created schedule {created.name}")


@router.post("/ui/schedules/{schedule_id}/{operation}")
async def change_schedule(
    schedule_id: uuid.UUID, operation: str, request: Request, runtime: RuntimeDep
) -> Response:
    """Pause, resume or delete a schedule."""
    await _form(request)
    if operation == "delete":
        _require_admin(request)
    operations = {"pause": schedules.pause, "resume": schedules.resume, "delete": schedules.delete}
    if operation not in operations:
        return redirect("/schedules", f"unknown operation '{operation}'")
    try:
        record = operations[operation](runtime, str(schedule_id))
    except JobyardError as exc:
        return redirect("/schedules", f"not done: {exc.message}")
    _audit(request, runtime, f"schedule.{operation}", record.name)
    past = {"pause": "paused", "resume": "resumed", "delete": "deleted"}[operation]
    return redirect("/schedules", f"{past} schedule {record.name}")
