"""The `jobyard` console script: the full CLI, except the liveness probe's fast path.

`jobyard worker --pool P --check` runs as a Kubernetes liveness probe every few seconds, so it
must not import Celery, SQLAlchemy or the CLI framework; it is recognised here first.
"""

from __future__ import annotations

import sys


def main() -> None:
    """Run `jobyard`."""
    argv = sys.argv[1:]
    if argv[:1] in (["worker"], ["scheduler"]) and "--check" in argv:
        from jobyard.execution.liveness import probe_main

        sys.exit(probe_main(argv[1:], scheduler=argv[0] == "scheduler"))
    from jobyard.cli.main import main as full_cli

    full_cli()
