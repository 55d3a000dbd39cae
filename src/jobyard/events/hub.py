"""Fan-out inside one web process: one bus listener, many WebSocket subscribers.

The listener thread hands each batch to the event loop; every subscriber gets the part of the
batch its filter lets through, as one item. A subscriber that falls too far behind is marked
overflowed and disconnected, so one slow client never holds memory for the rest; it
reconnects and reads the current state again.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Any

from jobyard.events.bus import EventListener
from jobyard.events.types import EventFilter

log = logging.getLogger(__name__)
#: Batches a subscriber may have waiting before it is disconnected.
MAX_WAITING_BATCHES = 500


@dataclass(eq=False)
class Subscription:
    """One subscriber's filter and waiting batches."""

    filter: EventFilter
    batches: asyncio.Queue[list[dict[str, Any]]] = field(
        default_factory=lambda: asyncio.Queue(MAX_WAITING_BATCHES)
    )
    overflowed: bool = False


class EventHub:
    """Owns the bus listener of a web process and its subscribers."""

    def __init__(self, listener: EventListener) -> None:
        self._listener = listener
        self._subscriptions: set[Subscription] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self.received = 0

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        """Start listening; batches are dispatched on `loop`."""
        self._loop = loop
        self._listener.start(self._from_listener)

    def wait_ready(self, timeout_s: float) -> bool:
        """Wait until the listener is subscribed (events published before are not seen)."""
        return self._listener.wait_ready(timeout_s)

    def close(self) -> None:
        """Stop listening."""
        self._listener.close()

    @property
    def subscribers(self) -> int:
        """Connected subscribers."""
        return len(self._subscriptions)

    def subscribe(self, wanted: EventFilter) -> Subscription:
        """Start receiving matching events (call before reading the current state)."""
        subscription = Subscription(wanted)
        self._subscriptions.add(subscription)
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        """Stop receiving."""
        self._subscriptions.discard(subscription)

    def _from_listener(self, batch: list[dict[str, Any]]) -> None:
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self.dispatch, batch)

    def dispatch(self, batch: list[dict[str, Any]]) -> None:
        """Give each subscriber its part of the batch (on the event loop)."""
        self.received += len(batch)
        for subscription in list(self._subscriptions):
            wanted = subscription.filter
            part = batch if wanted.everything else [e for e in batch if wanted.matches(e)]
            if not part or subscription.overflowed:
                continue
            try:
                subscription.batches.put_nowait(part)
            except asyncio.QueueFull:
                subscription.overflowed = True
