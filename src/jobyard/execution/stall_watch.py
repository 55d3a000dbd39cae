"""Is this worker consuming? A watch that tells a stalled consumer from an idle or busy one.

A worker's event loop can keep turning while its consumer is gone (a Redis restart under busy
slots, celery #9054): heartbeats stay fresh although nothing is received. Liveness therefore
means *consuming*: a worker with a free slot, while its queue in the broker holds messages, must
receive one within `stall_after_s`. If it does not, it is stalled: first its consumer is
reconnected (Celery's own connection-loss path); if that brings nothing within another
`stall_after_s`, the worker exits non-zero so its supervisor (`jobyard up`, compose,
Kubernetes) starts a fresh one.

Pure bookkeeping: times are monotonic seconds passed in by the caller, so it is unit-tested
without a worker.
"""

from __future__ import annotations

import threading
from enum import StrEnum

#: Exit code of a worker stopped because its consumer stalled (documented in cli.exitcodes).
EXIT_CODE = 5


class StallAction(StrEnum):
    """What the worker should do now."""

    NONE = "none"
    RECONNECT = "reconnect"
    EXIT = "exit"


class StallWatch:
    """Samples of free slots and broker backlog, plus the time of the last received message.

    `sample` runs on the heartbeat thread, `received` on the consumer's; `action` is asked from
    the event loop. One lock keeps the three consistent.
    """

    def __init__(self, stall_after_s: float, *, now: float) -> None:
        self.stall_after_s = stall_after_s
        self._lock = threading.Lock()
        self._received_at = now
        self._waiting_since: float | None = None
        self._stalled_since: float | None = None
        self._reconnected_at: float | None = None
        self._acted: StallAction = StallAction.NONE

    def received(self, now: float) -> None:
        """A message arrived: the consumer works, whatever came before."""
        with self._lock:
            self._received_at = now
            self._clear()

    def sample(self, now: float, *, free_slots: int, backlog: int) -> None:
        """Record what the worker could take (`free_slots`) and the broker holds (`backlog`)."""
        with self._lock:
            if free_slots <= 0 or backlog <= 0:
                self._waiting_since = None
                self._clear()
                return
            if self._waiting_since is None:
                self._waiting_since = now
            since = max(self._waiting_since, self._received_at)
            if self._stalled_since is None and now - since >= self.stall_after_s:
                self._stalled_since = now

    def stalled_since(self) -> float | None:
        """When the current stall was detected; None while the worker consumes."""
        with self._lock:
            return self._stalled_since

    def action(self, now: float) -> StallAction:
        """Reconnect once per stall; exit when a reconnect brought nothing for `stall_after_s`.

        Each action is returned once: the caller acts on it at once.
        """
        with self._lock:
            if self._stalled_since is None:
                return StallAction.NONE
            if self._acted is StallAction.NONE:
                self._acted = StallAction.RECONNECT
                self._reconnected_at = now
                return StallAction.RECONNECT
            reconnected = self._reconnected_at if self._reconnected_at is not None else now
            if self._acted is StallAction.RECONNECT and now - reconnected >= self.stall_after_s:
                self._acted = StallAction.EXIT
                return StallAction.EXIT
            return StallAction.NONE

    def _clear(self) -> None:
        self._stalled_since = None
        self._reconnected_at = None
        self._acted = StallAction.NONE
