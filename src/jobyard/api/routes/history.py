"""`/api/v1/history`: what the dashboard's charts draw on load, from stored data."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query

from jobyard.api.auth import require
from jobyard.api.deps import RuntimeDep
from jobyard.api.responses import COMMON
from jobyard.api.schemas import HistoryPublic
from jobyard.domain.roles import Role
from jobyard.store import history

Window = Literal["15m", "1h", "6h", "24h"]
#: Each window's length and bucket width, in seconds: 60 to 96 points per chart.
WINDOWS: dict[str, tuple[int, int]] = {
    "15m": (900, 15),
    "1h": (3600, 60),
    "6h": (21600, 300),
    "24h": (86400, 900),
}

router = APIRouter(
    prefix="/api/v1", tags=["pools"], dependencies=[Depends(require(Role.VIEWER))], responses=COMMON
)


@router.get("/history")
def chart_history(
    runtime: RuntimeDep,
    window: Annotated[Window, Query(description="How far back: 15m, 1h, 6h or 24h.")] = "1h",
) -> HistoryPublic:
    """Jobs finished per bucket and queue depth per pool over the window, oldest first."""
    length_s, bucket_s = WINDOWS[window]
    now_s = runtime.clock().timestamp()
    last = math.floor(now_s / bucket_s) * bucket_s
    times = list(range(last - length_s + bucket_s, last + bucket_s, bucket_s))
    since = datetime.fromtimestamp(times[0], UTC)
    with runtime.db.read() as conn:
        finished = history.finished_per_bucket(conn, since=since, bucket_s=bucket_s)
        depth = history.depth_per_bucket(conn, since=since, bucket_s=bucket_s)
    return HistoryPublic(
        window=window,
        bucket_s=bucket_s,
        times=times,
        succeeded=[finished["succeeded"].get(t, 0) for t in times],
        failed=[finished["failed"].get(t, 0) for t in times],
        cancelled=[finished["cancelled"].get(t, 0) for t in times],
        queued={
            pool: [depth.get(pool, {}).get(t) for t in times] for pool in runtime.settings.pools
        },
    )
