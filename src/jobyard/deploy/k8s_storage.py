"""Artifact storage on Kubernetes: a shared volume for `file://` storage, credentials from a
Secret for object storage, and the egress object storage needs.

`file://` storage becomes a ReadWriteMany PersistentVolumeClaim mounted at the same path by
web (downloads), the scheduler (retention), every worker and launcher, and pod-per-job pods,
so an artifact written by one is readable by all. Object storage needs no volume; its
credentials come from the optional Secret `<release>-storage` (AWS_ACCESS_KEY_ID, …), never
from the ConfigMap.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from jobyard.config import Settings
from jobyard.deploy.k8s_meta import Target, metadata

#: Where `file://` artifact storage is mounted in every pod.
ARTIFACTS_PATH = "/var/lib/jobyard/artifacts"
HTTPS_PORT = 443


def uses_volume(settings: Settings) -> bool:
    """Whether artifacts are files (a shared volume) rather than objects."""
    return settings.storage_url.startswith("file://")


def claim_name(target: Target) -> str:
    return f"{target.release}-artifacts"


def secret_name(target: Target) -> str:
    return f"{target.release}-storage"


def claim(target: Target) -> dict[str, Any]:
    """The ReadWriteMany volume that `file://` storage lives on."""
    spec: dict[str, Any] = {
        "accessModes": ["ReadWriteMany"],
        "resources": {"requests": {"storage": target.artifacts_storage}},
    }
    if target.storage_class:
        spec["storageClassName"] = target.storage_class
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": metadata(target, claim_name(target), "artifacts"),
        "spec": spec,
    }


def env(target: Target) -> list[dict[str, Any]]:
    """The storage URL pods use when artifacts are on the shared volume."""
    if not target.artifacts_volume:
        return []
    return [{"name": "JOBYARD_STORAGE__URL", "value": f"file://{ARTIFACTS_PATH}"}]


def env_from(target: Target) -> list[dict[str, Any]]:
    """Object storage credentials, from a Secret the operator creates (optional)."""
    if target.artifacts_volume:
        return []
    return [{"secretRef": {"name": secret_name(target), "optional": True}}]


def volumes(target: Target, path: str = ARTIFACTS_PATH) -> tuple[list[Any], list[Any]]:
    """(volumes, volumeMounts) that give a pod the shared artifact volume at `path`."""
    if not target.artifacts_volume:
        return [], []
    volume = {"name": "artifacts", "persistentVolumeClaim": {"claimName": claim_name(target)}}
    return [volume], [{"name": "artifacts", "mountPath": path}]


def egress_ports(settings: Settings) -> list[int]:
    """Ports pods must reach for object storage: HTTPS, and a custom endpoint's port."""
    if uses_volume(settings):
        return []
    ports = {HTTPS_PORT}
    endpoint = settings.storage.options.get("endpoint_url")
    if isinstance(endpoint, str):
        parts = urlsplit(endpoint)
        if parts.port:
            ports.add(parts.port)
        elif parts.scheme == "http":
            ports.add(80)
    return sorted(ports)
