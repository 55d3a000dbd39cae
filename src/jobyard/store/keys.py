"""Queries on API keys and the dashboard sessions made with them."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, delete, insert, select, update

from jobyard.domain.roles import Role
from jobyard.store.models import api_keys_table, sessions_table

K = api_keys_table.c
S = sessions_table.c


@dataclass(frozen=True, slots=True)
class KeyRecord:
    """An API key as stored (never its secret)."""

    id: uuid.UUID
    name: str
    role: Role
    prefix: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None

    @classmethod
    def from_row(cls, row: Any) -> KeyRecord:
        """Build from a `jobyard_api_keys` row."""
        return cls(
            row.id,
            row.name,
            Role(row.role),
            row.prefix,
            row.created_at,
            row.last_used_at,
            row.revoked_at,
        )


_COLUMNS = (K.id, K.name, K.role, K.prefix, K.created_at, K.last_used_at, K.revoked_at)


def insert_key(conn: Connection, row: dict[str, Any]) -> None:
    """Store a new key (its hash)."""
    conn.execute(insert(api_keys_table).values(**row))


def by_hash(conn: Connection, secret_hash: str) -> KeyRecord | None:
    """The unrevoked key with this hash."""
    row = conn.execute(
        select(*_COLUMNS).where(K.secret_hash == secret_hash, K.revoked_at.is_(None))
    ).first()
    return None if row is None else KeyRecord.from_row(row)


def hash_known(conn: Connection, secret_hash: str) -> bool:
    """Whether any key, revoked or not, has this hash."""
    return conn.execute(select(K.id).where(K.secret_hash == secret_hash)).first() is not None


def by_name(conn: Connection, name: str) -> KeyRecord | None:
    """A key by name, revoked or not."""
    row = conn.execute(select(*_COLUMNS).where(K.name == name)).first()
    return None if row is None else KeyRecord.from_row(row)


def listing(conn: Connection) -> list[KeyRecord]:
    """Every key, by name."""
    return [KeyRecord.from_row(r) for r in conn.execute(select(*_COLUMNS).order_by(K.name))]


def touch(conn: Connection, key_id: uuid.UUID, now: datetime) -> None:
    """Note that the key was used."""
    conn.execute(update(api_keys_table).where(K.id == key_id).values(last_used_at=now))


def revoke(conn: Connection, key_id: uuid.UUID, now: datetime) -> None:
    """Revoke a key and end its sessions."""
    conn.execute(update(api_keys_table).where(K.id == key_id).values(revoked_at=now))
    conn.execute(delete(sessions_table).where(S.key_id == key_id))


def insert_session(
    conn: Connection, token_hash: str, key_id: uuid.UUID, now: datetime, expires_at: datetime
) -> None:
    """Store a dashboard login."""
    conn.execute(
        insert(sessions_table).values(
            token_hash=token_hash, key_id=key_id, created_at=now, expires_at=expires_at
        )
    )


def session_key(conn: Connection, token_hash: str, now: datetime) -> KeyRecord | None:
    """The unrevoked key of an unexpired session."""
    row = conn.execute(
        select(*_COLUMNS)
        .join(sessions_table, S.key_id == K.id)
        .where(S.token_hash == token_hash, S.expires_at > now, K.revoked_at.is_(None))
    ).first()
    return None if row is None else KeyRecord.from_row(row)


def delete_session(conn: Connection, token_hash: str) -> None:
    """End a dashboard login."""
    conn.execute(delete(sessions_table).where(S.token_hash == token_hash))
