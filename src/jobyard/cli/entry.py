"""The `jobyard` console script: the full CLI, except the liveness probe's fast path.

`jobyard worker --pool P --check` runs as a Kubernetes liveness probe every few seconds, so it
must not import Celery, SQLAlchemy or the CLI framework; it is recognised here first. So is
`jobyard run-job`, the first thing every pod-per-job process runs: its start-up is the job's.
"""

from __future__ import annotations

import sys


def main() -> None:
    """Run `jobyard`."""
    argv = sys.argv[1:]
    if argv[:1] == ["run-job"] and "--help" not in argv and "-h" not in argv:
        from jobyard.execution.pods.run_job import main as run_job

        sys.exit(run_job(argv[1:]))
    if argv[:1] in (["worker"], ["scheduler"]) and "--check" in argv:
        from jobyard.execution.liveness import probe_main

        sys.exit(probe_main(argv[1:], scheduler=argv[0] == "scheduler"))
    from jobyard.cli.main import main as full_cli

    full_cli()
