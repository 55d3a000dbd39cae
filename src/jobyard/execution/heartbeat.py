"""Worker heartbeats: a row per worker (or pod-per-job launcher) process, refreshed on a timer.

Each beat also samples whether the worker consumes (`stall_watch`): its free slots against
its queue's length in the broker. The row then says whether the consumer is stalled, and
how busy the host's visible GPUs are (`gpu`), where it has any.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta

from jobyard.errors import ServiceUnavailable
from jobyard.execution.gpu import GpuProbe
from jobyard.execution.stall_watch import StallWatch
from jobyard.runtime import Runtime
from jobyard.store import workers
from jobyard.store.db import describe, is_transient
from jobyard.store.records import WorkerRecord

log = logging.getLogger(__name__)
#: How long a stopping worker tries to mark itself stopped.
STOP_RETRY_S = 5.0


class Heartbeat:
    """Registers a worker and refreshes its heartbeat until stopped."""

    def __init__(
        self,
        runtime: Runtime,
        pool: str,
        *,
        watch: StallWatch | None = None,
        busy_slots: Callable[[], int] | None = None,
    ) -> None:
        config = runtime.settings.pools[pool]
        launched = config.mode == "pod-per-job"  # a launcher: its slots are max_parallel
        now = runtime.clock()
        host, pid = socket.gethostname(), os.getpid()
        self.record = WorkerRecord(
            id=f"{pool}@{host}:{pid}",
            pool=pool,
            hostname=host,
            pid=pid,
            concurrency=config.max_parallel if launched else config.concurrency,
            celery_pool="launcher" if launched else config.celery_pool,
            queue=runtime.settings.queue_for(pool),
            started_at=now,
            heartbeat_at=now,
            stopped_at=None,
        )
        self._runtime = runtime
        self._gpus = GpuProbe(os.environ)
        self._watch = watch
        self._busy_slots = busy_slots
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="jobyard-heartbeat", daemon=True)

    def start(self) -> None:
        """Beat once now (so the worker shows up at once), then on a timer."""
        self.beat()
        self._thread.start()

    def beat(self) -> None:
        """Sample the consumer's health, then refresh the heartbeat row."""
        now = self._runtime.clock()
        stalled_since = self._sample_consumption(now)
        gpus = self._gpus.sample() if self._gpus.available else None
        with self._runtime.db.write() as conn:
            workers.heartbeat(conn, self.record, now, stalled_since=stalled_since, gpus=gpus)

    def _sample_consumption(self, now: datetime) -> datetime | None:
        """Feed the stall watch; when the consumer stalled, as a wall-clock time."""
        if self._watch is None or self._busy_slots is None:
            return None
        mono = time.monotonic()
        queue = self.record.queue
        free = self.record.concurrency - self._busy_slots()
        backlog = 0  # a busy worker cannot stall: the broker is asked only with a free slot
        if free > 0:
            try:
                backlog = self._runtime.publisher.queue_lengths([queue]).get(queue, 0)
            except ServiceUnavailable:
                pass  # the broker is down: Celery's own reconnect handles that, not a stall
        self._watch.sample(mono, free_slots=free, backlog=backlog)
        stalled = self._watch.stalled_since()
        return None if stalled is None else now - timedelta(seconds=mono - stalled)

    def stop(self) -> None:
        """Stop beating and mark the worker stopped."""
        self._stop.set()
        db = self._runtime.db

        def mark() -> None:
            with db.write() as conn:
                workers.stopped(conn, self.record.id, self._runtime.clock())

        try:
            db.retry(mark, what="marking the worker stopped", give_up_after_s=STOP_RETRY_S)
        except Exception as exc:  # shutting down with the database gone: its heartbeat ages
            log.warning("could not mark the worker stopped: %s", describe(exc))

    def _loop(self) -> None:
        interval = self._runtime.settings.worker.heartbeat_interval_s
        while not self._stop.wait(interval):
            try:
                self.beat()
            except Exception as exc:  # keep beating through database hiccups
                transient = is_transient(exc)
                log.warning(
                    "heartbeat failed: %s",
                    describe(exc),
                    exc_info=not transient,
                    extra={"action": "heartbeat"},
                )
