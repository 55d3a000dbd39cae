"""Settings: defaults < jobyard.toml < JOBYARD_* environment < constructor arguments.

`load_settings()` is the one entry point. Every model forbids unknown keys so a typo fails at
start with its dotted path (`pools.media.concurrency: must be ≥ 1`).
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    Field,
    PrivateAttr,
    ValidationError,
    field_validator,
)
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from jobyard.config_sections import AuthSettings as AuthSettings
from jobyard.config_sections import CommandJobType as CommandJobType
from jobyard.config_sections import LauncherSettings as LauncherSettings
from jobyard.config_sections import PoolConfig as PoolConfig
from jobyard.config_sections import SchedulerSettings as SchedulerSettings
from jobyard.config_sections import StorageSettings as StorageSettings
from jobyard.config_sections import WebSettings as WebSettings
from jobyard.config_sections import WorkerSettings as WorkerSettings
from jobyard.domain.routing import queue_name
from jobyard.domain.schedules import ScheduleSpec
from jobyard.errors import ConfigError
from jobyard.redaction import mask

ENV_PREFIX = "JOBYARD_"
CONFIG_ENV = "JOBYARD_CONFIG"
DEFAULT_CONFIG_FILE = "jobyard.toml"
#: Written by `jobyard up`: the config it runs with, so other commands in this folder find it.
UP_CONFIG_POINTER = Path(".jobyard") / "config-path"
POOL_NAME_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"

DATABASE_SCHEMES = {"postgresql", "postgres", "postgresql+psycopg", "sqlite"}
BROKER_SCHEMES = {"redis", "rediss", "redis+socket", "amqp", "amqps", "pyamqp"}


class Settings(BaseSettings):
    """Everything jobyard reads from its environment, validated once at start."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, env_nested_delimiter="__", extra="forbid", frozen=True
    )

    env: Literal["dev", "prod"] = Field("dev", description="`prod` refuses unsafe defaults.")
    data_dir: Path = Field(Path(".jobyard"), description="Embedded database and Redis files.")
    database_url: str | None = Field(
        None, description="postgresql://… or sqlite:///…; unset: SQLite in data_dir."
    )
    broker_url: str | None = Field(
        None, description="redis://… or amqp://…; unset: embedded Redis in data_dir."
    )
    events_url: str | None = Field(
        None,
        description="Event bus for live updates: redis://… or amqp://…; unset: the broker.",
    )
    yard: str | None = Field(None, description="Import path of your Yard, `package.module:yard`.")
    log_format: Literal["text", "json"] = Field(
        "text",
        description="Logs of web, workers and scheduler: `text`, or `json` (one object a line "
        "with time, level, role, pool and job id; what Kubernetes log stacks ingest).",
    )
    queue_prefix: str = Field(
        "jobyard", pattern=r"^[A-Za-z0-9_.-]+$", description="Prefix of default queue names."
    )
    web: WebSettings = Field(default_factory=lambda: WebSettings())
    auth: AuthSettings = Field(default_factory=lambda: AuthSettings())
    worker: WorkerSettings = Field(default_factory=lambda: WorkerSettings())
    scheduler: SchedulerSettings = Field(default_factory=lambda: SchedulerSettings())
    launcher: LauncherSettings = Field(default_factory=lambda: LauncherSettings())
    storage: StorageSettings = Field(default_factory=lambda: StorageSettings())
    pools: dict[str, PoolConfig] = Field(default_factory=dict, description="Worker pools.")
    schedules: list[ScheduleSpec] = Field(
        default_factory=list, description="Config-managed schedules (`[[schedules]]`)."
    )
    job_types: dict[str, CommandJobType] = Field(
        default_factory=dict,
        description='Job types that are programs in any language (`[job_types."name"]`).',
    )
    packs: dict[str, dict[str, Any]] = Field(
        default_factory=dict,
        description="Built-in job packs to enable, each with its options: `[packs.transfer]` "
        "(an empty table enables it with its defaults).",
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        del dotenv_settings, file_secret_settings
        return (init_settings, env_settings, TomlConfigSettingsSource(settings_cls))

    @field_validator("pools")
    @classmethod
    def _pool_names(cls, pools: dict[str, PoolConfig]) -> dict[str, PoolConfig]:
        for name in pools:
            if not re.match(POOL_NAME_PATTERN, name) or len(name) > 40:
                raise ValueError(
                    f"pool name '{name}' must be lowercase letters, digits and '-' "
                    "(a DNS-1123 label of at most 40 characters)"
                )
        return pools

    @field_validator("schedules")
    @classmethod
    def _unique_schedule_names(cls, schedules: list[ScheduleSpec]) -> list[ScheduleSpec]:
        seen: set[str] = set()
        for spec in schedules:
            if spec.name in seen:
                raise ValueError(f"schedule name '{spec.name}' appears twice")
            seen.add(spec.name)
        return schedules

    @field_validator("database_url")
    @classmethod
    def _database_scheme(cls, url: str | None) -> str | None:
        return _check_scheme(url, DATABASE_SCHEMES, "postgresql://user@host/db or sqlite:///path")

    @field_validator("broker_url", "events_url")
    @classmethod
    def _broker_scheme(cls, url: str | None) -> str | None:
        return _check_scheme(url, BROKER_SCHEMES, "redis://host:6379/0 or amqp://user:pw@host//")

    #: The folder of jobyard.toml (else the working directory at load): relative paths in the
    #: file (pool requirements, command workdirs) are relative to it.
    _base_dir: Path | None = PrivateAttr(default=None)

    # -- derived values ------------------------------------------------------------------------

    def resolve_path(self, path: str | Path) -> Path:
        """A path from jobyard.toml, relative to the file's folder, made absolute."""
        base = self._base_dir if self._base_dir is not None else Path.cwd()
        return (base / Path(path).expanduser()).resolve()

    @property
    def resolved_data_dir(self) -> Path:
        """`data_dir` as an absolute path."""
        return self.data_dir.expanduser().resolve()

    @property
    def storage_url(self) -> str:
        """Where artifacts go: the configured URL, a relative `file://` path resolved against
        jobyard.toml's folder, or `<data_dir>/artifacts`."""
        url = self.storage.url
        if url is None:
            return f"file://{self.resolved_data_dir / 'artifacts'}"
        scheme, _, path = url.partition("://")
        if scheme == "file":
            return f"file://{self.resolve_path(path)}"
        return url

    @property
    def database(self) -> str:
        """The SQLAlchemy URL of the job database (embedded SQLite when unset)."""
        if self.database_url is None:
            return f"sqlite:///{self.resolved_data_dir / 'jobyard.db'}"
        scheme, _, rest = self.database_url.partition("://")
        if scheme in {"postgresql", "postgres"}:
            return f"postgresql+psycopg://{rest}"
        return self.database_url

    @property
    def embedded_broker(self) -> bool:
        """Whether the broker is the private Redis that `jobyard up` starts."""
        return self.broker_url is None

    @property
    def embedded_redis_socket(self) -> Path:
        """Unix socket of the embedded Redis."""
        return self.resolved_data_dir / "redis.sock"

    @property
    def broker(self) -> str:
        """The broker URL (embedded Redis socket when unset)."""
        if self.broker_url is None:
            return f"redis+socket://{self.embedded_redis_socket}"
        return self.broker_url

    @property
    def events(self) -> str:
        """The event bus URL (the broker when unset)."""
        return self.events_url or self.broker

    @property
    def broker_is_redis(self) -> bool:
        """Whether the broker speaks Redis (priorities are then emulated with lists)."""
        return self.broker.split("://", 1)[0].startswith("redis")

    @property
    def launched_queues(self) -> frozenset[str]:
        """Queues of pod-per-job pools: their launchers take jobs from the database, so no
        broker message is sent for them."""
        return frozenset(
            self.queue_for(name) for name, pool in self.pools.items() if pool.mode == "pod-per-job"
        )

    def queue_for(self, pool: str) -> str:
        """The queue name of a declared pool."""
        config = self.pools[pool]
        return queue_name(self.queue_prefix, pool, config.queue)


def _check_scheme(url: str | None, allowed: set[str], example: str) -> str | None:
    if url is None:
        return None
    scheme = url.split("://", 1)[0] if "://" in url else ""
    if scheme not in allowed:
        raise ValueError(f"unsupported URL scheme '{scheme}': use {example}")
    return url


def find_config_file(explicit: str | Path | None, environ: Mapping[str, str]) -> Path | None:
    """The config file to read.

    In order: `--config`, $JOBYARD_CONFIG, ./jobyard.toml, else the one a `jobyard up` started
    from this folder runs with (so `jobyard submit` finds the demo of `jobyard up --demo`).
    """
    chosen = explicit or environ.get(CONFIG_ENV)
    if chosen:
        path = Path(chosen).expanduser()
        if not path.is_file():
            raise ConfigError(f"config file {path} does not exist: check --config or ${CONFIG_ENV}")
        return path.resolve()
    default = Path(DEFAULT_CONFIG_FILE)
    if default.is_file():
        return default.resolve()
    if UP_CONFIG_POINTER.is_file():
        pointed = Path(UP_CONFIG_POINTER.read_text(encoding="utf-8").strip())
        if pointed.is_file():
            return pointed
    return None


def load_settings(
    config_file: str | Path | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    **overrides: Any,
) -> Settings:
    """Read and validate settings.

    Args:
        config_file: path of jobyard.toml; default $JOBYARD_CONFIG or ./jobyard.toml.
        environ: environment to read (default `os.environ`); only `JOBYARD_*` keys matter.
        overrides: highest-priority values, as constructor arguments.

    Raises:
        ConfigError: naming each invalid key by its dotted path.
    """
    env = os.environ if environ is None else environ
    path = find_config_file(config_file, env)
    if path is not None:
        _check_toml_syntax(path)
    loaded_cls = type(
        "Settings", (Settings,), {"model_config": {**Settings.model_config, "toml_file": path}}
    )
    scoped = _scoped_environ(env)
    try:
        with scoped:
            settings: Settings = loaded_cls(**overrides)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, path)) from exc
    settings._base_dir = (path.parent if path is not None else Path.cwd()).resolve()
    return settings


