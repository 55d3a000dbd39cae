"""The background thread every listener shares: listen, and reconnect after errors."""

from __future__ import annotations

import logging
import threading

from jobyard.events.bus import BatchHandler, Wanted

log = logging.getLogger(__name__)
RECONNECT_S = 1.0


class ThreadedListener:
    """Runs `_listen` on a daemon thread until closed; subclasses connect and receive.

    `_listen` sets `subscribed` once it receives, returns when `_stop` is set, and raises
    when the connection fails (the thread waits `RECONNECT_S` and listens again).
    """

    service = "the event bus"

    def __init__(self) -> None:
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.subscribed = threading.Event()
        self._wanted: Wanted = lambda: True

    def start(self, on_batch: BatchHandler, wanted: Wanted = lambda: True) -> None:
        """Start listening; reconnects after errors until closed. A batch that arrives while
        `wanted()` is False is dropped unread (a web process with no dashboard open would
        otherwise decode every event of every worker)."""
        self._wanted = wanted
        self._thread = threading.Thread(
            target=self._run, args=(on_batch,), name="jobyard-events-listener", daemon=True
        )
        self._thread.start()

    def wait_ready(self, timeout_s: float) -> bool:
        """Wait until subscribed; False if that did not happen within `timeout_s`."""
        return self.subscribed.wait(timeout_s)

    def close(self) -> None:
        """Stop listening."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)

    def _run(self, on_batch: BatchHandler) -> None:
        while not self._stop.is_set():
            try:
                self._listen(on_batch)
            except Exception:
                self.subscribed.clear()
                log.warning("event listener lost %s; reconnecting", self.service, exc_info=True)
                self._stop.wait(RECONNECT_S)

    def _listen(self, on_batch: BatchHandler) -> None:
        raise NotImplementedError
