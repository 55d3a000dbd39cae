"""The leader's retention duty: delete artifacts older than `storage.retention_days`.

Each record names exactly one file (the job's own URL), and only that file is deleted, so
one job's cleanup never touches another's. The file goes first: a crash in between leaves a
record whose file is gone (the download then answers `artifact_not_found`), never an
unrecorded file that nothing would ever delete.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from jobyard.runtime import Runtime
from jobyard.scheduler.cadence import Cadence
from jobyard.store import artifacts

log = logging.getLogger(__name__)
BATCH = 500


class ArtifactSweeper:
    """Sweeps at most once per `storage.cleanup_interval_s`."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self._cadence = Cadence()

    def maybe_sweep(self, now: datetime) -> int:
        """Delete expired artifacts if a sweep is due; how many went."""
        config = self.runtime.settings.storage
        if config.retention_days is None:
            return 0
        if not self._cadence.due(now, config.cleanup_interval_s):
            return 0
        cutoff = now - timedelta(days=config.retention_days)
        deleted = 0
        while True:
            with self.runtime.db.read() as conn:
                expired = artifacts.created_before(conn, cutoff, BATCH)
            for record in expired:
                self.runtime.storage.delete(record.url)
            with self.runtime.db.write() as conn:
                deleted += artifacts.delete_ids(conn, [r.id for r in expired if r.id is not None])
            if len(expired) < BATCH:
                break
        if deleted:
            log.info(
                "deleted %d artifact(s) older than %g days",
                deleted,
                config.retention_days,
                extra={"action": "artifact_retention"},
            )
        return deleted
