"""Engine and transaction factories, and retries that outlast a database restart.

SQLite allows one writer at a time: write transactions start with `BEGIN IMMEDIATE` so that
concurrent processes queue on the busy timeout instead of failing on a lock upgrade.

A PostgreSQL restart kills every open connection. SQLAlchemy notices the first one that fails
and invalidates the whole pool, so the next checkout reconnects; `Database.retry` runs an
operation again until that works (or a deadline passes), so workers, the launcher and the
scheduler survive the restart instead of dropping what they were recording.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.exc import DBAPIError, IntegrityError, InterfaceError, OperationalError

from jobyard.errors import DatabaseUnavailable

log = logging.getLogger(__name__)
T = TypeVar("T")
SQLITE_BUSY_TIMEOUT_S = 30.0
#: Backoff between retries of an operation that met an unavailable database.
RETRY_FIRST_S = 0.05
RETRY_MAX_S = 1.0


def is_transient(exc: BaseException) -> bool:
    """Whether a database error can pass by itself: a lost connection, a restarting server, a
    lock or deadlock. Constraint violations and programming errors are not."""
    if isinstance(exc, DBAPIError):
        return exc.connection_invalidated or isinstance(exc, OperationalError | InterfaceError)
    # Raised outside SQLAlchemy's wrapping (closing a connection the server dropped, say).
    psycopg = sys.modules.get("psycopg")
    return psycopg is not None and isinstance(
        exc, psycopg.OperationalError | psycopg.InterfaceError
    )


def is_unique_violation(exc: BaseException) -> bool:
    """Whether an insert lost a race on a unique index (wrapped by SQLAlchemy or raw from a
    COPY on the driver's own connection)."""
    if isinstance(exc, IntegrityError):
        return True
    psycopg = sys.modules.get("psycopg")
    return psycopg is not None and isinstance(exc, psycopg.errors.UniqueViolation)


def describe(exc: BaseException) -> str:
    """One line for a log: the driver's own message, without SQLAlchemy's SQL and links."""
    cause = exc.orig if isinstance(exc, DBAPIError) and exc.orig is not None else exc
    lines = str(cause).strip().splitlines()
    return f"{type(cause).__name__}: {lines[0]}" if lines else type(cause).__name__


class Database:
    """The database's connection pools (transactions, and single autocommitted statements)
    with read, write and one-statement helpers."""

    def __init__(self, url: str, *, pool_size: int = 5) -> None:
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        self.engine = _make_engine(url, pool_size=pool_size)
        # One statement is its own transaction: one round trip instead of three. These
        # connections stay in autocommit in a pool of their own: taken from the shared pool,
        # each checkout switched the connection's isolation level there and back, which cost
        # a single submit 0.13 ms of CPU and 0.17 ms (0.41 against 0.28 ms of CPU, 0.86
        # against 0.70 ms, for a submit's INSERT).
        self._autocommit = (
            self.engine
            if self.is_sqlite
            else _make_engine(url, pool_size=pool_size, isolation_level="AUTOCOMMIT")
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
            # Discard it without the pool's reset, which fails (and logs a traceback) on a
            # connection the server dropped.
            with suppress(Exception):
                conn.invalidate()
            with suppress(Exception):
                conn.close()
            raise

    @contextmanager
    def one_statement(self) -> Iterator[Connection]:
        """A pooled connection for exactly one writing statement: autocommit on PostgreSQL
        (one round trip, no BEGIN or COMMIT), a transaction on SQLite."""
        if self.is_sqlite:
            with self.write() as transaction:
                yield transaction
            return
        with self._autocommit.connect() as conn:
            yield conn

    def retry(
        self, operation: Callable[[], T], *, what: str, give_up_after_s: float | None = None
    ) -> T:
        """Run `operation` until it gets past transient database errors.

        Args:
            operation: opens its own transaction (a retry must start from scratch).
            what: for the one warning logged per outage, e.g. "recording job X".
            give_up_after_s: re-raise the last error after this long; None: retry until the
                database is back (for outcomes that must never be dropped).
        """
        started = time.monotonic()
        delay = RETRY_FIRST_S
        warned = False
        while True:
            try:
                return operation()
            except Exception as exc:
                if not is_transient(exc):
                    raise
                waited = time.monotonic() - started
                if give_up_after_s is not None and waited + delay > give_up_after_s:
                    raise
                if not warned:
                    log.warning(
                        "database unavailable while %s; retrying until it is back (%s)",
                        what,
                        describe(exc),
                        extra={"action": "db_retry"},
                    )
                    warned = True
            time.sleep(delay)
            delay = min(delay * 2, RETRY_MAX_S)

    def server_uptime_s(self) -> float | None:
        """Seconds since the database server started (PostgreSQL); None for SQLite."""
        if self.is_sqlite:
            return None
        with self.read() as conn:
            query = "SELECT EXTRACT(EPOCH FROM clock_timestamp() - pg_postmaster_start_time())"
            return float(conn.execute(text(query)).scalar_one())

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
            DatabaseUnavailable: naming the URL without its password.
        """
        try:
            with self.read() as conn:
                conn.execute(text("SELECT 1"))
        except OperationalError as exc:
            raise DatabaseUnavailable(
                f"database {self.engine.url.render_as_string(hide_password=True)} "
                f"is unreachable: {describe(exc).split(': ', 1)[-1]}"
            ) from exc

    def dispose(self) -> None:
        """Close pooled connections (call in a forked child before first use)."""
        for engine in self._engines():
            engine.dispose(close=False)

    def release_held(self) -> None:
        """Give back this thread's `single` connection (a thread that is ending: left to the
        garbage collector, it would be closed by nobody)."""
        held: Connection | None = getattr(self._held, "conn", None)
        if held is not None:
            self._held.conn = None
            with suppress(Exception):  # the server dropped it: nothing to give back
                held.close()

    def close(self) -> None:
        """Close every connection."""
        self.release_held()
        for engine in self._engines():
            engine.dispose()

    def _engines(self) -> tuple[Engine, ...]:
        """Each pool once (SQLite has one)."""
        if self._autocommit is self.engine:
            return (self.engine,)
        return (self.engine, self._autocommit)


def _make_engine(url: str, *, pool_size: int, isolation_level: str | None = None) -> Engine:
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_S})
        _configure_sqlite(engine)
        return engine
    # No pre-ping: it costs a round trip per checkout. A connection that died in the pool
    # fails one operation; workers retry claims, and the reaper recovers unfinished attempts.
    # No reset on return either: every connection is used through `Connection` objects,
    # whose close already rolls back an unfinished transaction; the pool's own rollback
    # was one more round trip per transaction.
    options = {} if isolation_level is None else {"isolation_level": isolation_level}
    return create_engine(
        url,
        pool_size=pool_size,
        max_overflow=pool_size * 2,
        pool_recycle=1800,
        pool_reset_on_return=None,
        **options,
    )


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
