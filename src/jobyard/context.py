"""What a running job sees: `JobContext`, and `Retry` to ask for another attempt."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from jobyard.storage.job_artifacts import JobArtifacts


class Retry(Exception):
    """Raised by job code to be tried again after `after_s` seconds.

    It counts as an attempt and obeys the job type's retry limit, but is logged at info level
    rather than as an error.
    """

    def __init__(self, reason: str = "retry requested", *, after_s: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.after_s = after_s


class Fail(Exception):
    """Raised by job code to fail the job now, with no further attempt: a retry cannot help
    (a 404, a file that is not a video). The message is the job's error."""


class JobHooks(Protocol):
    """The execution layer's side of a JobContext."""

    def report_progress(self, fraction: float, message: str | None) -> None:
        """Store the job's progress."""

    def is_cancelled(self) -> bool:
        """Whether cancellation of the job was requested."""


class JobContext:
    """Passed to job functions that declare a `ctx` parameter.

    Attributes:
        job_id: the job's id.
        attempt: the attempt number, starting at 1.
        log: a logger whose records are stored with the job and shown by `jobyard jobs logs`.
        artifacts: writes outputs to artifact storage, recorded with the job
            (`ctx.artifacts.put_file(path)`, `put_bytes(name, data)`, `with open(name) as f`),
            and reads inputs by URL (`open_input(url)`).
    """

    def __init__(
        self,
        job_id: str,
        attempt: int,
        log: logging.Logger,
        hooks: JobHooks,
        artifacts: JobArtifacts,
    ) -> None:
        self.job_id = job_id
        self.attempt = attempt
        self.log = log
        self.artifacts = artifacts
        self._hooks = hooks

    def progress(self, fraction: float, message: str | None = None) -> None:
        """Report progress as a fraction in [0, 1] with an optional status message."""
        self._hooks.report_progress(min(max(float(fraction), 0.0), 1.0), message)

    def cancelled(self) -> bool:
        """Whether someone cancelled this job; long jobs should check and return early."""
        return self._hooks.is_cancelled()


class BatchContext:
    """Passed to batched job functions (`batch=Batch(...)`) that declare a `ctx` parameter.

    Attributes:
        jobs: one `JobContext` per item of the call, in the same order: each job's own
            progress, log, cancellation and artifacts.
        log: a logger whose records are stored with every job of the batch.
    """

    def __init__(self, jobs: list[JobContext], log: logging.Logger) -> None:
        self.jobs = jobs
        self.log = log

    def __len__(self) -> int:
        return len(self.jobs)

    def progress(self, fraction: float, message: str | None = None) -> None:
        """Report the same progress for every job of the batch."""
        for job in self.jobs:
            job.progress(fraction, message)

    def cancelled(self) -> bool:
        """Whether every job of the batch was cancelled (then the call may return early)."""
        return all(job.cancelled() for job in self.jobs)
