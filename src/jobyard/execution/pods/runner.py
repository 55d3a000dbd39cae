"""What a launcher needs from the place job processes run: this machine, or Kubernetes."""

from __future__ import annotations

import signal
import uuid
from typing import Protocol, TypeVar

from jobyard.execution.pods.spec import LaunchSpec


class RunnerUnavailable(Exception):
    """Where jobs run cannot be reached now (the Kubernetes API is down): a job that could
    not be started goes back to the queue rather than fail."""


class JobHandle(Protocol):
    """One attempt's process or pod, started by this launcher or found by it."""

    job_id: uuid.UUID
    attempt: int


H = TypeVar("H", bound=JobHandle)


class Runner(Protocol[H]):
    """Starts, finds, reads, stops and forgets the job processes of one pool."""

    def refresh(self) -> None:
        """Look at every job process once (one API call per step on Kubernetes)."""

    def start(self, spec: LaunchSpec) -> H:
        """Start `run-job` for the attempt.

        Raises:
            OSError: the process or pod could not be created (recorded as a failed attempt).
        """

    def discover(self) -> list[H]:
        """Every attempt left by an earlier launcher, running or ended."""

    def nonce_of(self, handle: H) -> str | None:
        """The outcome-line secret of a found attempt; None when it cannot be known."""

    def is_running(self, handle: H) -> bool:
        """Whether the job process still lives."""

    def read(self, handle: H) -> bytes:
        """Output written since the last read."""

    def signal(self, handle: H, signum: signal.Signals) -> None:
        """SIGTERM: stop with a grace; SIGKILL: stop now."""

    def describe_end(self, handle: H) -> str:
        """How a process that reported no outcome ended, in words for the attempt's error."""

    def forget(self, handle: H) -> None:
        """Remove what is left of the attempt (its outcome is recorded)."""

    def uses_grace_itself(self) -> bool:
        """Whether SIGTERM already escalates to SIGKILL after the grace (Kubernetes does)."""

    def keeps_jobs_across_restarts(self) -> bool:
        """Whether job processes outlive a launcher that stops cleanly (Kubernetes Jobs do;
        local processes are stopped with it, so Ctrl-C on `jobyard up` stops everything)."""

    def nodes(self) -> list[dict[str, object]] | None:
        """The nodes the pool's jobs may run on, with what they can allocate; None where
        that has no meaning (the local runner: this machine)."""
