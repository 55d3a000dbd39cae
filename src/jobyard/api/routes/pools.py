"""`/api/v1/pools`, `/api/v1/capacity`, `/api/v1/workers`, `/api/v1/job-types`."""

from __future__ import annotations

import dataclasses
from collections import Counter
from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Query

from jobyard.api.auth import require
from jobyard.api.deps import RuntimeDep
from jobyard.api.responses import COMMON
from jobyard.api.schemas import (
    CapacityPublic,
    JobTypePublic,
    JobTypeStatsPublic,
    NodePublic,
    PoolPublic,
    WorkerPublic,
)
from jobyard.domain.roles import Role
from jobyard.runtime import Runtime
from jobyard.store import job_counts, type_stats, workers
from jobyard.store.records import WorkerRecord

#: Finished jobs the type statistics read at most (the newest).
TYPE_STATS_ROWS = 50_000

router = APIRouter(
    prefix="/api/v1", tags=["pools"], dependencies=[Depends(require(Role.VIEWER))], responses=COMMON
)


def alive_workers(runtime: Runtime, listing: list[WorkerRecord]) -> list[WorkerRecord]:
    """Workers that beat recently and did not stop."""
    cutoff = runtime.clock() - timedelta(seconds=runtime.settings.scheduler.worker_dead_after_s)
    return [w for w in listing if w.stopped_at is None and w.heartbeat_at > cutoff]


@router.get("/pools")
def list_pools(runtime: RuntimeDep) -> list[PoolPublic]:
    """Every declared pool with queued, running and live worker counts."""
    now = runtime.clock()
    with runtime.db.read() as conn:
        stats = job_counts.pool_stats(conn)
        listing = workers.listing(conn)
    live = alive_workers(runtime, listing)
    alive = Counter(w.pool for w in live)
    stalled = Counter(w.pool for w in live if w.stalled_since is not None)
    types: dict[str, list[str]] = {}
    for job in runtime.yard.jobs.values():
        types.setdefault(job.pool, []).append(job.name)
    out = []
    for name, config in runtime.settings.pools.items():
        stat = stats.get(name)
        oldest = stat.oldest_queued_at if stat else None
        out.append(
            PoolPublic(
                name=name,
                queue=runtime.settings.queue_for(name),
                mode=config.mode,
                concurrency=config.concurrency,
                celery_pool=config.celery_pool,
                queued=stat.queued if stat else 0,
                running=stat.running if stat else 0,
                retrying=stat.retrying if stat else 0,
                workers_alive=alive[name],
                workers_stalled=stalled[name],
                oldest_queued_age_s=(now - oldest).total_seconds() if oldest else None,
                job_types=sorted(types.get(name, [])),
                max_parallel=config.max_parallel if config.mode == "pod-per-job" else None,
            )
        )
    return out


@router.get("/capacity")
def capacity(runtime: RuntimeDep) -> list[CapacityPublic]:
    """Per pool: live workers, their slots, slots in use and free, and jobs waiting."""
    with runtime.db.read() as conn:
        stats = job_counts.pool_stats(conn)
        listing = workers.listing(conn)
    live = alive_workers(runtime, listing)
    out = []
    for name, config in runtime.settings.pools.items():
        stat = stats.get(name)
        nodes = None
        if config.mode == "pod-per-job":  # one launcher leads; it starts up to max_parallel
            launchers = [w for w in live if w.pool == name]
            slots = config.max_parallel if launchers else 0
            seen = next((w.nodes for w in launchers if w.nodes is not None), None)
            nodes = [NodePublic.model_validate(n) for n in seen] if seen is not None else None
        else:
            slots = sum(w.concurrency for w in live if w.pool == name)
        used = stat.running if stat else 0
        out.append(
            CapacityPublic(
                pool=name,
                mode=config.mode,
                workers=sum(1 for w in live if w.pool == name),
                slots=slots,
                used=used,
                free=max(0, slots - used),
                queued=stat.queued if stat else 0,
                nodes=nodes,
            )
        )
    return out


@router.get("/workers")
def list_workers(runtime: RuntimeDep) -> list[WorkerPublic]:
    """Worker processes seen in the last hour, alive ones marked."""
    since = runtime.clock() - timedelta(hours=1)
    with runtime.db.read() as conn:
        listing = workers.listing(conn, seen_after=since)
    alive = {w.id for w in alive_workers(runtime, listing)}
    return [WorkerPublic.of(w, alive=w.id in alive) for w in listing]


@router.get("/job-types/stats")
def job_type_stats(
    runtime: RuntimeDep,
    hours: Annotated[float, Query(gt=0, le=24 * 31, description="The window, in hours.")] = 24,
) -> list[JobTypeStatsPublic]:
    """Per job type over the last `hours`: runs, failures, p50/p95 run time, last failure
    (from the newest 50,000 finished jobs)."""
    return [
        JobTypeStatsPublic(**dataclasses.asdict(s), failure_rate=s.failure_rate)
        for s in recent_type_stats(runtime, hours)
    ]


def recent_type_stats(runtime: Runtime, hours: float) -> list[type_stats.TypeStats]:
    """The figures of `/job-types/stats`, for the API and the dashboard."""
    since = runtime.clock() - timedelta(hours=hours)
    with runtime.db.read() as conn:
        rows = type_stats.recent(conn, since=since, limit=TYPE_STATS_ROWS)
    return type_stats.summarize(rows)


@router.get("/job-types")
def list_job_types(runtime: RuntimeDep) -> list[JobTypePublic]:
    """Registered job types and the JSON schema of their arguments."""
    return [
        JobTypePublic(
            name=job.name,
            pool=job.pool,
            retries=job.retry.retries,
            timeout_s=job.timeout_s,
            priority=job.priority,
            args_schema=job.args_json_schema(),
        )
        for job in sorted(runtime.yard.jobs.values(), key=lambda j: j.name)
    ]
