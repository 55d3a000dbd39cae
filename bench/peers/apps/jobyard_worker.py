"""Start one jobyard worker for pool "bench" at WARNING.

Same steps as `jobyard worker --pool bench` (jobyard/cli/processes.py: load settings and the
Yard, check the configuration, refuse an unreachable/unmigrated database, then run_worker),
except run_worker(loglevel="WARNING"): the CLI has no log-level option and runs Celery at INFO,
which writes two lines per job (received/succeeded). Every library in this benchmark runs its
workers at WARNING (arq_worker.py does the same for arq). Config: $JOBYARD_CONFIG.
"""

from __future__ import annotations

import logging
import sys

logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

from jobyard.config import load_settings  # noqa: E402
from jobyard.execution.celery.worker import run_worker  # noqa: E402
from jobyard.loader import load_yard  # noqa: E402
from jobyard.runtime import Runtime, check_configuration  # noqa: E402

settings = load_settings()
yard = load_yard(settings.yard)
check_configuration(settings, yard)
Runtime.open(settings, yard=yard).close()
sys.exit(run_worker(settings, yard, "bench", loglevel="WARNING"))
