"""The local runner: each job a process group on this machine, found again after a restart.

Every attempt gets a folder under `<data_dir>/launcher/<pool>/<job id>.<attempt>/`:
`spec.json` (what to run), `output.log` (the job's stdout and stderr, the stream the launcher
reads), `pid` (the process group) and `lock`.
The launcher takes an exclusive `flock` on `lock` before it starts the process and hands the
locked descriptor to it: the lock is then held exactly as long as the job process lives, so a
new launcher tells a running job from a finished one without trusting a pid that may have been
reused. Job processes live in their own session, so a launcher that is killed leaves them
running, to be adopted.
"""

from __future__ import annotations

import fcntl
import logging
import os
import shutil
import signal
import subprocess
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from jobyard.config import Settings
from jobyard.execution.pods.spec import SPEC_FILE_ENV, LaunchSpec

log = logging.getLogger(__name__)
#: Environment variables a job process never inherits from its launcher (credentials).
WITHHELD_PREFIXES = (
    "JOBYARD_DATABASE_URL",
    "JOBYARD_BROKER_URL",
    "JOBYARD_EVENTS_URL",
    "JOBYARD_AUTH",
)


@dataclass
class LocalJob:
    """One attempt's process, started here or found in its folder."""

    job_id: uuid.UUID
    attempt: int
    folder: Path
    process: subprocess.Popen[bytes] | None = None
    offset: int = 0
    stop_signal_sent_at: float | None = None
    extra: dict[str, object] = field(default_factory=dict)

    @property
    def output(self) -> Path:
        return self.folder / "output.log"

    def pid(self) -> int | None:
        """The job process (and group) id, once known."""
        if self.process is not None:
            return self.process.pid
        try:
            return int((self.folder / "pid").read_text(encoding="ascii"))
        except (OSError, ValueError):
            return None

    def exit_code(self) -> int | None:
        """The exit code, when this launcher started the process and it ended."""
        return self.process.returncode if self.process is not None else None


def job_root(settings: Settings, pool: str) -> Path:
    """Where the local runner keeps a pool's attempt folders."""
    return settings.resolved_data_dir / "launcher" / pool


class LocalRunner:
    """Starts, finds, reads, stops and forgets the job processes of one pool."""

    def __init__(self, root: Path, argv: Sequence[str], env: Mapping[str, str]) -> None:
        """
        Args:
            root: the pool's folder of attempt folders.
            argv: the command that runs `jobyard` in the pool's environment (`run-job ID` is
                appended).
            env: the environment of job processes (credentials are removed from it).
        """
        self.root = root
        self.argv = list(argv)
        self.env = {k: v for k, v in env.items() if not k.startswith(WITHHELD_PREFIXES)}
        root.mkdir(parents=True, exist_ok=True)

    def start(self, spec: LaunchSpec, cwd: Path | None = None) -> LocalJob:
        """Start `run-job` for the attempt in a new session, holding its folder's lock."""
        job = LocalJob(
            uuid.UUID(spec.job_id), spec.attempt, self.root / f"{spec.job_id}.{spec.attempt}"
        )
        job.folder.mkdir(parents=True, exist_ok=True)
        spec.write(job.folder / "spec.json")
        lock = os.open(job.folder / "lock", os.O_CREAT | os.O_RDWR, 0o600)
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            with open(job.output, "ab") as output:
                job.process = subprocess.Popen(
                    [*self.argv, "run-job", spec.job_id],
                    env={**self.env, SPEC_FILE_ENV: str(job.folder / "spec.json")},
                    stdin=subprocess.DEVNULL,
                    stdout=output,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                    pass_fds=(lock,),
                    cwd=cwd,
                )
        finally:
            os.close(lock)  # the child keeps the lock through its own copy
        _write_atomic(job.folder / "pid", str(job.process.pid))
        return job

    def discover(self) -> list[LocalJob]:
        """Every attempt folder left by an earlier launcher whose process started.

        A folder with no process id, no output and no process holding its lock is one the
        earlier launcher died in before starting the process: it is removed, so the job counts
        as claimed but never started (run again, not failed)."""
        found = []
        for folder in sorted(self.root.iterdir()):
            name, _, attempt = folder.name.rpartition(".")
            try:
                job = LocalJob(uuid.UUID(name), int(attempt), folder)
            except ValueError:
                continue
            if self._never_started(job):
                self.forget(job)
                continue
            found.append(job)
        return found

    def _never_started(self, job: LocalJob) -> bool:
        unwritten = not job.output.exists() or job.output.stat().st_size == 0
        return job.pid() is None and unwritten and not self.is_running(job)

    def is_running(self, job: LocalJob) -> bool:
        """Whether the job process still lives (its lock is held)."""
        if job.process is not None and job.process.poll() is not None:
            return False  # reaped here: the exit code is known
        try:
            lock = os.open(job.folder / "lock", os.O_RDWR)
        except FileNotFoundError:
            return False  # the launcher stopped before it started the process
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        finally:
            os.close(lock)
        return False

    def read(self, job: LocalJob, limit: int = 1 << 20) -> bytes:
        """Output written since the last read (at most `limit` bytes)."""
        try:
            with open(job.output, "rb") as output:
                output.seek(job.offset)
                data = output.read(limit)
        except FileNotFoundError:
            return b""
        job.offset += len(data)
        return data

    def refresh(self) -> None:
        """Nothing to fetch: each question goes to the process or its folder."""

    def nonce_of(self, job: LocalJob) -> str | None:
        try:
            return LaunchSpec.from_json((job.folder / "spec.json").read_text("utf-8")).nonce
        except (OSError, ValueError, KeyError):
            return None

    def describe_end(self, job: LocalJob) -> str:
        code = job.exit_code()
        if code is None:
            return "the job process ended without reporting an outcome"
        if code < 0:
            name = signal_name(-code)
            hint = " (out of memory?)" if name == "SIGKILL" else ""
            return f"the job process was killed by {name}{hint} before reporting an outcome"
        return f"the job process exited with code {code} before reporting an outcome"

    def uses_grace_itself(self) -> bool:
        return False

    def keeps_jobs_across_restarts(self) -> bool:
        return False

    def nodes(self) -> list[dict[str, object]] | None:
        return None

    def signal(self, job: LocalJob, signum: signal.Signals) -> None:
        """Send `signum` to the job's whole process group, if it still runs."""
        pid = job.pid()
        if pid is None or not self.is_running(job):
            return
        try:
            os.killpg(pid, signum)
        except ProcessLookupError:
            pass

    def forget(self, job: LocalJob) -> None:
        """Remove the attempt's folder (its outcome is recorded)."""
        if job.process is not None:
            job.process.poll()
        shutil.rmtree(job.folder, ignore_errors=True)


def _write_atomic(path: Path, text: str) -> None:
    partial = path.with_suffix(".tmp")
    partial.write_text(text, encoding="ascii")
    partial.replace(path)


def signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"
