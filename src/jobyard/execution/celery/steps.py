"""The worker's own bootsteps: heartbeat row, liveness file and the stall guard.

All three share one `StallWatch`: the heartbeat samples it, the liveness file reports it, and
the guard acts on it from the event loop, where raising a connection error makes Celery run its
own reconnect (the path a lost broker connection normally takes).
"""

from __future__ import annotations

import logging
import time
from typing import Any

from celery import bootsteps, signals
from celery.exceptions import WorkerShutdown
from celery.worker import state as worker_state

from jobyard.app import Yard
from jobyard.config import Settings
from jobyard.execution import liveness
from jobyard.execution.heartbeat import Heartbeat
from jobyard.execution.stall_watch import EXIT_CODE, StallAction, StallWatch
from jobyard.runtime import Runtime

log = logging.getLogger(__name__)
#: How often the event loop asks the watch whether to act.
GUARD_INTERVAL_S = 1.0


def busy_slots() -> int:
    """Requests this worker holds: running, or reserved to run next."""
    return len(worker_state.reserved_requests)


def liveness_step(
    settings: Settings, pool: str, watch: StallWatch
) -> type[bootsteps.StartStopStep]:
    class LivenessStep(bootsteps.StartStopStep):  # type: ignore[misc]
        """Writes the liveness file from the worker's timer (the event loop, when it has one)."""

        requires = ("celery.worker.components:Timer",)

        def __init__(self, parent: Any, **kwargs: Any) -> None:
            super().__init__(parent, **kwargs)
            self.path = liveness.liveness_file(pool, settings.worker.liveness_dir)
            self.timer_ref: Any = None

        def start(self, parent: Any) -> None:
            self.write()
            interval = settings.worker.heartbeat_interval_s
            self.timer_ref = parent.timer.call_repeatedly(interval, self.write)

        def write(self) -> None:
            problem = ""
            if watch.stalled_since() is not None:
                problem = (
                    f"{liveness.STALLED}: pool {pool} has free slots and messages waiting, "
                    f"but received nothing for over {watch.stall_after_s:g}s"
                )
            liveness.touch(self.path, problem)

        def stop(self, parent: Any) -> None:
            del parent
            if self.timer_ref is not None:
                self.timer_ref.cancel()
            self.path.unlink(missing_ok=True)

    return LivenessStep


def heartbeat_step(
    settings: Settings, yard: Yard, pool: str, watch: StallWatch
) -> type[bootsteps.StartStopStep]:
    class HeartbeatStep(bootsteps.StartStopStep):  # type: ignore[misc]
        """Registers the worker in the database and keeps its heartbeat fresh."""

        def __init__(self, parent: Any, **kwargs: Any) -> None:
            super().__init__(parent, **kwargs)
            self.heartbeat: Heartbeat | None = None
            self.runtime: Runtime | None = None

        def start(self, parent: Any) -> None:
            del parent
            self.runtime = Runtime.open(settings, yard=yard)
            self.heartbeat = Heartbeat(self.runtime, pool, watch=watch, busy_slots=busy_slots)
            self.heartbeat.start()

        def stop(self, parent: Any) -> None:
            del parent
            if self.heartbeat is not None:
                self.heartbeat.stop()
            if self.runtime is not None:
                self.runtime.close()

    return HeartbeatStep


def stall_guard_step(pool: str, watch: StallWatch) -> type[bootsteps.StartStopStep]:
    class StallGuardStep(bootsteps.StartStopStep):  # type: ignore[misc]
        """Reconnects a stalled consumer; stops the worker when that does not help."""

        requires = ("celery.worker.components:Timer",)

        def __init__(self, parent: Any, **kwargs: Any) -> None:
            super().__init__(parent, **kwargs)
            self.timer_ref: Any = None

        def start(self, parent: Any) -> None:
            signals.task_received.connect(self.received, weak=False)
            self.timer_ref = parent.timer.call_repeatedly(GUARD_INTERVAL_S, self.check)

        def received(self, **_: Any) -> None:
            watch.received(time.monotonic())

        def check(self) -> None:
            action = watch.action(time.monotonic())
            if action is StallAction.RECONNECT:
                log.warning(
                    "pool %s: the consumer received nothing for %.0fs although messages wait "
                    "and slots are free; reconnecting to the broker",
                    pool,
                    watch.stall_after_s,
                    extra={"action": "stall_reconnect", "pool": pool},
                )
                # A connection error out of the event loop makes Celery rebuild the consumer.
                raise ConnectionResetError("jobyard: consumer stalled; reconnecting")
            if action is StallAction.EXIT:
                log.error(
                    "pool %s: still stalled %.0fs after reconnecting; exiting with code %d so "
                    "the supervisor starts a fresh worker",
                    pool,
                    watch.stall_after_s,
                    EXIT_CODE,
                    extra={"action": "stall_exit", "pool": pool},
                )
                raise WorkerShutdown(EXIT_CODE)

        def stop(self, parent: Any) -> None:
            del parent
            signals.task_received.disconnect(self.received)
            if self.timer_ref is not None:
                self.timer_ref.cancel()

    return StallGuardStep
