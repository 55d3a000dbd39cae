"""The sections of `jobyard.toml`: pools, web, auth, worker and scheduler timings.

Each section forbids unknown keys and is frozen; `config.Settings` puts them together.
"""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

_QUANTITY = re.compile(r"^[0-9]+(\.[0-9]+)?(m|k|Ki|M|Mi|G|Gi|T|Ti)?$")


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Resources(_Section):
    """What one worker of a pool needs; rendered into Kubernetes requests and limits."""

    cpu: str | None = Field(None, description="CPU per worker, Kubernetes quantity (`2`, `500m`).")
    memory: str | None = Field(None, description="Memory per worker (`512Mi`, `4Gi`).")
    gpu: int = Field(0, ge=0, description="NVIDIA GPUs per worker.")

    @field_validator("cpu", "memory")
    @classmethod
    def _quantity(cls, value: str | None) -> str | None:
        if value is not None and not _QUANTITY.match(value):
            raise ValueError(f"'{value}' is not a Kubernetes quantity such as 500m, 2, 512Mi")
        return value


class Toleration(_Section):
    """A Kubernetes toleration for the pool's pods."""

    key: str | None = None
    operator: Literal["Equal", "Exists"] = "Equal"
    value: str | None = None
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"] | None = None


class Autoscale(_Section):
    """Replica bounds for queue-depth autoscaling."""

    min_replicas: int = Field(1, ge=0, description="Fewest workers; 0 allows scale to zero.")
    max_replicas: int = Field(1, ge=1, description="Most workers.")
    target_queue_length: int = Field(
        10, ge=1, description="Queued + running jobs per worker before scaling out."
    )

    @model_validator(mode="after")
    def _bounds(self) -> Autoscale:
        if self.min_replicas > self.max_replicas:
            raise ValueError("min_replicas must be ≤ max_replicas")
        return self


class PoolConfig(_Section):
    """One worker pool: a queue and the workers that consume it."""

    queue: str | None = Field(None, description="Queue name; default `<queue_prefix>.<pool>`.")
    concurrency: int = Field(2, ge=1, description="Jobs one worker runs at once.")
    celery_pool: Literal["prefork", "threads", "solo"] = Field(
        "prefork", description="Celery execution pool: prefork for CPU work, threads for I/O."
    )
    prefetch: int = Field(1, ge=1, description="Messages each worker process reserves ahead.")
    dispatch_chunk: int = Field(
        50,
        ge=1,
        le=500,
        description="Most jobs one broker message carries: a batch submit is split into "
        "messages of this many, and single submits share a message while the pool's queue has "
        "a backlog. A message's jobs run one after another on one worker process, each under "
        "its own timeout, claimed and recorded in bulk; when one runs longer than 50 ms the "
        "rest go back to the queue for other workers. 1: one message per job.",
    )
    max_tasks_per_child: int | None = Field(
        None, ge=1, description="Recycle a prefork child after this many jobs (memory leaks)."
    )
    resources: Resources = Field(default_factory=lambda: Resources())
    node_selector: dict[str, str] = Field(default_factory=dict)
    tolerations: list[Toleration] = Field(default_factory=list)
    requirements: str | None = Field(None, description="requirements.txt of this pool's image.")
    image: str | None = Field(None, description="Container image for this pool.")
    egress: list[str] = Field(
        default_factory=list,
        description="Kubernetes only: address ranges (CIDR) this pool's jobs may reach beyond "
        "the database, the broker and DNS, e.g. `0.0.0.0/0` for a pool that downloads and "
        "uploads. Everything else is denied by the rendered NetworkPolicies.",
    )
    mode: Literal["workers", "pod-per-job"] = Field(
        "workers",
        description="`workers`: long-lived Celery workers. `pod-per-job`: every job runs in a "
        "fresh process of its own (`jobyard run-job`), started by `jobyard launcher --pool P`: "
        "a process group locally, a Kubernetes Job in a cluster.",
    )
    max_parallel: int = Field(
        4,
        ge=1,
        le=10_000,
        description="pod-per-job pools: the most jobs running at once; the rest wait queued.",
    )
    autoscale: Autoscale = Field(default_factory=lambda: Autoscale())

    @field_validator("egress")
    @classmethod
    def _cidrs(cls, ranges: list[str]) -> list[str]:
        for value in ranges:
            try:
                ipaddress.ip_network(value)
            except ValueError:
                raise ValueError(
                    f"'{value}' is not an address range such as 10.0.0.0/8 or 0.0.0.0/0"
                ) from None
        return ranges


class WebSettings(_Section):
    """The HTTP server."""

    host: str = Field("127.0.0.1", description="Address `jobyard web` binds.")
    port: int = Field(8000, ge=1, le=65535, description="Port `jobyard web` binds.")
    workers: int = Field(
        1,
        ge=1,
        le=64,
        description="Processes `jobyard web` serves with, each with its own database pool "
        "(about one per core for many concurrent clients).",
    )
    max_body_bytes: int = Field(
        2 * 1024 * 1024,
        ge=1024,
        description="Largest request body (a job's args are at most 1 MiB); larger: 413.",
    )
    max_batch_body_bytes: int = Field(
        64 * 1024 * 1024,
        ge=1024,
        description="Largest body of `POST /api/v1/jobs/batch` (up to 10,000 jobs).",
    )


