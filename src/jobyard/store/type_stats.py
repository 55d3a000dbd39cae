"""Per job type over a recent window: runs, failures, run time percentiles, last failure.

Read from the jobs table (finished jobs, newest first, at most `limit` rows), so the figures
survive restarts and reflect every worker; percentiles are computed here, the same way on
PostgreSQL and SQLite.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, select

from jobyard.domain.states import JobState
from jobyard.store.models import jobs_table

J = jobs_table.c
FINISHED = (JobState.SUCCEEDED.value, JobState.FAILED.value)


@dataclass(frozen=True)
class TypeStats:
    """One job type's figures over the window."""

    type: str
    runs: int
    failed: int
    p50_s: float | None
    p95_s: float | None
    last_failure_at: datetime | None
    last_error: str | None

    @property
    def failure_rate(self) -> float:
        return self.failed / self.runs if self.runs else 0.0


def recent(conn: Connection, *, since: datetime, limit: int) -> list[dict[str, Any]]:
    """Jobs that succeeded or failed since `since`, newest first."""
    rows = conn.execute(
        select(J.type, J.state, J.started_at, J.finished_at, J.error)
        .where(J.finished_at >= since, J.state.in_(FINISHED))
        .order_by(J.finished_at.desc())
        .limit(limit)
    ).mappings()
    return [dict(row) for row in rows]


def summarize(rows: Iterable[dict[str, Any]]) -> list[TypeStats]:
    """Figures per type, by name, from rows as `recent` returns them (newest first)."""
    grouped: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        grouped.setdefault(row["type"], []).append(row)
    return [_stats(name, grouped[name]) for name in sorted(grouped)]


def _stats(name: str, rows: list[dict[str, Any]]) -> TypeStats:
    durations = sorted(
        (row["finished_at"] - row["started_at"]).total_seconds()
        for row in rows
        if row["started_at"] is not None and row["finished_at"] is not None
    )
    failures = [row for row in rows if row["state"] == JobState.FAILED.value]
    last = failures[0] if failures else None
    return TypeStats(
        type=name,
        runs=len(rows),
        failed=len(failures),
        p50_s=_percentile(durations, 0.50),
        p95_s=_percentile(durations, 0.95),
        last_failure_at=last["finished_at"] if last else None,
        last_error=(last["error"] or "")[:300] if last else None,
    )


def _percentile(ordered: list[float], fraction: float) -> float | None:
    if not ordered:
        return None
    if len(ordered) == 1:
        return ordered[0]
    cuts = statistics.quantiles(ordered, n=100, method="inclusive")
    return cuts[round(fraction * 100) - 1]
