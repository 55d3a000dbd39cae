"""Kubernetes manifests, validated offline and strictly, plus what schemas cannot check."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from jobyard.config import Settings, load_settings
from jobyard.deploy import kubernetes
from jobyard.deploy.kubernetes import Target
from tests.factories import ROOT

VERSIONS = ["1.29.0", kubernetes_validate.latest_version()]
DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
SEEDS = {
    "general": {
        "concurrency": 8,
        "celery_pool": "threads",
        "node_selector": {"node-role": "low-cpu"},
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
]


def core(objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [o for o in objects if not o["apiVersion"].startswith("keda.sh/")]


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


def _workloads(objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [o for o in objects if o["kind"] == "Deployment"]


def test_names_labels_and_selectors() -> None:
    objects = rendered()
    for obj in objects:
        assert DNS_LABEL.match(obj["metadata"]["name"]) and len(obj["metadata"]["name"]) <= 63
        for value in obj["metadata"]["labels"].values():
            assert len(value) <= 63
    deployments = _workloads(objects)
    for deployment in deployments:
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
    for deployment in _workloads(rendered()):
        pod = deployment["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["automountServiceAccountToken"] is False
        for container in pod["containers"]:
            assert container["resources"]["requests"] and container["resources"]["limits"]
            context = container["securityContext"]
            assert context["readOnlyRootFilesystem"] and not context["allowPrivilegeEscalation"]
            assert context["capabilities"]["drop"] == ["ALL"]
            assert "livenessProbe" in container


def test_workers_scaled_by_keda_on_queued_and_running_jobs() -> None:
    objects = rendered()
    scaled = {
        o["spec"]["scaleTargetRef"]["name"]: o for o in objects if o["kind"] == "ScaledObject"
    }
    workers = [d for d in _workloads(objects) if "-worker-" in d["metadata"]["name"]]
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
        d for d in _workloads(rendered()) if d["metadata"]["name"] == "jobyard-scheduler"
    )
    assert scheduler["spec"]["replicas"] == 1
    assert scheduler["spec"]["strategy"] == {"type": "Recreate"}


def test_pool_placement_gpu_image_and_grace() -> None:
    by_name = {d["metadata"]["name"]: d for d in _workloads(rendered())}
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
        'yard = "tests.yards.basic:yard"\n[pools.general]\n[pools.media]\n[pools.bulk]\n',
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
        for obj in yaml.safe_load_all((out / name).read_text()):
            if name != "kustomization.yaml":
                assert obj["metadata"]["namespace"] == "jobs"


def test_hpa_alternative_and_ingress() -> None:
    objects = rendered(autoscaler="hpa", ingress_host="jobs.example.com", ingress_class="nginx")
    assert not [o for o in objects if o["kind"] == "ScaledObject"]
    autoscalers = [o for o in objects if o["kind"] == "HorizontalPodAutoscaler"]
    assert len(autoscalers) == len(SEEDS)
    workers = {
        d["metadata"]["name"] for d in _workloads(objects) if "-worker-" in d["metadata"]["name"]
    }
    assert {h["spec"]["scaleTargetRef"]["name"] for h in autoscalers} == workers
    route = next(o for o in objects if o["kind"] == "Ingress")
    assert route["spec"]["ingressClassName"] == "nginx"
    assert route["spec"]["rules"][0]["host"] == "jobs.example.com"


def test_network_policies_deny_by_default_and_cover_every_component() -> None:
    objects = rendered()
    policies = [o for o in objects if o["kind"] == "NetworkPolicy"]
    deny = next(p for p in policies if "ingress" not in p["spec"])
    for deployment in _workloads(objects):
        pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert deny["spec"]["podSelector"]["matchLabels"].items() <= pod_labels.items()
    allowed = [p for p in policies if "ingress" in p["spec"]]
    assert [
        p["spec"]["podSelector"]["matchLabels"]["app.kubernetes.io/component"] for p in allowed
    ] == ["web"]


def validate_keda(obj: dict[str, Any]) -> None:
    """Validate against KEDA's own models (generated from its CRD): types must fit, and no
    field may be unknown (the models drop unknown keys, so a lossy round trip is an error)."""
    from cloudcoil.models.keda.v1alpha1 import ScaledObject

    model = ScaledObject.model_validate(obj)
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


def test_scaled_objects_match_the_keda_crd() -> None:
    scaled = [o for o in rendered() if o["kind"] == "ScaledObject"]
    assert len(scaled) == len(SEEDS)
    for obj in scaled:
        validate_keda(obj)


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda spec: spec.update(pollingIntervall=5), "pollingIntervall"),
        (lambda spec: spec.update(minReplicaCount="one"), "minReplicaCount"),
        (lambda spec: spec["triggers"][0].pop("type"), "type"),
    ],
)
def test_the_keda_check_can_fail(mutate: Any, message: str) -> None:
    obj = next(o for o in rendered() if o["kind"] == "ScaledObject")
    mutate(obj["spec"])
    with pytest.raises(ValueError, match=message):
        validate_keda(obj)


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


def test_the_cli_refuses_without_a_traceback_and_writes_nothing(tmp_path: Path) -> None:
    config = tmp_path / "jobyard.toml"
    config.write_text(
        'yard = "tests.yards.basic:yard"\n[pools.general]\n[pools.media]\n'
        '[pools.bulk]\nrequirements = "bulk.txt"\n',
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
