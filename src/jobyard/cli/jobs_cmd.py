"""`jobyard submit` and `jobyard jobs ls|show|logs|cancel|retry`."""

from __future__ import annotations

import json
import time
import uuid
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from jobyard import actions
from jobyard.app import _as_uuid
from jobyard.cli import exitcodes
from jobyard.cli.output import as_json, console, job_details, jobs_table, state_text
from jobyard.cli.state import state_of
from jobyard.dispatch import submit as submitting
from jobyard.domain.states import TERMINAL_STATES, JobState
from jobyard.errors import InvalidRequest
from jobyard.runtime import Runtime
from jobyard.store import jobs, logs
from jobyard.store.records import JobRecord
from jobyard.timefmt import iso_utc

jobs_app = typer.Typer(help="Inspect and control jobs.", no_args_is_help=True)
POLL_S = 0.2


def parse_args_option(text: str) -> dict[str, Any]:
    """The --args option: a JSON object.

    Raises:
        InvalidRequest: not JSON, or not an object.
    """
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidRequest(f"--args is not valid JSON: {exc.msg} at column {exc.colno}") from exc
    if not isinstance(value, dict):
        raise InvalidRequest('--args must be a JSON object, such as \'{"message": "hi"}\'')
    return value


def submit(
    ctx: typer.Context,
    job_type: Annotated[str, typer.Argument(metavar="TYPE", help="Job type name.")],
    args: Annotated[str, typer.Option("--args", "-a", help="Arguments as a JSON object.")] = "{}",
    priority: Annotated[int | None, typer.Option(help="0 (low) to 9 (high).")] = None,
    idempotency_key: Annotated[
        str | None, typer.Option(help="Submit at most once per key.")
    ] = None,
    wait: Annotated[bool, typer.Option(help="Show progress until the job finishes.")] = False,
) -> None:
    """Submit a job; with --wait, follow it to the end and exit 1 unless it succeeded."""
    request = submitting.JobRequest(job_type, parse_args_option(args), priority, idempotency_key)
    runtime = state_of(ctx).runtime()
    try:
        job = submitting.submit_one(runtime, request, submitted_by="cli").job
        console().print(f"submitted {job.type} as {job.id} ({state_text(job.state.value)})")
        if wait:
            job = _follow(runtime, job)
            _print_outcome(job)
            if job.state is not JobState.SUCCEEDED:
                raise typer.Exit(exitcodes.FAILURE)
    finally:
        runtime.close()


def _follow(runtime: Runtime, job: JobRecord) -> JobRecord:
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.percentage:>3.0f}%"),
        TextColumn("{task.fields[note]}"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console(stderr=True), transient=False) as bar:
        task = bar.add_task(job.type, total=1.0, note=job.state.value)
        while job.state not in TERMINAL_STATES:
            time.sleep(POLL_S)
            job = jobs.get(runtime.db, job.id)
            note = job.progress_message or job.state.value
            bar.update(task, completed=job.progress or 0.0, note=f"{job.state.value}: {note}")
        if job.state is JobState.SUCCEEDED:
            bar.update(task, completed=1.0)
    return job


def _print_outcome(job: JobRecord) -> None:
    out = console()
    out.print(f"{job.id} {state_text(job.state.value)} after {job.attempt} attempt(s)")
    if job.state is JobState.SUCCEEDED:
        out.print(as_json(job.result), markup=False)
    elif job.error:
        out.print(f"error: {job.error}", markup=False)


@jobs_app.command("ls")
def list_jobs(
    ctx: typer.Context,
    state: Annotated[JobState | None, typer.Option(help="Only jobs in this state.")] = None,
    job_type: Annotated[str | None, typer.Option("--type", help="Only this job type.")] = None,
    pool: Annotated[str | None, typer.Option(help="Only this pool.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=500, help="How many.")] = 20,
) -> None:
    """List jobs, newest first."""
    runtime = state_of(ctx).runtime()
    try:
        with runtime.db.read() as conn:
            page = jobs.page(conn, state=state, type_=job_type, pool=pool, limit=limit)
    finally:
        runtime.close()
    console().print(jobs_table(page))


@jobs_app.command("show")
def show(ctx: typer.Context, job_id: Annotated[str, typer.Argument(metavar="ID")]) -> None:
    """Print a job with its attempts as JSON."""
    runtime = state_of(ctx).runtime()
    try:
        job = jobs.get(runtime.db, _as_uuid(job_id))
        with runtime.db.read() as conn:
            attempts = jobs.attempts(conn, job.id)
    finally:
        runtime.close()
    details = job_details(job)
    details["attempts"] = [{k: getattr(a, k) for k in a.__slots__} for a in attempts]
    console().print(as_json(details), markup=False)


@jobs_app.command("logs")
def show_logs(
    ctx: typer.Context,
    job_id: Annotated[str, typer.Argument(metavar="ID")],
    follow: Annotated[bool, typer.Option("--follow", "-f", help="Wait for new lines.")] = False,
) -> None:
    """Print the log lines a job wrote."""
    runtime = state_of(ctx).runtime()
    out = console()
    try:
        job_uuid = jobs.get(runtime.db, _as_uuid(job_id)).id
        cursor = 0
        while True:
            with runtime.db.read() as conn:
                lines = logs.page(conn, job_uuid, after_id=cursor)
            for line in lines:
                stamp = iso_utc(line.created_at)
                out.print(f"{stamp} #{line.attempt} {line.level:<7} {line.message}", markup=False)
                cursor = line.id
            if not follow or (not lines and _finished(runtime, job_uuid)):
                break
            time.sleep(POLL_S)
    finally:
        runtime.close()


def _finished(runtime: Runtime, job_id: uuid.UUID) -> bool:
    return jobs.get(runtime.db, job_id).state in TERMINAL_STATES


@jobs_app.command("cancel")
def cancel(ctx: typer.Context, job_id: Annotated[str, typer.Argument(metavar="ID")]) -> None:
    """Cancel a queued, retrying or running job."""
    runtime = state_of(ctx).runtime()
    try:
        job = actions.cancel(runtime, _as_uuid(job_id))
    finally:
        runtime.close()
    console().print(f"{job.id} {state_text(job.state.value)}")


@jobs_app.command("retry")
def retry(ctx: typer.Context, job_id: Annotated[str, typer.Argument(metavar="ID")]) -> None:
    """Queue a failed or cancelled job again."""
    runtime = state_of(ctx).runtime()
    try:
        job = actions.retry(runtime, _as_uuid(job_id))
    finally:
        runtime.close()
    console().print(f"{job.id} {state_text(job.state.value)}")
