"""Mapping jobyard priorities onto broker priorities.

jobyard priorities run 0..9 where 9 is most urgent, as on RabbitMQ. Celery's Redis transport
reads its priority lists from 0 upward, so there the scale is reversed.
"""

from __future__ import annotations

from jobyard.domain.limits import MAX_PRIORITY


def broker_priority(priority: int, *, redis: bool) -> int:
    """The priority value to put on a message for this broker."""
    return MAX_PRIORITY - priority if redis else priority
