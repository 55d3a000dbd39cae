"""A small process supervisor for `jobyard up`: start children, restart crashes, stop all.

Children run in their own sessions so a terminal's Ctrl-C reaches only the supervisor, which
then stops them in reverse order with SIGTERM (Celery's warm shutdown) and SIGKILL after a grace.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

log = logging.getLogger(__name__)
RESTART_WINDOW_S = 60.0
MAX_RESTARTS_IN_WINDOW = 5
#: A child exiting with this code (usage or configuration error) would fail the same way
#: again: restarting it is pointless, so the supervisor stops everything instead.
CONFIG_ERROR_EXIT = 2


@dataclass
class ChildSpec:
    """One supervised process."""

    name: str
    argv: Sequence[str]
    env: Mapping[str, str] = field(default_factory=dict)


@dataclass
class _Child:
    spec: ChildSpec
    process: subprocess.Popen[bytes]
    restarts: list[float] = field(default_factory=list)


class Supervisor:
    """Keeps a set of child processes running until told to stop."""

    def __init__(
        self,
        specs: Sequence[ChildSpec],
        *,
        on_event: Callable[[str], None] = log.info,
    ) -> None:
        self._specs = list(specs)
        self._children: list[_Child] = []
        self._on_event = on_event
        #: The child that exited with a configuration error, and its code; `run` then returns.
        self.fatal: tuple[str, int] | None = None

    @property
    def pids(self) -> dict[str, int]:
        """Current pid per child name."""
        return {child.spec.name: child.process.pid for child in self._children}

    def start(self) -> None:
        """Start every child in order."""
        for spec in self._specs:
            self._children.append(_Child(spec, self._spawn(spec)))

    def run(self, stop: threading.Event, *, poll_s: float = 0.5) -> None:
        """Restart children that exit, until `stop` is set or a child exits with a
        configuration error (then `fatal` names it)."""
        while not stop.wait(poll_s):
            if self.poll_fatal():
                return
            for child in self._children:
                code = child.process.poll()
                if code is not None:
                    self._restart(child, code)

    def poll_fatal(self) -> bool:
        """Whether a child exited with a configuration error (recorded in `fatal`)."""
        for child in self._children:
            if child.process.poll() == CONFIG_ERROR_EXIT:
                self.fatal = (child.spec.name, CONFIG_ERROR_EXIT)
                return True
        return False

    def stop(self, grace_s: float = 15.0) -> None:
        """SIGTERM every child (last started first), SIGKILL those alive after `grace_s`."""
        for child in reversed(self._children):
            if child.process.poll() is None:
                child.process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + grace_s
        for child in reversed(self._children):
            remaining = max(deadline - time.monotonic(), 0.1)
            try:
                child.process.wait(remaining)
            except subprocess.TimeoutExpired:
                self._on_event(f"{child.spec.name} did not stop in {grace_s:g}s; killing it")
                _kill_group(child.process)
                child.process.wait()

    def _restart(self, child: _Child, code: int) -> None:
        now = time.monotonic()
        child.restarts = [t for t in child.restarts if now - t < RESTART_WINDOW_S]
        if len(child.restarts) >= MAX_RESTARTS_IN_WINDOW:
            return  # crash loop: leave it down rather than spin; the message below was shown
        child.restarts.append(now)
        self._on_event(f"{child.spec.name} exited with code {code}; restarting")
        if len(child.restarts) == MAX_RESTARTS_IN_WINDOW:
            self._on_event(f"{child.spec.name} keeps crashing; not restarting it again")
        child.process = self._spawn(child.spec)

    def _spawn(self, spec: ChildSpec) -> subprocess.Popen[bytes]:
        env = {**os.environ, **spec.env}
        process = subprocess.Popen(
            list(spec.argv), env=env, stdin=subprocess.DEVNULL, start_new_session=True
        )
        log.debug("started %s (pid %d)", spec.name, process.pid)
        return process


def _kill_group(process: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
