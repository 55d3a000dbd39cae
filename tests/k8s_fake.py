"""A loopback Kubernetes API server with a kubelet stand-in, for the Kubernetes runner's tests.

It speaks the real HTTP API the official client uses (batch/v1 Jobs, v1 Pods and their logs),
so the runner runs unchanged against it. The kubelet stand-in runs each created Job's
container as a local process (`python -m jobyard ARGS`, the image's entrypoint), turns its
output into the pod's log and its end into the pod's phase, and enforces what a real node
would: the memory limit (a process group over it is killed and reported `OOMKilled`), the
Job's `activeDeadlineSeconds` (`DeadlineExceeded`), and deletion (SIGTERM, then SIGKILL after
`terminationGracePeriodSeconds`). An image named `…does-not-exist…` never pulls
(`ErrImagePull`). Every request is recorded as (verb, resource) for the RBAC check.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

_JOBS = re.compile(r"^/apis/batch/v1/namespaces/([^/]+)/jobs(?:/([^/]+))?$")
_PODS = re.compile(r"^/api/v1/namespaces/([^/]+)/pods(?:/([^/]+))?(/log)?$")
_NODES = re.compile(r"^/api/v1/nodes$")
_UNITS = {"Ki": 1 << 10, "Mi": 1 << 20, "Gi": 1 << 30, "k": 10**3, "M": 10**6, "G": 10**9}


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _bytes(quantity: str) -> int:
    for unit, factor in _UNITS.items():
        if quantity.endswith(unit):
            return int(float(quantity[: -len(unit)]) * factor)
    return int(float(quantity))


def _matches(labels: Mapping[str, str], selector: str | None) -> bool:
    if not selector:
        return True
    for term in selector.split(","):
        key, _, value = term.partition("=")
        if labels.get(key) != value:
            return False
    return True


class FakeCluster:
    """The API objects, the kubelet stand-in and the HTTP server, on 127.0.0.1."""

    def __init__(self, base_env: Mapping[str, str], workdir: Path) -> None:
        self.base_env = dict(base_env)
        self.workdir = workdir
        self.jobs: dict[str, dict[str, Any]] = {}
        self.nodes: dict[str, dict[str, Any]] = {}
        self.evicted: set[str] = set()
        self.pods: dict[str, dict[str, Any]] = {}
        self.logs: dict[str, bytearray] = {}
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self.requests: list[tuple[str, str]] = []
        self.created: list[dict[str, Any]] = []
        self.lock = threading.RLock()
        self.server = ThreadingHTTPServer(
            ("127.0.0.1", 0), type("Handler", (_Handler,), {"cluster": self})
        )
        self.server.daemon_threads = True
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def start(self) -> FakeCluster:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        with self.lock:
            running = list(self.processes.values())
        for process in running:
            _kill_group(process, signal.SIGKILL)
            process.wait()
            if process.stdout is not None:
                process.stdout.close()

    def add_node(self, name: str, labels: dict[str, str], cpu: str, memory: str, gpu: int) -> None:
        allocatable = {"cpu": cpu, "memory": memory, "pods": "110"}
        if gpu:
            allocatable["nvidia.com/gpu"] = str(gpu)
        self.nodes[name] = {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {"name": name, "labels": labels, "uid": str(uuid.uuid4())},
            "spec": {},
            "status": {
                "allocatable": allocatable,
                "conditions": [{"type": "Ready", "status": "True"}],
            },
        }

    # -- API verbs -----------------------------------------------------------------------------

    def create_job(self, namespace: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        name = body["metadata"]["name"]
        with self.lock:
            if name in self.jobs:
                return 409, _status(409, "AlreadyExists", f'jobs.batch "{name}" already exists')
            job = json.loads(json.dumps(body))
            job["metadata"].update(namespace=namespace, uid=str(uuid.uuid4()))
            job["metadata"]["creationTimestamp"] = _now()
            job["status"] = {"active": 1, "startTime": _now()}
            self.jobs[name] = job
            self.created.append(body)
            pod_name = f"{name}-{uuid.uuid4().hex[:5]}"
            template = job["spec"]["template"]
            labels = {**template["metadata"]["labels"], "job-name": name}
            pod = {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {
                    "name": pod_name,
                    "namespace": namespace,
                    "labels": labels,
                    "uid": str(uuid.uuid4()),
                    "creationTimestamp": _now(),
                },
                "spec": template["spec"],
                "status": {"phase": "Pending"},
            }
            self.pods[pod_name] = pod
            self.logs[pod_name] = bytearray()
        threading.Thread(target=self._kubelet, args=(name, pod_name), daemon=True).start()
        return 201, job

    def delete_job(self, name: str, grace_s: int | None) -> tuple[int, dict[str, Any]]:
        with self.lock:
            job = self.jobs.pop(name, None)
            if job is None:
                return 404, _status(404, "NotFound", f'jobs.batch "{name}" not found')
            pods = [p for p in self.pods.values() if p["metadata"]["labels"]["job-name"] == name]
            for pod in pods:
                pod["metadata"]["deletionTimestamp"] = _now()
        for pod in pods:
            default = pod["spec"].get("terminationGracePeriodSeconds", 30)
            threading.Thread(
                target=self._terminate,
                args=(pod["metadata"]["name"], default if grace_s is None else grace_s),
                daemon=True,
            ).start()
        return 200, _status(200, "Success", "deleted")

    def list(
        self, objects: dict[str, dict[str, Any]], kind: str, selector: str | None
    ) -> dict[str, Any]:
        with self.lock:
            items = [
                json.loads(json.dumps(o))
                for o in objects.values()
                if _matches(o["metadata"].get("labels", {}), selector)
            ]
        group = "batch/v1" if kind == "JobList" else "v1"
        return {"apiVersion": group, "kind": kind, "metadata": {}, "items": items}

    # -- the kubelet stand-in ------------------------------------------------------------------

    def _kubelet(self, job_name: str, pod_name: str) -> None:
        with self.lock:
            pod = self.pods[pod_name]
            container = pod["spec"]["containers"][0]
            deadline_s = self.jobs[job_name]["spec"].get("activeDeadlineSeconds")
        if "does-not-exist" in container["image"]:
            message = f'failed to pull image "{container["image"]}": not found'
            self._set_state(
                pod_name, "Pending", {"waiting": {"reason": "ErrImagePull", "message": message}}
            )
            return
        env = {**self.base_env}
        env.update({e["name"]: e["value"] for e in container.get("env", [])})
        env.pop("JOBYARD_CONFIG", None)  # the ConfigMap: its settings are in base_env here
        process = subprocess.Popen(
            [sys.executable, "-m", "jobyard", *container["args"]],
            env=env,
            cwd=self.workdir,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        with self.lock:
            self.processes[pod_name] = process
        self._set_state(pod_name, "Running", {"running": {"startedAt": _now()}})
        reader = threading.Thread(target=self._collect, args=(pod_name, process), daemon=True)
        reader.start()
        limit = _bytes(container["resources"]["limits"]["memory"])
        started = time.monotonic()
        reason = None
        while process.poll() is None:
            if _group_rss(process.pid) > limit:
                reason = "OOMKilled"
            elif deadline_s is not None and time.monotonic() - started > deadline_s:
                reason = "DeadlineExceeded"
            if reason:
                _kill_group(process, signal.SIGKILL)
                break
            time.sleep(0.05)
        code = process.wait()
        reader.join(5)
        if process.stdout is not None:
            process.stdout.close()
        self._finish(job_name, pod_name, code, reason)

    def _collect(self, pod_name: str, process: subprocess.Popen[bytes]) -> None:
        assert process.stdout is not None
        try:
            for line in process.stdout:
                with self.lock:
                    self.logs[pod_name] += line
        except (ValueError, OSError):  # closed by stop() while a grandchild held the pipe
            return

    def _finish(self, job_name: str, pod_name: str, code: int, reason: str | None) -> None:
        exit_code = 128 - code if code < 0 else code
        terminated = {
            "exitCode": exit_code,
            "reason": reason if reason == "OOMKilled" else ("Completed" if code == 0 else "Error"),
            "startedAt": _now(),
            "finishedAt": _now(),
        }
        phase = "Succeeded" if code == 0 and reason is None else "Failed"
        with self.lock:
            pod = self.pods.get(pod_name)
            if pod is None:
                return
            self._set_state(pod_name, phase, {"terminated": terminated})
            if reason == "DeadlineExceeded":
                pod["status"]["reason"] = "DeadlineExceeded"
            if pod_name in self.evicted:
                pod["status"].update(
                    phase="Failed",
                    reason="Evicted",
                    message="The node was low on resource: memory.",
                )
            job = self.jobs.get(job_name)
            if job is not None:
                condition = "Complete" if phase == "Succeeded" else "Failed"
                job["status"] = {
                    "succeeded" if phase == "Succeeded" else "failed": 1,
                    "conditions": [
                        {
                            "type": condition,
                            "status": "True",
                            "reason": reason
                            or ("Completed" if phase == "Succeeded" else "BackoffLimitExceeded"),
                        }
                    ],
                }

    def _terminate(self, pod_name: str, grace_s: int) -> None:
        with self.lock:
            process = self.processes.get(pod_name)
        if process is not None and process.poll() is None:
            _kill_group(process, signal.SIGTERM)
            try:
                process.wait(grace_s)
            except subprocess.TimeoutExpired:
                _kill_group(process, signal.SIGKILL)
                process.wait()
        time.sleep(0.2)  # the pod object outlives its process for a moment, as on a node
        with self.lock:
            self.pods.pop(pod_name, None)

    def _set_state(self, pod_name: str, phase: str, state: dict[str, Any]) -> None:
        with self.lock:
            pod = self.pods.get(pod_name)
            if pod is None:
                return
            container = pod["spec"]["containers"][0]
            pod["status"] = {
                "phase": phase,
                "containerStatuses": [
                    {
                        "name": container["name"],
                        "image": container["image"],
                        "imageID": "",
                        "ready": phase == "Running",
                        "restartCount": 0,
                        "state": state,
                    }
                ],
            }

    def evict(self, job_id: str) -> None:
        """What node pressure does: the pod is marked Evicted and its container killed."""
        with self.lock:
            name = next(
                n
                for n, p in self.pods.items()
                if p["metadata"]["labels"].get("jobyard.io/job-id") == job_id
            )
            self.evicted.add(name)
            process = self.processes[name]
        _kill_group(process, signal.SIGKILL)


def _status(code: int, reason: str, message: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Status",
        "metadata": {},
        "status": "Success" if code < 300 else "Failure",
        "reason": reason,
        "message": message,
        "code": code,
    }


def _kill_group(process: subprocess.Popen[bytes], signum: int) -> None:
    try:
        os.killpg(process.pid, signum)
    except ProcessLookupError:
        pass


def _group_rss(pgid: int) -> int:
    total = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            if int(stat[2]) != pgid:
                continue
            total += int(stat[21]) * os.sysconf("SC_PAGE_SIZE")
        except (OSError, IndexError, ValueError):
            continue
    return total


class _Handler(BaseHTTPRequestHandler):
    cluster: FakeCluster

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _send(self, code: int, body: Any, content_type: str = "application/json") -> None:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _route(self, method: str) -> None:
        url = urlparse(self.path)
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length) or b"{}") if length else {}
        if match := _JOBS.match(url.path):
            namespace, name = match.groups()
            self._jobs(method, namespace, name, query, body)
        elif _NODES.match(url.path) and method == "GET":
            self.cluster.requests.append(("list", "nodes"))
            self._send(
                200, self.cluster.list(self.cluster.nodes, "NodeList", query.get("labelSelector"))
            )
        elif match := _PODS.match(url.path):
            namespace, name, log = match.groups()
            self._pods(method, name, log, query)
        else:
            self._send(404, _status(404, "NotFound", url.path))

    def _jobs(
        self,
        method: str,
        namespace: str,
        name: str | None,
        query: dict[str, str],
        body: dict[str, Any],
    ) -> None:
        if method == "POST" and name is None:
            self.cluster.requests.append(("create", "jobs"))
            self._send(*self.cluster.create_job(namespace, body))
        elif method == "GET" and name is None:
            self.cluster.requests.append(("list", "jobs"))
            self._send(
                200, self.cluster.list(self.cluster.jobs, "JobList", query.get("labelSelector"))
            )
        elif method == "DELETE" and name is not None:
            self.cluster.requests.append(("delete", "jobs"))
            grace = query.get("gracePeriodSeconds", body.get("gracePeriodSeconds"))
            self._send(*self.cluster.delete_job(name, None if grace is None else int(grace)))
        else:
            self.cluster.requests.append((method.lower(), "jobs"))
            self._send(405, _status(405, "MethodNotAllowed", method))

    def _pods(self, method: str, name: str | None, log: str | None, query: dict[str, str]) -> None:
        if method == "GET" and name is None:
            self.cluster.requests.append(("list", "pods"))
            self._send(
                200, self.cluster.list(self.cluster.pods, "PodList", query.get("labelSelector"))
            )
        elif method == "GET" and log:
            self.cluster.requests.append(("get", "pods/log"))
            with self.cluster.lock:
                data = bytes(self.cluster.logs.get(name or "", b""))
            self._send(200, data, "text/plain")
        else:
            self.cluster.requests.append((method.lower(), "pods"))
            self._send(405, _status(405, "MethodNotAllowed", method))

    def do_GET(self) -> None:
        self._route("GET")

    def do_POST(self) -> None:
        self._route("POST")

    def do_DELETE(self) -> None:
        self._route("DELETE")
