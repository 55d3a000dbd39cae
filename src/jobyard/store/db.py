"""Engine and transaction factories.

SQLite allows one writer at a time: write transactions start with `BEGIN IMMEDIATE` so that
concurrent processes queue on the busy timeout instead of failing on a lock upgrade.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.exc import OperationalError

from jobyard.errors import ServiceUnavailable

SQLITE_BUSY_TIMEOUT_S = 30.0


class Database:
    """One engine plus read and write transaction helpers."""

    def __init__(self, url: str, *, pool_size: int = 5) -> None:
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        self.engine = _make_engine(url, pool_size=pool_size)
        # Same pool; one statement is its own transaction: one round trip instead of three.
        self._autocommit = (
            self.engine
            if self.is_sqlite
            else self.engine.execution_options(isolation_level="AUTOCOMMIT")
        )

        self._held = threading.local()

    @contextmanager
    def single(self) -> Iterator[Connection]:
        """For exactly one writing statement (atomic by itself); the hot path of workers.

        On PostgreSQL each thread keeps one autocommit connection for this, which saves the
        pool checkout and checkin around every job; a connection that fails is dropped.
        """
        if self.is_sqlite:
            with self.write() as transaction:
                yield transaction
            return
        conn: Connection | None = getattr(self._held, "conn", None)
        if conn is None or conn.closed or conn.invalidated:
            conn = self._autocommit.connect()
            self._held.conn = conn
        try:
            yield conn
        except BaseException:
            self._held.conn = None
            conn.close()
            raise

    @contextmanager
    def write(self) -> Iterator[Connection]:
        """A transaction that will write; committed on success, rolled back on error."""
        with self.engine.connect() as conn:
            if self.is_sqlite:
                conn = conn.execution_options(sqlite_immediate=True)
            with conn.begin():
                yield conn

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """A read-only transaction."""
        with self.engine.connect() as conn, conn.begin():
            yield conn

    def ping(self) -> None:
        """Check the database answers.

        Raises:
            ServiceUnavailable: naming the URL without its password.
        """
        try:
            with self.read() as conn:
                conn.execute(text("SELECT 1"))
        except OperationalError as exc:
            raise ServiceUnavailable(
                f"database {self.engine.url.render_as_string(hide_password=True)} "
                f"is unreachable: {exc.orig}"
            ) from exc

    def dispose(self) -> None:
        """Close pooled connections (call in a forked child before first use)."""
        self.engine.dispose(close=False)

    def close(self) -> None:
        """Close every connection."""
        held: Connection | None = getattr(self._held, "conn", None)
        if held is not None:
            held.close()
            self._held.conn = None
        self.engine.dispose()


def _make_engine(url: str, *, pool_size: int) -> Engine:
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_S})
        _configure_sqlite(engine)
        return engine
    # No pre-ping: it costs a round trip per checkout. A connection that died in the pool
    # fails one operation; workers retry claims, and the reaper recovers unfinished attempts.
    return create_engine(url, pool_size=pool_size, max_overflow=pool_size * 2, pool_recycle=1800)


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take transaction control from the sqlite3 module so BEGIN IMMEDIATE is possible.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={int(SQLITE_BUSY_TIMEOUT_S * 1000)}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        immediate = conn.get_execution_options().get("sqlite_immediate", False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")
