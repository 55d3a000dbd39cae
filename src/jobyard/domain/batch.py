"""`Batch`: how many jobs of a batched job type one call takes, and how long to wait for them."""

from __future__ import annotations

from dataclasses import dataclass

from jobyard.errors import ConfigError

#: The most jobs one call may take: one claim statement and one message's hard limit cover it.
MAX_BATCH_SIZE = 1024
#: The longest a worker may hold claimed jobs while it waits for more.
MAX_BATCH_WAIT_MS = 10_000


@dataclass(frozen=True)
class Batch:
    """Run up to `max_size` queued jobs of one type in one call of its function.

    A worker that receives one such job claims up to `max_size - 1` more queued jobs of the
    same type at once, waiting at most `max_wait_ms` for more to arrive, then calls the function
    with their args as a list; it returns one result per job, in order. Each job keeps its own
    attempt, result, progress and log. When the call raises, every job of the batch is run
    again alone, so one bad input fails only itself. `timeout_s` counts per call.
    """

    max_size: int = 32
    max_wait_ms: float = 50.0

    def __post_init__(self) -> None:
        if not 1 <= self.max_size <= MAX_BATCH_SIZE:
            raise ConfigError(f"Batch.max_size must be between 1 and {MAX_BATCH_SIZE}")
        if not 0 <= self.max_wait_ms <= MAX_BATCH_WAIT_MS:
            raise ConfigError(f"Batch.max_wait_ms must be between 0 and {MAX_BATCH_WAIT_MS}")
