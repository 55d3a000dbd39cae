"""jobyard: background jobs with durable records, Celery worker pools and a web API."""

from __future__ import annotations

from jobyard.app import JobDefinition, Yard
from jobyard.context import Fail, JobContext, Retry
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
