"""Optional in-cluster PostgreSQL and Redis: one-replica StatefulSets with PVCs.

For a team without managed services, or a staging cluster. They are single instances (no
replication or failover), so production should prefer a managed PostgreSQL and Redis and
leave these off. Redis is configured as a broker must be: append-only file, never evict.
Passwords come from the release's Secret (`postgres-password`, `redis-password`).
"""

from __future__ import annotations

from typing import Any

from jobyard.deploy.k8s_meta import (
    DATABASE_PORT,
    Target,
    all_labels,
    container_security,
    labels,
    metadata,
    pod_security,
)

POSTGRES_IMAGE = "postgres:16.4"
REDIS_IMAGE = "redis:7.4"
# Below the 1Gi container limit: Redis refuses writes when full rather than being OOM-killed
# (jobyard's outbox re-publishes what the broker refused).
REDIS_MAXMEMORY = "800mb"
# The official images' own users (Debian variants): postgres 999:999, redis 999:999.
DATASTORE_UID = 999
PGDATA = "/var/lib/postgresql/data/pgdata"


def _secret_env(target: Target, name: str, key: str) -> dict[str, Any]:
    return {"name": name, "valueFrom": {"secretKeyRef": {"name": target.secret, "key": key}}}


def _claim(target: Target, size: str) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "accessModes": ["ReadWriteOnce"],
        "resources": {"requests": {"storage": size}},
    }
    if target.storage_class:
        spec["storageClassName"] = target.storage_class
    return {"metadata": {"name": "data"}, "spec": spec}


def _headless_service(target: Target, component: str, port: int) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": metadata(target, target.name(component), component),
        "spec": {
            "clusterIP": "None",
            "selector": labels(target, component),
            "ports": [{"name": component, "port": port, "targetPort": component}],
        },
    }


def _stateful_set(
    target: Target,
    component: str,
    container: dict[str, Any],
    *,
    data_path: str,
    size: str,
    scratch: list[tuple[str, str]],
) -> dict[str, Any]:
    mounts = [{"name": "data", "mountPath": data_path}]
    mounts += [{"name": volume, "mountPath": path} for volume, path in scratch]
    pod = {
        "automountServiceAccountToken": False,
        "serviceAccountName": target.release,
        "terminationGracePeriodSeconds": 60,
        "securityContext": pod_security(DATASTORE_UID, DATASTORE_UID),
        "containers": [
            {
                **container,
                "securityContext": container_security(),
                "volumeMounts": mounts,
                "resources": {
                    "requests": {"cpu": "250m", "memory": "512Mi"},
                    "limits": {"cpu": "1", "memory": "1Gi"},
                },
            }
        ],
        "volumes": [{"name": volume, "emptyDir": {}} for volume, _ in scratch],
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": metadata(target, target.name(component), component),
        "spec": {
            "serviceName": target.name(component),
            "replicas": 1,
            "selector": {"matchLabels": labels(target, component)},
            "template": {"metadata": {"labels": all_labels(target, component)}, "spec": pod},
            "volumeClaimTemplates": [_claim(target, size)],
        },
    }


def postgres(target: Target) -> list[dict[str, Any]]:
    """PostgreSQL for jobyard's tables (database and user `jobyard`)."""
    ready = {"exec": {"command": ["pg_isready", "-U", "jobyard", "-d", "jobyard"]}}
    container = {
        "name": "postgres",
        "image": POSTGRES_IMAGE,
        "ports": [{"name": "postgres", "containerPort": DATABASE_PORT}],
        "env": [
            {"name": "POSTGRES_USER", "value": "jobyard"},
            {"name": "POSTGRES_DB", "value": "jobyard"},
            {"name": "PGDATA", "value": PGDATA},
            _secret_env(target, "POSTGRES_PASSWORD", "postgres-password"),
        ],
        "readinessProbe": {**ready, "periodSeconds": 10, "timeoutSeconds": 5},
        "livenessProbe": {
            **ready,
            "initialDelaySeconds": 30,
            "periodSeconds": 20,
            "timeoutSeconds": 5,
            "failureThreshold": 6,
        },
    }
    return [
        _headless_service(target, "postgres", DATABASE_PORT),
        _stateful_set(
            target,
            "postgres",
            container,
            data_path="/var/lib/postgresql/data",
            size=target.postgres_storage,
            scratch=[("run", "/var/run/postgresql"), ("tmp", "/tmp")],
        ),
    ]


def redis(target: Target) -> list[dict[str, Any]]:
    """Redis as the broker: persisted (AOF) and never evicting a message."""
    port = target.broker_port
    container = {
        "name": "redis",
        "image": REDIS_IMAGE,
        "args": [
            "redis-server",
            *("--port", str(port)),
            *("--dir", "/data"),
            *("--appendonly", "yes"),
            *("--appendfsync", "everysec"),
            *("--maxmemory", REDIS_MAXMEMORY),
            *("--maxmemory-policy", "noeviction"),
            *("--requirepass", "$(REDIS_PASSWORD)"),
        ],
        "ports": [{"name": "redis", "containerPort": port}],
        "env": [_secret_env(target, "REDIS_PASSWORD", "redis-password")],
        "readinessProbe": {"tcpSocket": {"port": "redis"}, "periodSeconds": 10},
        "livenessProbe": {
            "tcpSocket": {"port": "redis"},
            "initialDelaySeconds": 15,
            "periodSeconds": 20,
            "failureThreshold": 6,
        },
    }
    return [
        _headless_service(target, "redis", port),
        _stateful_set(
            target,
            "redis",
            container,
            data_path="/data",
            size=target.redis_storage,
            scratch=[("tmp", "/tmp")],
        ),
    ]


def datastores(target: Target) -> list[dict[str, Any]]:
    """The StatefulSets the target asks for (none when both are external)."""
    return (postgres(target) if target.postgres else []) + (redis(target) if target.redis else [])
