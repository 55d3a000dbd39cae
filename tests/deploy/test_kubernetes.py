"""Kubernetes manifests, validated offline and strictly, plus what schemas cannot check."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from jobyard.config import load_settings
from jobyard.deploy import kubernetes
from jobyard.deploy.kubernetes import Target
from tests.deploy.manifests import (
    ALTERNATIVES,
    DNS_LABEL,
    SEEDS,
    VERSIONS,
    core,
    rendered,
    validate_crd,
    workloads,
)
from tests.factories import ROOT


@pytest.mark.parametrize("target", ALTERNATIVES)
@pytest.mark.parametrize("version", VERSIONS)
def test_every_core_object_passes_strict_validation(version: str, target: dict[str, Any]) -> None:
    for obj in core(rendered(**target)):
        kubernetes_validate.validate(obj, version, strict=True)


def test_strict_validation_can_fail() -> None:
    broken = core(rendered())[0] | {"spec": {"replicaz": 1}}
    broken["kind"] = "Deployment"
    broken["apiVersion"] = "apps/v1"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, VERSIONS[-1], strict=True)


def test_names_labels_and_selectors() -> None:
    objects = rendered()
    for obj in objects:
        assert DNS_LABEL.match(obj["metadata"]["name"]) and len(obj["metadata"]["name"]) <= 63
        for value in obj["metadata"]["labels"].values():
            assert len(value) <= 63
    deployments = workloads(objects)
    for deployment in deployments:
        if deployment["kind"] == "Job":
            continue  # a Job's selector is generated
        selector = deployment["spec"]["selector"]["matchLabels"]
        pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert selector.items() <= pod_labels.items()
    for obj in objects:
        if obj["kind"] in {"Service", "PodDisruptionBudget"}:
            wanted = obj["spec"]["selector"]
            wanted = wanted.get("matchLabels", wanted)
            assert any(
                wanted.items() <= d["spec"]["template"]["metadata"]["labels"].items()
                for d in deployments
            ), obj["metadata"]["name"]


def test_containers_have_requests_limits_probes_and_restricted_security() -> None:
    for workload in workloads(rendered(postgres=True, redis=True)):
        pod = workload["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["automountServiceAccountToken"] is False
        for container in pod["containers"] + pod.get("initContainers", []):
            assert container["resources"]["requests"] and container["resources"]["limits"]
            context = container["securityContext"]
            assert context["readOnlyRootFilesystem"] and not context["allowPrivilegeEscalation"]
            assert context["capabilities"]["drop"] == ["ALL"]
        if workload["kind"] != "Job":
            assert "livenessProbe" in pod["containers"][0], workload["metadata"]["name"]


def test_the_schema_is_upgraded_once_per_image_and_pods_wait_for_it() -> None:
    objects = rendered()
    jobs = [o for o in objects if o["kind"] == "Job"]
    assert len(jobs) == 1
    job = jobs[0]
    assert job["spec"]["template"]["spec"]["containers"][0]["args"] == ["db", "upgrade"]
    assert job["spec"]["template"]["spec"]["restartPolicy"] == "Never"
    assert job["spec"]["ttlSecondsAfterFinished"] and job["spec"]["activeDeadlineSeconds"]
    other = next(o for o in rendered(version="0.2.0") if o["kind"] == "Job")
    assert other["metadata"]["name"] != job["metadata"]["name"]  # immutable pods: a new Job
    for workload in workloads(objects):
        if workload["kind"] == "Deployment":
            init = workload["spec"]["template"]["spec"]["initContainers"]
            assert [c["args"][:2] for c in init] == [["db", "wait"]]
            assert (
                init[0]["image"] == workload["spec"]["template"]["spec"]["containers"][0]["image"]
            )


def test_workers_scaled_by_keda_on_queued_and_running_jobs() -> None:
    objects = rendered()
    scaled = {
        o["spec"]["scaleTargetRef"]["name"]: o for o in objects if o["kind"] == "ScaledObject"
    }
    workers = [d for d in workloads(objects) if "-worker-" in d["metadata"]["name"]]
    assert {w["metadata"]["name"] for w in workers} == set(scaled)
    for deployment in workers:
        assert "replicas" not in deployment["spec"]  # KEDA owns it
        trigger = scaled[deployment["metadata"]["name"]]["spec"]["triggers"][0]
        assert trigger["type"] == "postgresql"
        assert "state IN ('queued', 'running')" in trigger["metadata"]["query"]
    media = scaled["jobyard-worker-media"]["spec"]
    assert (media["minReplicaCount"], media["maxReplicaCount"]) == (0, 10)


def test_scheduler_is_one_recreated_replica() -> None:
    scheduler = next(
        d for d in workloads(rendered()) if d["metadata"]["name"] == "jobyard-scheduler"
    )
    assert scheduler["spec"]["replicas"] == 1
    assert scheduler["spec"]["strategy"] == {"type": "Recreate"}


def test_pool_placement_gpu_image_and_grace() -> None:
    by_name = {d["metadata"]["name"]: d for d in workloads(rendered())}
    media = by_name["jobyard-worker-media"]["spec"]["template"]["spec"]
    assert media["nodeSelector"] == {"node-role": "high-cpu"}
    assert media["terminationGracePeriodSeconds"] == 900 + 30
    assert media["containers"][0]["resources"]["requests"] == {"cpu": "4", "memory": "8Gi"}
    vision = by_name["jobyard-worker-vision"]["spec"]["template"]["spec"]
    assert vision["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == 1
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in vision[
        "tolerations"
    ]
    assert vision["containers"][0]["image"] == "registry.example.com/vision:1.0"
    assert (
        by_name["jobyard-worker-general"]["spec"]["template"]["spec"]["containers"][0]["image"]
        == "registry.example.com/app:1.0"
    )


def test_secrets_are_referenced_never_rendered() -> None:
    settings = load_settings(
        None,
        environ={},
        yard="tests.yards.basic:yard",
        pools=SEEDS,
        database_url="postgresql://jobyard:s3cret@db/jobyard",
        broker_url="redis://:hunter2@redis:6379/0",
    )
    files = kubernetes.render(settings, Target(), {})
    text = yaml.safe_dump_all([o for objects in files.values() for o in objects])
    assert "s3cret" not in text and "hunter2" not in text
    assert "secretKeyRef" in text


def test_deploy_kubernetes_command_writes_files(tmp_path: Path) -> None:
    config = tmp_path / "jobyard.toml"
    config.write_text(
        'yard = "tests.yards.basic:yard"\n'
        + "".join(
            f'[pools.{name}]\nresources = {{ cpu = "1", memory = "1Gi" }}\n'
            for name in ("general", "media", "bulk", "io")
        ),
        encoding="utf-8",
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("JOBYARD_")}
    env["PYTHONPATH"] = str(ROOT)
    out = tmp_path / "k8s"
    done = subprocess.run(
        [sys.executable, "-m", "jobyard", "--config", str(config), "deploy", "kubernetes",
         "--out", str(out), "--namespace", "jobs", "--image", "example/app:2"],
        env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    names = sorted(p.name for p in out.iterdir())
    assert "kustomization.yaml" in names and "worker-media.yaml" in names
    kustomization = yaml.safe_load((out / "kustomization.yaml").read_text())
    assert kustomization["labels"][0]["includeSelectors"] is False
    for name in names:
        if name.endswith(".yaml") and name != "kustomization.yaml":
            for obj in yaml.safe_load_all((out / name).read_text()):
                assert obj["metadata"]["namespace"] == "jobs"
    assert set(kustomization["resources"]) == set(names) - {
        "kustomization.yaml",
        "grafana-dashboard.json",
    }
    assert json.loads((out / "grafana-dashboard.json").read_text())["panels"]


def test_hpa_alternative_and_ingress() -> None:
    objects = rendered(autoscaler="hpa", ingress_host="jobs.example.com", ingress_class="nginx")
    assert not [o for o in objects if o["kind"] == "ScaledObject"]
    autoscalers = [o for o in objects if o["kind"] == "HorizontalPodAutoscaler"]
    assert len(autoscalers) == len(SEEDS)
    workers = {
        d["metadata"]["name"] for d in workloads(objects) if "-worker-" in d["metadata"]["name"]
    }
    assert {h["spec"]["scaleTargetRef"]["name"] for h in autoscalers} == workers
    route = next(o for o in objects if o["kind"] == "Ingress")
    assert route["spec"]["ingressClassName"] == "nginx"
    assert route["spec"]["rules"][0]["host"] == "jobs.example.com"


def test_network_policies_deny_by_default_and_cover_every_component() -> None:
    objects = rendered()
    policies = [o for o in objects if o["kind"] == "NetworkPolicy"]
    deny = next(p for p in policies if "ingress" not in p["spec"])
    for deployment in workloads(objects):
        pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert deny["spec"]["podSelector"]["matchLabels"].items() <= pod_labels.items()
    allowed = [p for p in policies if "ingress" in p["spec"]]
    assert [
        p["spec"]["podSelector"]["matchLabels"]["app.kubernetes.io/component"] for p in allowed
    ] == ["web"]


def test_scaled_objects_match_the_keda_crd() -> None:
    from cloudcoil.models.keda.v1alpha1 import ScaledObject

    scaled = [o for o in rendered() if o["kind"] == "ScaledObject"]
    assert len(scaled) == len(SEEDS)
    for obj in scaled:
        validate_crd(ScaledObject, obj)


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda spec: spec.update(pollingIntervall=5), "pollingIntervall"),
        (lambda spec: spec.update(minReplicaCount="one"), "minReplicaCount"),
        (lambda spec: spec["triggers"][0].pop("type"), "type"),
    ],
)
def test_the_keda_check_can_fail(mutate: Any, message: str) -> None:
    from cloudcoil.models.keda.v1alpha1 import ScaledObject

    obj = next(o for o in rendered() if o["kind"] == "ScaledObject")
    mutate(obj["spec"])
    with pytest.raises(ValueError, match=message):
        validate_crd(ScaledObject, obj)


@pytest.mark.parametrize(
    ("pools", "target", "message"),
    [
        (
            {"media": {"requirements": "media.txt"}},
            {},
            r"pools\.media\.image: the pool has its own",
        ),
        ({"general": {}}, {"namespace": "Jobs_Prod"}, "--namespace 'Jobs_Prod'"),
        ({"general": {}}, {"release": "x" * 21}, "--release"),
        ({"general": {}}, {"image": "two words"}, "--image 'two words'"),
        (
            {"general": {"node_selector": {"role": "v" * 64}}},
            {},
            r"pools\.general\.node_selector\.role",
        ),
        (
            {"a" + "b" * 39: {}},
            {"release": "r" * 20},
            "is over 63 characters",
        ),
        ({"general": {}}, {}, r"pools\.general\.resources\.cpu is missing"),
        (
            {"general": {"resources": {"cpu": "1"}}},
            {},
            r"pools\.general\.resources\.memory is missing",
        ),
        (
            {"vision": {"image": "Registry/UPPER case:1"}},
            {},
            r"pools\.vision\.image: 'Registry/UPPER case:1' is not an image reference",
        ),
        (
            {"general": {"node_selector": {"bad key!": "x"}}},
            {},
            r"pools\.general\.node_selector: 'bad key!' is not a label key",
        ),
        ({"general": {}}, {"postgres_storage": "lots"}, "--postgres-storage 'lots'"),
        ({"general": {}}, {"monitoring": "datadog"}, "--monitoring 'datadog'"),
    ],
)
def test_bad_deploy_input_is_refused_before_writing(
    pools: dict[str, Any], target: dict[str, Any], message: str, tmp_path: Path
) -> None:
    from jobyard.errors import ConfigError

    settings = load_settings(None, environ={}, yard="tests.yards.basic:yard", pools=pools)
    with pytest.raises(ConfigError, match=message):
        kubernetes.render(settings, Target(**target), {})
    assert list(tmp_path.iterdir()) == []


def test_a_malformed_egress_range_is_refused_naming_it() -> None:
    from jobyard.errors import ConfigError

    with pytest.raises(ConfigError, match=r"pools\.general\.egress.*'10\.0\.0\.0/33'"):
        load_settings(
            None,
            environ={},
            yard="tests.yards.basic:yard",
            pools={"general": {"egress": ["10.0.0.0/33"]}},
        )


def test_the_cli_refuses_without_a_traceback_and_writes_nothing(tmp_path: Path) -> None:
    config = tmp_path / "jobyard.toml"
    config.write_text(
        'yard = "tests.yards.basic:yard"\n[pools.general]\n[pools.media]\n'
        '[pools.io]\n[pools.bulk]\nrequirements = "bulk.txt"\n',
        encoding="utf-8",
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("JOBYARD_")}
    env["PYTHONPATH"] = str(ROOT)
    out = tmp_path / "k8s"
    done = subprocess.run(
        [sys.executable, "-m", "jobyard", "--config", str(config), "deploy", "kubernetes",
         "--out", str(out)],
        env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert "pools.bulk.image" in done.stderr and "Traceback" not in done.stderr
    assert not out.exists()
