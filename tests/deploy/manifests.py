"""Rendering the seeds' pools for the deploy tests, and checks of custom resources."""

from __future__ import annotations

import re
from typing import Any

import kubernetes_validate

from jobyard.config import Settings, load_settings
from jobyard.deploy import kubernetes
from jobyard.deploy.kubernetes import Target

VERSIONS = ["1.29.0", kubernetes_validate.latest_version()]
DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
SEEDS = {
    "general": {
        "concurrency": 8,
        "celery_pool": "threads",
        "node_selector": {"node-role": "low-cpu"},
        "resources": {"cpu": "500m", "memory": "512Mi"},
        "egress": ["0.0.0.0/0"],
    },
    "media": {
        "concurrency": 2,
        "resources": {"cpu": "4", "memory": "8Gi"},
        "node_selector": {"node-role": "high-cpu"},
        "tolerations": [{"key": "dedicated", "value": "media", "effect": "NoSchedule"}],
        "autoscale": {"min_replicas": 0, "max_replicas": 10},
    },
    "vision": {
        "concurrency": 1,
        "resources": {"cpu": "2", "memory": "16Gi", "gpu": 1},
        "image": "registry.example.com/vision:1.0",
        "autoscale": {"min_replicas": 0, "max_replicas": 4},
    },
}


def seeds_settings() -> Settings:
    return load_settings(None, environ={}, yard="tests.yards.basic:yard", pools=SEEDS)


def rendered(**target: Any) -> list[dict[str, Any]]:
    chosen = Target(image="registry.example.com/app:1.0", **target)
    files = kubernetes.render(seeds_settings(), chosen, {"media": 900.0})
    return [obj for objects in files.values() for obj in objects]


ALTERNATIVES = [
    {},
    {"autoscaler": "hpa", "ingress_host": "jobs.example.com", "ingress_class": "nginx"},
    {"postgres": True, "redis": True, "monitoring": "operator", "storage_class": "fast-ssd"},
]
CUSTOM_GROUPS = ("keda.sh/", "monitoring.coreos.com/")


def workloads(objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Deployments, StatefulSets and Jobs: everything that runs pods."""
    return [o for o in objects if o["kind"] in {"Deployment", "StatefulSet", "Job"}]


def core(objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [o for o in objects if not o["apiVersion"].startswith(CUSTOM_GROUPS)]


def validate_crd(model_class: Any, obj: dict[str, Any]) -> None:
    """Validate a custom resource against models generated from its CRD (KEDA, Prometheus
    Operator): types must fit, and no field may be unknown (the models drop unknown keys, so
    a lossy round trip is an error)."""
    model = model_class.model_validate(obj)
    back = model.model_dump(by_alias=True, exclude_none=True, mode="json")
    if back != obj:
        raise ValueError(f"fields KEDA does not know: {_lost(obj, back)}")


def _lost(given: Any, kept: Any, path: str = "") -> list[str]:
    if isinstance(given, dict) and isinstance(kept, dict):
        lost = [f"{path}.{key}" for key in given if key not in kept]
        for key in given:
            if key in kept:
                lost += _lost(given[key], kept[key], f"{path}.{key}")
        return lost
    if isinstance(given, list) and isinstance(kept, list):
        return [x for a, b in zip(given, kept, strict=False) for x in _lost(a, b, path)]
    return [] if given == kept else [path]
