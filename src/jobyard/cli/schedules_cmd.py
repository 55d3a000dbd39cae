"""`jobyard schedules ls|show|add|edit|pause|resume|rm|next`."""

from __future__ import annotations

from typing import Annotated, Any
from zoneinfo import ZoneInfo

import typer
from rich.table import Table

from jobyard import schedules
from jobyard.cli.jobs_cmd import parse_args_option
from jobyard.cli.output import as_json, console
from jobyard.cli.state import state_of
from jobyard.domain.schedules import Catchup, Overlap
from jobyard.store import schedules as store
from jobyard.store.schedules import ScheduleRecord

schedules_app = typer.Typer(help="Periodic jobs: cron or interval.", no_args_is_help=True)

Ref = Annotated[str, typer.Argument(metavar="SCHEDULE", help="Schedule name or id.")]
CronOption = Annotated[
    str | None, typer.Option("--cron", help="Cron expression, e.g. '*/15 * * * *' or @daily.")
]
EveryOption = Annotated[
    str | None, typer.Option("--every", help="Fixed interval instead: 90s, 15m, 1h, 1d.")
]
TimezoneOption = Annotated[
    str | None, typer.Option("--timezone", "--tz", help="IANA timezone of the cron expression.")
]
JitterOption = Annotated[str | None, typer.Option("--jitter", help="Random delay up to this.")]
OverlapOption = Annotated[
    Overlap | None, typer.Option("--overlap", help="While a previous run is active.")
]
CatchupOption = Annotated[
    Catchup | None, typer.Option("--catchup", help="Fire times missed during downtime.")
]
ArgsOption = Annotated[
    str | None, typer.Option("--args", "-a", help="Fixed arguments as a JSON object.")
]
PriorityOption = Annotated[int | None, typer.Option(help="0 (low) to 9 (high).")]
DescriptionOption = Annotated[str | None, typer.Option(help="What the schedule is for.")]


def _trigger_text(record: ScheduleRecord) -> str:
    if record.cron is not None:
        return f"{record.cron} ({record.timezone})"
    return f"every {record.interval_s:g}s"


def _local(record: ScheduleRecord, moment: Any) -> str:
    if moment is None:
        return ""
    return str(moment.astimezone(ZoneInfo(record.timezone)).strftime("%Y-%m-%d %H:%M:%S %Z"))


def _table(records: list[ScheduleRecord]) -> Table:
    table = Table(box=None, header_style="bold")
    for column in ("NAME", "TYPE", "TRIGGER", "NEXT", "LAST", "FIRED", "STATE", "MANAGED BY"):
        table.add_column(column, overflow="fold")
    for record in records:
        table.add_row(
            record.name,
            record.type,
            _trigger_text(record),
            "" if record.paused else _local(record, record.next_fire_at),
            _local(record, record.last_fire_at),
            str(record.fired_count),
            "[yellow]paused[/]" if record.paused else "[green]active[/]",
            record.managed_by.value,
        )
    return table


def _details(record: ScheduleRecord) -> dict[str, Any]:
    return {
        name: (value.value if hasattr(value, "value") else value)
        for name, value in ((n, getattr(record, n)) for n in ScheduleRecord.__slots__)
    }


def _changes(**options: Any) -> dict[str, Any]:
    changes = {key: value for key, value in options.items() if value is not None}
    if "every" in changes:
        changes["interval_s"] = changes.pop("every")
    if "args" in changes:
        changes["args"] = parse_args_option(changes["args"])
    return changes


