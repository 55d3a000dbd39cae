"""`Launcher`: starts the queued jobs of one pod-per-job pool, each in a process of its own.

One launcher per pool works at a time (a leader lease named `launcher:<pool>`). Each step it
reads the output of the jobs it runs (stored by `output.OutputRecorder`), stops jobs that
were cancelled or ran out of time (SIGTERM to the process group, SIGKILL after
`worker.cancel_grace_s`), records the outcome of jobs that ended, and starts queued jobs, by
priority, while fewer than the pool's `max_parallel` run. The database is the only record:
a launcher that starts adopts every job process still running and finishes the bookkeeping of
those that ended meanwhile; a job it claimed but never started goes back for another attempt.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
import uuid
from datetime import timedelta
from typing import Any

from jobyard.domain.states import AttemptOutcome
from jobyard.events.types import state_event
from jobyard.execution import claims, executor, overtaken
from jobyard.execution.executor import Failure, ProcessState
from jobyard.execution.leases import LeaseKeeper
from jobyard.execution.owners import owner_id
from jobyard.execution.pods import stream
from jobyard.execution.pods.output import OutputRecorder, Tracked
from jobyard.execution.pods.runner import JobHandle, Runner, RunnerUnavailable
from jobyard.execution.pods.spec import LaunchSpec
from jobyard.runtime import Runtime
from jobyard.scheduler.leader import Leadership
from jobyard.store import launches, logs, workers
from jobyard.store.db import describe, is_transient
from jobyard.store.records import JobRecord

log = logging.getLogger(__name__)
#: Seconds between steps: the most a queued job waits for a free slot to be noticed.
POLL_S = 0.1
#: Seconds between checks that the running jobs were not cancelled.
CANCEL_CHECK_S = 0.5
#: Seconds between looks at the nodes a Kubernetes pool's jobs may run on (for /capacity).
NODES_REFRESH_S = 30.0


class Launcher:
    """The launcher of one pod-per-job pool."""

    def __init__(
        self, runtime: Runtime, pool: str, runner: Runner[Any], *, worker_id: str | None = None
    ) -> None:
        self.runtime = runtime
        self.pool = pool
        self.runner = runner
        self.max_parallel = runtime.settings.pools[pool].max_parallel
        self.owner = f"launcher/{pool}/{owner_id()}"
        self.state = ProcessState(runtime, self.owner, LeaseKeeper(runtime, self.owner))
        self.output = OutputRecorder(self.state)
        self.leadership = Leadership(
            runtime.db, runtime.settings.scheduler.lease_s, name=f"launcher:{pool}"
        )
        self.tracked: dict[uuid.UUID, Tracked] = {}
        #: Processes of attempts that no longer run (found at adoption), being stopped.
        self.orphans: dict[uuid.UUID, tuple[JobHandle, float]] = {}
        self._adopted = False
        self._last_cancel_check = 0.0
        self._led_at = float("-inf")
        #: This launcher's row among the workers (its heartbeat), where it records nodes.
        self.worker_id = worker_id
        self._nodes_at = float("-inf")

    # -- the loop ------------------------------------------------------------------------------

    def run(self, stop: threading.Event) -> None:
        """Step until `stop` is set, then stop the running jobs (see `shutdown`)."""
        try:
            while not stop.is_set():
                self.safe_step()
                stop.wait(POLL_S)
        finally:
            self.shutdown()

    def safe_step(self) -> None:
        """One step; a database or runner hiccup is logged and the next step tries again."""
        try:
            self.step()
        except Exception as exc:
            log.warning(
                "launcher step failed: %s",
                describe(exc),
                exc_info=not is_transient(exc),
                extra={"action": "launcher", "pool": self.pool},
            )

    def step(self) -> None:
        if not self._lead():
            return
        if not self._adopted:
            self.adopt()
            self._adopted = True
        self.follow()
        self.launch()
        self._record_nodes()

    def _record_nodes(self) -> None:
        moment = time.monotonic()
        if self.worker_id is None or moment - self._nodes_at < NODES_REFRESH_S:
            return
        self._nodes_at = moment
        nodes = self.runner.nodes()
        if nodes is None:
            return
        with self.runtime.db.write() as conn:
            workers.set_nodes(conn, self.worker_id, nodes)

    def _lead(self) -> bool:
        """Take or renew the pool's leader lease: renewed a few times per lease, not each
        step (a write every 0.1 s would load the database for nothing)."""
        was_leader = self.leadership.is_leader
        moment = time.monotonic()
        every_s = min(1.0, self.leadership.lease_s / 3)
        if not was_leader or moment - self._led_at >= every_s:
            self.leadership.refresh()
            self._led_at = moment
        if self.leadership.is_leader:
            if not was_leader:
                log.info("launcher of pool %s is leading", self.pool, extra={"pool": self.pool})
            return True
        if was_leader or self.tracked:
            # Another launcher took over: it adopts our jobs; stop following them here.
            for tracked in self.tracked.values():
                self.state.leases.release(tracked.job.id)
            self.tracked.clear()
            self._adopted = False
        return False

    # -- adoption ------------------------------------------------------------------------------

    def adopt(self) -> None:
        """Take over every job of the pool left running by an earlier launcher."""
        db = self.runtime.db
        with db.read() as conn:
            running = {job.id: job for job in launches.running_in_pool(conn, self.pool)}
        found = {handle.job_id: handle for handle in self.runner.discover()}
        for handle in found.values():
            job = running.get(handle.job_id)
            adopted = job is not None and job.attempt == handle.attempt and self._take(handle)
            if adopted:
                continue
            if self.runner.is_running(handle):  # the job moved on: stop its stale process
                log.warning(
                    "job %s attempt %d no longer runs; stopping its leftover process",
                    handle.job_id,
                    handle.attempt,
                    extra={"job_id": handle.job_id, "action": "stop_superseded"},
                )
                self.runner.signal(handle, signal.SIGTERM)
                self.orphans[handle.job_id] = (handle, time.monotonic())
            else:
                self.runner.forget(handle)
        for job in running.values():
            if job.id not in self.tracked:  # claimed, but its process never started
                self._retry_unstarted(job)

    def _take(self, handle: JobHandle) -> bool:
        until = self.runtime.clock() + timedelta(seconds=self.runtime.settings.worker.lease_s)
        with self.runtime.db.write() as conn:
            job = launches.adopt(conn, handle.job_id, handle.attempt, self.owner, until)
            stored = logs.count(conn, handle.job_id, handle.attempt) if job else 0
        if job is None:
            return False
        # Without the nonce no outcome line can be trusted: the process's end decides.
        nonce = self.runner.nonce_of(handle)
        self.state.leases.hold(job.id, job.attempt)
        self.tracked[job.id] = Tracked(job, handle, nonce, skip_logs=stored)
        log.info(
            "adopted job %s (attempt %d)",
            job.id,
            job.attempt,
            extra={"job_id": job.id, "action": "adopt", "pool": self.pool},
        )
        return True

    def _retry_unstarted(self, job: JobRecord) -> None:
        now = self.runtime.clock()
        with self.runtime.db.write() as conn:
            moved = overtaken.retry_lost_attempt(self.runtime, conn, job, now, run_after=now)
        if moved is not None:
            self.runtime.events.publish([state_event(moved)])

    # -- following running jobs ----------------------------------------------------------------

    def follow(self) -> None:
        """Read output, stop what must stop, record what ended."""
        self.runner.refresh()
        self._check_cancelled()
        now = self.runtime.clock()
        grace_s = self.runtime.settings.worker.cancel_grace_s
        for job_id, (handle, since) in list(self.orphans.items()):
            if not self.runner.is_running(handle):
                self.runner.forget(handle)
                del self.orphans[job_id]
            elif time.monotonic() - since >= grace_s:
                self.runner.signal(handle, signal.SIGKILL)
        for tracked in list(self.tracked.values()):
            self._read_output(tracked)
            if not self.runner.is_running(tracked.handle):
                self._read_output(tracked, final=True)
                self._conclude(tracked)
                continue
            started = tracked.job.started_at
            if (
                tracked.stop_reason is None
                and started is not None
                and now >= started + timedelta(seconds=tracked.job.timeout_s)
            ):
                self._stop(tracked, "timeout")
            elif (
                tracked.stop_sent_at is not None
                and time.monotonic() - tracked.stop_sent_at >= grace_s
            ):
                self.runner.signal(tracked.handle, signal.SIGKILL)

    def _check_cancelled(self) -> None:
        moment = time.monotonic()
        if moment - self._last_cancel_check < CANCEL_CHECK_S:
            return
        self._last_cancel_check = moment
        watched = {
            job_id: t.job.attempt for job_id, t in self.tracked.items() if t.stop_reason is None
        }
        if not watched:
            return
        with self.runtime.db.read() as conn:
            alive = launches.still_running(conn, watched)
        for job_id in watched.keys() - alive:
            self._stop(self.tracked[job_id], "cancelled")

    def _stop(self, tracked: Tracked, reason: str) -> None:
        tracked.stop_reason = reason
        log.info(
            "stopping job %s (%s)",
            tracked.job.id,
            reason,
            extra={"job_id": tracked.job.id, "action": f"stop_{reason}", "pool": self.pool},
        )
        self._send_stop(tracked)

    def _send_stop(self, tracked: Tracked) -> None:
        tracked.stop_sent_at = time.monotonic()
        self.runner.signal(tracked.handle, signal.SIGTERM)
        if self.runtime.settings.worker.cancel_grace_s <= 0 and not self.runner.uses_grace_itself():
            self.runner.signal(tracked.handle, signal.SIGKILL)

    def _read_output(self, tracked: Tracked, *, final: bool = False) -> None:
        lines = tracked.splitter.feed(self.runner.read(tracked.handle))
        if final:
            lines += tracked.splitter.rest()
        still_running = self.output.record(tracked, lines)
        if not still_running and tracked.stop_reason is None:
            self._stop(tracked, "cancelled")

    def _conclude(self, tracked: Tracked) -> None:
        """The process ended: record how the attempt went, then forget its folder."""
        job, reason, outcome = tracked.job, tracked.stop_reason, tracked.outcome
        try:
            if reason == "cancelled":
                now = self.runtime.clock()
                with self.runtime.db.write() as conn:
                    overtaken.discard_overtaken(conn, job, now)
            elif reason == "timeout":
                executor.record_failure(
                    self.state,
                    job,
                    Failure(
                        AttemptOutcome.TIMED_OUT,
                        f"timed out after {job.timeout_s:g}s",
                        "TimeoutError",
                        None,
                    ),
                )
            elif outcome is not None and outcome.status == "succeeded":
                executor.record_success(self.state, job, outcome.result)
            elif outcome is not None:
                executor.record_failure(self.state, job, _failure_of(outcome))
            elif reason == "shutdown":
                self._retry_unstarted(job)
            else:
                executor.record_failure(
                    self.state,
                    job,
                    Failure(
                        AttemptOutcome.FAILED,
                        self.runner.describe_end(tracked.handle),
                        "JobProcessDied",
                        None,
                    ),
                )
        finally:
            self.state.leases.release(job.id)
        self.runner.forget(tracked.handle)
        del self.tracked[job.id]

    # -- starting jobs -------------------------------------------------------------------------

    def launch(self) -> None:
        """Start queued jobs, by priority, while fewer than `max_parallel` run."""
        free = self.max_parallel - len(self.tracked) - len(self.orphans)
        if free <= 0:
            return
        with self.runtime.db.read() as conn:
            candidates = launches.next_queued(conn, self.pool, limit=free)
        for job_id in candidates:
            self._start(job_id)

    def _start(self, job_id: uuid.UUID) -> None:
        job = claims.start_attempt(self.state, job_id, self.runtime.clock())
        if job is None:
            return  # cancelled meanwhile
        self.state.leases.hold(job.id, job.attempt)
        self.runtime.events.publish([state_event(job)])
        spec = LaunchSpec(
            str(job.id),
            job.attempt,
            job.type,
            job.args,
            job.timeout_s,
            stream.new_nonce(),
            storage_url=self.runtime.storage.url,
            storage_options=dict(self.runtime.settings.storage.options),
        )
        try:
            handle = self.runner.start(spec)
        except RunnerUnavailable as exc:
            log.warning("could not start job %s: %s", job.id, exc, extra={"job_id": job.id})
            try:
                self._retry_unstarted(job)
            finally:
                self.state.leases.release(job.id)
            return
        except OSError as exc:
            failure = Failure(
                AttemptOutcome.FAILED,
                f"could not start the job process: {exc}",
                "LaunchFailed",
                None,
            )
            try:
                executor.record_failure(self.state, job, failure)
            finally:
                self.state.leases.release(job.id)
            return
        self.tracked[job.id] = Tracked(job, handle, spec.nonce)

    # -- stopping ------------------------------------------------------------------------------

    def _leave_running(self) -> None:
        """Stop renewing and give up the lead; jobs still running are the next launcher's."""
        self.state.leases.stop()
        try:
            self.leadership.release()
        except Exception as exc:
            log.warning("could not release the launcher lease: %s", describe(exc))

    def shutdown(self, grace_s: float | None = None) -> None:
        """Stop every running job (SIGTERM, SIGKILL after the grace) and record what it did:
        an outcome it reported stands; one it did not reach runs again as a new attempt."""
        grace = self.runtime.settings.worker.cancel_grace_s if grace_s is None else grace_s
        if self.runner.keeps_jobs_across_restarts():
            self._leave_running()
            return
        try:
            for tracked in self.tracked.values():
                if tracked.stop_reason is None:
                    tracked.stop_reason = "shutdown"
                    self._send_stop(tracked)
            deadline = time.monotonic() + grace
            while self.tracked and time.monotonic() < deadline:
                self.follow()
                time.sleep(POLL_S)
            for tracked in list(self.tracked.values()):
                self.runner.signal(tracked.handle, signal.SIGKILL)
            kill_deadline = time.monotonic() + 5.0
            while self.tracked and time.monotonic() < kill_deadline:
                self.follow()
                time.sleep(POLL_S)
        finally:
            self._leave_running()


def _failure_of(outcome: stream.Outcome) -> Failure:
    return Failure(
        AttemptOutcome.FAILED,
        outcome.error or "the job failed",
        outcome.error_type or "Error",
        outcome.traceback,
        retry_after_s=outcome.retry_after_s,
        permanent=outcome.permanent,
    )
