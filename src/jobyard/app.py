"""`Yard`: the registry of job types that user code declares with `@yard.job(...)`.

Declaring a job does no I/O. `yard.submit()` and `yard.get()` open a `Runtime` on first use
(from jobyard.toml and JOBYARD_* variables) or use the one given to `yard.open(settings)`.
"""

from __future__ import annotations

import asyncio
import inspect
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar, get_type_hints

from pydantic import BaseModel, ConfigDict, ValidationError, create_model

from jobyard.context import JobContext
from jobyard.domain.limits import DEFAULT_PRIORITY, MAX_PRIORITY, MIN_PRIORITY
from jobyard.domain.retries import RetryPolicy
from jobyard.errors import ConfigError, InvalidArgs, UnknownJobType

if TYPE_CHECKING:
    from jobyard.config import Settings
    from jobyard.runtime import Runtime
    from jobyard.store.records import JobRecord

F = TypeVar("F", bound=Callable[..., Any])
_NAME_LIMIT = 200


@dataclass(frozen=True)
class JobDefinition:
    """A registered job type."""

    name: str
    func: Callable[..., Any]
    pool: str
    args_model: type[BaseModel]
    retry: RetryPolicy
    timeout_s: float
    priority: int
    wants_context: bool
    #: True when `args=Model` was given: the function receives one model instance.
    model_argument: bool

    def validate_args(self, args: Mapping[str, Any] | None) -> dict[str, Any]:
        """Check `args` against the schema; return the normalised JSON-ready arguments.

        Raises:
            InvalidArgs: with one entry per failing field.
        """
        try:
            model = self.args_model.model_validate(dict(args or {}))
        except ValidationError as exc:
            errors = [
                {
                    "field": ".".join(str(p) for p in err["loc"]) or "(args)",
                    "message": err["msg"],
                    "type": err["type"],
                }
                for err in exc.errors()
            ]
            raise InvalidArgs(
                f"args for job type '{self.name}' do not match its schema: "
                + "; ".join(f"{e['field']}: {e['message']}" for e in errors),
                errors=errors,
            ) from exc
        return model.model_dump(mode="json")

    def call(self, ctx: JobContext, args: Mapping[str, Any]) -> Any:
        """Run the function with validated arguments (awaiting it if it is async)."""
        model = self.args_model.model_validate(dict(args))
        positional: list[Any] = [ctx] if self.wants_context else []
        if self.model_argument:
            outcome = self.func(*positional, model)
        else:
            outcome = self.func(
                *positional, **{k: getattr(model, k) for k in type(model).model_fields}
            )
        if inspect.iscoroutine(outcome):
            return asyncio.run(outcome)
        return outcome


class Yard:
    """The job types of an application. Create one per application and import it by path."""

    def __init__(self, name: str = "jobyard") -> None:
        self.name = name
        self._jobs: dict[str, JobDefinition] = {}
        self._runtime: Runtime | None = None

    # -- declaration ---------------------------------------------------------------------------

    def job(
        self,
        name: str | None = None,
        *,
        pool: str = "general",
        args: type[BaseModel] | None = None,
        retries: int = 0,
        backoff_s: float = 1.0,
        backoff_max_s: float = 300.0,
        jitter: bool = True,
        timeout_s: float = 3600.0,
        priority: int = DEFAULT_PRIORITY,
    ) -> Callable[[F], F]:
        """Register a function as a job type.

        Args:
            name: job type name; default `module.function`.
            pool: the pool whose workers run it; must be declared in jobyard.toml.
            args: a pydantic model for the arguments; default derived from the signature.
            retries: attempts after the first one fails.
            backoff_s: delay before the first retry, doubled each time up to `backoff_max_s`.
            backoff_max_s: the longest delay between two attempts.
            jitter: randomise each delay over [delay/2, delay].
            timeout_s: an attempt running longer than this is stopped and counts as failed.
            priority: default priority, 0 (lowest) to 9 (highest).
        """
        _check_job_options(retries, backoff_s, backoff_max_s, timeout_s, priority)

        def register(func: F) -> F:
            job_name = name or f"{func.__module__}.{func.__qualname__}"
            if len(job_name) > _NAME_LIMIT:
                raise ConfigError(f"job name '{job_name[:40]}…' is over {_NAME_LIMIT} characters")
            if job_name in self._jobs:
                raise ConfigError(f"job type '{job_name}' is declared twice")
            wants_context, model, model_argument = _inspect_signature(func, args)
            self._jobs[job_name] = JobDefinition(
                name=job_name,
                func=func,
                pool=pool,
                args_model=model,
                retry=RetryPolicy(retries, backoff_s, backoff_max_s, jitter),
                timeout_s=timeout_s,
                priority=priority,
                wants_context=wants_context,
                model_argument=model_argument,
            )
            return func

        return register

    # -- lookup --------------------------------------------------------------------------------

    @property
    def jobs(self) -> Mapping[str, JobDefinition]:
        """Registered job types by name."""
        return dict(self._jobs)

    def definition(self, name: str) -> JobDefinition:
        """The job type called `name`.

        Raises:
            UnknownJobType: listing the known names.
        """
        try:
            return self._jobs[name]
        except KeyError:
            known = ", ".join(sorted(self._jobs)) or "none registered"
            raise UnknownJobType(f"unknown job type '{name}' (known: {known})", type=name) from None

    def check_pools(self, settings: Settings) -> None:
        """Fail at start when a job type names a pool that jobyard.toml does not declare."""
        for job in self._jobs.values():
            if job.pool not in settings.pools:
                declared = ", ".join(sorted(settings.pools)) or "none"
                raise ConfigError(
                    f"job type '{job.name}' uses pool '{job.pool}', which is not declared "
                    f"(declared pools: {declared}); add [pools.{job.pool}] to jobyard.toml"
                )

    # -- Python API ----------------------------------------------------------------------------

    @contextmanager
    def open(self, settings: Settings | None = None) -> Iterator[Runtime]:
        """Connect to the database and broker for `submit`/`get`, closing them on exit."""
        from jobyard.runtime import Runtime

        runtime = Runtime.open(settings, yard=self)
        previous, self._runtime = self._runtime, runtime
        try:
            yield runtime
        finally:
            self._runtime = previous
            runtime.close()

    def _ensure_runtime(self) -> Runtime:
        if self._runtime is None:
            from jobyard.runtime import Runtime

            self._runtime = Runtime.open(None, yard=self)
        return self._runtime

    def submit(
        self,
        type: str,
        args: Mapping[str, Any] | None = None,
        *,
        priority: int | None = None,
        idempotency_key: str | None = None,
    ) -> JobRecord:
        """Record a job durably and send it to its pool; returns the stored job."""
        from jobyard.dispatch import submit

        runtime = self._ensure_runtime()
        request = submit.JobRequest(
            type=type, args=dict(args or {}), priority=priority, idempotency_key=idempotency_key
        )
        return submit.submit_one(runtime, request, submitted_by="python").job

    def get(self, job_id: str | uuid.UUID) -> JobRecord:
        """The stored job with this id.

        Raises:
            JobNotFound: when no job has this id.
        """
        from jobyard.store import jobs

        runtime = self._ensure_runtime()
        return jobs.get(runtime.db, _as_uuid(job_id))

    def close(self) -> None:
        """Close the runtime opened implicitly by `submit`/`get`, if any."""
        if self._runtime is not None:
            self._runtime.close()
            self._runtime = None


