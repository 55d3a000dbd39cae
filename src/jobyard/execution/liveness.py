"""Worker liveness for Kubernetes probes: a file the worker touches, and an import-light check.

The worker writes `<dir>/jobyard-worker-<pool>.alive` from its timer, which runs in the
consumer's event loop: if that loop hangs, the file goes stale and the probe fails. A loop that
turns is not enough: a worker whose consumer stalled (free slots, messages waiting, nothing
received; see `stall_watch`) writes `stalled …` into the file, and the probe fails at once.
The check reads only the file, so a probe starts in milliseconds and never opens a broker or
database connection (unlike `celery inspect ping`). Only the standard library is imported here.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

DIR_ENV = "JOBYARD_WORKER__LIVENESS_DIR"
MAX_AGE_ENV = "JOBYARD_WORKER__LIVENESS_MAX_AGE_S"
DEFAULT_MAX_AGE_S = 60.0


def liveness_file(pool: str | None, directory: str | Path | None = None) -> Path:
    """Where the worker of `pool` (or, for None, the scheduler) signals that it is alive."""
    base = Path(directory or os.environ.get(DIR_ENV) or tempfile.gettempdir())
    return base / (f"jobyard-worker-{pool}.alive" if pool else "jobyard-scheduler.alive")


STALLED = "stalled"


def touch(path: Path, problem: str = "") -> None:
    """Signal life now; a `problem` (starting with `STALLED`) makes the probe fail."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(problem)


def check(path: Path, max_age_s: float, now: float) -> tuple[bool, str]:
    """Whether the file was written within `max_age_s` with no problem; a message either way."""
    try:
        age = now - path.stat().st_mtime
        problem = path.read_text(errors="replace").strip()
    except FileNotFoundError:
        return False, f"{path} does not exist: the worker has not started (or uses another dir)"
    if age > max_age_s:
        return False, f"no sign of life for {age:.0f}s (limit {max_age_s:g}s) in {path}"
    if problem:
        return False, problem
    return True, f"alive {age:.1f}s ago"


def probe_main(argv: list[str], *, scheduler: bool = False) -> int:
    """`jobyard worker --pool P --check` or `jobyard scheduler --check` (`--max-age S`):
    exit 0 when alive, 1 when not."""
    parser = argparse.ArgumentParser(prog="jobyard worker --check")
    parser.add_argument("--pool", "-p", default=os.environ.get("JOBYARD_POOL"))
    parser.add_argument("--check", action="store_true")
    parser.add_argument(
        "--max-age",
        type=float,
        default=float(os.environ.get(MAX_AGE_ENV, DEFAULT_MAX_AGE_S)),
    )
    options, _unknown = parser.parse_known_args(argv)
    if not scheduler and not options.pool:
        print("give the pool: jobyard worker --pool NAME --check")  # noqa: T201
        return 2
    path = liveness_file(None if scheduler else options.pool)
    alive, message = check(path, options.max_age, time.time())
    print(message)  # noqa: T201
    return 0 if alive else 1
