"""Kubernetes manifests from jobyard.toml: pure builders, settings in, plain dicts out.

Nothing here talks to a cluster, so every object can be validated offline (see
tests/deploy). This module builds the jobyard workloads and puts every file together; their
pods (`k8s_pods`), datastores, network policies, RBAC and monitoring have modules of their
own. Secrets are referenced by name, never rendered with values.
"""

from __future__ import annotations

import dataclasses
import hashlib
from typing import Any

import tomli_w

from jobyard.config import PoolConfig, Settings
from jobyard.deploy import k8s_storage
from jobyard.deploy.k8s_access import access_objects
from jobyard.deploy.k8s_autoscale import disruption_budgets, hpa, scaled_object
from jobyard.deploy.k8s_checks import check_target
from jobyard.deploy.k8s_datastores import datastores
from jobyard.deploy.k8s_meta import (
    Target,
    labels,
    metadata,
)
from jobyard.deploy.k8s_network import network_policies
from jobyard.deploy.k8s_pods import (
    pod_env,
    pod_spec,
    resources,
    template,
)
from jobyard.deploy.observability import monitoring_objects

__all__ = ["Target", "render"]

GRACE_EXTRA_S = 30
GRACE_CAP_S = 3600
WEB_PORT = 8000
WEB_DRAIN_S = 5
# Pools whose jobs may run longer than this ask the cluster autoscaler not to evict them.
LONG_JOB_S = 600


def config_toml(settings: Settings) -> str:
    """jobyard.toml as the cluster runs it: URLs come from the Secret, not the file."""
    data = settings.model_dump(
        mode="json",
        exclude_none=True,
        exclude={
            "database_url": True,
            "broker_url": True,
            "events_url": True,
            "auth": {"bootstrap_admin_key"},
        },
    )
    data.pop("data_dir", None)
    return tomli_w.dumps(data)


def config_map(settings: Settings, target: Target) -> dict[str, Any]:
    """The ConfigMap holding jobyard.toml."""
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": metadata(target, f"{target.release}-config", "config"),
        "data": {"jobyard.toml": config_toml(settings)},
    }


def migration_job(target: Target, config_hash: str) -> dict[str, Any]:
    """`jobyard db upgrade` once per image: a new image gets a new Job (Job pods are
    immutable), and concurrent upgrades are serialized by an advisory lock anyway."""
    digest = hashlib.sha256(f"{target.image}|{target.version}".encode()).hexdigest()[:8]
    container = {
        "name": "db-upgrade",
        "image": target.image,
        "args": ["db", "upgrade"],
        "env": pod_env(target),
        "resources": resources(None),
    }
    pod = pod_spec(
        target,
        container,
        wait_for_schema=False,
        storage=False,
        extra={"restartPolicy": "Never"},
    )
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": metadata(target, f"{target.release}-db-upgrade-{digest}", "db-upgrade"),
        "spec": {
            "backoffLimit": 6,
            "activeDeadlineSeconds": 900,
            "ttlSecondsAfterFinished": 86400,
            "template": template(target, "db-upgrade", pod, config_hash),
        },
    }


