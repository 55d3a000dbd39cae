"""Start one arq worker without arq's CLI, which forces INFO logging with a
line per job; every library in this benchmark runs at WARNING."""

from __future__ import annotations

import logging

from arq import run_worker
from arq_app import WorkerSettings

logging.basicConfig(level=logging.WARNING)
run_worker(WorkerSettings)
