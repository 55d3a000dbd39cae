"""Job loggers whose records are stored with the job."""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

from jobyard.clock import utcnow

#: Parent of every job logger, so records also reach the worker's own log output.
JOBS_LOGGER = "jobyard.jobs"
FLUSH_INTERVAL_S = 0.5
MAX_MESSAGE_CHARS = 16_384


class BufferingJobHandler(logging.Handler):
    """Collects one attempt's log records until they are written with the job."""

    def __init__(self, job_id: uuid.UUID, attempt: int) -> None:
        super().__init__(logging.DEBUG)
        self.job_id = job_id
        self.attempt = attempt
        self._rows: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self.last_flush = time.monotonic()
        #: Where due rows go while the attempt runs (live logs); the rest is written at the end.
        self.sink: Callable[[list[dict[str, Any]]], None] | None = None

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = record.getMessage()
            if record.exc_info:
                message += "\n" + logging.Formatter().formatException(record.exc_info)
        except Exception:  # logging must never break the job
            self.handleError(record)
            return
        with self._lock:
            self._rows.append(
                {
                    "job_id": self.job_id,
                    "attempt": self.attempt,
                    "created_at": utcnow(),
                    "level": record.levelname,
                    "message": message[:MAX_MESSAGE_CHARS],
                }
            )
        if self.sink is not None and self.due():
            self.sink(self.take())

    def take(self) -> list[dict[str, Any]]:
        """Remove and return the buffered rows."""
        with self._lock:
            rows, self._rows = self._rows, []
        self.last_flush = time.monotonic()
        return rows

    def due(self) -> bool:
        """Whether buffered rows have waited long enough to be written now."""
        with self._lock:
            pending = bool(self._rows)
        return pending and time.monotonic() - self.last_flush >= FLUSH_INTERVAL_S


def job_logger(handler: BufferingJobHandler) -> logging.Logger:
    """A logger for one attempt, not registered globally so it is freed with the attempt."""
    logger = logging.Logger(f"{JOBS_LOGGER}.{handler.job_id}", logging.DEBUG)
    logger.parent = logging.getLogger(JOBS_LOGGER)
    logger.addHandler(handler)
    return logger
