"""Artifact storage on Kubernetes: a shared volume for `file://`, a Secret and egress for
object storage, and the same for pod-per-job pods."""

from __future__ import annotations

from typing import Any

import kubernetes_validate

from jobyard.config import Settings, load_settings
from jobyard.deploy import kubernetes
from jobyard.deploy.kubernetes import Target
from jobyard.execution.pods.k8s_job import job_manifest
from jobyard.execution.pods.spec import LaunchSpec
from tests.deploy.manifests import SEEDS, VERSIONS, workloads

S3 = {"url": "s3://bucket/jobyard", "options": {"endpoint_url": "http://minio.storage:9000"}}


def settings_with(storage: dict[str, Any] | None = None, **extra: Any) -> Settings:
    values: dict[str, Any] = {"yard": "tests.yards.basic:yard", "pools": SEEDS, **extra}
    if storage is not None:
        values["storage"] = storage
    return load_settings(None, environ={}, **values)


def render(settings: Settings) -> dict[str, list[dict[str, Any]]]:
    return kubernetes.render(settings, Target(image="registry.example.com/app:1.0"), {})


def pod_specs(files: dict[str, list[dict[str, Any]]]) -> dict[str, dict[str, Any]]:
    objects = [o for group in files.values() for o in group]
    return {o["metadata"]["name"]: o["spec"]["template"]["spec"] for o in workloads(objects)}


def test_file_storage_is_one_shared_volume_in_every_pod_that_runs_jobyard_code() -> None:
    files = render(settings_with())
    (claim,) = files["artifacts.yaml"]
    assert claim["kind"] == "PersistentVolumeClaim"
    assert claim["spec"]["accessModes"] == ["ReadWriteMany"]
    for version in VERSIONS:
        kubernetes_validate.validate(claim, version, strict=True)
    for name, pod in pod_specs(files).items():
        (container,) = pod["containers"]
        mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
        env = {e["name"]: e.get("value") for e in container["env"]}
        if "db-upgrade" in name:  # migrations never touch artifacts
            assert "artifacts" not in mounts
            continue
        assert mounts["artifacts"] == "/var/lib/jobyard/artifacts", name
        assert env["JOBYARD_STORAGE__URL"] == "file:///var/lib/jobyard/artifacts", name
        claims = [
            v["persistentVolumeClaim"]["claimName"]
            for v in pod["volumes"]
            if "persistentVolumeClaim" in v
        ]
        assert claims == ["jobyard-artifacts"], name


def test_object_storage_gets_credentials_from_a_secret_and_egress_by_port() -> None:
    files = render(settings_with(S3))
    assert "artifacts.yaml" not in files
    config = files["config.yaml"][0]["data"]["jobyard.toml"]
    assert "s3://bucket/jobyard" in config and "AWS_" not in config
    for name, pod in pod_specs(files).items():
        (container,) = pod["containers"]
        if "db-upgrade" in name:
            continue
        assert container["envFrom"] == [
            {"secretRef": {"name": "jobyard-storage", "optional": True}}
        ], name
        assert all("persistentVolumeClaim" not in v for v in pod["volumes"])
    policies = {
        o["metadata"]["name"]: o["spec"]
        for o in files["network-policies.yaml"]
        if o["kind"] == "NetworkPolicy"
    }
    (rule,) = policies["jobyard-storage-egress"]["egress"]
    assert rule == {"ports": [{"protocol": "TCP", "port": 443}, {"protocol": "TCP", "port": 9000}]}
    assert "jobyard-storage-egress" not in {
        o["metadata"]["name"] for o in render(settings_with())["network-policies.yaml"]
    }


def test_pod_per_job_pods_reach_the_same_storage_as_their_launcher() -> None:
    pools = {**SEEDS, "pods": {"mode": "pod-per-job"}}
    spec = LaunchSpec("01a22ed3-1e97-73c7-beb4-d79b8c2f94bd", 1, "t.echo", {}, 60.0, "n", "", {})
    launcher_env = {"storage": {"url": "file:///var/lib/jobyard/artifacts"}}
    on_volume = job_manifest(settings_with(pools=pools, **launcher_env), "pods", None, spec, "ns")
    pod = on_volume["spec"]["template"]["spec"]
    mounts = {m["name"]: m["mountPath"] for m in pod["containers"][0]["volumeMounts"]}
    assert mounts["artifacts"] == "/var/lib/jobyard/artifacts"
    assert {
        "name": "artifacts",
        "persistentVolumeClaim": {"claimName": "jobyard-artifacts"},
    } in pod["volumes"]
    on_s3 = job_manifest(settings_with(S3, pools=pools), "pods", None, spec, "ns")
    container = on_s3["spec"]["template"]["spec"]["containers"][0]
    assert container["envFrom"] == [{"secretRef": {"name": "jobyard-storage", "optional": True}}]
