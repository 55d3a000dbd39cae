"""Schema migrations: `upgrade()` brings a database to the newest revision."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import text

from jobyard.errors import ConfigError, ServiceUnavailable
from jobyard.store import schema_version
from jobyard.store.db import Database

MIGRATIONS = Path(__file__).with_name("migrations")
UPGRADE_LOCK_KEY = 0x6A6F6279  # "joby": one advisory lock id for schema upgrades


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
        if not db.is_sqlite:
            # Several pods may upgrade at once: the first migrates, the others then find it
            # done (SQLite's write lock already serializes them).
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": UPGRADE_LOCK_KEY})
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
    """Refuse to run against a database without the newest schema (`schema_version`).

    Raises:
        ServiceUnavailable: the database cannot be reached.
        ConfigError: the schema is missing or older than this jobyard, naming the command to run.
    """
    schema_version.require_current(db)


def wait_current(
    db: Database,
    timeout_s: float,
    *,
    poll_s: float = 2.0,
    on_wait: Callable[[str], None] = lambda _reason: None,
) -> None:
    """Block until the schema is at the newest revision (a migration elsewhere finishes).

    Raises:
        ConfigError | ServiceUnavailable: the last reason, once `timeout_s` has passed.
    """
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            require_current(db)
            return
        except (ConfigError, ServiceUnavailable) as exc:
            if time.monotonic() + poll_s > deadline:
                raise
            on_wait(str(exc))
        time.sleep(poll_s)
