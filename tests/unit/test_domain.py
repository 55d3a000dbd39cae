"""Backoff, ids, priorities, routing."""

from __future__ import annotations

import random
import uuid

from jobyard.domain.ids import uuid7
from jobyard.domain.priorities import broker_priority
from jobyard.domain.retries import RetryPolicy, backoff_delay_s, has_attempts_left
from jobyard.domain.routing import queue_name


def test_backoff_doubles_up_to_the_cap_without_jitter() -> None:
    policy = RetryPolicy(retries=10, backoff_s=1.0, backoff_max_s=5.0, jitter=False)
    assert [backoff_delay_s(policy, n) for n in range(1, 6)] == [1.0, 2.0, 4.0, 5.0, 5.0]


def test_jitter_stays_within_half_to_full_delay() -> None:
    policy = RetryPolicy(retries=3, backoff_s=2.0, backoff_max_s=100.0, jitter=True)
    rng = random.Random(7)
    delays = [backoff_delay_s(policy, 3, rng) for _ in range(200)]
    assert all(4.0 <= d <= 8.0 for d in delays)
    assert len(set(delays)) > 100


def test_attempt_budget() -> None:
    assert RetryPolicy(retries=2).max_attempts == 3
    assert has_attempts_left(2, 3) and not has_attempts_left(3, 3)


def test_uuid7_is_versioned_and_time_ordered() -> None:
    ids = [uuid7(ms) for ms in (1_700_000_000_000, 1_700_000_000_001, 1_800_000_000_000)]
    assert all(i.version == 7 and i.variant == uuid.RFC_4122 for i in ids)
    assert ids == sorted(ids)
    assert len({uuid7(1) for _ in range(1000)}) == 1000


def test_priorities_invert_on_redis_only() -> None:
    assert broker_priority(9, redis=True) == 0 and broker_priority(0, redis=True) == 9
    assert broker_priority(9, redis=False) == 9


def test_queue_names() -> None:
    assert queue_name("jobyard", "media") == "jobyard.media"
    assert queue_name("jobyard", "media", "transcode") == "transcode"
