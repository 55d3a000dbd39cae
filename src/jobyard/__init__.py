"""jobyard: background jobs with durable records, Celery worker pools and a web API."""

from __future__ import annotations

from jobyard.app import JobDefinition, Yard
from jobyard.context import BatchContext, Fail, JobContext, Retry
from jobyard.domain.batch import Batch
from jobyard.errors import (
    ConfigError,
    Conflict,
    InvalidRequest,
    JobNotFound,
    JobyardError,
    NotFound,
    ServiceUnavailable,
)

__all__ = [
    "Batch",
    "BatchContext",
    "ConfigError",
    "Conflict",
    "Fail",
    "InvalidRequest",
    "JobContext",
    "JobDefinition",
    "JobNotFound",
    "JobyardError",
    "NotFound",
    "Retry",
    "ServiceUnavailable",
    "Yard",
]
