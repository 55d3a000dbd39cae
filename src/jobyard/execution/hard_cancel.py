"""Hard cancel for prefork pools: end the worker child of a job that ignored its cancellation.

A prefork child runs one job at a time, so ending it stops exactly that job. The attempt is
recorded as cancelled first; Celery's main process sees the child die, starts a new one, and
returns the message (reject on worker lost), whose delivery then finds the job cancelled and
does nothing. Threads pools cannot stop one thread, so they stay cooperative.
"""

from __future__ import annotations

import logging
import os
import signal
import uuid

from jobyard.domain.states import JobState
from jobyard.execution.overtaken import discard_overtaken
from jobyard.runtime import Runtime
from jobyard.store import jobs

log = logging.getLogger(__name__)


def end_this_process(runtime: Runtime, job_id: uuid.UUID, attempt: int) -> None:
    """Record the attempt as cancelled (when the job was cancelled), then SIGKILL this process.

    A job taken over by another worker (its lease lost, not cancelled) is ended the same way:
    its outcome would be discarded anyway.
    """
    now = runtime.clock()

    def record() -> JobState | None:
        with runtime.db.write() as conn:
            current = jobs.fetch(conn, job_id)
            if current is not None and current.attempt == attempt:
                discard_overtaken(conn, current, now)
            return None if current is None else current.state

    state = runtime.db.retry(record, what=f"recording the cancel of job {job_id}")
    log.warning(
        "job %s (attempt %d) kept running %gs after it was %s; ending worker process %d",
        job_id,
        attempt,
        runtime.settings.worker.cancel_grace_s,
        state.value if state else "deleted",
        os.getpid(),
        extra={"action": "hard_cancel", "job_id": job_id},
    )
    runtime.events.close()  # the job's last events go out before the process ends
    os.kill(os.getpid(), signal.SIGKILL)
