"""What a job process wrote, stored: log lines, progress, artifacts; and its outcome kept.

The launcher reads each followed process's output (`stream` says what a line means) and hands
the complete lines here, with the `Tracked` record of the attempt they belong to.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from jobyard.events.types import progress_event
from jobyard.execution import executor
from jobyard.execution.executor import ProcessState
from jobyard.execution.pods import stream
from jobyard.execution.pods.runner import JobHandle
from jobyard.storage.location import StorageError
from jobyard.storage.records import ArtifactRecord
from jobyard.store import artifacts, jobs
from jobyard.store.records import JobRecord


@dataclass
class Tracked:
    """A job process this launcher follows."""

    job: JobRecord
    handle: JobHandle
    #: The secret of the outcome line; None when unknown (then no line counts as one).
    nonce: str | None
    splitter: stream.LineSplitter = field(default_factory=stream.LineSplitter)
    outcome: stream.Outcome | None = None
    #: Why the launcher stops it: timeout, cancelled, shutdown.
    stop_reason: str | None = None
    stop_sent_at: float | None = None
    #: Log lines already stored by an earlier launcher, skipped when its output is read again.
    skip_logs: int = 0


class OutputRecorder:
    """Stores the output lines of the attempts one launcher follows."""

    def __init__(self, state: ProcessState) -> None:
        self.state = state
        self.runtime = state.runtime

    def record(self, tracked: Tracked, lines: list[str]) -> bool:
        """Store the lines; False when the attempt no longer runs (cancelled meanwhile)."""
        if not lines:
            return True
        job = tracked.job
        rows = []
        progress: stream.ProgressLine | None = None
        for line in lines:
            parsed = stream.parse(line, tracked.nonce)
            if isinstance(parsed, stream.Outcome):
                tracked.outcome = parsed
            elif isinstance(parsed, stream.ArtifactLine):
                problem = self._record_artifact(job, parsed)
                if problem is not None:
                    rows.append(self._log_row(job, "ERROR", problem))
            elif isinstance(parsed, stream.ProgressLine):
                progress = parsed
            elif tracked.skip_logs > 0:
                tracked.skip_logs -= 1  # stored before this launcher adopted the job
            else:
                rows.append(self._log_row(job, parsed.level, parsed.message))
        executor.write_logs(self.state, job, rows)
        return progress is None or self._store_progress(job, progress)

    def _log_row(self, job: JobRecord, level: str, message: str) -> dict[str, Any]:
        return {
            "job_id": job.id,
            "attempt": job.attempt,
            "created_at": self.runtime.clock(),
            "level": level,
            "message": message,
        }

    def _record_artifact(self, job: JobRecord, line: stream.ArtifactLine) -> str | None:
        """Record an artifact the job reported, at the job's own URL and only if it exists
        there; why not, when it cannot be."""
        storage = self.runtime.storage
        try:
            url = storage.job_url(job.id, line.name)
            if not storage.fs.exists(storage.path_of(url)):
                raise StorageError(f"{url} does not exist")
        except StorageError as exc:
            return f"artifact {line.name!r} not recorded: {exc}"
        record = ArtifactRecord(
            job.id,
            job.attempt,
            line.name,
            url,
            line.size,
            line.sha256,
            line.content_type,
            self.runtime.clock(),
        )
        with self.runtime.db.write() as conn:
            artifacts.record(conn, record)
        return None

    def _store_progress(self, job: JobRecord, progress: stream.ProgressLine) -> bool:
        now = self.runtime.clock()
        with self.runtime.db.write() as conn:
            running = jobs.set_progress(
                conn, job.id, job.attempt, progress.fraction, progress.message, now
            )
        if running:
            self.runtime.events.publish(
                [progress_event(job, progress.fraction, progress.message, now)]
            )
        return running
