"""`Yard`: the registry of job types that user code declares with `@yard.job(...)`.

Declaring a job does no I/O. `yard.submit()` and `yard.get()` open a `Runtime` on first use
(from jobyard.toml and JOBYARD_* variables) or use the one given to `yard.open(settings)`.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import BaseModel

from jobyard.definitions import (
    JobDefinition as JobDefinition,
)
from jobyard.definitions import (
    check_job_options,
    command_definition,
    inspect_batch_signature,
    inspect_signature,
    resources_of,
)
from jobyard.domain.batch import Batch
from jobyard.domain.limits import DEFAULT_PRIORITY
from jobyard.domain.retries import RetryPolicy
from jobyard.errors import ConfigError, UnknownJobType

if TYPE_CHECKING:
    from jobyard.config import Settings
    from jobyard.runtime import Runtime
    from jobyard.store.records import JobRecord

F = TypeVar("F", bound=Callable[..., Any])
_NAME_LIMIT = 200


class Yard:
    """The job types of an application. Create one per application and import it by path."""

    def __init__(self, name: str = "jobyard") -> None:
        self.name = name
        self._jobs: dict[str, JobDefinition] = {}
        self._pack_jobs: set[str] = set()
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
        batch: Batch | None = None,
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
            batch: run up to `batch.max_size` queued jobs of this type in one call: the
                function takes `(ctx: BatchContext, items: list[Args])` and returns one
                result per item, in order (see `Batch`).
        """
        check_job_options(retries, backoff_s, backoff_max_s, timeout_s, priority)
        needs = resources_of(resources)

        def register(func: F) -> F:
            job_name = name or f"{func.__module__}.{func.__qualname__}"
            self._check_new_name(job_name)
            inspect_args = inspect_signature if batch is None else inspect_batch_signature
            wants_context, model, model_argument = inspect_args(func, args)
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
                batch=batch,
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
        definition = command_definition(
            name,
            command,
            pool=pool,
            args_schema=args_schema,
            workdir=workdir,
            retry=RetryPolicy(retries, backoff_s, 300.0, True),
            timeout_s=timeout_s,
            priority=priority,
            resources=resources_of(resources),
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
            self._jobs[name] = command_definition(
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

    def declare_packs(self, settings: Settings) -> None:
        """Add the job types of the packs jobyard.toml enables (again, on every load)."""
        from jobyard.packs import load_pack

        for name in self._pack_jobs:
            self._jobs.pop(name, None)
        self._pack_jobs = set()
        for pack_name, options in settings.packs.items():
            for name, definition in load_pack(pack_name, options).jobs.items():
                self._check_new_name(name)
                self._jobs[name] = definition
                self._pack_jobs.add(name)

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
                if job.batch is not None:
                    raise ConfigError(
                        f"job type '{job.name}' is batched, so its pool '{job.pool}' must run "
                        'long-lived workers (mode = "workers"): a pod runs one job'
                    )
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
