"""The Kubernetes runner of pod-per-job pools, end to end against a loopback Kubernetes API
(`tests.k8s_fake`): a real `jobyard launcher` creates a batch/v1 Job per attempt through the
official client; a kubelet stand-in runs each Job's container as a local process.

No real cluster runs here: scheduling, images, cgroups and the network policies are not
exercised (see the README). What is: the Jobs the launcher creates (validated strictly),
pod phases, logs, OOM kills, image pull errors, cancel by deleting the Job, timeouts, adoption
after a launcher restart, and that the launcher calls exactly what its Role allows.
"""

from __future__ import annotations

import os
import signal
import uuid
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import kubernetes_validate
import pytest

from jobyard.actions import cancel
from jobyard.api.routes.pools import capacity
from jobyard.api.schemas import CapacityPublic
from jobyard.config import Settings
from jobyard.deploy.k8s_access import LAUNCHER_CLUSTER_RULES, LAUNCHER_RULES
from jobyard.domain.states import JobState
from jobyard.store import jobs
from tests import services
from tests.deploy.manifests import VERSIONS
from tests.factories import (
    Backend,
    Stack,
    attempts,
    finished,
    log_lines,
    make_settings,
    settings_env,
    submit_job,
    wait_for,
)
from tests.k8s_fake import FakeCluster

NAMESPACE = "jobs"


@pytest.fixture(scope="module")
def k8s_backend(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Backend]:
    from tests.conftest import _backend

    yield from _backend(request, "postgres-redis", tmp_path_factory.mktemp("backend"))


