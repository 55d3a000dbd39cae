"""The event bus seam: publishers in every process, one listener per web process.

Events are best effort: the database is the source of truth, and a client that (re)connects
reads the current state first. So a publisher never blocks or fails the job that emits: it
hands events to a background thread that sends them in batches, and drops them (counting) if
the bus is unreachable.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol

from jobyard.events.types import JobEvent

#: Receives one published batch (JSON objects) on the listener's thread.
BatchHandler = Callable[[list[dict[str, Any]]], None]
#: Asked, on the listener's thread, before a batch is decoded: False drops it unread.
Wanted = Callable[[], bool]


class EventPublisher(Protocol):
    """Sends events to every listener."""

    def publish(self, events: Sequence[JobEvent]) -> None:
        """Queue events for sending; returns at once."""

    def close(self, timeout_s: float = 2.0) -> None:
        """Send what is queued (up to `timeout_s`) and stop."""


class EventListener(Protocol):
    """Receives every published batch."""

    def start(self, on_batch: BatchHandler, wanted: Wanted = lambda: True) -> None:
        """Start receiving on a background thread; batches that arrive while `wanted()` is
        False are dropped unread."""

    def wait_ready(self, timeout_s: float) -> bool:
        """Wait until subscribed; False if that did not happen within `timeout_s`."""

    def close(self) -> None:
        """Stop receiving."""


def channel_name(prefix: str) -> str:
    """The pub/sub channel (or fanout exchange) of one jobyard installation."""
    return f"{prefix}.events"
