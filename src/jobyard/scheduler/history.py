"""The leader's history duty: sample every pool's queue depth and drop old samples."""

from __future__ import annotations

from datetime import datetime, timedelta

from jobyard.runtime import Runtime
from jobyard.scheduler.cadence import Cadence
from jobyard.store import history, job_counts


class HistorySampler:
    """Samples at most once per `scheduler.history_sample_s`, whatever the tick rate."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self._cadence = Cadence()

    def maybe_sample(self, now: datetime) -> bool:
        """Record a sample if one is due; whether one was recorded."""
        config = self.runtime.settings.scheduler
        if not self._cadence.due(now, config.history_sample_s):
            return False
        with self.runtime.db.write() as conn:
            stats = job_counts.pool_stats(conn)
            depths = {pool: history.Depth(0, 0) for pool in self.runtime.settings.pools}
            for pool, counted in stats.items():
                depths[pool] = history.Depth(counted.queued, counted.running)
            history.record_samples(conn, now, depths)
            history.prune_samples(conn, now - timedelta(hours=config.history_keep_h))
        return True
