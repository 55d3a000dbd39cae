"""Inside the job's own process: run one attempt and report it on stdout (`stream`).

A Python job runs its function here, with a `JobContext` whose progress and log calls become
output lines and whose `cancelled()` turns true on SIGTERM (the launcher's stop, followed by
SIGKILL after the grace). A command job's program runs as a child in this process group, so
the launcher's group kill reaches it; its output is passed through line by line.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import tempfile
import threading
import traceback
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from jobyard.app import JobDefinition, Yard
from jobyard.clock import utcnow
from jobyard.context import Fail, JobContext, Retry
from jobyard.domain.limits import MAX_RESULT_BYTES
from jobyard.domain.results import storable_result
from jobyard.errors import JobyardError, ResultNotSerializable, ResultTooLarge, UnknownJobType
from jobyard.execution.pods import stream
from jobyard.execution.pods.spec import SPEC_FILE_ENV, SPEC_JSON_ENV, LaunchSpec
from jobyard.storage.job_artifacts import JobArtifacts
from jobyard.storage.records import ArtifactRecord

if TYPE_CHECKING:
    from jobyard.storage.location import Storage

ARGS_ENV = "JOBYARD_ARGS"
RESULT_ENV = "JOBYARD_RESULT"
#: Variables a command's program gets besides the launcher's environment.
JOB_ID_ENV = "JOBYARD_JOB_ID"
ATTEMPT_ENV = "JOBYARD_ATTEMPT"


class Reporter:
    """Writes output lines atomically (job threads may log while the main thread reports)."""

    def __init__(self, out: IO[str], nonce: str) -> None:
        self._out = out
        self._nonce = nonce
        self._lock = threading.Lock()
        self.stop_requested = threading.Event()

    def line(self, text: str) -> None:
        with self._lock:
            self._out.write(text + "\n")
            self._out.flush()

    def raw(self, data: bytes) -> None:
        with self._lock:
            self._out.flush()
            self._out.buffer.write(data)  # type: ignore[attr-defined]
            self._out.buffer.flush()  # type: ignore[attr-defined]

    def outcome(self, outcome: stream.Outcome) -> None:
        self.line(stream.outcome_prefix(self._nonce) + outcome.to_json())

    def artifact(self, record: ArtifactRecord) -> None:
        """Tell the launcher about a completed artifact; it records it."""
        line = stream.ArtifactLine(record.name, record.size, record.sha256, record.content_type)
        self.line(stream.artifact_prefix(self._nonce) + line.to_json())


def _storage(spec: LaunchSpec) -> Storage:
    """The launcher's artifact storage, opened when the job first uses `ctx.artifacts`."""
    from jobyard.storage.location import Storage

    return Storage(spec.storage_url, spec.storage_options)


class _StreamHooks:
    """`JobHooks` over the output stream."""

    def __init__(self, reporter: Reporter) -> None:
        self._reporter = reporter

    def report_progress(self, fraction: float, message: str | None) -> None:
        self._reporter.line(stream.progress_line(fraction, message))

    def is_cancelled(self) -> bool:
        return self._reporter.stop_requested.is_set()


class _StreamLogHandler(logging.Handler):
    def __init__(self, reporter: Reporter) -> None:
        super().__init__(logging.DEBUG)
        self._reporter = reporter

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = record.getMessage()
            if record.exc_info:
                message += "\n" + logging.Formatter().formatException(record.exc_info)
            self._reporter.line(stream.log_line(record.levelname, message))
        except Exception:  # logging must never break the job
            self.handleError(record)


def run(yard: Yard, spec: LaunchSpec, out: IO[str] | None = None) -> int:
    """Run the attempt, print its outcome line; the exit code is 0 once that line is out."""
    reporter = Reporter(out or sys.stdout, spec.nonce)
    in_container = SPEC_JSON_ENV in os.environ  # a Kubernetes pod: paths are the image's
    _forget_spec_variables()
    signal.signal(signal.SIGTERM, lambda *_: reporter.stop_requested.set())
    try:
        definition = yard.definition(spec.type)
    except UnknownJobType as exc:
        reporter.outcome(_failed(exc, permanent=True))
        return 0
    if definition.command is not None:
        workdir = definition.declared_workdir if in_container else definition.workdir
        reporter.outcome(run_command(definition, spec, reporter, workdir))
    else:
        reporter.outcome(_run_function(definition, spec, reporter))
    return 0


def _forget_spec_variables() -> None:
    """The job's code, and any program it starts, never sees the outcome nonce."""
    for name in (SPEC_FILE_ENV, SPEC_JSON_ENV):
        os.environ.pop(name, None)


