"""Worker heartbeats: a row per worker process, refreshed on a timer."""

from __future__ import annotations

import logging
import os
import socket
import threading

from jobyard.runtime import Runtime
from jobyard.store import workers
from jobyard.store.records import WorkerRecord

log = logging.getLogger(__name__)


class Heartbeat:
    """Registers a worker and refreshes its heartbeat until stopped."""

    def __init__(self, runtime: Runtime, pool: str) -> None:
        config = runtime.settings.pools[pool]
        now = runtime.clock()
        host, pid = socket.gethostname(), os.getpid()
        self.record = WorkerRecord(
            id=f"{pool}@{host}:{pid}",
            pool=pool,
            hostname=host,
            pid=pid,
            concurrency=config.concurrency,
            celery_pool=config.celery_pool,
            queue=runtime.settings.queue_for(pool),
            started_at=now,
            heartbeat_at=now,
            stopped_at=None,
        )
        self._runtime = runtime
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="jobyard-heartbeat", daemon=True)

    def start(self) -> None:
        """Beat once now (so the worker shows up at once), then on a timer."""
        self.beat()
        self._thread.start()

    def beat(self) -> None:
        """Refresh the heartbeat row."""
        with self._runtime.db.write() as conn:
            workers.heartbeat(conn, self.record, self._runtime.clock())

    def stop(self) -> None:
        """Stop beating and mark the worker stopped."""
        self._stop.set()
        try:
            with self._runtime.db.write() as conn:
                workers.stopped(conn, self.record.id, self._runtime.clock())
        except Exception:  # shutting down with the database gone: the reaper will notice
            log.warning("could not mark worker stopped", exc_info=True)

    def _loop(self) -> None:
        interval = self._runtime.settings.worker.heartbeat_interval_s
        while not self._stop.wait(interval):
            try:
                self.beat()
            except Exception:  # keep beating through database hiccups
                log.warning("heartbeat failed", exc_info=True, extra={"action": "heartbeat"})
