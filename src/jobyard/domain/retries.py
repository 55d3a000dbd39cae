"""Retry policy and exponential backoff with jitter."""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How often and how late a failed job is tried again.

    Attributes:
        retries: attempts after the first; 0 means a failure is final.
        backoff_s: delay before the first retry; doubles each retry.
        backoff_max_s: ceiling for one delay.
        jitter: spread each delay uniformly over [delay/2, delay] so that a burst of
            failures does not retry in lockstep.
    """

    retries: int = 0
    backoff_s: float = 1.0
    backoff_max_s: float = 300.0
    jitter: bool = True

    @property
    def max_attempts(self) -> int:
        """Total attempts allowed, the first included."""
        return self.retries + 1


def backoff_delay_s(policy: RetryPolicy, attempt: int, rng: random.Random | None = None) -> float:
    """Delay before the attempt after `attempt` (1-based) failed.

    Args:
        policy: the job type's retry policy.
        attempt: the attempt that just failed, counting from 1.
        rng: random source, passed in by tests for reproducible jitter.
    """
    exponent = max(attempt - 1, 0)
    delay = min(policy.backoff_s * (2.0**exponent), policy.backoff_max_s)
    if policy.jitter and delay > 0:
        source = rng if rng is not None else random
        delay = source.uniform(delay / 2.0, delay)
    return delay


def has_attempts_left(attempt: int, max_attempts: int) -> bool:
    """Whether a job that finished attempt `attempt` may run again."""
    return attempt < max_attempts
