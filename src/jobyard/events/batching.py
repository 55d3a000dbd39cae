"""The background sender every publisher shares: batch, send, never block the caller."""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from jobyard.events.types import JobEvent

log = logging.getLogger(__name__)

#: How long the sender waits for more events before sending a batch.
LINGER_S = 0.02
MAX_BATCH = 2000
#: Events held while the bus is slow or down; beyond this the oldest are dropped.
MAX_PENDING = 100_000


class BatchingPublisher:
    """Queues events and sends them in batches from one daemon thread (started on first use).

    `send` receives a batch of JSON objects and may raise; the batch is then dropped and
    counted in `dropped`. The thread is restarted after a fork (prefork worker children).
    """

    def __init__(
        self,
        send: Callable[[list[dict[str, Any]]], None],
        name: str,
        *,
        disconnect: Callable[[], None] = lambda: None,
    ) -> None:
        self._send = send
        self._disconnect = disconnect
        self._name = name
        self._queue: queue.Queue[list[dict[str, Any]] | None] = queue.Queue(MAX_PENDING)
        self._thread: threading.Thread | None = None
        self._pid = 0
        self._lock = threading.Lock()
        self.dropped = 0
        self.sent = 0

    def publish(self, events: Sequence[JobEvent]) -> None:
        """Queue events; returns at once."""
        if not events:
            return
        self._ensure_thread()
        try:
            self._queue.put_nowait([event.as_dict() for event in events])
        except queue.Full:
            self.dropped += len(events)

    def close(self, timeout_s: float = 2.0) -> None:
        """Send what is queued, up to `timeout_s`, then stop the thread."""
        thread = self._thread
        if thread is None or self._pid != os.getpid():
            return
        self._queue.put(None)
        thread.join(timeout_s)
        self._thread = None

    def _ensure_thread(self) -> None:
        if self._thread is not None and self._pid == os.getpid():
            return
        with self._lock:
            if self._thread is not None and self._pid == os.getpid():
                return
            self._pid = os.getpid()
            self._queue = queue.Queue(MAX_PENDING)
            self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
            self._thread.start()

    def _run(self) -> None:
        stopping = False
        full = False
        while not stopping:
            first = self._queue.get()
            if first is None:
                break
            if not full:
                # Asleep rather than waiting on the queue, so an event queued meanwhile wakes
                # nobody: a busy process pays one wake-up of this thread per batch, not one
                # per event taken from the thread that runs jobs or answers requests.
                time.sleep(LINGER_S)
            batch = list(first)
            while len(batch) < MAX_BATCH:
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    stopping = True
                    break
                batch.extend(more)
            full = len(batch) >= MAX_BATCH
            self._deliver(batch)
        try:
            self._disconnect()
        except Exception:
            log.debug("could not close the event bus connection", exc_info=True)

    def _deliver(self, batch: list[dict[str, Any]]) -> None:
        try:
            self._send(batch)
            self.sent += len(batch)
        except Exception:  # the bus is down: events are best effort, the database is not
            self.dropped += len(batch)
            log.warning("could not publish %d event(s)", len(batch), exc_info=True)
