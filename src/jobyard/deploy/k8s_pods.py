"""The pod of every jobyard workload: environment, restricted containers with the config,
a writable /tmp and artifact storage, the wait for the schema, and the pod template.

`kubernetes` builds the web, scheduler, worker and migration workloads from these parts.
"""

from __future__ import annotations

from typing import Any

from jobyard.config import PoolConfig
from jobyard.deploy import k8s_storage
from jobyard.deploy.k8s_access import launcher_name
from jobyard.deploy.k8s_meta import Target, all_labels, container_security, pod_security

UID = 10001
CONFIG_PATH = "/etc/jobyard/jobyard.toml"
TMP = "/tmp"
SCHEMA_WAIT_S = 600


def pod_env(target: Target, pool: str | None = None) -> list[dict[str, Any]]:
    secret = target.secret
    env: list[dict[str, Any]] = [
        {"name": "JOBYARD_CONFIG", "value": CONFIG_PATH},
        {"name": "JOBYARD_ENV", "value": "prod"},
        {"name": "JOBYARD_DATA_DIR", "value": f"{TMP}/jobyard"},
        {"name": "JOBYARD_WORKER__LIVENESS_DIR", "value": TMP},
        {"name": "PYTHONDONTWRITEBYTECODE", "value": "1"},
        {
            "name": "JOBYARD_DATABASE_URL",
            "valueFrom": {"secretKeyRef": {"name": secret, "key": "database-url"}},
        },
        {
            "name": "JOBYARD_BROKER_URL",
            "valueFrom": {"secretKeyRef": {"name": secret, "key": "broker-url"}},
        },
    ]
    if pool is not None:
        env.append({"name": "JOBYARD_POOL", "value": pool})
    return env + k8s_storage.env(target)


def restricted(container: dict[str, Any], target: Target | None = None) -> dict[str, Any]:
    """A container with the config, a writable /tmp, and (given the target) artifact storage."""
    _, artifact_mounts = k8s_storage.volumes(target) if target else ([], [])
    secrets = k8s_storage.env_from(target) if target else []
    return {
        **container,
        **({"envFrom": secrets} if secrets else {}),
        "securityContext": container_security(),
        "volumeMounts": [
            {"name": "config", "mountPath": "/etc/jobyard", "readOnly": True},
            {"name": "tmp", "mountPath": TMP},
            *artifact_mounts,
        ],
    }


def schema_wait_container(image: str, env: list[dict[str, Any]]) -> dict[str, Any]:
    """Holds a pod until the migration Job has brought the schema to this version's."""
    return restricted(
        {
            "name": "wait-for-schema",
            "image": image,
            "args": ["db", "wait", "--timeout", str(SCHEMA_WAIT_S)],
            "env": env,
            "resources": {
                "requests": {"cpu": "50m", "memory": "128Mi"},
                "limits": {"cpu": "500m", "memory": "256Mi"},
            },
        }
    )


def pod_spec(
    target: Target,
    container: dict[str, Any],
    *,
    grace_s: int = 30,
    extra: dict[str, Any] | None = None,
    launcher: bool = False,
    wait_for_schema: bool = True,
    storage: bool = True,
) -> dict[str, Any]:
    """A restricted pod; only a pod-per-job launcher gets an API token (its own identity).
    With `storage`, its container reaches artifact storage (the shared volume, or the
    object store's credentials)."""
    pod: dict[str, Any] = {
        "automountServiceAccountToken": launcher,
        "serviceAccountName": launcher_name(target) if launcher else target.release,
        "terminationGracePeriodSeconds": grace_s,
        "securityContext": pod_security(UID, UID),
    }
    if wait_for_schema:
        pod["initContainers"] = [schema_wait_container(container["image"], container["env"])]
    artifact_volumes, _ = k8s_storage.volumes(target) if storage else ([], [])
    return {
        **pod,
        "containers": [restricted(container, target if storage else None)],
        "volumes": [
            {"name": "config", "configMap": {"name": f"{target.release}-config"}},
            {"name": "tmp", "emptyDir": {}},
            *artifact_volumes,
        ],
        **(extra or {}),
    }


def template(
    target: Target,
    component: str,
    pod: dict[str, Any],
    config_hash: str,
    pool: str | None = None,
    annotations: dict[str, str] | None = None,
) -> dict[str, Any]:
    return {
        "metadata": {
            "labels": all_labels(target, component, pool),
            "annotations": {"jobyard.io/config-hash": config_hash, **(annotations or {})},
        },
        "spec": pod,
    }


def resources(pool: PoolConfig | None) -> dict[str, Any]:
    cpu = (pool.resources.cpu if pool else None) or "250m"
    memory = (pool.resources.memory if pool else None) or "512Mi"
    limits: dict[str, Any] = {"cpu": cpu, "memory": memory}
    if pool is not None and pool.resources.gpu:
        limits["nvidia.com/gpu"] = pool.resources.gpu
    return {"requests": {"cpu": cpu, "memory": memory}, "limits": limits}
