"""`LeaseKeeper`: one thread per worker process renewing the leases of its running jobs.

A lease that stops being renewed (the process died) expires and the reaper retries the job. A
renewal that no longer matches (the job was cancelled or taken over) tells the job to stop
(`ctx.cancelled()`); a job still running `cancel_grace_s` later is handed to `on_abandoned`,
which in a prefork child ends the whole process (hard cancel).
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable
from datetime import timedelta

from jobyard.runtime import Runtime
from jobyard.store import jobs
from jobyard.store.db import describe, is_transient

log = logging.getLogger(__name__)


class LeaseKeeper:
    """Renews leases of the jobs this process runs, and flags the ones it lost."""

    def __init__(
        self,
        runtime: Runtime,
        owner: str,
        *,
        on_abandoned: Callable[[uuid.UUID, int], None] | None = None,
    ) -> None:
        self._runtime = runtime
        self._owner = owner
        self._on_abandoned = on_abandoned
        self._held: dict[uuid.UUID, int] = {}
        #: Held jobs that share their call with others (a batch): never handed over.
        self._shared: set[uuid.UUID] = set()
        #: Jobs this process lost (cancelled, taken over), with when it noticed (monotonic).
        self._lost: dict[uuid.UUID, float] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="jobyard-leases", daemon=True)
        self._thread.start()

    def hold(self, job_id: uuid.UUID, attempt: int, *, shared: bool = False) -> None:
        """Start renewing this attempt's lease.

        `shared`: the job runs in one call with others (a batch), so losing it never ends the
        process; its outcome is simply not recorded.
        """
        with self._lock:
            self._held[job_id] = attempt
            self._lost.pop(job_id, None)
            if shared:
                self._shared.add(job_id)
            else:
                self._shared.discard(job_id)

    def release(self, job_id: uuid.UUID) -> None:
        """Stop renewing (the attempt ended)."""
        with self._lock:
            self._held.pop(job_id, None)
            self._lost.pop(job_id, None)
            self._shared.discard(job_id)

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
                self.stop_abandoned(time.monotonic())
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
        now = time.monotonic()
        with self._lock:
            for job_id in held.keys() - kept:
                if job_id in self._held:
                    self._lost.setdefault(job_id, now)

    def stop_abandoned(self, now: float) -> None:
        """Hand over jobs that kept running `cancel_grace_s` after they were lost."""
        if self._on_abandoned is None:
            return
        grace_s = self._runtime.settings.worker.cancel_grace_s
        with self._lock:
            overdue = [
                (job_id, self._held[job_id])
                for job_id, since in self._lost.items()
                if job_id in self._held and job_id not in self._shared and now - since >= grace_s
            ]
        for job_id, attempt in overdue:
            self._on_abandoned(job_id, attempt)
