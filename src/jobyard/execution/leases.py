"""`LeaseKeeper`: one thread per worker process renewing the leases of its running jobs.

A lease that stops being renewed (the process died) expires and the reaper retries the job. A
renewal that no longer matches (the job was cancelled or taken over) tells the job to stop.
"""

from __future__ import annotations

import logging
import threading
import uuid
from datetime import timedelta

from jobyard.runtime import Runtime
from jobyard.store import jobs
from jobyard.store.db import describe, is_transient

log = logging.getLogger(__name__)


class LeaseKeeper:
    """Renews leases of the jobs this process runs, and flags the ones it lost."""

    def __init__(self, runtime: Runtime, owner: str) -> None:
        self._runtime = runtime
        self._owner = owner
        self._held: dict[uuid.UUID, int] = {}
        self._lost: set[uuid.UUID] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="jobyard-leases", daemon=True)
        self._thread.start()

    def hold(self, job_id: uuid.UUID, attempt: int) -> None:
        """Start renewing this attempt's lease."""
        with self._lock:
            self._held[job_id] = attempt
            self._lost.discard(job_id)

    def release(self, job_id: uuid.UUID) -> None:
        """Stop renewing (the attempt ended)."""
        with self._lock:
            self._held.pop(job_id, None)
            self._lost.discard(job_id)

    def holds(self, job_id: uuid.UUID) -> bool:
        """Whether an attempt of this job runs in this process now."""
        with self._lock:
            return job_id in self._held

    def is_lost(self, job_id: uuid.UUID) -> bool:
        """Whether the last renewal found the job no longer ours (cancelled or taken over)."""
        with self._lock:
            return job_id in self._lost

    def stop(self) -> None:
        """End the renewal thread."""
        self._stop.set()

    def _loop(self) -> None:
        interval = self._runtime.settings.worker.lease_renew_s
        while not self._stop.wait(interval):
            try:
                self.renew()
            except Exception as exc:  # a database hiccup must not kill the thread; next round
                log.warning(
                    "lease renewal failed: %s",
                    describe(exc),
                    exc_info=not is_transient(exc),
                    extra={"action": "lease"},
                )

    def renew(self) -> None:
        """Extend every held lease once."""
        with self._lock:
            held = dict(self._held)
        if not held:
            return
        settings = self._runtime.settings.worker
        db = self._runtime.db

        def renew() -> set[uuid.UUID]:
            until = self._runtime.clock() + timedelta(seconds=settings.lease_s)
            with db.write() as conn:
                return jobs.renew_leases(conn, held, self._owner, until)

        # A stale connection after a database restart fails once: try again at once.
        kept = db.retry(renew, what="renewing leases", give_up_after_s=settings.lease_renew_s)
        with self._lock:
            for job_id in held.keys() - kept:
                if job_id in self._held:
                    self._lost.add(job_id)
