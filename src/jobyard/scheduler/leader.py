"""This process's claim on a leader lease: the scheduler's, or a pod-per-job pool's launcher's.

Any number of `jobyard scheduler` processes may run; the one holding the lease works, the
others renew their attempt every tick and take over within `scheduler.lease_s` of the leader
stopping. Lease times come from the database's clock (see `store.leases`), and a leader that
has not renewed within `lease_s` by its own monotonic clock stops working before the lease
can pass to another process, so wall-clock jumps never give two leaders.
"""

from __future__ import annotations

import os
import socket
import time
import uuid
from collections.abc import Callable

from sqlalchemy import Connection

from jobyard.store import leases
from jobyard.store.db import Database

LEASE_NAME = "scheduler"


def holder_name() -> str:
    """A name unique to this process: host, pid and a random suffix."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class Leadership:
    """Acquire, renew, prove and release the scheduler lease."""

    def __init__(
        self,
        db: Database,
        lease_s: float,
        *,
        holder: str | None = None,
        monotonic: Callable[[], float] = time.monotonic,
        name: str = LEASE_NAME,
    ) -> None:
        self.db = db
        self.name = name
        self.lease_s = lease_s
        self.holder = holder or holder_name()
        self.token: int | None = None
        self._monotonic = monotonic
        self._valid_until = 0.0

    @property
    def is_leader(self) -> bool:
        """Whether this process holds the lease, as far as its own clock can tell."""
        return self.token is not None and self._monotonic() < self._valid_until

    def refresh(self) -> bool:
        """Take or renew the lease. Returns True when this process just became leader."""
        asked_at = self._monotonic()
        with self.db.write() as conn:
            token = leases.acquire(conn, self.name, self.holder, self.lease_s)
        if token is None:
            self.token = None
            return False
        elected = token != self.token
        self.token = token
        self._valid_until = asked_at + self.lease_s
        return elected

    def fence(self, conn: Connection) -> bool:
        """In a write transaction: renew and prove the lease; False means stop, do nothing."""
        if not self.is_leader:
            return False
        assert self.token is not None
        asked_at = self._monotonic()
        if not leases.fence(conn, self.name, self.holder, self.token, self.lease_s):
            self.token = None
            return False
        self._valid_until = asked_at + self.lease_s
        return True

    def release(self) -> None:
        """Give the lease up (clean stop) so a standby takes over at once."""
        if self.token is None:
            return
        with self.db.write() as conn:
            leases.release(conn, self.name, self.holder)
        self.token = None
