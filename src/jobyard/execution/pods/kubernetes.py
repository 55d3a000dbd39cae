"""The Kubernetes runner: a `batch/v1` Job per attempt, followed through its pod.

One LIST of the pool's pods and Jobs per `launcher.poll_s` tells what runs and how it ended
(OOMKilled, evicted, image pull errors, the deadline); the pod's log is the job's output
stream (`stream`), read through the API, so job pods need no credentials. Cancel deletes the
Job (Kubernetes stops its pod with SIGTERM, then SIGKILL after the pod's grace). Jobs carry
the `jobyard.io/job-id` and `jobyard.io/attempt` labels, which is how a new launcher finds
them; they keep running while their launcher restarts.
"""

from __future__ import annotations

import json
import logging
import signal
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kubernetes import client, config
from kubernetes.client.exceptions import ApiException
from urllib3.exceptions import HTTPError

from jobyard.app import Yard
from jobyard.config import Settings
from jobyard.errors import UnknownJobType
from jobyard.execution.pods import k8s_job
from jobyard.execution.pods.runner import RunnerUnavailable
from jobyard.execution.pods.spec import SPEC_JSON_ENV, LaunchSpec

log = logging.getLogger(__name__)
SERVICE_ACCOUNT_NAMESPACE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")
IMAGE_ERRORS = {
    "ErrImagePull",
    "ImagePullBackOff",
    "InvalidImageName",
    "ErrImageNeverPull",
    "CreateContainerConfigError",
    "CreateContainerError",
}


@dataclass
class PodJob:
    """One attempt's Kubernetes Job and, once scheduled, its pod."""

    job_id: uuid.UUID
    attempt: int
    name: str
    nonce: str | None = None
    offset: int = 0
    last_read: float = 0.0
    deleted: bool = False


def api_client(settings: Settings) -> client.ApiClient:
    """`launcher.api_url` when set, else the in-cluster service account, else kubeconfig."""
    if settings.launcher.api_url:
        configuration = client.Configuration()
        configuration.host = settings.launcher.api_url
        return client.ApiClient(configuration)
    try:
        config.load_incluster_config()  # type: ignore[no-untyped-call]
    except config.ConfigException:
        config.load_kube_config()  # type: ignore[no-untyped-call]
    return client.ApiClient()


def namespace_of(settings: Settings) -> str:
    if settings.launcher.namespace:
        return settings.launcher.namespace
    try:
        return SERVICE_ACCOUNT_NAMESPACE.read_text(encoding="utf-8").strip()
    except OSError:
        return "default"


