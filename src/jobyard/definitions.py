"""`JobDefinition`: one registered job type, and how one is made from a function's signature
or from a command (any language). `Yard` in `jobyard.app` keeps them by name."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, get_args, get_origin, get_type_hints

from pydantic import BaseModel, ConfigDict, ValidationError, create_model

from jobyard.config_sections import Resources
from jobyard.context import BatchContext, JobContext
from jobyard.domain.batch import Batch
from jobyard.domain.json_schema import schema_errors, schema_problem
from jobyard.domain.limits import MAX_PRIORITY, MIN_PRIORITY
from jobyard.domain.retries import RetryPolicy
from jobyard.errors import ConfigError, InvalidArgs, JobyardError


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
    #: A batched type: its function takes a list of args and returns a list of results.
    batch: Batch | None = None

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
        """Run the function with validated arguments (awaiting it if it is async).

        A batched type is called with a batch of one.
        """
        if self.batch is not None:
            (result,) = self.call_batch(BatchContext([ctx], ctx.log), [args])
            if isinstance(result, BaseException):
                raise result
            return result
        func = self._function()
        model = self.args_model.model_validate(dict(args))
        positional: list[Any] = [ctx] if self.wants_context else []
        if self.model_argument:
            outcome = func(*positional, model)
        else:
            outcome = func(*positional, **{k: getattr(model, k) for k in type(model).model_fields})
        return _awaited(outcome)

    def call_batch(self, ctx: BatchContext, items: Sequence[Mapping[str, Any]]) -> list[Any]:
        """Run a batched type's function once for several jobs; one result per job, in order.

        A result that is an exception (`jobyard.Fail("not an image")`) fails that job alone.

        Raises:
            BatchResultMismatch: the function did not return a list of one result per item.
        """
        func = self._function()
        models = [self.args_model.model_validate(dict(args)) for args in items]
        values: list[Any] = (
            models if self.model_argument else [model.model_dump(mode="json") for model in models]
        )
        positional: list[Any] = [ctx] if self.wants_context else []
        results = _awaited(func(*positional, values))
        if not isinstance(results, list | tuple) or len(results) != len(items):
            got = f"{len(results)} results" if isinstance(results, list | tuple) else "no list"
            raise BatchResultMismatch(
                f"batched job type '{self.name}' returned {got} for {len(items)} jobs "
                "(it must return a list with one result per item, in order)"
            )
        return list(results)

    def _function(self) -> Callable[..., Any]:
        if self.func is None:
            raise ConfigError(
                f"job type '{self.name}' is a command; it runs only in a pod-per-job pool"
            )
        return self.func


class BatchResultMismatch(JobyardError):
    """A batched function's return value does not match its batch."""

    code = "batch_result_mismatch"


def _awaited(outcome: Any) -> Any:
    if inspect.iscoroutine(outcome):
        import asyncio  # only async jobs pay for it (a pod-per-job process starts faster)

        return asyncio.run(outcome)
    return outcome


def command_definition(
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
    check_job_options(retry.retries, retry.backoff_s, 300.0, timeout_s, priority)
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


def resources_of(value: Mapping[str, Any] | None) -> Resources | None:
    if value is None:
        return None
    try:
        return Resources.model_validate(dict(value))
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'resources'}: {e['msg']}" for e in exc.errors()
        )
        raise ConfigError(f"invalid resources: {problems}") from None


def check_job_options(
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


def inspect_signature(
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


def inspect_batch_signature(
    func: Callable[..., Any], explicit: type[BaseModel] | None
) -> tuple[bool, type[BaseModel], bool]:
    """(wants ctx, args model of one item, items are model instances) of a batched function:
    `f(ctx, items)`, where `items: list[Model]` (or `args=Model`) gives each job's args as a
    model instance and anything else gives them as dicts."""
    params = list(inspect.signature(func).parameters.values())
    hints = _type_hints(func)
    wants_context = bool(params) and (
        params[0].name == "ctx" or hints.get(params[0].name) is BatchContext
    )
    rest = params[1:] if wants_context else params
    if len(rest) != 1 or rest[0].kind in (rest[0].VAR_POSITIONAL, rest[0].VAR_KEYWORD):
        raise ConfigError(
            f"batched job '{func.__qualname__}' must take one list of items (after ctx), "
            "e.g. `def detect(ctx: BatchContext, items: list[Args]) -> list[dict]`"
        )
    if explicit is not None:
        return wants_context, explicit, True
    annotation = hints.get(rest[0].name)
    item = get_args(annotation)[0] if get_origin(annotation) is list else None
    if isinstance(item, type) and issubclass(item, BaseModel):
        return wants_context, item, True
    return wants_context, AnyArgs, False


def _type_hints(func: Callable[..., Any]) -> dict[str, Any]:
    try:
        return get_type_hints(func)
    except Exception:  # annotations that cannot be resolved fall back to Any
        return {}
