"""The execution side of `JobContext`: progress writes, cancellation checks, log flushes."""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from jobyard.domain.states import JobState
from jobyard.events.types import log_event, progress_event
from jobyard.execution.joblog import BufferingJobHandler
from jobyard.execution.leases import LeaseKeeper
from jobyard.runtime import Runtime
from jobyard.storage.records import ArtifactRecord
from jobyard.store import artifacts, jobs, logs
from jobyard.store.records import JobRecord

log = logging.getLogger(__name__)
PROGRESS_INTERVAL_S = 0.2
CANCEL_CHECK_INTERVAL_S = 1.0


class AttemptHooks:
    """Implements `JobHooks` for one running attempt, throttling database writes."""

    def __init__(
        self,
        runtime: Runtime,
        job: JobRecord,
        handler: BufferingJobHandler,
        leases: LeaseKeeper,
    ) -> None:
        self._runtime = runtime
        self._job = job
        self._handler = handler
        self._leases = leases
        self._lock = threading.Lock()
        self._last_progress = 0.0
        self._last_check = 0.0
        self._cancelled = False

    def report_progress(self, fraction: float, message: str | None) -> None:
        """Write progress at most every 0.2 s, always for 100 %."""
        moment = time.monotonic()
        if fraction < 1.0 and moment - self._last_progress < PROGRESS_INTERVAL_S:
            return
        self._last_progress = moment
        now = self._runtime.clock()
        rows = self._handler.take()
        with self._runtime.db.write() as conn:
            still_running = jobs.set_progress(
                conn, self._job.id, self._job.attempt, fraction, message, now
            )
            logs.append(conn, rows)
        if not still_running:
            self._cancelled = True
            return
        events = [log_event(self._job, row) for row in rows]
        events.append(progress_event(self._job, fraction, message, now))
        self._runtime.events.publish(events)

    def record_artifact(self, artifact: ArtifactRecord) -> None:
        """Record a complete artifact, waiting out a database outage: the file exists."""

        def store() -> None:
            with self._runtime.db.write() as conn:
                artifacts.record(conn, artifact)

        self._runtime.db.retry(store, what=f"recording artifact {artifact.name} of {self._job.id}")

    def is_cancelled(self) -> bool:
        """True once the job left `running` for this attempt (cancel, takeover)."""
        if self._cancelled or self._leases.is_lost(self._job.id):
            return True
        moment = time.monotonic()
        if moment - self._last_check >= CANCEL_CHECK_INTERVAL_S:
            self._last_check = moment
            with self._runtime.db.read() as conn:
                current = jobs.fetch(conn, self._job.id)
            self._cancelled = (
                current is None
                or current.state is not JobState.RUNNING
                or current.attempt != self._job.attempt
            )
        return self._cancelled

    def write_logs(self, rows: list[dict[str, Any]]) -> None:
        """Store buffered log lines now (called by the handler when they are due)."""
        with self._lock:
            try:
                with self._runtime.db.write() as conn:
                    logs.append(conn, rows)
            except Exception:  # never fail the job because its log could not be stored
                log.warning("could not store job log lines", exc_info=True)
                return
            self._runtime.events.publish([log_event(self._job, row) for row in rows])
