"""Kubernetes manifests from jobyard.toml: pure builders, settings in, plain dicts out.

Nothing here talks to a cluster, so every object can be validated offline (see
tests/deploy). Names follow `<release>-<component>[-<pool>]`; every object carries the
`app.kubernetes.io/*` labels and workers also `jobyard.io/pool`. Secrets are referenced by
name, never rendered with values.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Any

import tomli_w

from jobyard.config import PoolConfig, Settings
from jobyard.errors import ConfigError

APP_NAME = "jobyard"
UID = 10001
CONFIG_PATH = "/etc/jobyard/jobyard.toml"
TMP = "/tmp"
GRACE_EXTRA_S = 30
GRACE_CAP_S = 3600
WEB_PORT = 8000
DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
LABEL_VALUE = re.compile(r"^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$")
MAX_RELEASE = 20


@dataclass(frozen=True)
class Target:
    """Where and how to deploy: the choices that are not part of jobyard.toml."""

    namespace: str = "jobyard"
    image: str = "jobyard:latest"
    release: str = "jobyard"
    secret: str = "jobyard"
    web_replicas: int = 2
    version: str = "0.1.0"
    autoscaler: str = "keda"  # keda | hpa
    ingress_host: str | None = None
    ingress_class: str | None = None
    ingress_namespace: str = "ingress-nginx"
    monitoring_namespace: str = "monitoring"


def labels(target: Target, component: str, pool: str | None = None) -> dict[str, str]:
    """The selector labels of a component (stable: never the version)."""
    found = {
        "app.kubernetes.io/name": APP_NAME,
        "app.kubernetes.io/instance": target.release,
        "app.kubernetes.io/component": component,
    }
    if pool is not None:
        found["jobyard.io/pool"] = pool
    return found


def all_labels(target: Target, component: str, pool: str | None = None) -> dict[str, str]:
    """Selector labels plus the descriptive ones."""
    return {
        **labels(target, component, pool),
        "app.kubernetes.io/part-of": APP_NAME,
        "app.kubernetes.io/managed-by": APP_NAME,
        "app.kubernetes.io/version": target.version,
    }


def metadata(target: Target, name: str, component: str, pool: str | None = None) -> dict[str, Any]:
    """Object metadata in the target namespace."""
    return {
        "name": name,
        "namespace": target.namespace,
        "labels": all_labels(target, component, pool),
    }


def config_toml(settings: Settings) -> str:
    """jobyard.toml as the cluster runs it: URLs come from the Secret, not the file."""
    data = settings.model_dump(
        mode="json", exclude_none=True, exclude={"database_url", "broker_url", "events_url"}
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


def _env(target: Target, pool: str | None = None) -> list[dict[str, Any]]:
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
    return env


def _security_context() -> dict[str, Any]:
    return {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "runAsNonRoot": True,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def _pod_spec(
    target: Target,
    container: dict[str, Any],
    *,
    grace_s: int = 30,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    container = {
        **container,
        "securityContext": _security_context(),
        "volumeMounts": [
            {"name": "config", "mountPath": "/etc/jobyard", "readOnly": True},
            {"name": "tmp", "mountPath": TMP},
        ],
    }
    return {
        "automountServiceAccountToken": False,
        "serviceAccountName": target.release,
        "terminationGracePeriodSeconds": grace_s,
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": UID,
            "runAsGroup": UID,
            "fsGroup": UID,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "containers": [container],
        "volumes": [
            {"name": "config", "configMap": {"name": f"{target.release}-config"}},
            {"name": "tmp", "emptyDir": {}},
        ],
        **(extra or {}),
    }


def _template(
    target: Target, component: str, pod: dict[str, Any], config_hash: str, pool: str | None = None
) -> dict[str, Any]:
    return {
        "metadata": {
            "labels": all_labels(target, component, pool),
            "annotations": {"jobyard.io/config-hash": config_hash},
        },
        "spec": pod,
    }


def _resources(pool: PoolConfig | None) -> dict[str, Any]:
    cpu = (pool.resources.cpu if pool else None) or "250m"
    memory = (pool.resources.memory if pool else None) or "512Mi"
    limits: dict[str, Any] = {"cpu": cpu, "memory": memory}
    if pool is not None and pool.resources.gpu:
        limits["nvidia.com/gpu"] = pool.resources.gpu
    return {"requests": {"cpu": cpu, "memory": memory}, "limits": limits}


def web(target: Target, config_hash: str) -> list[dict[str, Any]]:
    """The web Deployment (rolling, probes on /healthz and /readyz) and its Service."""
    name = f"{target.release}-web"
    container = {
        "name": "web",
        "image": target.image,
        "args": ["web", "--host", "0.0.0.0", "--port", str(WEB_PORT)],
        "ports": [{"name": "http", "containerPort": WEB_PORT}],
        "env": _env(target),
        "resources": _resources(None),
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
    }
    pod = _pod_spec(target, container)
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
            "template": _template(target, "web", pod, config_hash),
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
        "env": _env(target),
        "resources": _resources(None),
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
            "template": _template(target, "scheduler", _pod_spec(target, container), config_hash),
        },
    }


def worker(
    name: str, pool: PoolConfig, longest_timeout_s: float, target: Target, config_hash: str
) -> dict[str, Any]:
    """One pool's worker Deployment; KEDA owns its replica count (so it sets none)."""
    container = {
        "name": "worker",
        "image": pool.image or target.image,
        "args": ["worker", "--pool", name],
        "env": _env(target, name),
        "resources": _resources(pool),
        "startupProbe": _check_probe(name, period_s=5, failures=24),
        "livenessProbe": _check_probe(name, period_s=30, failures=3),
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
    pod = _pod_spec(target, container, grace_s=grace, extra=extra)
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": metadata(target, f"{target.release}-worker-{name}", "worker", name),
        "spec": {
            "strategy": {
                "type": "RollingUpdate",
                "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0},
            },
            "selector": {"matchLabels": labels(target, "worker", name)},
            "template": _template(target, "worker", pod, config_hash, name),
        },
    }


