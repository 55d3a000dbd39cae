"""`Yard`: the registry of job types that user code declares with `@yard.job(...)`.

Declaring a job does no I/O. `yard.submit()` and `yard.get()` open a `Runtime` on first use
(from jobyard.toml and JOBYARD_* variables) or use the one given to `yard.open(settings)`.
"""

from __future__ import annotations

import inspect
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar, get_type_hints

from pydantic import BaseModel, ConfigDict, ValidationError, create_model

from jobyard.config_sections import Resources
from jobyard.context import JobContext
from jobyard.domain.json_schema import schema_errors, schema_problem
from jobyard.domain.limits import DEFAULT_PRIORITY, MAX_PRIORITY, MIN_PRIORITY
from jobyard.domain.retries import RetryPolicy
from jobyard.errors import ConfigError, InvalidArgs, UnknownJobType

if TYPE_CHECKING:
    from jobyard.config import Settings
    from jobyard.runtime import Runtime
    from jobyard.store.records import JobRecord

F = TypeVar("F", bound=Callable[..., Any])
_NAME_LIMIT = 200


class AnyArgs(BaseModel):
    """The args of a command job type without a schema: any JSON object."""

    model_config = ConfigDict(extra="allow")


@dataclass(frozen=True)
class JobDefinition:
    """A registered job type: a Python function, or a command (any language)."""

    name: str
    func: Callable[..., Any] | None
    pool: str
    args_model: type[BaseModel]
    retry: RetryPolicy
    timeout_s: float
    priority: int
    wants_context: bool
    #: True when `args=Model` was given: the function receives one model instance.
    model_argument: bool
    #: A command job type: the program and its arguments, run with `workdir` as its folder.
    command: tuple[str, ...] | None = None
    workdir: str | None = None
    #: `workdir` as declared (None or relative): in a container it is taken from the image's
    #: working directory instead of the folder of jobyard.toml.
    declared_workdir: str | None = None
    #: A command job type's JSON Schema for its args.
    args_schema: Mapping[str, Any] | None = None
    #: pod-per-job pools: what one job's process or pod needs (default: the pool's).
    resources: Resources | None = None
    description: str | None = None
    #: Kubernetes: the image of this type's pods instead of the pool's.
    image: str | None = None
    #: Declared in jobyard.toml (re-declared on every load) rather than in Python.
    from_config: bool = False

    def args_json_schema(self) -> dict[str, Any]:
        """The JSON Schema of the args, for forms and `/api/v1/job-types`."""
        if self.args_schema is not None:
            return dict(self.args_schema)
        return self.args_model.model_json_schema()

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
            raise self._invalid(errors) from exc
        if self.args_schema is not None:
            errors = schema_errors(self.args_schema, args or {})
            if errors:
                raise self._invalid(errors)
        return model.model_dump(mode="json")

    def _invalid(self, errors: list[dict[str, str]]) -> InvalidArgs:
        return InvalidArgs(
            f"args for job type '{self.name}' do not match its schema: "
            + "; ".join(f"{e['field']}: {e['message']}" for e in errors),
            errors=errors,
        )

    def call(self, ctx: JobContext, args: Mapping[str, Any]) -> Any:
        """Run the function with validated arguments (awaiting it if it is async)."""
        if self.func is None:
            raise ConfigError(
                f"job type '{self.name}' is a command; it runs only in a pod-per-job pool"
            )
        model = self.args_model.model_validate(dict(args))
        positional: list[Any] = [ctx] if self.wants_context else []
        if self.model_argument:
            outcome = self.func(*positional, model)
        else:
            outcome = self.func(
                *positional, **{k: getattr(model, k) for k in type(model).model_fields}
            )
        if inspect.iscoroutine(outcome):
            import asyncio  # only async jobs pay for it (a pod-per-job process starts faster)

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
        resources: Mapping[str, Any] | None = None,
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
            resources: pod-per-job pools: `{"cpu": "4", "memory": "8Gi", "gpu": 1}` for this
                type's process or pod instead of the pool's.
        """
        _check_job_options(retries, backoff_s, backoff_max_s, timeout_s, priority)
        needs = _resources(resources)

        def register(func: F) -> F:
            job_name = name or f"{func.__module__}.{func.__qualname__}"
            self._check_new_name(job_name)
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
                resources=needs,
                description=(func.__doc__ or "").strip() or None,
            )
            return func

        return register

    def command(
        self,
        name: str,
        command: Sequence[str],
        *,
        pool: str,
        args_schema: Mapping[str, Any] | None = None,
        workdir: str | None = None,
        retries: int = 0,
        backoff_s: float = 1.0,
        timeout_s: float = 3600.0,
        priority: int = DEFAULT_PRIORITY,
        resources: Mapping[str, Any] | None = None,
        description: str | None = None,
        image: str | None = None,
    ) -> JobDefinition:
        """Register a program in any language as a job type of a pod-per-job pool.

        The program gets its args as a JSON file (path in `JOBYARD_ARGS`), writes its result as
        JSON to `JOBYARD_RESULT`, logs by printing, reports progress with lines such as
        `::progress 0.4 fitting model`, and succeeds by exiting 0.
        """
        self._check_new_name(name)
        definition = _command_definition(
            name,
            command,
            pool=pool,
            args_schema=args_schema,
            workdir=workdir,
            retry=RetryPolicy(retries, backoff_s, 300.0, True),
            timeout_s=timeout_s,
            priority=priority,
            resources=_resources(resources),
            description=description,
            image=image,
        )
        self._jobs[name] = definition
        return definition

    def declare_config_commands(self, settings: Settings) -> None:
        """Register the command job types of jobyard.toml (again, on every load)."""
        for name in [n for n, d in self._jobs.items() if d.from_config]:
            del self._jobs[name]
        for name, spec in settings.job_types.items():
            self._check_new_name(name)
            self._jobs[name] = _command_definition(
                name,
                spec.command,
                pool=spec.pool,
                args_schema=spec.args_schema,
                workdir=str(settings.resolve_path(spec.workdir or ".")),
                declared_workdir=str(spec.workdir) if spec.workdir is not None else None,
                retry=RetryPolicy(spec.retries, spec.backoff_s, 300.0, True),
                timeout_s=spec.timeout_s,
                priority=spec.priority,
                resources=spec.resources,
                description=spec.description,
                image=spec.image,
                from_config=True,
            )

    def _check_new_name(self, job_name: str) -> None:
        if len(job_name) > _NAME_LIMIT:
            raise ConfigError(f"job name '{job_name[:40]}…' is over {_NAME_LIMIT} characters")
        if job_name in self._jobs:
            raise ConfigError(f"job type '{job_name}' is declared twice")

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
        """Fail at start when a job type names a pool that jobyard.toml does not declare, or
        needs a pod-per-job pool (a command, its own resources) and names a workers pool."""
        for job in self._jobs.values():
            if job.pool not in settings.pools:
                declared = ", ".join(sorted(settings.pools)) or "none"
                raise ConfigError(
                    f"job type '{job.name}' uses pool '{job.pool}', which is not declared "
                    f"(declared pools: {declared}); add [pools.{job.pool}] to jobyard.toml"
                )
            if settings.pools[job.pool].mode == "pod-per-job":
                continue
            if job.command is not None:
                raise ConfigError(
                    f"job type '{job.name}' is a command, so its pool '{job.pool}' must have "
                    'mode = "pod-per-job"'
                )
            if job.resources is not None:
                raise ConfigError(
                    f"job type '{job.name}' sets resources, which only pod-per-job pools use; "
                    f"pool '{job.pool}' runs long-lived workers (set [pools.{job.pool}.resources])"
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


def _command_definition(
    name: str,
    command: Sequence[str],
    *,
    pool: str,
    args_schema: Mapping[str, Any] | None,
    workdir: str | None,
    retry: RetryPolicy,
    declared_workdir: str | None = None,
    timeout_s: float,
    priority: int,
    resources: Resources | None,
    description: str | None,
    image: str | None = None,
    from_config: bool = False,
) -> JobDefinition:
    _check_job_options(retry.retries, retry.backoff_s, 300.0, timeout_s, priority)
    if not command or not all(isinstance(part, str) and part for part in command):
        raise ConfigError(f"job type '{name}': command must be a non-empty list of strings")
    if args_schema is not None:
        problem = schema_problem(args_schema)
        if problem:
            raise ConfigError(f"job type '{name}': args_schema is not a JSON Schema: {problem}")
    return JobDefinition(
        name=name,
        func=None,
        pool=pool,
        args_model=AnyArgs,
        retry=retry,
        timeout_s=timeout_s,
        priority=priority,
        wants_context=False,
        model_argument=False,
        command=tuple(command),
        workdir=workdir,
        declared_workdir=declared_workdir if from_config else workdir,
        args_schema=dict(args_schema) if args_schema is not None else None,
        resources=resources,
        description=description,
        image=image,
        from_config=from_config,
    )


def _resources(value: Mapping[str, Any] | None) -> Resources | None:
    if value is None:
        return None
    try:
        return Resources.model_validate(dict(value))
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'resources'}: {e['msg']}" for e in exc.errors()
        )
        raise ConfigError(f"invalid resources: {problems}") from None


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
