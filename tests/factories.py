"""Settings, stacks of real processes, and polling helpers shared by the tests."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

from jobyard.config import Settings, load_settings
from jobyard.domain.states import TERMINAL_STATES
from jobyard.runtime import Runtime
from jobyard.store import jobs
from jobyard.store.records import JobRecord

ROOT = Path(__file__).resolve().parent.parent
T = TypeVar("T")

TEST_POOLS: dict[str, Any] = {
    "general": {"concurrency": 4, "celery_pool": "threads"},
    "media": {"concurrency": 2, "celery_pool": "prefork"},
    "bulk": {"concurrency": 1, "celery_pool": "prefork", "dispatch_chunk": 10},
    "io": {"concurrency": 2, "celery_pool": "threads"},
}
FAST_TIMINGS: dict[str, Any] = {
    "worker": {
        "heartbeat_interval_s": 1.0,
        "lease_s": 3.0,
        "lease_renew_s": 1.0,
        "hard_timeout_grace_s": 1.0,
        "cancel_grace_s": 1.0,
    },
    "scheduler": {
        "poll_interval_s": 0.2,
        "dispatch_grace_s": 1.0,
        "worker_dead_after_s": 5.0,
        "lost_message_after_s": 2.0,
    },
}


@dataclass(frozen=True)
class Backend:
    """A database + broker combination, by URL."""

    name: str
    database_url: str
    broker_url: str


def make_settings(backend: Backend, data_dir: Path, **overrides: Any) -> Settings:
    """Test settings: the test yard, fast timings, a unique queue prefix."""
    values: dict[str, Any] = {
        "database_url": backend.database_url,
        "broker_url": backend.broker_url,
        "yard": "tests.yards.basic:yard",
        "data_dir": data_dir,
        "queue_prefix": f"jyt-{uuid.uuid4().hex[:8]}",
        "pools": TEST_POOLS,
        **FAST_TIMINGS,
    }
    values.update(overrides)
    built = load_settings(None, environ={}, **values)
    MADE_SETTINGS.append(built)
    return built


#: Every settings object the tests made: the session's end removes their queues from the
#: shared Redis and RabbitMQ, whichever fixture or test made them.
MADE_SETTINGS: list[Settings] = []


def settings_env(settings: Settings) -> dict[str, str]:
    """The same settings as JOBYARD_* variables, for child processes."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("JOBYARD_")}
    # A terminal width inherited from the runner (pytest-xdist's workers set one) would fold
    # the CLI's tables; written to a pipe they are wide (`cli.output.PIPE_WIDTH`).
    env.pop("COLUMNS", None)
    dumped = settings.model_dump(mode="json", exclude_none=True)
    for key, value in dumped.items():
        name = f"JOBYARD_{key.upper()}"
        env[name] = json.dumps(value) if isinstance(value, dict | list) else str(value)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    env["PYTHONUNBUFFERED"] = "1"
    return env


class FakeClock:
    """A clock the test moves by hand; pass it as `Runtime.clock`."""

    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> datetime:
        """Move forward and return the new time."""
        self.now += timedelta(seconds=seconds)
        return self.now


def wait_for(
    probe: Callable[[], T | None],
    *,
    timeout_s: float = 30.0,
    interval_s: float = 0.05,
    what: str = "condition",
) -> T:
    """Poll `probe` until it returns something truthy; fail after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s:g}s waiting for {what}")
        time.sleep(interval_s)


def finished(stack: Stack, job_id: uuid.UUID, timeout_s: float = 60) -> JobRecord:
    """The job once it reached a final state; the processes' logs are printed on timeout."""

    def probe() -> JobRecord | None:
        job = jobs.get(stack.runtime.db, job_id)
        return job if job.state in TERMINAL_STATES else None

    try:
        return wait_for(probe, timeout_s=timeout_s, what=f"job {job_id} to finish")
    except AssertionError:
        print(stack.logs())  # noqa: T201 - shown only when the test fails
        raise


def attempts(stack: Stack, job_id: uuid.UUID) -> list[tuple[int, str]]:
    """(attempt, outcome) of every finished attempt."""
    with stack.runtime.db.read() as conn:
        return [(a.attempt, a.outcome) for a in jobs.attempts(conn, job_id)]