def web(target: Target, config_hash: str) -> list[dict[str, Any]]:
    """The web Deployment (rolling, probes on /healthz and /readyz) and its Service."""
    name = f"{target.release}-web"
    container = {
        "name": "web",
        "image": target.image,
        "args": ["web", "--host", "0.0.0.0", "--port", str(WEB_PORT)],
        "ports": [{"name": "http", "containerPort": WEB_PORT}],
        "env": [
            *pod_env(target),
            {
                # Optional: the first admin key, so a fresh deployment can be logged into.
                "name": "JOBYARD_AUTH__BOOTSTRAP_ADMIN_KEY",
                "valueFrom": {
                    "secretKeyRef": {"name": target.secret, "key": "admin-key", "optional": True}
                },
            },
        ],
        "resources": resources(None),
        "readinessProbe": {
            "httpGet": {"path": "/readyz", "port": "http"},
            "periodSeconds": 10,
            "timeoutSeconds": 5,
        },
        "livenessProbe": {
            "httpGet": {"path": "/healthz", "port": "http"},
            "periodSeconds": 20,
            "timeoutSeconds": 5,
            "failureThreshold": 3,
        },
        # Keep serving while the endpoint removal reaches every proxy.
        "lifecycle": {"preStop": {"exec": {"command": ["sleep", str(WEB_DRAIN_S)]}}},
    }
    pod = pod_spec(target, container)
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": metadata(target, name, "web"),
        "spec": {
            "replicas": target.web_replicas,
            "strategy": {
                "type": "RollingUpdate",
                "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0},
            },
            "selector": {"matchLabels": labels(target, "web")},
            "template": template(target, "web", pod, config_hash),
        },
    }
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            **metadata(target, name, "web"),
            "annotations": {
                "prometheus.io/scrape": "true",
                "prometheus.io/port": str(WEB_PORT),
                "prometheus.io/path": "/metrics",
            },
        },
        "spec": {
            "selector": labels(target, "web"),
            "ports": [{"name": "http", "port": 80, "targetPort": "http"}],
        },
    }
    return [deployment, service]


def scheduler(target: Target, config_hash: str) -> dict[str, Any]:
    """The scheduler: one replica, Recreate (the leader lease guards overlaps anyway)."""
    container = {
        "name": "scheduler",
        "image": target.image,
        "args": ["scheduler"],
        "env": pod_env(target),
        "resources": resources(None),
        "livenessProbe": {
            "exec": {"command": ["jobyard", "scheduler", "--check"]},
            "periodSeconds": 30,
            "timeoutSeconds": 10,
            "failureThreshold": 3,
        },
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": metadata(target, f"{target.release}-scheduler", "scheduler"),
        "spec": {
            "replicas": 1,
            "strategy": {"type": "Recreate"},
            "selector": {"matchLabels": labels(target, "scheduler")},
            "template": template(target, "scheduler", pod_spec(target, container), config_hash),
        },
    }


def worker(
    name: str, pool: PoolConfig, longest_timeout_s: float, target: Target, config_hash: str
) -> dict[str, Any]:
    """One pool's worker Deployment; KEDA owns its replica count (so it sets none).

    A pod-per-job pool gets its launcher instead: one replica (a standby during a rollout
    waits for the leader lease), small, with the API token its Role allows, creating a Job
    per job in this namespace from the pool's image."""
    launches = pool.mode == "pod-per-job"
    container: dict[str, Any] = {
        "name": "worker",
        "image": pool.image or target.image,
        "args": ["worker", "--pool", name],
        "env": pod_env(target, name),
        "resources": resources(pool),
        "startupProbe": _check_probe(name, period_s=5, failures=24),
        "livenessProbe": _check_probe(name, period_s=30, failures=3),
    }
    if launches:
        container = {
            "name": "launcher",
            "image": target.image,
            "args": ["launcher", "--pool", name],
            "env": pod_env(target, name) + _launcher_env(pool, target),
            "resources": resources(None),
        }
    grace = min(int(longest_timeout_s) + GRACE_EXTRA_S, GRACE_CAP_S)
    extra: dict[str, Any] = {}
    if pool.node_selector:
        extra["nodeSelector"] = dict(pool.node_selector)
    tolerations = [t.model_dump(exclude_none=True) for t in pool.tolerations]
    if pool.resources.gpu:
        tolerations.append({"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"})
    if tolerations:
        extra["tolerations"] = tolerations
    if launches:  # its jobs' pods are placed by their Jobs; the launcher runs anywhere
        extra, grace = {}, GRACE_EXTRA_S
    pod = pod_spec(target, container, grace_s=grace, extra=extra, launcher=launches)
    annotations = {}
    if longest_timeout_s > LONG_JOB_S:
        annotations["cluster-autoscaler.kubernetes.io/safe-to-evict"] = "false"
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": metadata(target, f"{target.release}-worker-{name}", "worker", name),
        "spec": {
            **({"replicas": 1} if launches else {}),
            "strategy": {
                "type": "RollingUpdate",
                "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0},
            },
            "selector": {"matchLabels": labels(target, "worker", name)},
            "template": template(target, "worker", pod, config_hash, name, annotations),
        },
    }


