"""What every rendered Kubernetes object shares: the target, names, labels, security.

Names follow `<release>-<component>[-<pool>]`; every object carries the
`app.kubernetes.io/*` labels and workers also `jobyard.io/pool`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

APP_NAME = "jobyard"
DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
LABEL_VALUE = re.compile(r"^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$")
QUANTITY = re.compile(r"^[0-9]+(\.[0-9]+)?(m|k|M|G|T|Ki|Mi|Gi|Ti)?$")
DATABASE_PORT = 5432
REDIS_PORT = 6379
AMQP_PORT = 5672
# Components that run jobyard code and so talk to the database and the broker.
CLIENT_COMPONENTS = ("web", "scheduler", "worker", "db-upgrade")


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
    keda_namespace: str = "keda"
    # In-cluster PostgreSQL / Redis StatefulSets; off means external (managed) services.
    postgres: bool = False
    redis: bool = False
    storage_class: str | None = None
    #: `file://` artifact storage: one ReadWriteMany volume shared by every jobyard pod.
    artifacts_volume: bool = False
    artifacts_storage: str = "20Gi"
    postgres_storage: str = "10Gi"
    redis_storage: str = "2Gi"
    broker_port: int = REDIS_PORT
    monitoring: str = "annotations"  # annotations | operator
    alert_queued_age_s: int = 600
    alert_failure_ratio: float = 0.1

    def name(self, component: str) -> str:
        """The object name of a component."""
        return f"{self.release}-{component}"


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


def release_selector(target: Target) -> dict[str, str]:
    """Matches every pod of this release."""
    return {"app.kubernetes.io/name": APP_NAME, "app.kubernetes.io/instance": target.release}


def components_selector(target: Target, components: tuple[str, ...]) -> dict[str, Any]:
    """Matches the pods of some components of this release."""
    return {
        "matchLabels": release_selector(target),
        "matchExpressions": [
            {
                "key": "app.kubernetes.io/component",
                "operator": "In",
                "values": list(components),
            }
        ],
    }


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


def container_security() -> dict[str, Any]:
    """The restricted Pod Security Standard, container part."""
    return {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "runAsNonRoot": True,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def pod_security(uid: int, gid: int) -> dict[str, Any]:
    """The restricted Pod Security Standard, pod part."""
    return {
        "runAsNonRoot": True,
        "runAsUser": uid,
        "runAsGroup": gid,
        "fsGroup": gid,
        "seccompProfile": {"type": "RuntimeDefault"},
    }
