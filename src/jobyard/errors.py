"""The jobyard error tree: one root, branches grouped by who has to act.

The class docstring is the default message; each message says how to fix the problem. The API
maps every class to problem JSON with its `code` and `http_status` in one handler.
"""

from __future__ import annotations

from typing import Any, ClassVar


class JobyardError(Exception):
    """Something went wrong in jobyard."""

    code: ClassVar[str] = "error"
    http_status: ClassVar[int] = 500

    def __init__(self, message: str | None = None, **details: Any) -> None:
        self.message = message or (self.__doc__ or self.code).strip()
        self.details = details
        super().__init__(self.message)


class ConfigError(JobyardError):
    """The configuration is invalid: fix jobyard.toml or the JOBYARD_* environment."""

    code = "config_error"


class InvalidRequest(JobyardError):
    """The request is invalid."""

    code = "invalid_request"
    http_status = 422


class MalformedJSON(InvalidRequest):
    """The request body is not valid JSON."""

    code = "malformed_json"
    http_status = 400


class UnknownJobType(InvalidRequest):
    """No job type of this name is registered: check the name, or GET /api/v1/job-types."""

    code = "unknown_job_type"


class InvalidArgs(InvalidRequest):
    """The job arguments do not match the job type's schema: see `errors` for each field."""

    code = "invalid_args"


class ArgsTooLarge(InvalidRequest):
    """The job arguments are larger than 1 MiB: pass a reference (a URL or path) instead."""

    code = "args_too_large"
    http_status = 413


class BatchTooLarge(InvalidRequest):
    """A batch holds at most 10,000 jobs: split it into several requests."""

    code = "batch_too_large"
    http_status = 413


class PayloadTooLarge(InvalidRequest):
    """The request body is larger than the server accepts (`web.max_body_bytes`)."""

    code = "payload_too_large"
    http_status = 413


class Unauthorized(JobyardError):
    """Send an API key: `Authorization: Bearer KEY` (create one with `jobyard keys create`)."""

    code = "unauthorized"
    http_status = 401


class Forbidden(JobyardError):
    """This key's role may not do this."""

    code = "forbidden"
    http_status = 403


class NotFound(JobyardError):
    """The requested object does not exist."""

    code = "not_found"
    http_status = 404


class JobNotFound(NotFound):
    """No job has this id: list jobs with GET /api/v1/jobs."""

    code = "job_not_found"


class ScheduleNotFound(NotFound):
    """No schedule has this id or name."""

    code = "schedule_not_found"


class ArtifactNotFound(NotFound):
    """The job has no artifact of that name, or its file is gone from storage."""

    code = "artifact_not_found"


class Conflict(JobyardError):
    """The request conflicts with the current state."""

    code = "conflict"
    http_status = 409


class InvalidState(Conflict):
    """The job is not in a state that allows this action."""

    code = "invalid_state"


class IdempotencyConflict(Conflict):
    """This idempotency key was already used for a job with other type or args."""

    code = "idempotency_conflict"


class ScheduleNameTaken(Conflict):
    """Another schedule already has this name."""

    code = "schedule_name_taken"


class ManagedByConfig(Conflict):
    """The schedule is declared in jobyard.toml: change it there (it re-syncs at start)."""

    code = "schedule_managed_by_config"


class TransitionRejected(JobyardError):
    """The job changed state concurrently; the transition did not apply."""

    code = "transition_rejected"
    http_status = 409


class ServiceUnavailable(JobyardError):
    """A service jobyard depends on (database or broker) cannot be reached; try again."""

    code = "service_unavailable"
    http_status = 503
    #: Seconds a client should wait before trying again (the HTTP `Retry-After`).
    retry_after_s: ClassVar[int] = 5


class DatabaseUnavailable(ServiceUnavailable):
    """The job database cannot be reached (restarting, or down); nothing was changed: retry
    after the `Retry-After` seconds."""

    code = "database_unavailable"


class BrokerUnavailable(ServiceUnavailable):
    """The message broker cannot be reached (restarting, or down); retry after the
    `Retry-After` seconds."""

    code = "broker_unavailable"


class ResultTooLarge(JobyardError):
    """The job's result is larger than 1 MiB: store large outputs elsewhere, return a reference."""

    code = "result_too_large"


class ResultNotSerializable(JobyardError):
    """The job's result cannot be stored as JSON: return JSON-compatible data."""

    code = "result_not_serializable"
