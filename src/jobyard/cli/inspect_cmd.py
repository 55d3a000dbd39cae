"""`jobyard inspect`: what the running workers hold, from Celery's remote control."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.table import Table

from jobyard.cli.output import console
from jobyard.cli.state import state_of
from jobyard.errors import ConfigError
from jobyard.execution.celery import inspection
from jobyard.execution.celery.app import make_celery


def inspect(
    ctx: typer.Context,
    method: Annotated[
        str,
        typer.Argument(help=f"What to ask: {', '.join(inspection.METHODS)}."),
    ],
    pool: Annotated[str | None, typer.Option(help="Only this pool's workers.")] = None,
    timeout: Annotated[float, typer.Option(min=0.1, help="Seconds to wait for replies.")] = 2.0,
    as_json: Annotated[bool, typer.Option("--json", help="Celery's replies as JSON.")] = False,
) -> None:
    """Ask running workers what they run, hold and serve (like `celery inspect`)."""
    if method not in inspection.METHODS:
        raise typer.BadParameter(
            f"{method!r} is not one of {', '.join(inspection.METHODS)}", param_hint="METHOD"
        )
    settings = state_of(ctx).settings()
    if pool is not None and pool not in settings.pools:
        raise ConfigError(f"pool {pool!r} is not declared; pools: {', '.join(settings.pools)}")
    app = make_celery(settings, longest_timeout_s=0.0)
    try:
        replies = inspection.inspect(app, method, timeout_s=timeout, pool=pool)
    finally:
        app.close()
    out = console()
    if as_json:
        out.print_json(json.dumps(replies, default=str))
    elif not replies:
        out.print(f"no worker answered within {timeout:g}s")
    elif method in inspection.REQUEST_METHODS:
        out.print(_requests_table(inspection.request_rows(replies)))
    else:
        out.print_json(json.dumps(replies, default=str))
    if not replies:
        raise typer.Exit(1)


def _requests_table(rows: list[dict[str, object]]) -> Table | str:
    if not rows:
        return "no requests"
    table = Table(box=None, header_style="bold")
    for column in ("WORKER", "TYPE", "JOB IDS", "PID"):
        table.add_column(column, overflow="fold")
    for row in rows:
        ids = row["job_ids"]
        table.add_row(
            str(row["worker"]),
            str(row["type"]),
            " ".join(str(i) for i in ids) if isinstance(ids, list) else "",
            str(row["worker_pid"] or ""),
        )
    return table