def _check_probe(pool: str, *, period_s: int, failures: int) -> dict[str, Any]:
    return {
        "exec": {"command": ["jobyard", "worker", "--pool", pool, "--check"]},
        "periodSeconds": period_s,
        "timeoutSeconds": 10,
        "failureThreshold": failures,
    }


def scaled_object(name: str, pool: PoolConfig, target: Target) -> dict[str, Any]:
    """KEDA scales a pool on its queued + running jobs in jobyard's own tables.

    Counting running jobs too keeps scale-in from targeting a busy fleet, and counting rows
    (not broker messages) sees what prefetch hides.
    """
    per_replica = max(pool.concurrency, 1)
    query = (
        f"SELECT ceil(count(*)::decimal / {per_replica}) FROM jobyard_jobs "
        f"WHERE pool = '{name}' AND state IN ('queued', 'running')"
    )
    return {
        "apiVersion": "keda.sh/v1alpha1",
        "kind": "ScaledObject",
        "metadata": metadata(target, f"{target.release}-worker-{name}", "worker", name),
        "spec": {
            "scaleTargetRef": {"name": f"{target.release}-worker-{name}"},
            "pollingInterval": 15,
            "cooldownPeriod": 300,
            "minReplicaCount": pool.autoscale.min_replicas,
            "maxReplicaCount": pool.autoscale.max_replicas,
            "triggers": [
                {
                    "type": "postgresql",
                    "metadata": {
                        "connectionFromEnv": "JOBYARD_DATABASE_URL",
                        "query": query,
                        "targetQueryValue": "1",
                        "activationTargetQueryValue": "0",
                    },
                }
            ],
        },
    }


def disruption_budgets(settings: Settings, target: Target) -> list[dict[str, Any]]:
    """Web keeps one pod through drains; each pool loses at most one at a time."""
    budgets = [
        {
            "apiVersion": "policy/v1",
            "kind": "PodDisruptionBudget",
            "metadata": metadata(target, f"{target.release}-web", "web"),
            "spec": {"minAvailable": 1, "selector": {"matchLabels": labels(target, "web")}},
        }
    ]
    for name in settings.pools:
        budgets.append(
            {
                "apiVersion": "policy/v1",
                "kind": "PodDisruptionBudget",
                "metadata": metadata(target, f"{target.release}-worker-{name}", "worker", name),
                "spec": {
                    "maxUnavailable": 1,
                    "selector": {"matchLabels": labels(target, "worker", name)},
                },
            }
        )
    return budgets