class AuthSettings(_Section):
    """Who may use the API and the dashboard."""

    mode: Literal["auto", "keys", "open"] = Field(
        "auto",
        description="keys: API keys required; open: no login (loopback binds only); "
        "auto: open on a loopback bind, keys otherwise.",
    )
    session_ttl_s: float = Field(12 * 3600, gt=0, description="How long a dashboard login lasts.")
    bootstrap_admin_key: SecretStr | None = Field(
        None,
        description="An admin key (`jy_` + at least 32 characters) that web makes sure exists "
        "when it starts, so a fresh deployment can be logged into. Set it from a secret "
        "(`JOBYARD_AUTH__BOOTSTRAP_ADMIN_KEY`), never in jobyard.toml. Revoking it sticks.",
    )

    @field_validator("bootstrap_admin_key", mode="before")
    @classmethod
    def _bootstrap_key(cls, value: object) -> object:
        raw = value.get_secret_value() if isinstance(value, SecretStr) else value
        if raw in (None, ""):
            return None
        if not isinstance(raw, str) or not raw.startswith("jy_") or len(raw) < 35:
            raise ValueError("must be 'jy_' followed by at least 32 characters")
        return value


class WorkerSettings(_Section):
    """Timings of workers and job leases."""

    heartbeat_interval_s: float = Field(5.0, gt=0, description="Worker heartbeat period.")
    lease_s: float = Field(
        30.0, gt=0, description="A running job is lost if not renewed this long."
    )
    lease_renew_s: float = Field(10.0, gt=0, description="How often running jobs renew leases.")
    hard_timeout_grace_s: float = Field(
        10.0, ge=0, description="Seconds after `timeout_s` before the process is killed."
    )
    lost_attempts_max: int = Field(
        3, ge=1, description="Attempts a job gets when its workers keep dying (poison guard)."
    )
    cancel_grace_s: float = Field(
        10.0,
        ge=0,
        description="Prefork pools: a cancelled job still running this long after its worker "
        "noticed the cancel (at its next lease renewal) is stopped by ending its worker process. "
        "Threads pools cannot stop a thread: their jobs stop when they check `ctx.cancelled()`.",
    )
    stall_after_s: float = Field(
        15.0,
        gt=0,
        description="A worker with a free slot that receives nothing this long while its queue "
        "holds messages is stalled: it reconnects to the broker, and exits (code 5, for its "
        "supervisor to restart it) if it is still stalled this long after that.",
    )
    kombu_ack_fix: bool = Field(
        True,
        description="Redis brokers: use jobyard's transport, whose failed acks release their "
        "prefetch credit (kombu's own leaves a busy worker unable to consume after a Redis "
        "restart). Off only to reproduce that stall, as the stall guard's test does.",
    )
    remote_control: bool = Field(
        True,
        description="Answer Celery's remote control (`jobyard inspect`, `celery -A "
        "jobyard.celery_app inspect|control`, Flower). Off saves each worker one broker "
        "subscription, and nobody can then ask a worker what it runs.",
    )
    liveness_dir: Path | None = Field(
        None,
        description="Where workers touch their liveness file for `jobyard worker --check` "
        "(default: the system temp dir; set JOBYARD_WORKER__LIVENESS_DIR for the probe too).",
    )

    @model_validator(mode="after")
    def _renew_before_expiry(self) -> WorkerSettings:
        if self.lease_renew_s >= self.lease_s:
            raise ValueError("lease_renew_s must be < lease_s")
        return self


class SchedulerSettings(_Section):
    """The scheduler loop: schedules, outbox re-dispatch, retries and the reaper."""

    poll_interval_s: float = Field(0.5, gt=0, description="Seconds between scheduler ticks.")
    dispatch_grace_s: float = Field(
        5.0, ge=0, description="A queued job unpublished this long is published again."
    )
    worker_dead_after_s: float = Field(
        30.0, gt=0, description="A worker silent this long is reported dead."
    )
    lost_message_after_s: float = Field(
        30.0,
        gt=0,
        description="Queued jobs published this long ago whose queue is empty are published "
        "again (the broker lost them, e.g. a restart without persistence).",
    )
    lease_s: float = Field(
        15.0,
        gt=0,
        description="Leader lease: one scheduler works at a time; another takes over this "
        "long after the leader stops renewing.",
    )
    misfire_grace_s: float = Field(
        60.0, ge=0, description="A fire time at most this late is on time (`skip_missed`)."
    )
    catchup_limit: int = Field(
        100, ge=1, le=10000, description="Most missed runs `run_all` starts for one schedule."
    )
    history_sample_s: float = Field(
        15.0,
        gt=0,
        description="How often the leader samples each pool's queue depth for the dashboard's "
        "history chart.",
    )
    history_keep_h: float = Field(
        48.0, ge=24, description="Hours of queue depth samples kept (the chart shows 24 h)."
    )


