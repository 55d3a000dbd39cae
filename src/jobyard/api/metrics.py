"""Prometheus metrics, read from the job database at scrape time.

The database is the source of truth, so any web replica reports the same numbers. Durations are
accumulated from jobs that finished since this process started (a restart resets the counters,
which Prometheus' `rate()` handles).
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from datetime import timedelta

from prometheus_client import CollectorRegistry
from prometheus_client.core import GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from jobyard.api.routes.pools import alive_workers
from jobyard.runtime import Runtime
from jobyard.scheduler.leader import LEASE_NAME
from jobyard.store import job_counts, leases, workers
from jobyard.store import schedules as schedule_store
from jobyard.store.records import PoolStats, WorkerRecord

METRIC_PREFIX = "jobyard"
DURATION_BUCKETS_S = (0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 15.0, 60.0, 300.0, 900.0, 3600.0)
#: Finished jobs are counted once their commit is surely visible.
SCAN_LAG_S = 5.0


class _Histogram:
    def __init__(self) -> None:
        self.buckets = [0] * (len(DURATION_BUCKETS_S) + 1)
        self.total_s = 0.0

    def observe(self, seconds: float) -> None:
        for index, bound in enumerate(DURATION_BUCKETS_S):
            if seconds <= bound:
                self.buckets[index] += 1
        self.buckets[-1] += 1
        self.total_s += seconds


class JobyardCollector(Collector):
    """Collects job, pool and worker metrics from the database."""

    def __init__(self, runtime: Runtime) -> None:
        self._runtime = runtime
        self._lock = threading.Lock()
        self._scanned_until = runtime.clock() - timedelta(seconds=SCAN_LAG_S)
        self._durations: dict[tuple[str, str, str], _Histogram] = {}

    def collect(self) -> Iterator[Metric]:
        with self._runtime.db.read() as conn:
            counts = job_counts.counts(conn)
            stats = job_counts.pool_stats(conn)
            listing = workers.listing(conn)
        by_state = GaugeMetricFamily(
            f"{METRIC_PREFIX}_jobs",
            "Jobs by state, type and pool.",
            labels=["state", "type", "pool"],
        )
        for state, type_, pool, count in counts:
            by_state.add_metric([state, type_, pool], count)
        yield by_state
        yield from self._pool_metrics(stats, listing)
        yield from self._scheduler_metrics()
        yield self._duration_metric()

    def _scheduler_metrics(self) -> Iterator[Metric]:
        now = self._runtime.clock()
        with self._runtime.db.read() as conn:
            lease = leases.state(conn, LEASE_NAME)
            listed = schedule_store.all_schedules(conn)
        leader = GaugeMetricFamily(
            f"{METRIC_PREFIX}_scheduler_leader",
            "1 while a scheduler holds the leader lease (alert when 0).",
        )
        leader.add_metric([], 1 if lease is not None and lease.held else 0)
        yield leader
        count = GaugeMetricFamily(
            f"{METRIC_PREFIX}_schedules", "Schedules by state.", labels=["state"]
        )
        paused = sum(1 for s in listed if s.paused)
        count.add_metric(["active"], len(listed) - paused)
        count.add_metric(["paused"], paused)
        yield count
        overdue = GaugeMetricFamily(
            f"{METRIC_PREFIX}_schedule_overdue_seconds",
            "How long the most overdue active schedule has been due (0: none).",
        )
        late = [(now - s.next_due_at).total_seconds() for s in listed if not s.paused]
        overdue.add_metric([], max([0.0, *late]))
        yield overdue

    def _pool_metrics(
        self, stats: dict[str, PoolStats], listing: list[WorkerRecord]
    ) -> Iterator[Metric]:
        now = self._runtime.clock()
        depth = GaugeMetricFamily(
            f"{METRIC_PREFIX}_queue_depth", "Queued jobs per pool.", labels=["pool"]
        )
        running = GaugeMetricFamily(
            f"{METRIC_PREFIX}_jobs_running", "Running jobs per pool.", labels=["pool"]
        )
        oldest = GaugeMetricFamily(
            f"{METRIC_PREFIX}_oldest_queued_age_seconds",
            "Age of the oldest queued job per pool.",
            labels=["pool"],
        )
        alive = GaugeMetricFamily(
            f"{METRIC_PREFIX}_workers_alive", "Workers with a fresh heartbeat.", labels=["pool"]
        )
        stalled = GaugeMetricFamily(
            f"{METRIC_PREFIX}_workers_stalled",
            "Live workers whose consumer receives nothing although slots are free and "
            "messages wait (they reconnect, then exit for their supervisor to restart them).",
            labels=["pool"],
        )
        live = alive_workers(self._runtime, listing)
        alive_counts = Counter(w.pool for w in live)
        stalled_counts = Counter(w.pool for w in live if w.stalled_since is not None)
        for pool in self._runtime.settings.pools:
            stat = stats.get(pool)
            depth.add_metric([pool], stat.queued if stat else 0)
            running.add_metric([pool], stat.running if stat else 0)
            age = (
                (now - stat.oldest_queued_at).total_seconds()
                if stat and stat.oldest_queued_at
                else 0
            )
            oldest.add_metric([pool], age)
            alive.add_metric([pool], alive_counts[pool])
            stalled.add_metric([pool], stalled_counts[pool])
        yield from (depth, running, oldest, alive, stalled)
        yield from _gpu_metrics(live)

    def _duration_metric(self) -> Metric:
        until = self._runtime.clock() - timedelta(seconds=SCAN_LAG_S)
        with self._lock:
            if until > self._scanned_until:
                with self._runtime.db.read() as conn:
                    finished = job_counts.finished_between(
                        conn, after=self._scanned_until, until=until
                    )
                for _id, type_, pool, state, seconds in finished:
                    self._durations.setdefault((type_, pool, state), _Histogram()).observe(seconds)
                self._scanned_until = until
            family = HistogramMetricFamily(
                f"{METRIC_PREFIX}_job_duration_seconds",
                "Run time of finished jobs (last attempt), since this process started.",
                labels=["type", "pool", "state"],
            )
            for labels, histogram in sorted(self._durations.items()):
                bounds = [*(f"{b:g}" for b in DURATION_BUCKETS_S), "+Inf"]
                family.add_metric(
                    list(labels),
                    list(zip(bounds, histogram.buckets, strict=True)),
                    histogram.total_s,
                )
        return family


def make_registry(runtime: Runtime) -> CollectorRegistry:
    """A registry of this app's own (no process-global registry)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(JobyardCollector(runtime))
    return registry


def _gpu_metrics(live: list[WorkerRecord]) -> Iterator[Metric]:
    """Each live worker's GPUs, from its last heartbeat; no series where there are none."""
    labels = ["pool", "worker", "gpu", "model"]
    busy = GaugeMetricFamily(
        f"{METRIC_PREFIX}_worker_gpu_utilization_ratio",
        "Share of the last sample period a worker's GPU was busy (NVML), 0 to 1.",
        labels=labels,
    )
    used = GaugeMetricFamily(
        f"{METRIC_PREFIX}_worker_gpu_memory_used_bytes", "GPU memory in use.", labels=labels
    )
    total = GaugeMetricFamily(
        f"{METRIC_PREFIX}_worker_gpu_memory_total_bytes", "GPU memory in all.", labels=labels
    )
    for worker in live:
        for gpu in worker.gpus or []:
            values = [worker.pool, worker.id, str(gpu.get("index", "")), str(gpu.get("name", ""))]
            busy.add_metric(values, float(gpu.get("utilization", 0.0)))
            used.add_metric(values, float(gpu.get("memory_used_bytes", 0)))
            total.add_metric(values, float(gpu.get("memory_total_bytes", 0)))
    yield from (busy, used, total)