class KubernetesRunner:
    """Runs the attempts of one pool as Kubernetes Jobs."""

    def __init__(
        self, settings: Settings, pool: str, yard: Yard, api: client.ApiClient, namespace: str
    ) -> None:
        self.settings = settings
        self.pool = pool
        self.yard = yard
        self.namespace = namespace
        self.batch = client.BatchV1Api(api)
        self.core = client.CoreV1Api(api)
        self.selector = (
            f"app.kubernetes.io/instance={settings.launcher.release},jobyard.io/pool={pool}"
        )
        self._pods: dict[tuple[str, str], Any] = {}
        self._jobs: dict[str, Any] = {}
        self._refreshed_at = float("-inf")

    # -- looking -------------------------------------------------------------------------------

    def refresh(self, *, force: bool = False) -> None:
        """List the pool's pods and Jobs, at most once per `launcher.poll_s`."""
        moment = time.monotonic()
        if not force and moment - self._refreshed_at < self.settings.launcher.poll_s:
            return
        try:
            pods: Any = self.core.list_namespaced_pod(self.namespace, label_selector=self.selector)
            jobs: Any = self.batch.list_namespaced_job(self.namespace, label_selector=self.selector)
        except (ApiException, HTTPError) as exc:
            raise RunnerUnavailable(f"cannot list the pool's pods and Jobs: {_why(exc)}") from exc
        self._pods = {}
        for pod in pods.items:
            labels = pod.metadata.labels or {}
            key = (labels.get(k8s_job.JOB_ID_LABEL, ""), labels.get(k8s_job.ATTEMPT_LABEL, ""))
            if pod.metadata.deletion_timestamp is None or key not in self._pods:
                self._pods[key] = pod
        self._jobs = {job.metadata.name: job for job in jobs.items}
        self._refreshed_at = moment

    def _pod(self, handle: PodJob) -> Any:
        return self._pods.get((str(handle.job_id), str(handle.attempt)))

    # -- the Runner protocol -------------------------------------------------------------------

    def start(self, spec: LaunchSpec) -> PodJob:
        try:
            definition = self.yard.definition(spec.type)
        except UnknownJobType:
            definition = None  # run-job reports the unknown type as the attempt's failure
        body = k8s_job.job_manifest(self.settings, self.pool, definition, spec, self.namespace)
        handle = PodJob(
            uuid.UUID(spec.job_id), spec.attempt, body["metadata"]["name"], nonce=spec.nonce
        )
        try:
            # The client serialises a plain manifest as it is (the same dict the tests validate).
            self.batch.create_namespaced_job(self.namespace, body)  # type: ignore[arg-type]
        except ApiException as exc:
            if exc.status == 409:  # created by a launcher that stopped before it could say so
                return handle
            if exc.status is not None and exc.status >= 500:
                raise RunnerUnavailable(f"cannot create the Job: {_why(exc)}") from exc
            raise OSError(f"Kubernetes refused the Job {handle.name}: {_why(exc)}") from exc
        except HTTPError as exc:
            raise RunnerUnavailable(f"cannot create the Job: {_why(exc)}") from exc
        self._jobs[handle.name] = None  # exists from now on, whatever the next listing says
        return handle

    def discover(self) -> list[PodJob]:
        self.refresh(force=True)
        found = []
        for name, job in self._jobs.items():
            labels = job.metadata.labels or {}
            try:
                handle = PodJob(
                    uuid.UUID(labels[k8s_job.JOB_ID_LABEL]),
                    int(labels[k8s_job.ATTEMPT_LABEL]),
                    name,
                )
            except (KeyError, ValueError):
                continue
            handle.nonce = _nonce(job)
            found.append(handle)
        return found

    def nonce_of(self, handle: PodJob) -> str | None:
        return handle.nonce

    def is_running(self, handle: PodJob) -> bool:
        pod = self._pod(handle)
        if pod is None:
            job = self._jobs.get(handle.name, "gone")
            if handle.deleted or job == "gone":
                return False
            return job is None or not _finished(job)  # its pod is not made yet
        phase = pod.status.phase if pod.status else None
        if phase in ("Succeeded", "Failed"):
            return False
        if phase == "Pending" and _waiting_reason(pod) in IMAGE_ERRORS:
            return False
        return True

    def read(self, handle: PodJob) -> bytes:
        pod = self._pod(handle)
        if pod is None or pod.status is None or pod.status.phase == "Pending":
            return b""
        moment = time.monotonic()
        ended = pod.status.phase in ("Succeeded", "Failed")
        if not ended and moment - handle.last_read < self.settings.launcher.poll_s:
            return b""
        handle.last_read = moment
        try:
            text = self.core.read_namespaced_pod_log(
                pod.metadata.name, self.namespace, container="job"
            )
        except (ApiException, HTTPError) as exc:
            log.debug("cannot read the log of pod %s: %s", pod.metadata.name, _why(exc))
            return b""
        data = text.encode("utf-8") if isinstance(text, str) else bytes(text)
        new, handle.offset = data[handle.offset :], max(handle.offset, len(data))
        return new

    def signal(self, handle: PodJob, signum: signal.Signals) -> None:
        """Delete the Job with its pod: SIGTERM lets the pod's grace run (SIGTERM, then
        SIGKILL from the kubelet); SIGKILL asks for no grace."""
        handle.deleted = True
        grace = 0 if signum == signal.SIGKILL else None
        self._delete(
            lambda: self.batch.delete_namespaced_job(
                handle.name,
                self.namespace,
                propagation_policy="Background",
                grace_period_seconds=grace,
            )
        )

    def describe_end(self, handle: PodJob) -> str:
        pod = self._pod(handle)
        job = self._jobs.get(handle.name)
        if job is not None and _condition_reason(job) == "DeadlineExceeded":
            return "the Kubernetes Job ran past its activeDeadlineSeconds"
        if pod is None:
            return "the job's pod disappeared before reporting an outcome"
        status = pod.status
        if status.reason == "Evicted":
            return f"the pod was evicted: {status.message or 'no reason given'}"
        if status.reason == "DeadlineExceeded":
            return "the Kubernetes Job ran past its activeDeadlineSeconds"
        waiting = _waiting_reason(pod)
        if waiting in IMAGE_ERRORS:
            container = (status.container_statuses or [None])[0]
            message = container.state.waiting.message if container else None
            return f"the pod could not start its container ({waiting}): {message or ''}".strip()
        terminated = _terminated(pod)
        if terminated is not None:
            if terminated.reason == "OOMKilled":
                limit = _memory_limit(pod)
                return f"the pod was OOMKilled: the job went over its memory limit ({limit})"
            return (
                f"the job's container exited with code {terminated.exit_code} "
                f"({terminated.reason or 'no reason'}) before reporting an outcome"
            )
        return "the job's pod ended without reporting an outcome"

    def forget(self, handle: PodJob) -> None:
        self._delete(
            lambda: self.batch.delete_namespaced_job(
                handle.name, self.namespace, propagation_policy="Background"
            )
        )
        self._jobs.pop(handle.name, None)

    def uses_grace_itself(self) -> bool:
        return True

    def keeps_jobs_across_restarts(self) -> bool:
        return True

    def nodes(self) -> list[dict[str, object]] | None:
        """Nodes matching the pool's `node_selector`, with allocatable CPU, memory and GPUs."""
        selector = ",".join(
            f"{k}={v}" for k, v in self.settings.pools[self.pool].node_selector.items()
        )
        try:
            listed: Any = self.core.list_node(label_selector=selector or None)
        except (ApiException, HTTPError) as exc:
            raise RunnerUnavailable(f"cannot list nodes: {_why(exc)}") from exc
        found: list[dict[str, object]] = []
        for node in listed.items:
            allocatable = (node.status.allocatable if node.status else None) or {}
            conditions = (node.status.conditions if node.status else None) or []
            ready = any(c.type == "Ready" and c.status == "True" for c in conditions)
            unschedulable = bool(node.spec and node.spec.unschedulable)
            found.append(
                {
                    "name": node.metadata.name,
                    "cpu": allocatable.get("cpu"),
                    "memory": allocatable.get("memory"),
                    "gpu": int(allocatable.get("nvidia.com/gpu", 0) or 0),
                    "ready": ready and not unschedulable,
                }
            )
        return found

    def _delete(self, call: Any) -> None:
        try:
            call()
        except ApiException as exc:
            if exc.status != 404:
                raise RunnerUnavailable(f"cannot delete: {_why(exc)}") from exc
        except HTTPError as exc:
            raise RunnerUnavailable(f"cannot delete: {_why(exc)}") from exc


