"""Log output of the long-running processes: text on a terminal, or one JSON object a line.

`log_format = "json"` is the format Kubernetes log stacks (Loki, Elasticsearch, Cloud Logging)
ingest without parsing rules: every line carries the time (ISO 8601 UTC), level, process role
and pool, and a job's id, type and attempt when the record is about one.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any

#: Record attributes (set with `extra=`) copied into a JSON line when present.
CONTEXT_FIELDS = ("job_id", "job_type", "attempt", "pool", "action", "holder")


class JsonFormatter(logging.Formatter):
    """One JSON object per record."""

    def __init__(self, role: str, pool: str | None = None) -> None:
        super().__init__()
        self.role = role
        self.pool = pool

    def format(self, record: logging.LogRecord) -> str:
        stamp = datetime.fromtimestamp(record.created, UTC)
        data: dict[str, Any] = {
            "time": stamp.strftime("%Y-%m-%dT%H:%M:%S.") + f"{stamp.microsecond // 1000:03d}Z",
            "level": record.levelname.lower(),
            "role": self.role,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if self.pool:
            data["pool"] = self.pool
        for name in CONTEXT_FIELDS:
            value = getattr(record, name, None)
            if value is not None:
                data[name] = value if isinstance(value, int | float | bool) else str(value)
        if record.exc_info:
            data["exception"] = self.formatException(record.exc_info)
        return json.dumps(data, ensure_ascii=False)


def configure(log_format: str, *, role: str, pool: str | None = None) -> None:
    """Switch the root logger to `log_format` for a web, worker or scheduler process."""
    if log_format != "json":
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter(role, pool))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    logging.captureWarnings(True)  # Python warnings become records too, not raw text
