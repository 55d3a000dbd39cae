"""A Celery worker for one pool: the generic execute task, per-process state, heartbeat."""

from __future__ import annotations

import functools
import logging
import os
import threading
import time
import uuid
import warnings
from typing import Any

from celery import Celery, Task, signals
from celery.exceptions import SecurityWarning, SoftTimeLimitExceeded

from jobyard.app import Yard
from jobyard.config import Settings
from jobyard.execution import chunks, claims, executor, hard_cancel
from jobyard.execution.batching.run import run_claimed
from jobyard.execution.celery import steps
from jobyard.execution.celery.app import EXECUTE_TASK, make_celery
from jobyard.execution.handback import HandBack
from jobyard.execution.leases import LeaseKeeper
from jobyard.execution.owners import owner_id
from jobyard.execution.stall_watch import StallWatch
from jobyard.gc_freeze import freeze_startup_objects
from jobyard.runtime import Runtime, longest_timeout_s
from jobyard.store.db import is_transient

log = logging.getLogger(__name__)
CLAIM_RETRY_S = 2.0


class ProcessStateHolder:
    """Builds the executor state once per process, after a prefork fork."""

    def __init__(self, settings: Settings, yard: Yard, *, hard_cancel: bool) -> None:
        self._settings = settings
        self._yard = yard
        self._hard_cancel = hard_cancel
        self._lock = threading.Lock()
        self._pid: int | None = None
        self._state: executor.ProcessState | None = None
        self._successes: chunks.BulkSuccesses | None = None
        self._handback: HandBack | None = None
        self.pace = chunks.GroupPace()

    def get(self) -> executor.ProcessState:
        """This process's state, built on first use."""
        with self._lock:
            if self._state is None or self._pid != os.getpid():
                runtime = Runtime.open(self._settings, yard=self._yard, check_schema=False)
                owner = owner_id()
                on_abandoned = (
                    functools.partial(self._end_process, runtime) if self._hard_cancel else None
                )
                self._state = executor.ProcessState(
                    runtime=runtime,
                    owner=owner,
                    leases=LeaseKeeper(runtime, owner, on_abandoned=on_abandoned),
                    timeout_errors=(SoftTimeLimitExceeded,),
                )
                self._successes = chunks.BulkSuccesses(self._state)
                self._handback = HandBack(functools.partial(chunks.send_back, self._state))
                self._pid = os.getpid()
                freeze_startup_objects()
            return self._state

    def _end_process(self, runtime: Runtime, job_id: uuid.UUID, attempt: int) -> None:
        """Hard cancel: record the chunk's finished jobs first, so none of them runs again."""
        if self._successes is not None:
            self._successes.flush()
        hard_cancel.end_this_process(runtime, job_id, attempt)

    def successes(self) -> chunks.BulkSuccesses:
        """This process's bulk recorder of chunked jobs' successes."""
        self.get()
        assert self._successes is not None
        return self._successes

    def handback(self) -> HandBack:
        """This process's watcher of multi-job messages' slow jobs."""
        self.get()
        assert self._handback is not None
        return self._handback


