"""Routing from pool to queue name."""

from __future__ import annotations


def queue_name(prefix: str, pool: str, explicit: str | None = None) -> str:
    """The broker queue a pool consumes: the pool's own setting, else `<prefix>.<pool>`."""
    return explicit if explicit else f"{prefix}.{pool}"
