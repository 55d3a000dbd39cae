"""The broker seam: what the rest of jobyard needs from a message broker."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol

from jobyard.store.jobs import Dispatch


class Publisher(Protocol):
    """Sends job messages to pool queues."""

    def publish(self, dispatches: Sequence[Dispatch]) -> Mapping[str, int]:
        """Send the jobs' messages (several jobs to a message up to their pool's
        `dispatch_chunk`); answers the queue lengths the broker reported, where it did.

        Raises:
            ServiceUnavailable: when the broker cannot be reached; nothing is lost, the outbox
                re-dispatch publishes the jobs later.
        """

    def ping(self) -> None:
        """Raise ServiceUnavailable if the broker cannot be reached."""

    def queue_lengths(self, queues: Sequence[str]) -> dict[str, int]:
        """Messages waiting in each queue (missing queues count 0)."""

    def close(self) -> None:
        """Release connections."""