def _why(exc: Exception) -> str:
    if isinstance(exc, ApiException):
        try:
            message = json.loads(exc.body or "{}").get("message")
        except ValueError:
            message = None
        return f"{exc.status} {exc.reason}" + (f": {message}" if message else "")
    return str(exc) or type(exc).__name__


def _nonce(job: Any) -> str | None:
    try:
        env = job.spec.template.spec.containers[0].env or []
        text = next(e.value for e in env if e.name == SPEC_JSON_ENV)
        return LaunchSpec.from_json(text).nonce
    except (AttributeError, IndexError, StopIteration, ValueError, KeyError, TypeError):
        return None


def _finished(job: Any) -> bool:
    return _condition_reason(job) is not None or bool(
        job.status and (job.status.succeeded or job.status.failed)
    )


def _condition_reason(job: Any) -> str | None:
    for condition in (job.status.conditions if job and job.status else None) or []:
        if condition.type in ("Failed", "Complete") and condition.status == "True":
            return str(condition.reason or condition.type)
    return None


def _container(pod: Any) -> Any:
    statuses = pod.status.container_statuses if pod.status else None
    return statuses[0] if statuses else None


def _waiting_reason(pod: Any) -> str | None:
    container = _container(pod)
    if container is None or container.state is None or container.state.waiting is None:
        return None
    return str(container.state.waiting.reason)


def _terminated(pod: Any) -> Any:
    container = _container(pod)
    if container is None or container.state is None:
        return None
    return container.state.terminated


def _memory_limit(pod: Any) -> str:
    try:
        return str(pod.spec.containers[0].resources.limits["memory"])
    except (AttributeError, IndexError, KeyError, TypeError):
        return "unknown"