def make_worker_celery(settings: Settings, yard: Yard, pool: str) -> Celery:
    """The Celery app a `jobyard worker --pool NAME` process runs."""
    app = make_celery(settings, longest_timeout_s(yard))
    # One job per prefork child: ending the child stops exactly the cancelled job.
    prefork = settings.pools[pool].celery_pool == "prefork"
    holder = ProcessStateHolder(settings, yard, hard_cancel=prefork)

    @app.task(  # type: ignore[untyped-decorator]
        name=EXECUTE_TASK,
        bind=True,
        acks_late=True,
        reject_on_worker_lost=True,
        ignore_result=True,
        max_retries=None,
    )
    def execute(task: Task, *job_ids: str) -> str:
        """Run the jobs of one message in order (several: a batch or a backlog's share)."""
        state = holder.get()
        successes = holder.successes
        if len(job_ids) > 1:
            try:
                ids = [uuid.UUID(job_id) for job_id in job_ids]
                # The message's job type(s), as Celery's tools show them (`shadow`).
                kind = str(getattr(task.request, "shadow", None) or "")
                outcomes = chunks.run_chunk(
                    state, ids, holder.successes(), holder.handback(), holder.pace, kind
                )
                return ",".join(outcomes)
            except chunks.ClaimUnavailable as exc:
                log.warning("database unavailable before %s jobs started; retrying", exc)
                remaining = [str(job_id) for job_id in exc.remaining]
                raise task.retry(
                    args=remaining, countdown=CLAIM_RETRY_S, exc=exc.__cause__
                ) from exc
        outcomes = []
        for index, job_id in enumerate(job_ids):
            try:
                job = claims.claim(state, uuid.UUID(job_id))
            except Exception as exc:
                if not is_transient(exc):
                    raise
                # Not claimed, so nothing else would deliver these again: ask the broker to.
                log.warning("database unavailable before job %s started; retrying", job_id)
                raise task.retry(
                    args=list(job_ids[index:]), countdown=CLAIM_RETRY_S, exc=exc
                ) from exc
            outcomes.append("skipped" if job is None else run_claimed(state, job, successes()))
        return ",".join(outcomes)

    def process_started(**_: Any) -> None:
        # A prefork child builds its state as it starts, not on its first job (opening the
        # runtime and freezing its objects took that job a second on a busy machine).
        try:
            holder.get()
        except Exception:  # the database is away: the first job builds it (and retries)
            log.warning("could not prepare the pool process; its first job will", exc_info=True)

    signals.worker_process_init.connect(process_started, weak=False)
    watch = StallWatch(settings.worker.stall_after_s, now=time.monotonic())
    app.steps["worker"].add(steps.heartbeat_step(settings, yard, pool, watch))
    app.steps["worker"].add(steps.liveness_step(settings, pool, watch))
    app.steps["worker"].add(steps.stall_guard_step(pool, watch))
    return app


def worker_argv(settings: Settings, pool: str, loglevel: str, *, quiet: bool = False) -> list[str]:
    """Celery worker arguments for a pool (`quiet`: no banner)."""
    config = settings.pools[pool]
    argv = [
        "worker",
        f"--queues={settings.queue_for(pool)}",
        f"--concurrency={config.concurrency}",
        f"--pool={config.celery_pool}",
        f"--prefetch-multiplier={config.prefetch}",
        f"--hostname={pool}@%h-{os.getpid()}",
        f"--loglevel={loglevel}",
        "--without-gossip",
        "--without-mingle",
    ]
    if not settings.worker.remote_control:
        # Heartbeat events only tell Flower a worker is online; they go out once it asks.
        argv.append("--without-heartbeat")
    if settings.log_format == "json" or quiet:
        argv.insert(0, "--quiet")  # celery's own option: no banner (JSON: every line is JSON)
    if config.max_tasks_per_child:
        argv.append(f"--max-tasks-per-child={config.max_tasks_per_child}")
    return argv


def run_worker(
    settings: Settings,
    yard: Yard,
    pool: str,
    *,
    loglevel: str = "INFO",
    quiet: bool = False,
    verbose: bool = False,
) -> int:
    """Run the pool's Celery worker in this process until it stops; its exit code.

    `worker_main` drops the code, so it is read from the stopped worker: one that died of an
    unrecoverable error (its pool processes could not start, say) must exit non-zero for
    systemd's `Restart=on-failure` and for whoever else watches it.
    """
    app = make_worker_celery(settings, yard, pool)
    codes: list[int] = []

    def remember(sender: Any, **_: Any) -> None:
        codes.append(sender.exitcode or 0)

    def one_line_per_job(**_: Any) -> None:
        # Celery's received/succeeded lines repeat what jobyard's one line per attempt says.
        if not verbose:
            logging.getLogger("celery.app.trace").setLevel(logging.WARNING)
            logging.getLogger("celery.worker.strategy").setLevel(logging.WARNING)

    def started(**_: Any) -> None:
        # Before the pool processes fork (`worker_init`): they inherit the frozen objects and
        # their own freeze at start walks only what they made since; again once the consumer
        # is ready, for what its start-up made.
        freeze_startup_objects()

    signals.worker_shutdown.connect(remember, weak=False)
    signals.after_setup_logger.connect(one_line_per_job, weak=False)
    signals.worker_init.connect(started, weak=False)
    signals.worker_ready.connect(started, weak=False)
    if quiet:  # running as root on a laptop is `up`'s business, not a warning per worker
        warnings.filterwarnings("ignore", category=SecurityWarning)
    try:
        app.worker_main(worker_argv(settings, pool, loglevel, quiet=quiet))
    finally:
        signals.worker_shutdown.disconnect(remember)
        signals.after_setup_logger.disconnect(one_line_per_job)
        signals.worker_init.disconnect(started)
        signals.worker_ready.disconnect(started)
    return codes[-1] if codes else 0
