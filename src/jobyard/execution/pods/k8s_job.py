"""The `batch/v1` Job that runs one attempt of a pod-per-job job on Kubernetes.

Built from the pool (image, resources, node selector, tolerations, GPUs) and the job type
(its own image and resources, when it has them), in the same shape as the manifests of
`jobyard deploy kubernetes`: the pool's labels (so its NetworkPolicy applies), the restricted
security context, no service account token, the config from the release's ConfigMap.
`backoffLimit: 0` because jobyard owns retries; `activeDeadlineSeconds` from the job's
timeout plus the grace; `ttlSecondsAfterFinished` from `launcher.job_ttl_s`.
"""

from __future__ import annotations

import math
import uuid
from typing import Any

from jobyard.app import JobDefinition
from jobyard.config import Settings
from jobyard.config_sections import Resources
from jobyard.deploy import k8s_storage
from jobyard.deploy.k8s_meta import Target, all_labels, container_security, pod_security
from jobyard.deploy.k8s_pods import UID
from jobyard.execution.pods.spec import SPEC_JSON_ENV, LaunchSpec

CONFIG_DIR = "/etc/jobyard"
JOB_ID_LABEL = "jobyard.io/job-id"
ATTEMPT_LABEL = "jobyard.io/attempt"
COMPONENT = "worker"  # job pods are the pool's workload: its NetworkPolicy selects them
DEFAULT_CPU = "250m"
DEFAULT_MEMORY = "512Mi"


def job_name(job_id: str, attempt: int) -> str:
    """`jy-<id hex>-<attempt>`: unique per attempt, within Kubernetes' 63 characters."""
    return f"jy-{uuid.UUID(job_id).hex}-{attempt}"


def target_of(settings: Settings, namespace: str) -> Target:
    """The deploy target the launcher's settings describe."""
    return Target(
        namespace=namespace,
        image=settings.launcher.image or "jobyard:latest",
        release=settings.launcher.release,
        artifacts_volume=k8s_storage.uses_volume(settings),
    )


def pod_labels(target: Target, pool: str, spec: LaunchSpec) -> dict[str, str]:
    return {
        **all_labels(target, COMPONENT, pool),
        JOB_ID_LABEL: spec.job_id,
        ATTEMPT_LABEL: str(spec.attempt),
    }


def job_manifest(
    settings: Settings,
    pool: str,
    definition: JobDefinition | None,
    spec: LaunchSpec,
    namespace: str,
) -> dict[str, Any]:
    """The Job for one attempt."""
    config = settings.pools[pool]
    target = target_of(settings, namespace)
    image = (definition.image if definition else None) or config.image or target.image
    needs = (definition.resources if definition else None) or config.resources
    grace_s = math.ceil(settings.worker.cancel_grace_s)
    labels = pod_labels(target, pool, spec)
    # The job writes artifacts where its launcher's storage is: the same volume, or the
    # object store with the same credentials.
    artifact_volumes, artifact_mounts = k8s_storage.volumes(
        target, settings.storage_url.removeprefix("file://")
    )
    secrets = k8s_storage.env_from(target)
    container = {
        "name": "job",
        "image": image,
        "args": ["run-job", spec.job_id],
        "env": [
            {"name": "JOBYARD_CONFIG", "value": f"{CONFIG_DIR}/jobyard.toml"},
            {"name": SPEC_JSON_ENV, "value": spec.to_json()},
            {"name": "PYTHONUNBUFFERED", "value": "1"},
        ],
        **({"envFrom": secrets} if secrets else {}),
        "resources": resources(needs),
        "securityContext": container_security(),
        "volumeMounts": [
            {"name": "config", "mountPath": CONFIG_DIR, "readOnly": True},
            {"name": "tmp", "mountPath": "/tmp"},
            *artifact_mounts,
        ],
    }
    pod: dict[str, Any] = {
        "restartPolicy": "Never",
        "automountServiceAccountToken": False,
        "serviceAccountName": target.release,
        "terminationGracePeriodSeconds": grace_s,
        "securityContext": pod_security(UID, UID),
        "containers": [container],
        "volumes": [
            {"name": "config", "configMap": {"name": f"{target.release}-config"}},
            {"name": "tmp", "emptyDir": {}},
            *artifact_volumes,
        ],
    }
    if config.node_selector:
        pod["nodeSelector"] = dict(config.node_selector)
    tolerations = [t.model_dump(exclude_none=True) for t in config.tolerations]
    if needs.gpu:
        tolerations.append({"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"})
    if tolerations:
        pod["tolerations"] = tolerations
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": job_name(spec.job_id, spec.attempt),
            "namespace": namespace,
            "labels": labels,
            "annotations": {"jobyard.io/job-type": spec.type[:253]},
        },
        "spec": {
            "backoffLimit": 0,
            "activeDeadlineSeconds": math.ceil(spec.timeout_s) + grace_s,
            "ttlSecondsAfterFinished": settings.launcher.job_ttl_s,
            "template": {"metadata": {"labels": labels}, "spec": pod},
        },
    }


def resources(needs: Resources) -> dict[str, Any]:
    """Requests equal to limits (a job gets what it asked for, never less)."""
    cpu = needs.cpu or DEFAULT_CPU
    memory = needs.memory or DEFAULT_MEMORY
    limits: dict[str, Any] = {"cpu": cpu, "memory": memory}
    if needs.gpu:
        limits["nvidia.com/gpu"] = needs.gpu
    return {"requests": {"cpu": cpu, "memory": memory}, "limits": limits}