@schedules_app.command("ls")
def list_schedules(
    ctx: typer.Context,
    json_output: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """List every schedule with its next and last fire time."""
    runtime = state_of(ctx).runtime()
    try:
        with runtime.db.read() as conn:
            records = store.all_schedules(conn)
    finally:
        runtime.close()
    if json_output:
        console().print_json(as_json([_details(r) for r in records]))
    elif not records:
        console().print("no schedules (add one with `jobyard schedules add`)")
    else:
        console().print(_table(records))


@schedules_app.command("show")
def show(ctx: typer.Context, ref: Ref) -> None:
    """Show one schedule as JSON."""
    runtime = state_of(ctx).runtime()
    try:
        record = schedules.get(runtime, ref)
    finally:
        runtime.close()
    console().print_json(as_json(_details(record)))


@schedules_app.command("add")
def add(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Unique schedule name.")],
    job_type: Annotated[str, typer.Argument(metavar="TYPE", help="Job type to submit.")],
    cron: CronOption = None,
    every: EveryOption = None,
    timezone: TimezoneOption = None,
    args: ArgsOption = None,
    jitter: JitterOption = None,
    overlap: OverlapOption = None,
    catchup: CatchupOption = None,
    priority: PriorityOption = None,
    description: DescriptionOption = None,
    paused: Annotated[bool, typer.Option("--paused", help="Create it paused.")] = False,
) -> None:
    """Create a schedule; the running scheduler picks it up on its next tick."""
    values = _changes(
        name=name,
        type=job_type,
        cron=cron,
        every=every,
        timezone=timezone,
        args=args,
        jitter_s=jitter,
        overlap=overlap,
        catchup=catchup,
        priority=priority,
        description=description,
        paused=paused,
    )
    spec = schedules.parse_spec(values)
    runtime = state_of(ctx).runtime()
    try:
        record = schedules.create(runtime, spec)
    finally:
        runtime.close()
    when = "paused" if record.paused else f"next at {_local(record, record.next_fire_at)}"
    console().print(f"created schedule {record.name} ({_trigger_text(record)}), {when}")


@schedules_app.command("edit")
def edit(
    ctx: typer.Context,
    ref: Ref,
    cron: CronOption = None,
    every: EveryOption = None,
    timezone: TimezoneOption = None,
    args: ArgsOption = None,
    jitter: JitterOption = None,
    overlap: OverlapOption = None,
    catchup: CatchupOption = None,
    priority: PriorityOption = None,
    description: DescriptionOption = None,
) -> None:
    """Change a schedule; the edit applies on the next tick, without a restart."""
    changes = _changes(
        cron=cron,
        every=every,
        timezone=timezone,
        args=args,
        jitter_s=jitter,
        overlap=overlap,
        catchup=catchup,
        priority=priority,
        description=description,
    )
    if not changes:
        raise typer.BadParameter("give at least one option to change (see --help)")
    _apply(ctx, "updated", lambda runtime: schedules.update(runtime, ref, changes))


@schedules_app.command("pause")
def pause(ctx: typer.Context, ref: Ref) -> None:
    """Stop firing until resumed."""
    _apply(ctx, "paused", lambda runtime: schedules.pause(runtime, ref))


@schedules_app.command("resume")
def resume(ctx: typer.Context, ref: Ref) -> None:
    """Fire again from the next fire time after now."""
    _apply(ctx, "resumed", lambda runtime: schedules.resume(runtime, ref))


@schedules_app.command("rm")
def remove(ctx: typer.Context, ref: Ref) -> None:
    """Delete a schedule; the jobs it fired stay in history."""
    runtime = state_of(ctx).runtime()
    try:
        record = schedules.delete(runtime, ref)
    finally:
        runtime.close()
    console().print(f"deleted schedule {record.name}")


@schedules_app.command("next")
def upcoming(
    ctx: typer.Context,
    ref: Ref,
    count: Annotated[int, typer.Option("--count", "-n", min=1, max=100)] = 5,
) -> None:
    """Print the next fire times, in the schedule's timezone and in UTC."""
    runtime = state_of(ctx).runtime()
    try:
        record = schedules.get(runtime, ref)
        fires = record.trigger.upcoming(runtime.clock(), count)
    finally:
        runtime.close()
    table = Table(box=None, header_style="bold")
    table.add_column(f"LOCAL ({record.timezone})")
    table.add_column("UTC")
    for fire in fires:
        table.add_row(_local(record, fire), fire.strftime("%Y-%m-%d %H:%M:%S"))
    console().print(table)


def _apply(ctx: typer.Context, verb: str, action: Any) -> None:
    runtime = state_of(ctx).runtime()
    try:
        record: ScheduleRecord = action(runtime)
    finally:
        runtime.close()
    when = "paused" if record.paused else f"next at {_local(record, record.next_fire_at)}"
    console().print(f"{verb} schedule {record.name} ({_trigger_text(record)}), {when}")
