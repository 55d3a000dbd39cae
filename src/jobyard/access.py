"""Access control: API keys, dashboard sessions, the audit log, and when jobyard runs open.

Keys look like `jy_…` (32 random bytes); only their SHA-256 is stored, so a leaked database
does not leak keys (a fast hash is enough for random secrets, unlike passwords). Dashboard
logins get a random session token in an HttpOnly cookie; the table stores its hash too.
"""

from __future__ import annotations

import hashlib
import ipaddress
import secrets
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Literal

from sqlalchemy.exc import IntegrityError

from jobyard.domain.roles import Role
from jobyard.errors import ConfigError, Conflict, InvalidRequest, NotFound
from jobyard.store import audit, keys
from jobyard.store.keys import KeyRecord

if TYPE_CHECKING:
    from jobyard.config import Settings
    from jobyard.runtime import Runtime

KEY_PREFIX = "jy_"
#: `last_used_at` is written at most this often per key (not on every request).
TOUCH_EVERY_S = 60.0
LOOPBACK_NAMES = {"localhost"}


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is making a request, and how they proved it."""

    name: str
    role: Role
    via: Literal["open", "bearer", "session", "cli"]
    key_id: uuid.UUID | None = None


OPEN_PRINCIPAL = Principal("anonymous", Role.ADMIN, "open")


def is_loopback(host: str) -> bool:
    """Whether binding `host` only accepts connections from this machine."""
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def effective_mode(settings: Settings, host: str | None = None) -> Literal["open", "keys"]:
    """`open` or `keys` for a web server bound to `host` (default `web.host`).

    Raises:
        ConfigError: `auth.mode = "open"` on an address other machines can reach.
    """
    bind = host or settings.web.host
    mode = settings.auth.mode
    if mode == "open" and not is_loopback(bind):
        raise ConfigError(
            f"auth.mode = 'open' would let anyone who reaches {bind} run jobs: bind 127.0.0.1, "
            "or create keys (`jobyard keys create --name NAME --role admin`) and set "
            "auth.mode = 'keys'"
        )
    if mode == "auto":
        return "open" if is_loopback(bind) else "keys"
    return mode


def require_a_key(runtime: Runtime, host: str) -> None:
    """Refuse to serve a reachable address when no key exists (nobody could log in).

    Raises:
        ConfigError: naming the command that creates the first key.
    """
    with runtime.db.read() as conn:
        active = [key for key in keys.listing(conn) if key.revoked_at is None]
    if not active:
        raise ConfigError(
            f"no API key exists, so nobody could use jobyard on {host}: create one first with "
            "`jobyard keys create --name admin --role admin`"
        )


BOOTSTRAP_KEY_NAME = "bootstrap-admin"


def ensure_bootstrap_key(runtime: Runtime) -> None:
    """Create the configured bootstrap admin key unless a key with its secret exists.

    A revoked bootstrap key stays revoked: an operator who revoked it meant it.
    """
    configured = runtime.settings.auth.bootstrap_admin_key
    if configured is None:
        return
    secret_hash = hash_secret(configured.get_secret_value())
    try:
        with runtime.db.write() as conn:
            if keys.hash_known(conn, secret_hash):
                return
            name = BOOTSTRAP_KEY_NAME
            if keys.by_name(conn, name) is not None:  # an earlier bootstrap key, rotated
                name = f"{BOOTSTRAP_KEY_NAME}-{secret_hash[:8]}"
            keys.insert_key(
                conn,
                {
                    "id": uuid.uuid4(),
                    "name": name,
                    "role": Role.ADMIN.value,
                    "prefix": configured.get_secret_value()[:10],
                    "secret_hash": secret_hash,
                    "created_at": runtime.clock(),
                },
            )
    except IntegrityError:
        return  # another web replica starting beside this one made it


def hash_secret(secret: str) -> str:
    """The stored form of a key or session token."""
    return hashlib.sha256(secret.encode()).hexdigest()


def create_key(runtime: Runtime, name: str, role: Role) -> tuple[KeyRecord, str]:
    """Make a key; returns it with its secret, which is shown this once and never stored.

    Raises:
        InvalidRequest: a bad name.
        Conflict: the name is taken.
    """
    if not name or len(name) > 100 or not name.replace("-", "").replace("_", "").isalnum():
        raise InvalidRequest("a key name is 1 to 100 letters, digits, '-' or '_'")
    secret = KEY_PREFIX + secrets.token_urlsafe(32)
    now = runtime.clock()
    row = {
        "id": uuid.uuid4(),
        "name": name,
        "role": role.value,
        "prefix": secret[:10],
        "secret_hash": hash_secret(secret),
        "created_at": now,
    }
    try:
        with runtime.db.write() as conn:
            if keys.by_name(conn, name) is not None:
                raise Conflict(f"a key named '{name}' exists: choose another name")
            keys.insert_key(conn, row)
            record = keys.by_name(conn, name)
    except IntegrityError as exc:
        raise Conflict(f"a key named '{name}' exists: choose another name") from exc
    assert record is not None
    return record, secret


def revoke_key(runtime: Runtime, name: str) -> KeyRecord:
    """Revoke a key by name; its sessions end at once.

    Raises:
        NotFound: no such key.
    """
    with runtime.db.write() as conn:
        record = keys.by_name(conn, name)
        if record is None:
            raise NotFound(f"no key named '{name}'")
        keys.revoke(conn, record.id, runtime.clock())
    return record


def authenticate(runtime: Runtime, secret: str) -> Principal | None:
    """The principal of a key, or None when it is unknown or revoked."""
    if not secret.startswith(KEY_PREFIX):
        return None
    with runtime.db.read() as conn:
        record = keys.by_hash(conn, hash_secret(secret))
    if record is None:
        return None
    _touch(runtime, record)
    return Principal(record.name, record.role, "bearer", record.id)


def login(runtime: Runtime, secret: str) -> tuple[str, Principal] | None:
    """Start a dashboard session for a valid key: the cookie token and the principal."""
    principal = authenticate(runtime, secret)
    if principal is None or principal.key_id is None:
        return None
    token = secrets.token_urlsafe(32)
    now = runtime.clock()
    expires = now + timedelta(seconds=runtime.settings.auth.session_ttl_s)
    with runtime.db.write() as conn:
        keys.insert_session(conn, hash_secret(token), principal.key_id, now, expires)
    return token, Principal(principal.name, principal.role, "session", principal.key_id)


def session_principal(runtime: Runtime, token: str) -> Principal | None:
    """The principal of a live session token."""
    with runtime.db.read() as conn:
        record = keys.session_key(conn, hash_secret(token), runtime.clock())
    if record is None:
        return None
    return Principal(record.name, record.role, "session", record.id)


def logout(runtime: Runtime, token: str) -> None:
    """End a session."""
    with runtime.db.write() as conn:
        keys.delete_session(conn, hash_secret(token))


def record(
    runtime: Runtime,
    principal: Principal,
    action: str,
    target: Any = None,
    details: dict[str, Any] | None = None,
    client: str | None = None,
) -> None:
    """Append to the audit log (`audit_entry` for a row stored with the change it records)."""
    with runtime.db.write() as conn:
        audit.append(conn, audit_entry(runtime, principal, action, target, details, client))


def audit_entry(
    runtime: Runtime,
    principal: Principal,
    action: str,
    target: Any = None,
    details: dict[str, Any] | None = None,
    client: str | None = None,
) -> dict[str, Any]:
    """One audit log row, for a caller that stores it with the change it records."""
    return {
        "at": runtime.clock(),
        "actor": principal.name,
        "role": principal.role.value,
        "action": action,
        "target": None if target is None else str(target)[:200],
        "details": details,
        "client": client,
    }


def _touch(runtime: Runtime, key: KeyRecord) -> None:
    now = runtime.clock()
    if key.last_used_at is None or (now - key.last_used_at).total_seconds() > TOUCH_EVERY_S:
        with runtime.db.write() as conn:
            keys.touch(conn, key.id, now)
