"""Size and count limits shared by the API, the Python API and the workers."""

from __future__ import annotations

MAX_ARGS_BYTES = 1024 * 1024
MAX_RESULT_BYTES = 1024 * 1024
MAX_BATCH_JOBS = 10_000
MAX_PAGE_SIZE = 500
MIN_PRIORITY = 0
MAX_PRIORITY = 9
DEFAULT_PRIORITY = 5
