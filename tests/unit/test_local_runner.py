"""The local runner's view of attempt folders an earlier launcher left behind."""

from __future__ import annotations

import subprocess
import sys
import uuid
from pathlib import Path

from jobyard.execution.pods.local import LocalRunner
from jobyard.execution.pods.spec import LaunchSpec


def spec() -> LaunchSpec:
    return LaunchSpec(str(uuid.uuid4()), 1, "t.noop", {}, 60.0, "nonce", "file:///tmp/x", {})


def test_a_folder_whose_process_never_started_is_dropped_so_the_job_runs_again(
    tmp_path: Path,
) -> None:
    """A launcher killed between claiming a job and starting its process leaves a folder with
    no pid, no output and a free lock: that attempt never ran, so it must not count as a
    process that died."""
    runner = LocalRunner(tmp_path, [sys.executable, "-c", "pass"], {})
    never = tmp_path / f"{spec().job_id}.1"
    never.mkdir()
    (never / "lock").touch()
    (never / "output.log").touch()
    ran = runner.start(spec())
    assert ran.process is not None
    ran.process.wait(30)  # ended (without an outcome line): that one did run
    assert [job.folder for job in runner.discover()] == [ran.folder]
    assert not never.exists()


def test_a_job_process_starts_without_the_database_or_storage_libraries() -> None:
    """Every pod-per-job start pays for what `run-job` imports: SQLAlchemy, Celery and fsspec
    (about 300 ms together) load only when a job uses them."""
    code = (
        "import sys, jobyard.execution.pods.run_job\n"
        "print(sorted(m for m in ('sqlalchemy', 'celery', 'fsspec') if m in sys.modules))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout.strip() == "[]"
