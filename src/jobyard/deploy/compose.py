"""docker-compose for one machine, from the same jobyard.toml: a pure builder.

Web, scheduler and one service per pool (scale with `docker compose up --scale
worker-media=3`), PostgreSQL and Redis with health checks and volumes, and a one-shot
`migrate` service the others wait for. Secrets come from the environment with
`${VAR:?message}`, so a missing one stops `docker compose up` with that message.
"""

from __future__ import annotations

from typing import Any

from jobyard.config import Settings
from jobyard.deploy import k8s_storage

CONFIG_PATH = "/etc/jobyard/jobyard.toml"
GRACE_EXTRA_S = 30
DATABASE_URL = (
    "postgresql://jobyard:${POSTGRES_PASSWORD:?set POSTGRES_PASSWORD (the database password)}"
    "@postgres:5432/jobyard"
)


def _common(image: str, settings: Settings, *, storage: bool = True) -> dict[str, Any]:
    """A jobyard service; with `storage`, it reaches artifact storage: the shared
    `artifacts` volume for `file://`, else the object store with credentials from
    `storage.env` (optional; AWS_ACCESS_KEY_ID, …)."""
    service: dict[str, Any] = {
        "image": image,
        "environment": {
            "JOBYARD_CONFIG": CONFIG_PATH,
            "JOBYARD_ENV": "prod",
            "JOBYARD_DATABASE_URL": DATABASE_URL,
            "JOBYARD_BROKER_URL": "redis://redis:6379/0",
            "JOBYARD_DATA_DIR": "/tmp/jobyard",
        },
        "volumes": [f"./jobyard.toml:{CONFIG_PATH}:ro"],
        "restart": "unless-stopped",
    }
    if storage and k8s_storage.uses_volume(settings):
        service["environment"]["JOBYARD_STORAGE__URL"] = f"file://{k8s_storage.ARTIFACTS_PATH}"
        service["volumes"].append(f"artifacts:{k8s_storage.ARTIFACTS_PATH}")
    elif storage:
        service["env_file"] = [{"path": "storage.env", "required": False}]
    return service


def _after_migrate() -> dict[str, Any]:
    return {
        "postgres": {"condition": "service_healthy"},
        "redis": {"condition": "service_healthy"},
        "migrate": {"condition": "service_completed_successfully"},
    }


def render(
    settings: Settings, longest_timeouts: dict[str, float], *, image: str, port: int = 8000
) -> dict[str, Any]:
    """The compose file as a dict."""
    services: dict[str, Any] = {
        "postgres": {
            "image": "postgres:16",
            "environment": {
                "POSTGRES_USER": "jobyard",
                "POSTGRES_DB": "jobyard",
                "POSTGRES_PASSWORD": "${POSTGRES_PASSWORD:?set POSTGRES_PASSWORD}",
            },
            "volumes": ["postgres:/var/lib/postgresql/data"],
            "healthcheck": {
                "test": ["CMD-SHELL", "pg_isready -U jobyard -d jobyard"],
                "interval": "5s",
                "timeout": "5s",
                "retries": 10,
            },
            "restart": "unless-stopped",
        },
        "redis": {
            "image": "redis:7",
            # Append-only persistence: a restart keeps queued messages (the outbox heals the rest).
            "command": ["redis-server", "--appendonly", "yes"],
            "volumes": ["redis:/data"],
            "healthcheck": {
                "test": ["CMD", "redis-cli", "ping"],
                "interval": "5s",
                "timeout": "5s",
                "retries": 10,
            },
            "restart": "unless-stopped",
        },
        "migrate": {
            **_common(image, settings, storage=False),
            "command": ["db", "upgrade"],
            "restart": "no",
            "depends_on": {"postgres": {"condition": "service_healthy"}},
        },
        "web": {
            **_common(image, settings),
            "command": ["web", "--host", "0.0.0.0", "--port", str(port)],
            "ports": [f"{port}:{port}"],
            "depends_on": _after_migrate(),
            "healthcheck": {
                "test": [
                    "CMD",
                    "python",
                    "-c",
                    f"import urllib.request; urllib.request.urlopen('http://127.0.0.1:{port}/readyz')",
                ],
                "interval": "10s",
                "timeout": "5s",
                "retries": 5,
            },
        },
        "scheduler": {
            **_common(image, settings),
            "command": ["scheduler"],
            "depends_on": _after_migrate(),
            "healthcheck": {
                "test": ["CMD", "jobyard", "scheduler", "--check"],
                "interval": "30s",
                "timeout": "10s",
                "retries": 3,
            },
        },
    }
    for name, pool in settings.pools.items():
        grace = int(longest_timeouts.get(name, 3600.0)) + GRACE_EXTRA_S
        if pool.mode == "pod-per-job":
            # One launcher; its jobs run as process groups inside its container (the local
            # runner), each stopped with the launcher and run again after it.
            services[f"launcher-{name}"] = {
                **_common(pool.image or image, settings),
                "command": ["launcher", "--pool", name],
                "depends_on": _after_migrate(),
                "stop_grace_period": f"{GRACE_EXTRA_S}s",
            }
            continue
        services[f"worker-{name}"] = {
            **_common(pool.image or image, settings),
            "command": ["worker", "--pool", name],
            "depends_on": _after_migrate(),
            "stop_grace_period": f"{grace}s",
            "deploy": {"replicas": max(pool.autoscale.min_replicas, 1)},
            "healthcheck": {
                "test": ["CMD", "jobyard", "worker", "--pool", name, "--check"],
                "interval": "30s",
                "timeout": "10s",
                "retries": 3,
                "start_period": "60s",
            },
        }
        if pool.resources.gpu:
            services[f"worker-{name}"]["deploy"]["resources"] = {
                "reservations": {
                    "devices": [
                        {"driver": "nvidia", "count": pool.resources.gpu, "capabilities": ["gpu"]}
                    ]
                }
            }
    volumes: dict[str, Any] = {"postgres": {}, "redis": {}}
    if k8s_storage.uses_volume(settings):
        volumes["artifacts"] = {}
    return {"name": "jobyard", "services": services, "volumes": volumes}
