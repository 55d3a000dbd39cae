"""The scheduler loop: whoever holds the leader lease fires schedules and keeps the spine.

Each tick, every scheduler process tries to take or renew the lease. The leader then fires
due schedules (fenced by the lease), promotes due retries, re-dispatches the outbox and reaps
lost and timed-out jobs. A newly elected leader first syncs `[[schedules]]` from its config.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass

from jobyard import schedules
from jobyard.dispatch import outbox
from jobyard.errors import ServiceUnavailable
from jobyard.execution import liveness
from jobyard.runtime import Runtime
from jobyard.scheduler import reaper
from jobyard.scheduler.artifact_retention import ArtifactSweeper
from jobyard.scheduler.firing import fire_due
from jobyard.scheduler.history import HistorySampler
from jobyard.scheduler.leader import Leadership
from jobyard.store.db import describe, is_transient

log = logging.getLogger(__name__)


#: The sweeps (lost messages: asks the broker for queue lengths; timeouts: reads every running
#: job) are backstops behind Celery's own limits and redelivery, so they run every tenth tick.
SWEEP_EVERY_TICKS = 10


@dataclass(frozen=True)
class TickReport:
    """What one tick did."""

    fired: int
    promoted: int
    redispatched: int
    lost: int
    timed_out: int
    healed: int


def tick(runtime: Runtime, leader: Leadership, *, sweep: bool = True) -> TickReport | None:
    """Run every duty once as leader (`sweep`: also the timeout and lost-message sweeps).

    Returns None when the lease turned out to be lost: nothing was fired.
    """
    firing = fire_due(runtime, leader.fence)
    if firing is None:
        return None
    now = runtime.clock()
    lost = reaper.reap_lost(runtime, now)
    timed_out = reaper.reap_timed_out(runtime, now) if sweep else 0
    promoted = outbox.promote_due_retries(runtime)
    redispatched = outbox.redispatch_stale(runtime)
    healed = outbox.heal_lost_messages(runtime) if sweep else 0
    return TickReport(firing.fired, promoted, redispatched, lost, timed_out, healed)


class Scheduler:
    """One scheduler process: its lease, tick count and last config sync."""

    def __init__(self, runtime: Runtime, *, holder: str | None = None) -> None:
        self.runtime = runtime
        self.leader = Leadership(runtime.db, runtime.settings.scheduler.lease_s, holder=holder)
        self.ticks = 0
        self.history = HistorySampler(runtime)
        self.artifacts = ArtifactSweeper(runtime)
        self._synced_token: int | None = None

    def step(self) -> TickReport | None:
        """One iteration: renew or take the lease, then (as leader) sync if new and tick."""
        # A leader renews inside each tick (the fence); others ask for the lease every step.
        if not self.leader.is_leader and self.leader.refresh():
            log.info(
                "became scheduler leader (token %s)",
                self.leader.token,
                extra={"action": "leader_elected", "holder": self.leader.holder},
            )
        if not self.leader.is_leader:
            return None
        if self._synced_token != self.leader.token:
            changed = schedules.sync_config(self.runtime)
            self._synced_token = self.leader.token
            if changed:
                log.info("synced %d schedule(s) from config", changed, extra={"action": "sync"})
        report = tick(self.runtime, self.leader, sweep=self.ticks % SWEEP_EVERY_TICKS == 0)
        self.ticks += 1
        if report is not None:
            now = self.runtime.clock()
            self.history.maybe_sample(now)
            self.artifacts.maybe_sweep(now)
        return report

    def run(self, stop: threading.Event) -> None:
        """Step until `stop` is set; a failing step is logged and the next one tries again."""
        log.info(
            "scheduler started",
            extra={"action": "scheduler_start", "holder": self.leader.holder},
        )
        alive = liveness.liveness_file(None, self.runtime.settings.worker.liveness_dir)
        try:
            while not stop.is_set():
                liveness.touch(alive)  # the loop turns, even while the database is down
                try:
                    self.step()
                except Exception as exc:  # database or broker down: keep going, retry next tick
                    log.warning(
                        "scheduler tick failed: %s",
                        describe(exc),
                        exc_info=not (is_transient(exc) or isinstance(exc, ServiceUnavailable)),
                        extra={"action": "tick"},
                    )
                stop.wait(self.runtime.settings.scheduler.poll_interval_s)
        finally:
            alive.unlink(missing_ok=True)  # stopped on purpose: nothing left to probe
            try:
                self.leader.release()
            except Exception:
                log.warning("could not release the leader lease", exc_info=True)
        log.info("scheduler stopped", extra={"action": "scheduler_stop"})


def run(runtime: Runtime, stop: threading.Event, *, holder: str | None = None) -> None:
    """Run a scheduler process until `stop` is set."""
    Scheduler(runtime, holder=holder).run(stop)
