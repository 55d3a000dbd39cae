"""Asking running workers what they do, through Celery's remote control (`inspect`).

The replies are Celery's own, keyed by worker name (`<pool>@<host>-<pid>`); `by_pool` keeps
the workers of one pool. A job's message carries its type as Celery's `shadow` name, so the
`name` of an active request is the job type, and its `args` are the job ids.
"""

from __future__ import annotations

from typing import Any

from celery import Celery

#: `celery inspect` methods `jobyard inspect` offers (all read-only).
METHODS = ("active", "reserved", "scheduled", "stats", "registered", "active_queues", "ping")
#: Methods whose replies are lists of requests (one row per request in the table view).
REQUEST_METHODS = ("active", "reserved", "scheduled")


def inspect(app: Celery, method: str, *, timeout_s: float, pool: str | None) -> dict[str, Any]:
    """Each answering worker's reply to `method` (empty when no worker answered in time)."""
    if method not in METHODS:
        raise ValueError(f"unknown inspect method {method!r}; use one of {', '.join(METHODS)}")
    inspector = app.control.inspect(timeout=timeout_s)
    replies = getattr(inspector, method)() or {}
    return by_pool(replies, pool)


def by_pool(replies: dict[str, Any], pool: str | None) -> dict[str, Any]:
    """The replies of one pool's workers (all when `pool` is None)."""
    if pool is None:
        return dict(replies)
    return {name: reply for name, reply in replies.items() if name.split("@", 1)[0] == pool}


def request_rows(replies: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per request in replies to active/reserved/scheduled: worker, type, job ids."""
    rows = []
    for worker, requests in sorted(replies.items()):
        for entry in requests or []:
            request = entry.get("request", entry)  # `scheduled` wraps the request
            rows.append(
                {
                    "worker": worker,
                    "type": request.get("name"),
                    "job_ids": list(request.get("args") or []),
                    "time_start": request.get("time_start"),
                    "worker_pid": request.get("worker_pid"),
                }
            )
    return rows
