"""The scheduler loop: each tick promotes due retries, re-dispatches the outbox, reaps."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass

from jobyard.dispatch import outbox
from jobyard.runtime import Runtime
from jobyard.scheduler import reaper

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TickReport:
    """What one tick did."""

    promoted: int
    redispatched: int
    lost: int
    timed_out: int


def tick(runtime: Runtime) -> TickReport:
    """Run every duty once."""
    now = runtime.clock()
    lost = reaper.reap_lost(runtime, now)
    timed_out = reaper.reap_timed_out(runtime, now)
    promoted = outbox.promote_due_retries(runtime)
    redispatched = outbox.redispatch_stale(runtime)
    return TickReport(promoted, redispatched, lost, timed_out)


def run(runtime: Runtime, stop: threading.Event) -> None:
    """Tick until `stop` is set; a failing tick is logged and the next one tries again."""
    interval = runtime.settings.scheduler.poll_interval_s
    log.info("scheduler started", extra={"action": "scheduler_start"})
    while not stop.is_set():
        try:
            tick(runtime)
        except Exception:  # database or broker down: keep the loop alive, retry next tick
            log.warning("scheduler tick failed", exc_info=True, extra={"action": "tick"})
        stop.wait(interval)
    log.info("scheduler stopped", extra={"action": "scheduler_stop"})