def _launcher_env(pool: PoolConfig, target: Target) -> list[dict[str, Any]]:
    """Where the launcher creates its Jobs: this namespace, the pool's image, this release."""
    return [
        {"name": "JOBYARD_LAUNCHER__RUNNER", "value": "kubernetes"},
        {"name": "JOBYARD_LAUNCHER__RELEASE", "value": target.release},
        {"name": "JOBYARD_LAUNCHER__IMAGE", "value": pool.image or target.image},
        {
            "name": "JOBYARD_LAUNCHER__NAMESPACE",
            "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}},
        },
    ]


def _check_probe(pool: str, *, period_s: int, failures: int) -> dict[str, Any]:
    return {
        "exec": {"command": ["jobyard", "worker", "--pool", pool, "--check"]},
        "periodSeconds": period_s,
        "timeoutSeconds": 10,
        "failureThreshold": failures,
    }


def ingress(target: Target) -> dict[str, Any]:
    """Routes the configured host to the web Service."""
    spec: dict[str, Any] = {
        "rules": [
            {
                "host": target.ingress_host,
                "http": {
                    "paths": [
                        {
                            "path": "/",
                            "pathType": "Prefix",
                            "backend": {
                                "service": {
                                    "name": f"{target.release}-web",
                                    "port": {"name": "http"},
                                }
                            },
                        }
                    ]
                },
            }
        ]
    }
    if target.ingress_class:
        spec["ingressClassName"] = target.ingress_class
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": metadata(target, f"{target.release}-web", "web"),
        "spec": spec,
    }


def render(
    settings: Settings, target: Target, longest_timeouts: dict[str, float]
) -> dict[str, list[dict[str, Any]]]:
    """Every object, grouped by the file it goes to.

    Raises:
        ConfigError: see `check_target`.
    """
    check_target(settings, target)
    target = dataclasses.replace(target, artifacts_volume=k8s_storage.uses_volume(settings))
    config = config_map(settings, target)
    config_hash = hashlib.sha256(config["data"]["jobyard.toml"].encode()).hexdigest()[:16]
    files: dict[str, list[dict[str, Any]]] = {
        "config.yaml": [config, *access_objects(settings, target)],
        "web.yaml": web(target, config_hash) + ([ingress(target)] if target.ingress_host else []),
        "network-policies.yaml": network_policies(settings, target),
        "scheduler.yaml": [scheduler(target, config_hash)],
        "db-upgrade.yaml": [migration_job(target, config_hash)],
        "disruption-budgets.yaml": disruption_budgets(settings, target),
        "monitoring.yaml": monitoring_objects(target),
    }
    if target.postgres or target.redis:
        files["datastores.yaml"] = datastores(target)
    if target.artifacts_volume:
        files["artifacts.yaml"] = [k8s_storage.claim(target)]
    for name, pool in settings.pools.items():
        timeout = longest_timeouts.get(name, 3600.0)
        if pool.mode == "pod-per-job":  # its Jobs are the scaling; one launcher runs them
            files[f"launcher-{name}.yaml"] = [worker(name, pool, timeout, target, config_hash)]
            continue
        scaler = hpa(name, pool, target) if target.autoscaler == "hpa" else None
        files[f"worker-{name}.yaml"] = [
            worker(name, pool, timeout, target, config_hash),
            scaler or scaled_object(name, pool, target),
        ]
    return files
