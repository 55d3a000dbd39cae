"""Batched job type declarations, their calls, and the executor's own time limit."""

from __future__ import annotations

import logging
import signal
import threading
import time
from typing import Any

import pytest
from pydantic import BaseModel

from jobyard import Batch, BatchContext, JobContext, Yard
from jobyard.config import load_settings
from jobyard.definitions import BatchResultMismatch
from jobyard.errors import ConfigError
from jobyard.execution.time_limit import CallTimedOut, call_with_time_limit


class Item(BaseModel):
    n: int


class NoHooks:
    def report_progress(self, fraction: float, message: str | None) -> None:
        pass

    def is_cancelled(self) -> bool:
        return False


def contexts(count: int) -> BatchContext:
    log = logging.getLogger("test")
    jobs = [JobContext(str(i), 1, log, NoHooks(), None) for i in range(count)]  # type: ignore[arg-type]
    return BatchContext(jobs, log)


def test_items_arrive_as_models_or_dicts_and_results_must_match() -> None:
    yard = Yard()

    @yard.job("models", batch=Batch(max_size=4))
    def models(ctx: BatchContext, items: list[Item]) -> list[int]:
        return [item.n * len(ctx) for item in items]

    @yard.job("dicts", batch=Batch(max_size=4))
    def dicts(items: list[dict[str, Any]]) -> list[Any]:
        return [sorted(item) for item in items]

    @yard.job("short", batch=Batch())
    def short(items: list[Item]) -> list[int]:
        return [items[0].n]

    definition = yard.definition("models")
    assert definition.call_batch(contexts(2), [{"n": 2}, {"n": 3}]) == [4, 6]
    assert definition.validate_args({"n": "5"}) == {"n": 5}  # each job's args: one item
    assert definition.call(contexts(1).jobs[0], {"n": 7}) == 7  # a batch of one
    assert yard.definition("dicts").call_batch(contexts(1), [{"b": 1, "a": 2}]) == [["a", "b"]]
    with pytest.raises(BatchResultMismatch, match="returned 1 results for 2 jobs"):
        yard.definition("short").call_batch(contexts(2), [{"n": 1}, {"n": 2}])


def test_declaration_errors_are_named() -> None:
    yard = Yard()
    with pytest.raises(ConfigError, match="must take one list of items"):
        yard.job("two", batch=Batch())(lambda a, b: [a, b])
    with pytest.raises(ConfigError, match="max_size must be between 1 and 1024"):
        Batch(max_size=0)
    with pytest.raises(ConfigError, match="max_wait_ms"):
        Batch(max_wait_ms=-1)

    @yard.job("pods.batched", pool="pods", batch=Batch())
    def batched(items: list[Item]) -> list[int]:
        return [item.n for item in items]

    settings = load_settings(
        None, environ={}, pools={"general": {}, "pods": {"mode": "pod-per-job"}}
    )
    with pytest.raises(ConfigError, match="is batched, so its pool 'pods' must run long-lived"):
        yard.check_pools(settings)


def busy(seconds: float) -> str:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        pass
    return "done"


def test_time_limit_on_the_main_thread_interrupts_a_sleep() -> None:
    began = time.monotonic()
    with pytest.raises(CallTimedOut):
        call_with_time_limit(0.2, lambda: time.sleep(5))
    assert time.monotonic() - began < 2
    assert call_with_time_limit(1.0, lambda: "quick") == "quick"
    time.sleep(1.2)  # the cancelled alarm does not fire later


def test_a_limited_call_inside_another_leaves_the_outer_limit_in_force() -> None:
    def inner_then_sleep() -> str:
        assert call_with_time_limit(0.3, lambda: "inner") == "inner"  # a shorter alarm
        time.sleep(5)  # past the outer limit
        return "not stopped"

    began = time.monotonic()
    with pytest.raises(CallTimedOut, match=r"after 0\.6s"):
        call_with_time_limit(0.6, inner_then_sleep)
    assert time.monotonic() - began < 2


def test_a_foreign_alarm_handler_is_put_back() -> None:
    fired: list[int] = []
    previous = signal.signal(signal.SIGALRM, lambda signum, _frame: fired.append(signum))
    try:
        assert call_with_time_limit(1.0, lambda: "quick") == "quick"
        signal.setitimer(signal.ITIMER_REAL, 0.05)
        time.sleep(0.3)
        assert fired == [signal.SIGALRM]
    finally:
        signal.signal(signal.SIGALRM, previous)


def test_time_limit_on_another_thread() -> None:
    outcome: list[str] = []

    def run() -> None:
        try:
            outcome.append(call_with_time_limit(0.2, lambda: busy(5)))
        except CallTimedOut:
            outcome.append("timed out")
        outcome.append(call_with_time_limit(1.0, lambda: busy(0.05)))
        busy(1.2)  # the cancelled timer does not fire later
        outcome.append("still alive")

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(timeout=10)
    assert outcome == ["timed out", "done", "still alive"]


def test_time_limits_of_several_threads_at_once() -> None:
    """One watchdog serves every thread: each call is stopped at its own deadline only."""
    outcomes: dict[str, str] = {}

    def run(name: str, limit_s: float, work_s: float) -> None:
        try:
            outcomes[name] = call_with_time_limit(limit_s, lambda: busy(work_s))
        except CallTimedOut:
            outcomes[name] = "timed out"

    threads = [
        threading.Thread(target=run, args=("slow", 0.3, 5)),
        threading.Thread(target=run, args=("quick", 5, 0.1)),
        threading.Thread(target=run, args=("slower", 0.6, 5)),
        threading.Thread(target=run, args=("just in time", 3, 0.8)),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    assert outcomes == {
        "slow": "timed out",
        "quick": "done",
        "slower": "timed out",
        "just in time": "done",
    }
