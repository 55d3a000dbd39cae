"""Identities and RBAC: as little as the components need.

Web, scheduler and `workers`-mode pools never call the Kubernetes API, so they share a
ServiceAccount with no token mounted and no Role. Only a pool in `pod-per-job` mode runs a
launcher that creates a Job per job and follows its pod and logs; it gets its own
ServiceAccount bound to a Role with exactly those verbs, in this namespace only, plus a
read-only ClusterRole to list nodes (what `/api/v1/capacity` shows for its pool).
"""

from __future__ import annotations

from typing import Any

from jobyard.config import Settings
from jobyard.deploy.k8s_meta import Target, metadata

#: Exactly what `execution.pods.kubernetes.KubernetesRunner` calls (its test checks it).
LAUNCHER_RULES: list[dict[str, Any]] = [
    {"apiGroups": ["batch"], "resources": ["jobs"], "verbs": ["create", "list", "delete"]},
    {"apiGroups": [""], "resources": ["pods"], "verbs": ["list"]},
    {"apiGroups": [""], "resources": ["pods/log"], "verbs": ["get"]},
]
#: Nodes are cluster-wide: listing them (for the capacity view) needs a ClusterRole, read-only.
LAUNCHER_CLUSTER_RULES: list[dict[str, Any]] = [
    {"apiGroups": [""], "resources": ["nodes"], "verbs": ["list"]},
]


def launcher_name(target: Target) -> str:
    """The ServiceAccount, Role and RoleBinding name of pod-per-job launchers."""
    return target.name("launcher")


def uses_launcher(settings: Settings) -> bool:
    """Whether any pool runs one pod per job."""
    return any(pool.mode == "pod-per-job" for pool in settings.pools.values())


def access_objects(settings: Settings, target: Target) -> list[dict[str, Any]]:
    """The ServiceAccounts, plus the launcher's Role and RoleBinding when a pool needs them."""
    objects: list[dict[str, Any]] = [
        {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": metadata(target, target.release, "identity"),
            "automountServiceAccountToken": False,
        }
    ]
    if not uses_launcher(settings):
        return objects
    name = launcher_name(target)
    objects += [
        {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": metadata(target, name, "identity"),
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "Role",
            "metadata": metadata(target, name, "identity"),
            "rules": LAUNCHER_RULES,
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": metadata(target, name, "identity"),
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "Role",
                "name": name,
            },
            "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": target.namespace}],
        },
    ]
    # Cluster-scoped, so named after the namespace too: two releases never share one.
    nodes_name = f"{target.namespace}-{name}-nodes"
    cluster_meta = {
        k: v for k, v in metadata(target, nodes_name, "identity").items() if k != "namespace"
    }
    objects += [
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRole",
            "metadata": cluster_meta,
            "rules": LAUNCHER_CLUSTER_RULES,
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": cluster_meta,
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": nodes_name,
            },
            "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": target.namespace}],
        },
    ]
    return objects
