"""Named leases with fencing tokens, timed by the database's clock.

A holder takes a lease that is free or expired (the token goes up by one), renews it while it
holds it, and proves it still holds it inside the transaction that does the guarded work
(`fence`): on PostgreSQL that UPDATE also locks the lease row until commit, so no other
process can take the lease while the work commits; on SQLite writers are serialized anyway.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import (
    ColumnElement,
    Connection,
    Float,
    and_,
    case,
    literal_column,
    or_,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite

from jobyard.store.models import leases_table

L = leases_table.c


@dataclass(frozen=True, slots=True)
class LeaseState:
    """A lease as stored, with the database's current time."""

    name: str
    holder: str | None
    token: int
    expires_at: float
    acquired_at: float
    db_now: float

    @property
    def held(self) -> bool:
        """Whether anyone holds it now."""
        return self.holder is not None and self.expires_at > self.db_now


def db_now(conn: Connection) -> ColumnElement[float]:
    """Seconds since the epoch on the database server's clock."""
    if conn.dialect.name == "postgresql":
        return literal_column("extract(epoch from clock_timestamp())::float8", Float())
    return literal_column("((julianday('now') - 2440587.5) * 86400.0)", Float())


def acquire(conn: Connection, name: str, holder: str, lease_s: float) -> int | None:
    """Take or renew the lease; the fencing token when `holder` now holds it, else None."""
    now = db_now(conn)
    fresh = L.holder.is_distinct_from(holder)
    statement = (
        update(leases_table)
        .where(L.name == name, or_(L.holder == holder, L.expires_at < now))
        .values(
            holder=holder,
            token=case((fresh, L.token + 1), else_=L.token),
            expires_at=now + lease_s,
            acquired_at=case((fresh, now), else_=L.acquired_at),
        )
        .returning(L.token)
    )
    token = conn.execute(statement).scalar()
    if token is None and _create(conn, name):
        token = conn.execute(statement).scalar()
    return None if token is None else int(token)


def _create(conn: Connection, name: str) -> bool:
    """Add a free lease row named `name` if there is none (launchers' leases are made on first
    use); True when the caller should try to take it again."""
    dialect_insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    statement = (
        dialect_insert(leases_table)
        .values(name=name, holder=None, token=0, expires_at=0.0, acquired_at=0.0)
        .on_conflict_do_nothing(index_elements=["name"])
    )
    return bool(conn.execute(statement).rowcount)


def fence(conn: Connection, name: str, holder: str, token: int, lease_s: float) -> bool:
    """Renew the lease only if `holder` still holds it with `token`; call first in a transaction."""
    now = db_now(conn)
    statement = (
        update(leases_table)
        .where(and_(L.name == name, L.holder == holder, L.token == token, L.expires_at > now))
        .values(expires_at=now + lease_s)
        .returning(L.token)
    )
    return conn.execute(statement).scalar() is not None


def release(conn: Connection, name: str, holder: str) -> None:
    """Give the lease up at once (clean shutdown), so another process takes over now."""
    conn.execute(
        update(leases_table)
        .where(L.name == name, L.holder == holder)
        .values(expires_at=0.0, holder=None)
    )


def state(conn: Connection, name: str) -> LeaseState | None:
    """The lease as stored (for health, metrics and the API)."""
    row = conn.execute(
        select(
            L.name, L.holder, L.token, L.expires_at, L.acquired_at, db_now(conn).label("now")
        ).where(L.name == name)
    ).first()
    if row is None:
        return None
    return LeaseState(row.name, row.holder, row.token, row.expires_at, row.acquired_at, row.now)