@pytest.fixture(scope="module")
def k8s_settings(k8s_backend: Backend, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return make_settings(
        k8s_backend,
        tmp_path_factory.mktemp("data"),
        yard="tests.yards.pods:yard",
        pools={
            "pods": {
                "mode": "pod-per-job",
                "max_parallel": 4,
                "resources": {"memory": "1Gi"},
                "node_selector": {"node-role": "jobs"},
            }
        },
        worker={"lease_s": 20.0, "lease_renew_s": 1.0, "cancel_grace_s": 1.0},
        scheduler={"poll_interval_s": 0.2, "lease_s": 2.0, "dispatch_grace_s": 1.0},
        launcher={"runner": "kubernetes", "namespace": NAMESPACE, "poll_s": 0.2},
    )


@pytest.fixture(scope="module")
def cluster(
    k8s_settings: Settings, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[FakeCluster]:
    # What a job pod would get from the ConfigMap and its image; never database credentials.
    env = {k: v for k, v in settings_env(k8s_settings).items() if "_URL" not in k}
    fake = FakeCluster(env, tmp_path_factory.mktemp("node"))
    fake.add_node("gpu-1", {"node-role": "jobs"}, cpu="16", memory="64Gi", gpu=2)
    fake.add_node("web-1", {"node-role": "web"}, cpu="4", memory="8Gi", gpu=0)
    fake.start()
    yield fake
    fake.stop()


@pytest.fixture(scope="module")
def k8s(
    k8s_settings: Settings, cluster: FakeCluster, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    settings = k8s_settings.model_copy(
        update={"launcher": k8s_settings.launcher.model_copy(update={"api_url": cluster.url})}
    )
    stack = Stack(settings, tmp_path_factory.mktemp("logs"))
    try:
        stack.scheduler()
        stack.start("launcher", "launcher", "--pool", "pods")
        yield stack
    finally:
        stack.close()
        services.delete_redis_queues(services.REDIS_URL, settings.queue_prefix)


def test_jobs_run_as_kubernetes_jobs_and_fail_with_what_the_node_said(
    k8s: Stack, cluster: FakeCluster
) -> None:
    ids = {
        "ok": submit_job(k8s, "p.python", delay_s=0.5, steps=2),
        "env": submit_job(k8s, "p.env"),
        "fail": submit_job(k8s, "p.fail"),
        "oom": submit_job(k8s, "p.hog"),
        "unpullable": submit_job(k8s, "p.unpullable"),
        "slow": submit_job(k8s, "p.slow"),
    }
    done = {name: finished(k8s, job_id, timeout_s=60) for name, job_id in ids.items()}

    assert done["ok"].state is JobState.SUCCEEDED, k8s.logs()
    assert done["ok"].progress == 1.0
    assert "did step 2" in log_lines(k8s, ids["ok"])
    assert log_lines(k8s, ids["env"]) == [f"job {ids['env']}", "db=none"]
    assert (done["fail"].state, done["fail"].error) == (JobState.FAILED, "pods fail too")
    assert done["oom"].state is JobState.FAILED
    assert done["oom"].error == (
        "the pod was OOMKilled: the job went over its memory limit (300Mi)"
    )
    assert done["unpullable"].state is JobState.FAILED
    assert "ErrImagePull" in (done["unpullable"].error or "")
    assert done["slow"].error == "timed out after 1.5s"
    assert attempts(k8s, ids["slow"]) == [(1, "timed_out")]

    created = {body["metadata"]["labels"]["jobyard.io/job-id"]: body for body in cluster.created}
    for body in created.values():
        for version in VERSIONS:
            kubernetes_validate.validate(body, version, strict=True)
        spec = body["spec"]
        assert spec["backoffLimit"] == 0 and spec["ttlSecondsAfterFinished"] == 3600
        pod = spec["template"]["spec"]
        assert pod["automountServiceAccountToken"] is False
        assert pod["securityContext"]["runAsNonRoot"] is True
    oom = created[str(ids["oom"])]["spec"]["template"]["spec"]["containers"][0]
    assert oom["resources"]["limits"]["memory"] == "300Mi"  # the job type's, not the pool's
    slow = created[str(ids["slow"])]["spec"]
    assert slow["activeDeadlineSeconds"] == 2 + 1  # the timeout, rounded up, plus the grace
    # Finished Jobs are deleted once their outcome is recorded.
    wait_for(lambda: not cluster.jobs, timeout_s=10, what="finished Jobs to be deleted")


def test_cancel_deletes_the_job_and_a_restarted_launcher_adopts_the_rest(
    k8s: Stack, cluster: FakeCluster, tmp_path: Path
) -> None:
    pid_file = tmp_path / "stubborn.pid"
    stubborn = submit_job(k8s, "p.stubborn", pid_file=str(pid_file))
    long = [submit_job(k8s, "p.python", delay_s=3.0, steps=3) for _ in range(3)]
    wait_for(lambda: pid_file.exists() and pid_file.read_text(), what="the stubborn job's pod")
    pid = int(pid_file.read_text())
    cancel(k8s.runtime, stubborn)
    wait_for(lambda: _gone(pid), timeout_s=15, what="the cancelled pod's process to end")
    wait_for(lambda: attempts(k8s, stubborn), what="the cancelled attempt's record")
    assert attempts(k8s, stubborn) == [(1, "cancelled")]

    def all_running() -> bool:
        return all(jobs.get(k8s.runtime.db, j).state is JobState.RUNNING for j in long)

    wait_for(all_running, timeout_s=30, what="the long jobs to run")
    k8s.stop("launcher", signal.SIGKILL)
    k8s.start("launcher", "launcher", "--pool", "pods")
    done = [finished(k8s, job_id, timeout_s=60) for job_id in long]
    assert [job.state for job in done] == [JobState.SUCCEEDED] * 3, k8s.logs()
    assert [attempts(k8s, job_id) for job_id in long] == [[(1, "succeeded")]] * 3
    for job_id in long:
        steps = [line for line in log_lines(k8s, job_id) if line.startswith("did step")]
        assert steps == ["did step 1", "did step 2", "did step 3"]

    # The launcher called exactly what the Roles rendered by `deploy kubernetes` allow.
    rules = LAUNCHER_RULES + LAUNCHER_CLUSTER_RULES
    allowed = {(verb, rule["resources"][0]) for rule in rules for verb in rule["verbs"]}
    assert set(cluster.requests) == allowed


def test_evictions_and_deadlines_reached_while_no_launcher_ran_are_named(
    k8s: Stack, cluster: FakeCluster
) -> None:
    def running(job_id: uuid.UUID) -> bool:
        return jobs.get(k8s.runtime.db, job_id).state is JobState.RUNNING

    evicted = submit_job(k8s, "p.python", delay_s=20.0)
    wait_for(partial(running, evicted), timeout_s=30, what="the job to evict to run")
    # Submitted only now, and the launcher killed as soon as it runs: a launcher still alive
    # 1.5 s later would end it for its timeout itself, before Kubernetes's deadline does.
    overdue = submit_job(k8s, "p.slow")  # timeout 1.5 s: its Job's deadline is 3 s
    wait_for(partial(running, overdue), timeout_s=30, interval_s=0.05, what="the slow job to run")
    k8s.stop("launcher", signal.SIGKILL)
    cluster.evict(str(evicted))

    def overdue_pod_failed() -> bool:
        with cluster.lock:
            return any(
                p["status"].get("reason") == "DeadlineExceeded" for p in cluster.pods.values()
            )

    wait_for(overdue_pod_failed, timeout_s=15, what="Kubernetes to end the overdue Job")
    k8s.start("launcher", "launcher", "--pool", "pods")
    done = {job_id: finished(k8s, job_id, timeout_s=60) for job_id in (evicted, overdue)}
    assert done[evicted].state is JobState.FAILED
    assert done[evicted].error == "the pod was evicted: The node was low on resource: memory."
    assert done[overdue].state is JobState.FAILED
    assert done[overdue].error == "the Kubernetes Job ran past its activeDeadlineSeconds"


def test_capacity_lists_the_nodes_matching_the_pools_selector(k8s: Stack) -> None:
    def seen() -> list[CapacityPublic]:
        found = [c for c in capacity(k8s.runtime) if c.pool == "pods" and c.nodes]
        return found

    (pods,) = wait_for(seen, timeout_s=20, what="the launcher to record its nodes")
    assert pods.slots == 4
    assert [n.model_dump() for n in pods.nodes or []] == [
        {"name": "gpu-1", "cpu": "16", "memory": "64Gi", "gpu": 2, "ready": True}
    ]


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False
