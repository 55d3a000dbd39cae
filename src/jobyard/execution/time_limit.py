"""A time limit on one call, enforced by the executor rather than by Celery.

Celery's soft time limit is per message. A batched job type makes several calls under one
message (the batch, then each job alone when the batch raised), and each call gets its job
type's `timeout_s`; Celery's threads pool enforces no limit at all. Here the limit raises
`CallTimedOut` inside the calling thread: through `SIGALRM` on the main thread (which also
interrupts a sleep or a blocking read, as Celery's own signal does) and through
`PyThreadState_SetAsyncExc` on any other thread (delivered at the next Python instruction).
Native code that never returns to Python is stopped by the hard limit or the reaper instead.
"""

from __future__ import annotations

import ctypes
import signal
import threading
import time
from collections.abc import Callable
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
    put back afterwards with what was left of it."""

    def expire(signum: int, frame: FrameType | None) -> None:
        del signum, frame
        raise CallTimedOut(f"timed out after {seconds:g}s")

    began = time.monotonic()
    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        return func()
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        if outer_s:
            left = outer_s - (time.monotonic() - began)
            signal.setitimer(signal.ITIMER_REAL, max(left, 0.001))


def _with_async_exception(seconds: float, func: Callable[[], T]) -> T:
    target = threading.get_ident()
    lock = threading.Lock()
    running = [True]

    def expire() -> None:
        # Under the lock, so the exception is pending before the caller can leave the
        # `finally` below: it surfaces inside this frame, never in the caller's later code.
        with lock:
            if running[0]:
                ctypes.pythonapi.PyThreadState_SetAsyncExc(
                    ctypes.c_ulong(target), ctypes.py_object(CallTimedOut)
                )

    timer = threading.Timer(seconds, expire)
    timer.daemon = True
    timer.start()
    try:
        return func()
    finally:
        with lock:
            running[0] = False
        timer.cancel()