@dataclass
class Stack:
    """Real jobyard processes (workers, scheduler, web) over one backend, plus a runtime."""

    settings: Settings
    log_dir: Path
    runtime: Runtime = field(init=False)
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.runtime = Runtime.open(self.settings)
        self.env = settings_env(self.settings)

    def start(
        self,
        name: str,
        *args: str,
        env: dict[str, str] | None = None,
        program: str = "jobyard",
    ) -> subprocess.Popen[bytes]:
        """Start `python -m PROGRAM ARGS…` as a child (with extra `env`), logging to
        log_dir/NAME.log."""
        log = open(self.log_dir / f"{name}.log", "ab")
        process = subprocess.Popen(
            [sys.executable, "-m", program, *args],
            env={**self.env, **(env or {})},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            cwd=self.log_dir,
        )
        log.close()
        self.processes[name] = process
        return process

    def worker(self, pool: str, name: str | None = None) -> subprocess.Popen[bytes]:
        """Start a worker and wait until it heartbeats."""
        name = name or f"worker-{pool}"
        self.workers(pool, names=[name])
        return self.processes[name]

    def workers(self, *pools: str, names: Sequence[str] = ()) -> None:
        """Start workers for `pools` at once (their start-ups overlap), then wait for them all.

        `names` name them (default `worker-POOL`), so one pool can have several."""
        started = [
            (name, self.start(name, "worker", "--pool", pool))
            for pool, name in zip(pools, names or [f"worker-{p}" for p in pools], strict=True)
        ]
        for name, process in started:
            try:
                wait_for(partial(self._registered, process.pid), timeout_s=45, what=name)
            except AssertionError as exc:
                output = (self.log_dir / f"{name}.log").read_text(errors="replace")[-3000:]
                raise AssertionError(f"{exc}; its output ends:\n{output}") from None

    def scheduler(self) -> subprocess.Popen[bytes]:
        return self.start("scheduler", "scheduler")

    def web(self, name: str = "web", env: dict[str, str] | None = None) -> str:
        """Start `jobyard web` on a free port and wait until it is ready; its base URL."""
        from tests.services import free_port

        port = free_port()
        self.start(name, "web", "--port", str(port), env=env)
        url = f"http://127.0.0.1:{port}"
        wait_for(partial(serving, url), timeout_s=30, what=f"jobyard {name}")
        return url

    def _registered(self, pid: int) -> bool:
        from jobyard.store import workers

        with self.runtime.db.read() as conn:
            return any(w.pid == pid and w.stopped_at is None for w in workers.listing(conn))

    def stop(self, name: str, sig: int = signal.SIGTERM, timeout_s: float = 20.0) -> None:
        process = self.processes.pop(name)
        _signal_group(process, sig)
        try:
            process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            _signal_group(process, signal.SIGKILL)
            process.wait()

    def close(self) -> None:
        for name in list(self.processes):
            self.stop(name)
        self.runtime.close()

    def logs(self) -> str:
        return "\n".join(
            f"--- {p.name}\n{p.read_text(errors='replace')[-4000:]}"
            for p in sorted(self.log_dir.glob("*.log"))
        )


def _signal_group(process: subprocess.Popen[bytes], sig: int) -> None:
    try:
        os.killpg(process.pid, sig)
    except ProcessLookupError:
        pass


@contextmanager
def stack_in(settings: Settings, folder: Path) -> Iterator[Stack]:
    """A Stack over `settings` whose process logs go to `folder/logs`; closed (its processes
    stopped) on exit."""
    logs = folder / "logs"
    logs.mkdir(exist_ok=True)
    stack = Stack(settings, logs)
    try:
        yield stack
    finally:
        stack.close()


def submit_job(stack: Stack, job_type: str, **args: object) -> uuid.UUID:
    """Submit one job the way `yard.submit` does; its id."""
    from jobyard.dispatch import submit

    request = submit.JobRequest(job_type, dict(args))
    return submit.submit_one(stack.runtime, request, submitted_by="test").job.id


def log_lines(stack: Stack, job_id: uuid.UUID) -> list[str]:
    """The messages of every log line the job stored, in order."""
    from jobyard.store import logs

    with stack.runtime.db.read() as conn:
        return [row.message for row in logs.page(conn, job_id, after_id=0, limit=1000)]


def serving(url: str) -> bool:
    """Whether the jobyard web app at `url` answers ready."""
    import httpx

    try:
        return httpx.get(f"{url}/readyz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False
