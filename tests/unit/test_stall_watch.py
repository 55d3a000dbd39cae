"""The stall watch tells a stalled consumer from an idle or a busy one."""

from __future__ import annotations

from jobyard.execution.stall_watch import StallAction, StallWatch


def test_idle_or_busy_workers_never_stall() -> None:
    watch = StallWatch(10, now=0)
    for t in range(0, 100, 5):
        watch.sample(t, free_slots=2, backlog=0)  # idle: nothing waits
        watch.sample(t, free_slots=0, backlog=50)  # busy: no slot to take more
    assert watch.stalled_since() is None
    assert watch.action(100) is StallAction.NONE


def test_free_slot_backlog_and_nothing_received_is_a_stall() -> None:
    watch = StallWatch(10, now=0)
    watch.sample(20, free_slots=1, backlog=3)
    assert watch.stalled_since() is None  # the wait starts now, not at the last message
    watch.sample(25, free_slots=1, backlog=3)
    assert watch.stalled_since() is None
    watch.sample(30, free_slots=1, backlog=3)
    assert watch.stalled_since() == 30


def test_a_received_message_clears_the_wait() -> None:
    watch = StallWatch(10, now=0)
    watch.sample(0, free_slots=1, backlog=3)
    watch.received(8)
    watch.sample(15, free_slots=1, backlog=3)
    assert watch.stalled_since() is None
    watch.sample(18, free_slots=1, backlog=3)
    assert watch.stalled_since() == 18
    watch.received(19)
    assert watch.stalled_since() is None
    assert watch.action(19) is StallAction.NONE


def test_reconnect_once_then_exit_if_still_stalled() -> None:
    watch = StallWatch(10, now=0)
    watch.sample(0, free_slots=2, backlog=1)
    watch.sample(10, free_slots=2, backlog=1)
    assert watch.action(11) is StallAction.RECONNECT
    assert watch.action(12) is StallAction.NONE  # each action once
    watch.sample(15, free_slots=2, backlog=1)
    assert watch.action(20) is StallAction.NONE
    assert watch.action(21) is StallAction.EXIT
    assert watch.action(22) is StallAction.NONE


def test_a_reconnect_that_helps_starts_over() -> None:
    watch = StallWatch(10, now=0)
    watch.sample(0, free_slots=2, backlog=1)
    watch.sample(10, free_slots=2, backlog=1)
    assert watch.action(10) is StallAction.RECONNECT
    watch.received(12)
    watch.sample(15, free_slots=2, backlog=1)
    assert watch.action(25) is StallAction.NONE  # no exit: the consumer came back
    watch.sample(22, free_slots=2, backlog=1)
    assert watch.stalled_since() == 22  # a new stall: again reconnect first
    assert watch.action(23) is StallAction.RECONNECT
