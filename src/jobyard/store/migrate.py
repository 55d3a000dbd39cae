"""Schema migrations: `upgrade()` brings a database to the newest revision."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from jobyard.errors import ConfigError
from jobyard.store.db import Database

MIGRATIONS = Path(__file__).with_name("migrations")


def alembic_config(db: Database) -> Config:
    """An Alembic config pointing at the packaged migrations."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", db.url.replace("%", "%%"))
    return config


def upgrade(db: Database, revision: str = "head") -> None:
    """Apply migrations up to `revision` in one transaction."""
    config = alembic_config(db)
    with db.write() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, revision)


def current_revision(db: Database) -> str | None:
    """The revision the database is at, or None for an empty database."""
    with db.read() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def head_revision(db: Database) -> str | None:
    """The newest revision shipped with this jobyard."""
    return ScriptDirectory.from_config(alembic_config(db)).get_current_head()


def upgrade_url(url: str) -> str | None:
    """Create (a SQLite file's folder too) and migrate the database at `url`; its revision.

    Raises:
        ServiceUnavailable: the database cannot be reached.
    """
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    db = Database(url)
    try:
        db.ping()
        upgrade(db)
        return current_revision(db)
    finally:
        db.close()


def require_current(db: Database) -> None:
    """Refuse to run against a database without the newest schema.

    Raises:
        ServiceUnavailable: the database cannot be reached.
        ConfigError: the schema is missing or older than this jobyard, naming the command to run.
    """
    db.ping()
    current, head = current_revision(db), head_revision(db)
    if current != head:
        state = "has no jobyard tables" if current is None else f"is at revision {current}"
        raise ConfigError(
            f"the database {state}; this jobyard needs revision {head}: run `jobyard db upgrade`"
        )
