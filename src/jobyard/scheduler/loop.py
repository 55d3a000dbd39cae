"""The scheduler loop: each tick promotes due retries, re-dispatches the outbox, reaps."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass

from jobyard.dispatch import outbox
from jobyard.runtime import Runtime
from jobyard.scheduler import reaper

log = logging.getLogger(__name__)


#: The sweeps (lost messages: asks the broker for queue lengths; timeouts: reads every running
#: job) are backstops behind Celery's own limits and redelivery, so they run every tenth tick.
SWEEP_EVERY_TICKS = 10


@dataclass(frozen=True)
class TickReport:
    """What one tick did."""

    promoted: int
    redispatched: int
    lost: int
    timed_out: int
    healed: int


def tick(runtime: Runtime, *, sweep: bool = True) -> TickReport:
    """Run every duty once (`sweep`: also the timeout and lost-message sweeps)."""
    now = runtime.clock()
    lost = reaper.reap_lost(runtime, now)
    timed_out = reaper.reap_timed_out(runtime, now) if sweep else 0
    promoted = outbox.promote_due_retries(runtime)
    redispatched = outbox.redispatch_stale(runtime)
    healed = outbox.heal_lost_messages(runtime) if sweep else 0
    return TickReport(promoted, redispatched, lost, timed_out, healed)


def run(runtime: Runtime, stop: threading.Event) -> None:
    """Tick until `stop` is set; a failing tick is logged and the next one tries again."""
    interval = runtime.settings.scheduler.poll_interval_s
    log.info("scheduler started", extra={"action": "scheduler_start"})
    count = 0
    while not stop.is_set():
        try:
            tick(runtime, sweep=count % SWEEP_EVERY_TICKS == 0)
            count += 1
        except Exception:  # database or broker down: keep the loop alive, retry next tick
            log.warning("scheduler tick failed", exc_info=True, extra={"action": "tick"})
        stop.wait(interval)
    log.info("scheduler stopped", extra={"action": "scheduler_stop"})