def hpa(name: str, pool: PoolConfig, target: Target) -> dict[str, Any]:
    """The alternative without KEDA: CPU-based autoscaling between the pool's bounds."""
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": metadata(target, f"{target.release}-worker-{name}", "worker", name),
        "spec": {
            "scaleTargetRef": {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "name": f"{target.release}-worker-{name}",
            },
            "minReplicas": max(pool.autoscale.min_replicas, 1),
            "maxReplicas": pool.autoscale.max_replicas,
            "metrics": [
                {
                    "type": "Resource",
                    "resource": {
                        "name": "cpu",
                        "target": {"type": "Utilization", "averageUtilization": 70},
                    },
                }
            ],
        },
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


def network_policies(target: Target) -> list[dict[str, Any]]:
    """Default deny for every jobyard pod; only the ingress controller and Prometheus may
    reach the web pods. Workers and the scheduler accept no connections at all."""

    def namespace(name: str) -> dict[str, Any]:
        return {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": name}}}

    deny = {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": metadata(target, f"{target.release}-default-deny", "network"),
        "spec": {
            "podSelector": {
                "matchLabels": {
                    "app.kubernetes.io/name": APP_NAME,
                    "app.kubernetes.io/instance": target.release,
                }
            },
            "policyTypes": ["Ingress"],
        },
    }
    web_in = {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": metadata(target, f"{target.release}-web-ingress", "network"),
        "spec": {
            "podSelector": {"matchLabels": labels(target, "web")},
            "policyTypes": ["Ingress"],
            "ingress": [
                {
                    "from": [
                        namespace(target.ingress_namespace),
                        namespace(target.monitoring_namespace),
                    ],
                    "ports": [{"protocol": "TCP", "port": WEB_PORT}],
                }
            ],
        },
    }
    return [deny, web_in]


def service_account(target: Target) -> dict[str, Any]:
    """The pods' identity; no API token is mounted (workers need no Kubernetes API)."""
    return {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": metadata(target, target.release, "identity"),
        "automountServiceAccountToken": False,
    }


def check_target(settings: Settings, target: Target) -> None:
    """Refuse what would render invalid objects, before anything is written.

    Raises:
        ConfigError: naming the option or the `pools.NAME.field` at fault.
    """
    problems = []
    if not DNS_LABEL.match(target.namespace) or len(target.namespace) > 63:
        problems.append(f"--namespace '{target.namespace}' is not a DNS-1123 label")
    if not DNS_LABEL.match(target.release) or len(target.release) > MAX_RELEASE:
        problems.append(
            f"--release '{target.release}' must be a DNS-1123 label of at most {MAX_RELEASE} "
            "characters (object names add '-worker-<pool>')"
        )
    if not target.image.strip() or any(c.isspace() for c in target.image):
        problems.append(f"--image '{target.image}' is not an image reference")
    for name, pool in settings.pools.items():
        if pool.requirements and not pool.image:
            problems.append(
                f"pools.{name}.image: the pool has its own requirements "
                f"({pool.requirements}), so it needs its own image"
            )
        full = f"{target.release}-worker-{name}"
        if len(full) > 63:
            problems.append(f"pools.{name}: the object name '{full}' is over 63 characters")
        for key, value in pool.node_selector.items():
            if len(value) > 63 or (value and not LABEL_VALUE.match(value)):
                problems.append(f"pools.{name}.node_selector.{key}: '{value}' is not a label value")
    if problems:
        raise ConfigError("cannot render Kubernetes manifests:\n  " + "\n  ".join(problems))


def render(
    settings: Settings, target: Target, longest_timeouts: dict[str, float]
) -> dict[str, list[dict[str, Any]]]:
    """Every object, grouped by the file it goes to.

    Raises:
        ConfigError: see `check_target`.
    """
    check_target(settings, target)
    config = config_map(settings, target)
    config_hash = hashlib.sha256(config["data"]["jobyard.toml"].encode()).hexdigest()[:16]
    files: dict[str, list[dict[str, Any]]] = {
        "config.yaml": [config, service_account(target)],
        "web.yaml": web(target, config_hash) + ([ingress(target)] if target.ingress_host else []),
        "network-policies.yaml": network_policies(target),
        "scheduler.yaml": [scheduler(target, config_hash)],
        "disruption-budgets.yaml": disruption_budgets(settings, target),
    }
    for name, pool in settings.pools.items():
        timeout = longest_timeouts.get(name, 3600.0)
        scaler = hpa(name, pool, target) if target.autoscaler == "hpa" else None
        files[f"worker-{name}.yaml"] = [
            worker(name, pool, timeout, target, config_hash),
            scaler or scaled_object(name, pool, target),
        ]
    return files
