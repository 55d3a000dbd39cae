"""A time limit on one call, enforced by the executor rather than by Celery.

Celery's soft time limit is per message. A batched job type makes several calls under one
message (the batch, then each job alone when the batch raised), a message of several jobs runs
them one after another, and each call gets its job type's `timeout_s`; Celery's threads pool
enforces no limit at all. Here the limit raises
`CallTimedOut` inside the calling thread: through `SIGALRM` on the main thread (which also
interrupts a sleep or a blocking read, as Celery's own signal does) and through
`PyThreadState_SetAsyncExc` on any other thread (delivered at the next Python instruction),
from one watchdog thread per process.
Native code that never returns to Python is stopped by the hard limit or the reaper instead.
"""

from __future__ import annotations

import ctypes
import os
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import FrameType
from typing import TypeVar

T = TypeVar("T")


class CallTimedOut(BaseException):
    """The call ran past its time limit.

    A BaseException, so that job code's `except Exception:` cannot swallow it.
    """


def call_with_time_limit(seconds: float, func: Callable[[], T]) -> T:
    """`func()`, interrupted with `CallTimedOut` after `seconds`."""
    if threading.current_thread() is threading.main_thread():
        outer_s, _ = signal.getitimer(signal.ITIMER_REAL)
        if not outer_s or outer_s > seconds:
            return _with_alarm(seconds, func, outer_s)
    return _with_async_exception(seconds, func)


def _with_alarm(seconds: float, func: Callable[[], T], outer_s: float) -> T:
    """SIGALRM after `seconds`; an alarm already set (`outer_s` away, a test runner's) is
    put back afterwards with what was left of it, and so is that runner's handler.

    With no other handler, `_on_alarm` stays installed between calls: installing a handler
    costs more than a millisecond job (a message of 50 runs 50 calls)."""
    began = time.monotonic()
    previous = signal.getsignal(signal.SIGALRM)
    ours = previous is _on_alarm or previous in (signal.SIG_DFL, None)
    if previous is not _on_alarm:
        signal.signal(signal.SIGALRM, _on_alarm)
    enclosing_s, _ALARM.seconds = _ALARM.seconds, seconds  # a limited call inside another
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        return func()
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        _ALARM.seconds = enclosing_s
        if not ours:
            signal.signal(signal.SIGALRM, previous)
        if outer_s:
            left = outer_s - (time.monotonic() - began)
            signal.setitimer(signal.ITIMER_REAL, max(left, 0.001))


@dataclass
class _Alarm:
    """The limit of the call the main thread's alarm is set for (None between calls)."""

    seconds: float | None = None


#: One per process, as the signal it belongs to.
_ALARM = _Alarm()


def _on_alarm(signum: int, frame: FrameType | None) -> None:
    del signum, frame
    seconds = _ALARM.seconds
    if seconds is not None:  # an alarm that fired as its call ended finds nothing to stop
        raise CallTimedOut(f"timed out after {seconds:g}s")


@dataclass(eq=False)
class _Limit:
    """One call running on a thread other than the main one, and when it must stop."""

    thread: int
    deadline: float
    running: bool = True


class _Watchdog:
    """One daemon thread per process for every call limited on other threads (a `threads`
    pool runs many short jobs, each limited: a timer thread per call cost more than the job).

    The active calls are few (one per pool thread), so the earliest deadline is found by a
    scan; a call that ends is dropped at once.
    """

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        """Start empty (in a forked child: the parent's lock and thread are not its own)."""
        self._cond = threading.Condition()
        self._active: set[_Limit] = set()
        self._thread: threading.Thread | None = None

    def start(self, seconds: float) -> _Limit:
        limit = _Limit(threading.get_ident(), time.monotonic() + seconds)
        with self._cond:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._run, name="jobyard-time-limits", daemon=True
                )
                self._thread.start()
            self._active.add(limit)
            self._cond.notify()
        return limit

    def end(self, limit: _Limit) -> None:
        # Under the lock: an exception set for this call is pending before the caller leaves
        # its `finally`, so it surfaces inside the limited frame, never in the caller's code.
        with self._cond:
            limit.running = False
            self._active.discard(limit)

    def _run(self) -> None:
        while True:
            with self._cond:
                if not self._active:
                    self._cond.wait()
                    continue
                now = time.monotonic()
                due = [limit for limit in self._active if limit.deadline <= now]
                if not due:
                    self._cond.wait(min(limit.deadline for limit in self._active) - now)
                    continue
                for limit in due:
                    self._active.discard(limit)
                    if limit.running:
                        ctypes.pythonapi.PyThreadState_SetAsyncExc(
                            ctypes.c_ulong(limit.thread), ctypes.py_object(CallTimedOut)
                        )


#: The process's watchdog, like its SIGALRM: there is one per process by nature.
_WATCHDOG = _Watchdog()
os.register_at_fork(after_in_child=_WATCHDOG.reset)


def _with_async_exception(seconds: float, func: Callable[[], T]) -> T:
    limit = _WATCHDOG.start(seconds)
    try:
        return func()
    finally:
        _WATCHDOG.end(limit)
