"""`jobyard jobs rerun`: re-run every matching past job as a new job, resumably."""

from __future__ import annotations

import time
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from jobyard.cli.jobs_cmd import parse_args_option
from jobyard.cli.output import console
from jobyard.cli.state import state_of
from jobyard.domain.states import JobState
from jobyard.errors import InvalidRequest
from jobyard.reprocess import campaign
from jobyard.reprocess.selection import RerunSelection, parse_moment
from jobyard.runtime import Runtime


def rerun(
    ctx: typer.Context,
    job_type: Annotated[str, typer.Option("--type", help="The job type to re-run.")],
    state: Annotated[
        list[JobState] | None,
        typer.Option(help="Re-run jobs in this state (repeatable); default succeeded."),
    ] = None,
    since: Annotated[
        str | None, typer.Option(help="Created at or after: 2026-11-01, an ISO moment, or 7d.")
    ] = None,
    until: Annotated[str | None, typer.Option(help="Created before (same forms).")] = None,
    args_patch: Annotated[
        str, typer.Option(help="JSON merge patch applied to each job's args.")
    ] = "{}",
    rate: Annotated[float, typer.Option(min=0.1, help="Most re-runs submitted per second.")] = 50,
    campaign_name: Annotated[
        str | None,
        typer.Option("--campaign", help="Name of the campaign; default derived from the filter."),
    ] = None,
    priority: Annotated[int | None, typer.Option(help="0 (low) to 9 (high).")] = None,
    dry_run: Annotated[bool, typer.Option(help="Only count what would be re-run.")] = False,
) -> None:
    """Re-run every matching past job as a new job linked to it (`rerun_of`).

    Interrupted? Run the same command again: the campaign resumes where it stopped and
    never submits a job twice.
    """
    runtime = state_of(ctx).runtime()
    try:
        selection = _selection(runtime, job_type, state, since, until, args_patch, campaign_name)
        if dry_run:
            figures = campaign.count(runtime, selection)
            console().print(
                f"campaign {figures.campaign}: {figures.matched} matching jobs, "
                f"{figures.done} re-run already, {figures.remaining} to re-run"
            )
            return
        _run(runtime, selection, rate, priority)
    finally:
        runtime.close()


def _selection(
    runtime: Runtime,
    job_type: str,
    states: list[JobState] | None,
    since: str | None,
    until: str | None,
    args_patch: str,
    campaign_name: str | None,
) -> RerunSelection:
    """The campaign the options describe; a usage error (exit 2) naming a bad one."""
    now = runtime.clock()
    try:
        return RerunSelection(
            type=job_type,
            states=tuple(states or [JobState.SUCCEEDED]),
            since=parse_moment(since, now) if since else None,
            until=parse_moment(until, now) if until else None,
            args_patch=parse_args_option(args_patch),
            campaign=campaign_name,
        )
    except InvalidRequest as exc:
        raise typer.BadParameter(exc.message) from None


def _run(runtime: Runtime, selection: RerunSelection, rate: float, priority: int | None) -> None:
    step_size = max(1, min(int(rate), campaign.MAX_STEP))
    figures = campaign.count(runtime, selection)
    submitted = 0
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[note]}"),
        TimeElapsedColumn(),
    )
    out = console()
    try:
        with Progress(*columns, console=console(stderr=True)) as bar:
            task = bar.add_task(
                f"re-running {selection.type}",
                total=figures.matched,
                completed=figures.done,
                note=f"campaign {figures.campaign}",
            )
            while figures.remaining:
                began = time.monotonic()
                figures = campaign.rerun_step(
                    runtime, selection, limit=step_size, submitted_by="cli", priority=priority
                )
                submitted += len(figures.submitted)
                bar.update(task, total=figures.matched, completed=figures.done)
                if not figures.submitted:
                    break  # the rest were re-run by someone else meanwhile
                time.sleep(max(0.0, len(figures.submitted) / rate - (time.monotonic() - began)))
    except KeyboardInterrupt:
        out.print(
            f"interrupted after {submitted} re-runs; run the same command again to resume "
            f"campaign {figures.campaign}"
        )
        raise
    out.print(
        f"campaign {figures.campaign}: {submitted} re-runs submitted, "
        f"{figures.done - submitted} before; {figures.remaining} left"
    )
