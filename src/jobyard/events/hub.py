"""Fan-out inside one web process: one bus listener, many WebSocket subscribers.

The listener thread hands each batch to the event loop. The hub gathers what arrives during
`FLUSH_S` and then gives every subscriber one ready-to-send message with the part its filter
lets through, serialized once per distinct filter: with hundreds of clients the cost is per
flush, not per event per client. A subscriber that falls too far behind is marked overflowed
and disconnected, so one slow client never holds memory for the rest; it reconnects and reads
the current state again.
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass, field
from typing import Any

from jobyard.events.bus import EventListener
from jobyard.events.types import EventFilter

log = logging.getLogger(__name__)
#: Messages a subscriber may have waiting before it is disconnected.
MAX_WAITING_MESSAGES = 200
#: How long events are gathered before they go out (adds at most this much latency).
FLUSH_S = 0.05


@dataclass(eq=False)
class Subscription:
    """One subscriber's filter and waiting messages (JSON text)."""

    filter: EventFilter
    messages: asyncio.Queue[str] = field(
        default_factory=lambda: asyncio.Queue(MAX_WAITING_MESSAGES)
    )
    overflowed: bool = False


class EventHub:
    """Owns the bus listener of a web process and its subscribers."""

    def __init__(self, listener: EventListener) -> None:
        self._listener = listener
        self._subscriptions: set[Subscription] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pending: list[dict[str, Any]] = []
        self._flush_scheduled = False
        self.received = 0

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        """Start listening; batches are dispatched on `loop`."""
        self._loop = loop
        # Nobody subscribed: nothing to decode or hand over. A subscriber reads the current
        # state after subscribing, so what was dropped before is in what it reads.
        self._listener.start(self._from_listener, wanted=lambda: bool(self._subscriptions))

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
        """Take a batch (on the event loop); it goes out with the next flush."""
        self.received += len(batch)
        self._pending.extend(batch)
        if not self._flush_scheduled and self._loop is not None:
            self._flush_scheduled = True
            self._loop.call_later(FLUSH_S, self.flush)

    def flush(self) -> None:
        """Give each subscriber its part of what gathered, one message each."""
        self._flush_scheduled = False
        events, self._pending = self._pending, []
        texts: dict[EventFilter, str | None] = {}
        for subscription in list(self._subscriptions):
            if subscription.overflowed:
                continue
            wanted = subscription.filter
            if wanted not in texts:
                part = events if wanted.everything else [e for e in events if wanted.matches(e)]
                texts[wanted] = (
                    json.dumps({"kind": "events", "events": part}, separators=(",", ":"))
                    if part
                    else None
                )
            text = texts[wanted]
            if text is None:
                continue
            try:
                subscription.messages.put_nowait(text)
            except asyncio.QueueFull:
                subscription.overflowed = True