def _run_function(
    definition: JobDefinition, spec: LaunchSpec, reporter: Reporter
) -> stream.Outcome:
    logger = logging.Logger(f"jobyard.jobs.{spec.job_id}", logging.DEBUG)
    logger.addHandler(_StreamLogHandler(reporter))
    outputs = JobArtifacts(
        lambda: _storage(spec),
        spec.job_id,
        spec.attempt,
        reporter.artifact,
        utcnow,
    )
    ctx = JobContext(spec.job_id, spec.attempt, logger, _StreamHooks(reporter), outputs)
    try:
        result = definition.call(ctx, spec.args)
    except Fail as exc:
        return _failed(exc, permanent=True)
    except Retry as exc:
        return stream.Outcome(
            "failed", error=exc.reason, error_type="Retry", retry_after_s=exc.after_s
        )
    except Exception as exc:
        return _failed(exc)
    return _checked_result(result)


def run_command(
    definition: JobDefinition, spec: LaunchSpec, reporter: Reporter, workdir: str | None
) -> stream.Outcome:
    """Run the program with the args file and result path; its exit code decides."""
    assert definition.command is not None
    with tempfile.TemporaryDirectory(prefix="jobyard-job-") as folder:
        args_path = Path(folder) / "args.json"
        result_path = Path(folder) / "result.json"
        args_path.write_text(json.dumps(spec.args), encoding="utf-8")
        env = {
            **os.environ,
            ARGS_ENV: str(args_path),
            RESULT_ENV: str(result_path),
            JOB_ID_ENV: spec.job_id,
            ATTEMPT_ENV: str(spec.attempt),
        }
        try:
            process = subprocess.Popen(
                list(definition.command),
                cwd=workdir,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
            )
        except FileNotFoundError as exc:
            missing = exc.filename if exc.filename else definition.command[0]
            relative = "/" in missing and not missing.startswith("/")
            where = f" (in {workdir or os.getcwd()})" if relative else ""
            return stream.Outcome(
                "failed", error=f"command not found: {missing}{where}", error_type="CommandNotFound"
            )
        except PermissionError:
            return stream.Outcome(
                "failed",
                error=f"command is not executable: {definition.command[0]}",
                error_type="CommandNotExecutable",
            )
        assert process.stdout is not None
        for data in iter(process.stdout.readline, b""):
            reporter.raw(data if data.endswith(b"\n") else data + b"\n")
        code = process.wait()
        if code != 0:
            return stream.Outcome("failed", error=_exit_reason(code), error_type="CommandFailed")
        return _result_file(result_path)


def _exit_reason(code: int) -> str:
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        return f"the command was killed by {name}"
    return f"the command exited with code {code}"


def _result_file(path: Path) -> stream.Outcome:
    """The JSON the program wrote to JOBYARD_RESULT; none written is a null result."""
    if not path.exists():
        return stream.Outcome("succeeded", result=None)
    size = path.stat().st_size
    if size > MAX_RESULT_BYTES:
        return stream.Outcome(
            "failed",
            error=f"the result file is {size} bytes; the limit is {MAX_RESULT_BYTES} (1 MiB)",
            error_type="ResultTooLarge",
            permanent=True,
        )
    text = path.read_text(encoding="utf-8", errors="replace")
    try:
        result = json.loads(text)
    except ValueError as exc:
        return stream.Outcome(
            "failed",
            error=f"the result file is not JSON: {exc}",
            error_type="ResultNotJSON",
            permanent=True,
        )
    return _checked_result(result)


def _checked_result(result: Any) -> stream.Outcome:
    try:
        return stream.Outcome("succeeded", result=storable_result(result))
    except (ResultNotSerializable, ResultTooLarge) as exc:
        return _failed(exc, permanent=True)


def _failed(exc: BaseException, *, permanent: bool = False) -> stream.Outcome:
    text = exc.message if isinstance(exc, JobyardError) else str(exc)
    return stream.Outcome(
        "failed",
        error=text or type(exc).__name__,
        error_type=type(exc).__name__,
        traceback="".join(traceback.format_exception(exc)),
        permanent=permanent,
    )


USAGE = "usage: jobyard run-job JOB_ID  (started by a pod-per-job launcher)"


def main(argv: list[str]) -> int:
    """`jobyard run-job ID`, kept free of the CLI framework so a job process starts fast."""
    from jobyard.config import load_settings
    from jobyard.execution.pods.spec import spec_from_environment
    from jobyard.loader import load_yard_for

    if len(argv) != 1 or argv[0].startswith("-"):
        sys.stderr.write(USAGE + "\n")
        return 2
    try:
        spec = spec_from_environment(argv[0])
        yard = load_yard_for(load_settings())
    except JobyardError as exc:
        sys.stderr.write(f"error: {exc.message}\n")
        return 2
    return run(yard, spec)
