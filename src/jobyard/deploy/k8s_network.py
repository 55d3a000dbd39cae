"""NetworkPolicies: deny everything, then allow exactly the flows jobyard needs.

Allowed: the ingress controller and Prometheus → web; web, scheduler and workers → DNS,
the database and the broker; KEDA → the in-cluster database; a pool's workers → the
address ranges listed in its `egress`; pod-per-job launchers → the Kubernetes API; jobyard's
pods → object storage (HTTPS and a custom endpoint's port).
With external (managed) datastores their addresses are unknown here, so egress to them
is allowed by port only.
"""

from __future__ import annotations

from typing import Any

from jobyard.config import Settings
from jobyard.deploy.k8s_meta import (
    CLIENT_COMPONENTS,
    DATABASE_PORT,
    Target,
    components_selector,
    labels,
    metadata,
    release_selector,
)
from jobyard.deploy.k8s_storage import egress_ports

KUBE_API_PORTS = (443, 6443)


def _policy(target: Target, name: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": metadata(target, target.name(name), "network"),
        "spec": spec,
    }


def _namespace(name: str) -> dict[str, Any]:
    return {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": name}}}


def _tcp(*ports: int) -> list[dict[str, Any]]:
    return [{"protocol": "TCP", "port": port} for port in ports]


def _to_datastore(target: Target, component: str, port: int, bundled: bool) -> dict[str, Any]:
    rule: dict[str, Any] = {"ports": _tcp(port)}
    if bundled:
        rule["to"] = [{"podSelector": {"matchLabels": labels(target, component)}}]
    return rule


def _dns() -> dict[str, Any]:
    return {
        "to": [
            {
                "namespaceSelector": {},
                "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}},
            }
        ],
        "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}],
    }


def network_policies(settings: Settings, target: Target) -> list[dict[str, Any]]:
    """Every NetworkPolicy of the release."""
    policies = [
        _policy(
            target,
            "default-deny",
            {
                "podSelector": {"matchLabels": release_selector(target)},
                "policyTypes": ["Ingress", "Egress"],
            },
        ),
        _policy(
            target,
            "web-ingress",
            {
                "podSelector": {"matchLabels": labels(target, "web")},
                "policyTypes": ["Ingress"],
                "ingress": [
                    {
                        "from": [
                            _namespace(target.ingress_namespace),
                            _namespace(target.monitoring_namespace),
                        ],
                        "ports": _tcp(8000),
                    }
                ],
            },
        ),
        _policy(
            target,
            "datastores-egress",
            {
                "podSelector": components_selector(target, CLIENT_COMPONENTS),
                "policyTypes": ["Egress"],
                "egress": [
                    _dns(),
                    _to_datastore(target, "postgres", DATABASE_PORT, target.postgres),
                    _to_datastore(target, "redis", target.broker_port, target.redis),
                ],
            },
        ),
    ]
    storage_ports = egress_ports(settings)
    if storage_ports:  # object storage outside the cluster: by port, its addresses are unknown
        policies.append(
            _policy(
                target,
                "storage-egress",
                {
                    "podSelector": components_selector(target, CLIENT_COMPONENTS),
                    "policyTypes": ["Egress"],
                    "egress": [{"ports": _tcp(*storage_ports)}],
                },
            )
        )
    policies += _datastore_ingress(target)
    for name, pool in settings.pools.items():
        egress: list[dict[str, Any]] = []
        if pool.egress:
            egress.append({"to": [{"ipBlock": {"cidr": cidr}} for cidr in pool.egress]})
        if pool.mode == "pod-per-job":
            egress.append({"ports": _tcp(*KUBE_API_PORTS)})
        if egress:
            policies.append(
                _policy(
                    target,
                    f"worker-{name}-egress",
                    {
                        "podSelector": {"matchLabels": labels(target, "worker", name)},
                        "policyTypes": ["Egress"],
                        "egress": egress,
                    },
                )
            )
    return policies


def _datastore_ingress(target: Target) -> list[dict[str, Any]]:
    """Who may connect to the in-cluster PostgreSQL and Redis."""
    clients = {"podSelector": components_selector(target, CLIENT_COMPONENTS)}
    policies = []
    if target.postgres:
        policies.append(
            _policy(
                target,
                "postgres-ingress",
                {
                    "podSelector": {"matchLabels": labels(target, "postgres")},
                    "policyTypes": ["Ingress"],
                    "ingress": [
                        {
                            "from": [clients, _namespace(target.keda_namespace)],
                            "ports": _tcp(DATABASE_PORT),
                        }
                    ],
                },
            )
        )
    if target.redis:
        policies.append(
            _policy(
                target,
                "redis-ingress",
                {
                    "podSelector": {"matchLabels": labels(target, "redis")},
                    "policyTypes": ["Ingress"],
                    "ingress": [{"from": [clients], "ports": _tcp(target.broker_port)}],
                },
            )
        )
    return policies
