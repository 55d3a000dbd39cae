"""Whether a database has the schema this jobyard needs, without loading Alembic.

Every process checks this when it opens its runtime; Alembic (with Mako) is ~15 MB of memory
in each worker process for a one-row read. `HEAD_REVISION` names the newest packaged migration;
`tests/integration/test_migrations.py` keeps it equal to what Alembic computes.
"""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from jobyard.errors import ConfigError
from jobyard.store.db import Database

#: The newest revision under `store/migrations/versions`.
HEAD_REVISION = "0007"


def current_revision(db: Database) -> str | None:
    """The revision the database is at, or None for an empty database."""
    with db.read() as conn:
        has_table = conn.execute(
            text(
                "SELECT count(*) FROM sqlite_master WHERE type = 'table' "
                "AND name = 'alembic_version'"
                if db.is_sqlite
                else "SELECT count(*) FROM information_schema.tables "
                "WHERE table_name = 'alembic_version' AND table_schema = current_schema()"
            )
        ).scalar_one()
        if not has_table:
            return None
        try:
            row = conn.execute(text("SELECT version_num FROM alembic_version")).first()
        except DBAPIError:
            return None
    return None if row is None else str(row[0])


def require_current(db: Database) -> None:
    """Refuse to run against a database without the newest schema.

    Raises:
        ServiceUnavailable: the database cannot be reached.
        ConfigError: the schema is missing or older than this jobyard, naming the command to run.
    """
    db.ping()
    current = current_revision(db)
    if current != HEAD_REVISION:
        state = "has no jobyard tables" if current is None else f"is at revision {current}"
        raise ConfigError(
            f"the database {state}; this jobyard needs revision {HEAD_REVISION}: "
            "run `jobyard db upgrade`"
        )