#: Storage options that would carry a credential: those come from the environment (or a
#: Kubernetes Secret mounted as environment), never from jobyard.toml.
SECRET_STORAGE_OPTIONS = frozenset(
    {
        "key", "secret", "token", "password", "session_token", "access_key", "secret_key",
        "aws_access_key_id", "aws_secret_access_key", "aws_session_token", "account_key",
        "sas_token", "connection_string", "client_secret", "credentials",
    }
)  # fmt: skip


class StorageSettings(_Section):
    """Where jobs' artifacts are written: any fsspec URL."""

    url: str | None = Field(
        None,
        description="`file://path` (relative to jobyard.toml), `s3://bucket/prefix` (extra "
        "`s3`), `gs://…` (`gcs`), `az://…` (`azure`); unset: `<data_dir>/artifacts`.",
    )
    options: dict[str, Any] = Field(
        default_factory=dict,
        description="Options for the filesystem that are not credentials, such as "
        "`endpoint_url` or `client_kwargs` for an S3-compatible server. Credentials come from "
        "the environment (AWS_ACCESS_KEY_ID, GOOGLE_APPLICATION_CREDENTIALS, …).",
    )
    retention_days: float | None = Field(
        30.0,
        gt=0,
        description="Artifacts older than this are deleted with their records; unset: kept.",
    )
    cleanup_interval_s: float = Field(
        3600.0, gt=0, description="How often the scheduler leader deletes expired artifacts."
    )

    @field_validator("url")
    @classmethod
    def _no_credentials_in_url(cls, url: str | None) -> str | None:
        if url is None:
            return None
        scheme, sep, rest = url.partition("://")
        if not sep or not scheme:
            raise ValueError(f"'{url}' is not a URL; write file://path or s3://bucket/prefix")
        if "@" in rest.split("/", 1)[0]:
            raise ValueError(
                "the storage URL carries credentials; give them through the environment "
                "(AWS_ACCESS_KEY_ID, …) or a Kubernetes Secret instead"
            )
        return url

    @field_validator("options")
    @classmethod
    def _no_credentials_in_options(cls, options: dict[str, Any]) -> dict[str, Any]:
        secret = sorted(k for k in options if k.lower() in SECRET_STORAGE_OPTIONS)
        if secret:
            raise ValueError(
                f"storage option(s) {', '.join(secret)} are credentials; give them through the "
                "environment or a Kubernetes Secret instead of jobyard.toml"
            )
        return options


class LauncherSettings(_Section):
    """Where the launchers of pod-per-job pools start job processes."""

    runner: Literal["local", "kubernetes"] = Field(
        "local",
        description="`local`: a process group on the launcher's machine. `kubernetes`: a "
        "batch/v1 Job per job (what `jobyard deploy kubernetes` sets).",
    )
    api_url: str | None = Field(
        None,
        description="Kubernetes API server; default the in-cluster service account, else "
        "~/.kube/config.",
    )
    namespace: str | None = Field(
        None, description="Namespace of the Jobs; default the launcher pod's own."
    )
    image: str | None = Field(
        None, description="Image of job pods when neither the job type nor the pool names one."
    )
    release: str = Field(
        "jobyard", description="The `jobyard deploy` release: names, labels, service account."
    )
    job_ttl_s: int = Field(
        3600, ge=0, description="Kubernetes deletes a finished Job this long after it ends."
    )
    poll_s: float = Field(
        1.0, gt=0, description="Kubernetes: seconds between looks at the pool's pods and logs."
    )


class CommandJobType(_Section):
    """A job type that is a program in any language (`[job_types."stats.fit"]`).

    It runs in a pod-per-job pool: its args arrive as a JSON file named by `JOBYARD_ARGS`, the
    JSON it writes to `JOBYARD_RESULT` is its result, its output lines are its log, and a
    line `::progress 0.4 message` sets its progress.
    """

    pool: str = Field(description="A pod-per-job pool.")
    command: list[str] = Field(
        min_length=1, description='Program and arguments, e.g. ["Rscript", "fit.R"].'
    )
    workdir: Path | None = Field(
        None, description="Where the command runs; default the folder of jobyard.toml."
    )
    args_schema: dict[str, Any] | None = Field(
        None, description="A JSON Schema the args must match (checked at submit)."
    )
    timeout_s: float = Field(3600.0, gt=0, description="An attempt running longer is killed.")
    retries: int = Field(0, ge=0, le=100, description="Attempts after the first one fails.")
    backoff_s: float = Field(
        1.0, ge=0, description="Delay before the first retry, doubled each time."
    )
    priority: int = Field(5, ge=0, le=9, description="Default priority, 0 (lowest) to 9.")
    resources: Resources | None = Field(
        None, description="CPU, memory and GPUs of this type's pods; default the pool's."
    )
    description: str | None = Field(None, description="Shown on the dashboard's submit form.")
    image: str | None = Field(None, description="Kubernetes: this type's image, not the pool's.")
