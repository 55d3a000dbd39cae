"""`jobyard config`: the effective configuration."""

from __future__ import annotations

import json

import typer
from rich.table import Table

from jobyard.cli.output import console
from jobyard.cli.state import state_of
from jobyard.config_sources import describe

config_app = typer.Typer(help="Configuration.", no_args_is_help=True)


@config_app.command("show")
def show(ctx: typer.Context) -> None:
    """Print every effective setting and where it came from (env, file or default)."""
    state = state_of(ctx)
    settings = state.settings()
    table = Table(box=None, header_style="bold")
    for column in ("KEY", "VALUE", "SOURCE"):
        table.add_column(column)
    for key, value, source in describe(settings, state.config):
        table.add_row(key, json.dumps(value, default=str), source)
    console().print(table)
