"""A `jobyard scheduler` process whose clock the parent test moves (simulated hours).

Started with multiprocessing's spawn context: a fresh interpreter, its own database and broker
connections, killed with SIGKILL like a crashed pod.
"""

from __future__ import annotations

import logging
import signal
import threading
from datetime import UTC, datetime
from multiprocessing.sharedctypes import Synchronized
from types import FrameType
from typing import Any

from jobyard.config import load_settings
from jobyard.runtime import Runtime
from jobyard.scheduler import loop


def main(
    settings_values: dict[str, Any], holder: str, epoch: Synchronized[float], log_path: str
) -> None:
    """Run the scheduler loop with `epoch` (seconds, shared with the parent) as its clock."""
    logging.basicConfig(
        level=logging.INFO, filename=log_path, format=f"{holder} %(levelname)s %(message)s"
    )
    runtime = Runtime.open(load_settings(None, environ={}, **settings_values))
    runtime.clock = lambda: datetime.fromtimestamp(epoch.value, UTC)
    stop = threading.Event()

    def handle(_signum: int, _frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, handle)
    try:
        loop.run(runtime, stop, holder=holder)
    finally:
        runtime.close()
