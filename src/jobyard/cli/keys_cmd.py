"""`jobyard keys create|ls|revoke`: API keys for the API and the dashboard."""

from __future__ import annotations

import getpass
from typing import Annotated

import typer
from rich.table import Table

from jobyard import access
from jobyard.access import Principal
from jobyard.cli.output import console
from jobyard.cli.state import state_of
from jobyard.domain.roles import Role
from jobyard.store import keys
from jobyard.timefmt import iso_utc

keys_app = typer.Typer(help="API keys: viewer, operator or admin.", no_args_is_help=True)


def _cli_actor() -> Principal:
    """Whoever runs the CLI beside the database acts as admin; named in the audit log."""
    return Principal(f"cli:{getpass.getuser()}", Role.ADMIN, "cli")


@keys_app.command("create")
def create(
    ctx: typer.Context,
    name: Annotated[str, typer.Option("--name", "-n", help="Who or what uses the key.")],
    role: Annotated[Role, typer.Option("--role", "-r", help="viewer | operator | admin")],
) -> None:
    """Create a key and print it once (only its hash is stored)."""
    runtime = state_of(ctx).runtime()
    try:
        record, secret = access.create_key(runtime, name, role)
        access.record(runtime, _cli_actor(), "key.create", record.name, {"role": role.value})
    finally:
        runtime.close()
    console(stderr=True).print(
        f"created key {record.name} ({record.role.value}); it is shown only now:"
    )
    console().print(secret)


@keys_app.command("ls")
def list_keys(ctx: typer.Context) -> None:
    """List keys (names, roles, prefixes; never the keys)."""
    runtime = state_of(ctx).runtime()
    try:
        with runtime.db.read() as conn:
            listed = keys.listing(conn)
    finally:
        runtime.close()
    table = Table(box=None, header_style="bold")
    for column in ("NAME", "ROLE", "PREFIX", "CREATED", "LAST USED", "STATE"):
        table.add_column(column)
    for key in listed:
        table.add_row(
            key.name,
            key.role.value,
            key.prefix + "…",
            iso_utc(key.created_at, precise=False),
            iso_utc(key.last_used_at, precise=False) if key.last_used_at else "",
            "revoked" if key.revoked_at else "active",
        )
    console().print(table if listed else "no keys (create one with `jobyard keys create`)")


@keys_app.command("revoke")
def revoke(
    ctx: typer.Context, name: Annotated[str, typer.Argument(help="The key's name.")]
) -> None:
    """Revoke a key; its dashboard sessions end at once."""
    runtime = state_of(ctx).runtime()
    try:
        record = access.revoke_key(runtime, name)
        access.record(runtime, _cli_actor(), "key.revoke", record.name)
    finally:
        runtime.close()
    console().print(f"revoked key {record.name}")