class _scoped_environ:
    """Swap os.environ for `environ` while pydantic-settings reads it."""

    def __init__(self, environ: Mapping[str, str]) -> None:
        self._environ = environ
        self._saved: dict[str, str] | None = None

    def __enter__(self) -> None:
        if self._environ is os.environ:
            return
        self._saved = dict(os.environ)
        os.environ.clear()
        os.environ.update(self._environ)

    def __exit__(self, *exc: object) -> None:
        if self._saved is not None:
            os.environ.clear()
            os.environ.update(self._saved)


def _check_toml_syntax(path: Path) -> None:
    try:
        tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}") from exc


_MESSAGES = {
    "greater_than_equal": "must be ≥ {ge}",
    "greater_than": "must be > {gt}",
    "less_than_equal": "must be ≤ {le}",
    "less_than": "must be < {lt}",
    "extra_forbidden": "unknown key (check the spelling against the config reference)",
    "missing": "is required",
}


def format_validation_error(exc: ValidationError, source: Path | None = None) -> str:
    """One line per problem: `dotted.path: what is wrong (got value)`."""
    lines = []
    for error in exc.errors():
        path = ".".join(str(part) for part in error["loc"]) or "(root)"
        template = _MESSAGES.get(error["type"])
        ctx = error.get("ctx") or {}
        message = template.format(**ctx) if template else error["msg"].removeprefix("Value error, ")
        got = mask(path, error.get("input"))
        suffix = (
            f" (got {got!r})"
            if error["type"] not in {"extra_forbidden", "missing"} and _is_scalar(got)
            else ""
        )
        lines.append(f"{path}: {message}{suffix}")
    where = f" in {source}" if source else ""
    return f"invalid configuration{where}:\n  " + "\n  ".join(lines)


def _is_scalar(value: object) -> bool:
    return isinstance(value, str | int | float | bool)