def _as_uuid(job_id: str | uuid.UUID) -> uuid.UUID:
    from jobyard.errors import JobNotFound

    if isinstance(job_id, uuid.UUID):
        return job_id
    try:
        return uuid.UUID(str(job_id))
    except ValueError:
        raise JobNotFound(f"'{job_id}' is not a job id (job ids are UUIDs)") from None


def _check_job_options(
    retries: int, backoff_s: float, backoff_max_s: float, timeout_s: float, priority: int
) -> None:
    problems = []
    if retries < 0:
        problems.append("retries must be ≥ 0")
    if backoff_s < 0 or backoff_max_s < 0:
        problems.append("backoff_s and backoff_max_s must be ≥ 0")
    if timeout_s <= 0:
        problems.append("timeout_s must be > 0")
    if not MIN_PRIORITY <= priority <= MAX_PRIORITY:
        problems.append(f"priority must be between {MIN_PRIORITY} and {MAX_PRIORITY}")
    if problems:
        raise ConfigError("invalid job options: " + "; ".join(problems))


def _inspect_signature(
    func: Callable[..., Any], explicit: type[BaseModel] | None
) -> tuple[bool, type[BaseModel], bool]:
    """(wants ctx, args model, function takes the model instance)."""
    params = list(inspect.signature(func).parameters.values())
    hints = _type_hints(func)
    wants_context = bool(params) and (
        params[0].name == "ctx" or hints.get(params[0].name) is JobContext
    )
    rest = params[1:] if wants_context else params
    if explicit is not None:
        if len(rest) != 1:
            raise ConfigError(
                f"job '{func.__qualname__}' declares args={explicit.__name__}: its function must "
                "take exactly one argument for it (after ctx)"
            )
        return wants_context, explicit, True
    fields: dict[str, Any] = {}
    for param in rest:
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD, param.POSITIONAL_ONLY):
            raise ConfigError(
                f"job '{func.__qualname__}': parameter '{param.name}' must be a plain named "
                "parameter (no *args, **kwargs or positional-only)"
            )
        annotation = hints.get(param.name, Any)
        if param.name == "ctx" or annotation is JobContext:
            raise ConfigError(
                f"job '{func.__qualname__}': the JobContext parameter '{param.name}' must be "
                "the first parameter"
            )
        default = ... if param.default is param.empty else param.default
        fields[param.name] = (annotation, default)
    model = create_model(f"{func.__name__}_args", __config__=ConfigDict(extra="forbid"), **fields)
    return wants_context, model, False


def _type_hints(func: Callable[..., Any]) -> dict[str, Any]:
    try:
        return get_type_hints(func)
    except Exception:  # annotations that cannot be resolved fall back to Any
        return {}
