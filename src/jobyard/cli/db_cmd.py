"""`jobyard db`: schema migrations."""

from __future__ import annotations

from typing import Annotated

import typer

from jobyard.cli.output import console
from jobyard.cli.state import state_of
from jobyard.store.db import Database

db_app = typer.Typer(help="Database schema.", no_args_is_help=True)


@db_app.command("upgrade")
def upgrade(ctx: typer.Context) -> None:
    """Create or migrate the job tables to the newest schema."""
    from jobyard.store import migrate  # Alembic only where it is used (`store.schema_version`)

    revision = migrate.upgrade_url(state_of(ctx).settings().database)
    console().print(f"database at revision {revision}")


@db_app.command("current")
def current(ctx: typer.Context) -> None:
    """Show the database's schema revision and the newest one."""
    from jobyard.store import migrate

    db = Database(state_of(ctx).settings().database)
    try:
        db.ping()
        console().print(
            f"current: {migrate.current_revision(db)}  head: {migrate.head_revision(db)}"
        )
    finally:
        db.close()


@db_app.command("wait")
def wait(
    ctx: typer.Context,
    timeout: Annotated[float, typer.Option(min=0, help="Give up after this many seconds.")] = 300,
) -> None:
    """Wait until the database has the newest schema (a Kubernetes init container runs this
    while the migration Job upgrades it)."""
    from jobyard.store import migrate

    db = Database(state_of(ctx).settings().database)
    try:
        migrate.wait_current(
            db, timeout, on_wait=lambda reason: console().print(f"waiting: {reason}")
        )
    finally:
        db.close()
    console().print(f"database at revision {migrate.head_revision(db)}")
