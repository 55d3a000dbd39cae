"""What surrounds the workloads: in-cluster datastores, NetworkPolicies and RBAC."""

from __future__ import annotations

from typing import Any

import kubernetes_validate
import pytest

from jobyard.config import load_settings
from jobyard.deploy import kubernetes
from jobyard.deploy.kubernetes import Target
from tests.deploy.manifests import SEEDS, VERSIONS, rendered, workloads

CLIENTS = {"web", "scheduler", "worker", "db-upgrade"}


def _component(selector: dict[str, Any]) -> set[str]:
    """The components a NetworkPolicy pod selector picks (by label or by expression)."""
    single = selector.get("matchLabels", {}).get("app.kubernetes.io/component")
    if single:
        return {single}
    for expression in selector.get("matchExpressions", []):
        if expression["key"] == "app.kubernetes.io/component":
            assert expression["operator"] == "In"
            return set(expression["values"])
    return set()


def _selects(selector: dict[str, Any], pod_labels: dict[str, str]) -> bool:
    if not selector.get("matchLabels", {}).items() <= pod_labels.items():
        return False
    return all(
        pod_labels.get(e["key"]) in e["values"] for e in selector.get("matchExpressions", [])
    )


def _policies(objects: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {
        o["metadata"]["name"].removeprefix("jobyard-"): o["spec"]
        for o in objects
        if o["kind"] == "NetworkPolicy"
    }


def test_everything_denied_then_only_the_listed_flows_allowed() -> None:
    objects = rendered(postgres=True, redis=True)
    policies = _policies(objects)
    pods = [w["spec"]["template"]["metadata"]["labels"] for w in workloads(objects)]
    assert {p["app.kubernetes.io/component"] for p in pods} == CLIENTS | {"postgres", "redis"}
    deny = policies["default-deny"]
    assert deny["policyTypes"] == ["Ingress", "Egress"] and "ingress" not in deny
    assert all(_selects(deny["podSelector"], labels) for labels in pods)
    for spec in policies.values():  # every selector picks some rendered pod
        assert any(_selects(spec["podSelector"], labels) for labels in pods)

    ingress = {name: spec for name, spec in policies.items() if spec.get("ingress")}
    assert {c for s in ingress.values() for c in _component(s["podSelector"])} == {
        "web",
        "postgres",
        "redis",
    }
    web_from = ingress["web-ingress"]["ingress"][0]["from"]
    assert [f["namespaceSelector"]["matchLabels"] for f in web_from] == [
        {"kubernetes.io/metadata.name": "ingress-nginx"},
        {"kubernetes.io/metadata.name": "monitoring"},
    ]
    postgres_in = ingress["postgres-ingress"]["ingress"][0]
    assert _component(postgres_in["from"][0]["podSelector"]) == CLIENTS
    assert postgres_in["from"][1]["namespaceSelector"]["matchLabels"] == {
        "kubernetes.io/metadata.name": "keda"
    }
    assert postgres_in["ports"] == [{"protocol": "TCP", "port": 5432}]
    redis_in = ingress["redis-ingress"]["ingress"][0]
    assert [_component(f["podSelector"]) for f in redis_in["from"]] == [CLIENTS]

    egress = policies["datastores-egress"]
    assert _component(egress["podSelector"]) == CLIENTS
    dns, database, broker = egress["egress"]
    assert {p["port"] for p in dns["ports"]} == {53}
    assert _component(database["to"][0]["podSelector"]) == {"postgres"}
    assert _component(broker["to"][0]["podSelector"]) == {"redis"}
    # Only the pool that asked for it reaches further: general downloads from anywhere.
    extra = {name: spec for name, spec in policies.items() if name.endswith("-egress")}
    assert set(extra) == {"datastores-egress", "worker-general-egress"}
    assert extra["worker-general-egress"]["egress"] == [
        {"to": [{"ipBlock": {"cidr": "0.0.0.0/0"}}]}
    ]


def test_external_datastores_are_reached_by_port_and_get_no_pods() -> None:
    objects = rendered()
    assert not [o for o in objects if o["kind"] == "StatefulSet"]
    policies = _policies(objects)
    assert "postgres-ingress" not in policies and "redis-ingress" not in policies
    _dns, database, broker = policies["datastores-egress"]["egress"]
    assert database == {"ports": [{"protocol": "TCP", "port": 5432}]}
    assert broker == {"ports": [{"protocol": "TCP", "port": 6379}]}


def test_in_cluster_postgres_and_redis_are_persistent_single_instances() -> None:
    objects = rendered(postgres=True, redis=True, storage_class="fast-ssd")
    sets = {o["metadata"]["name"]: o for o in objects if o["kind"] == "StatefulSet"}
    services = {o["metadata"]["name"]: o for o in objects if o["kind"] == "Service"}
    assert set(sets) == {"jobyard-postgres", "jobyard-redis"}
    for name, stateful in sets.items():
        spec = stateful["spec"]
        assert spec["replicas"] == 1 and spec["serviceName"] == name
        claim = spec["volumeClaimTemplates"][0]["spec"]
        assert claim["storageClassName"] == "fast-ssd"
        assert claim["accessModes"] == ["ReadWriteOnce"]
        service = services[name]["spec"]
        assert service["clusterIP"] == "None"
        assert service["selector"].items() <= spec["template"]["metadata"]["labels"].items()
        container = spec["template"]["spec"]["containers"][0]
        assert container["readinessProbe"] and container["livenessProbe"]
        assert container["securityContext"]["readOnlyRootFilesystem"] is True
        secrets = [e for e in container["env"] if "valueFrom" in e]
        assert secrets and all(e["valueFrom"]["secretKeyRef"]["name"] == "jobyard" for e in secrets)
    postgres = sets["jobyard-postgres"]["spec"]
    assert postgres["volumeClaimTemplates"][0]["spec"]["resources"]["requests"] == {
        "storage": "10Gi"
    }
    args = " ".join(sets["jobyard-redis"]["spec"]["template"]["spec"]["containers"][0]["args"])
    assert "--appendonly yes" in args and "--maxmemory-policy noeviction" in args


def _pod_per_job_objects() -> list[dict[str, Any]]:
    pools = {**SEEDS, "render": {**SEEDS["media"], "mode": "pod-per-job"}}
    settings = load_settings(None, environ={}, yard="tests.yards.basic:yard", pools=pools)
    files = kubernetes.render(settings, Target(image="registry.example.com/app:1.0"), {})
    return [obj for objects in files.values() for obj in objects]


def test_no_role_at_all_without_a_pod_per_job_pool() -> None:
    objects = rendered()
    kinds = {o["kind"] for o in objects}
    assert not kinds & {"Role", "RoleBinding", "ClusterRole", "ClusterRoleBinding"}
    assert [o["metadata"]["name"] for o in objects if o["kind"] == "ServiceAccount"] == ["jobyard"]
    for workload in workloads(objects):
        assert workload["spec"]["template"]["spec"]["automountServiceAccountToken"] is False


def test_the_launcher_role_is_exactly_what_pod_per_job_needs() -> None:
    objects = _pod_per_job_objects()
    cluster = [o for o in objects if o["kind"].startswith("Cluster")]
    assert [o["kind"] for o in cluster] == ["ClusterRole", "ClusterRoleBinding"]
    assert cluster[0]["rules"] == [{"apiGroups": [""], "resources": ["nodes"], "verbs": ["list"]}]
    assert cluster[1]["subjects"] == [
        {"kind": "ServiceAccount", "name": "jobyard-launcher", "namespace": "jobyard"}
    ]
    assert all("namespace" not in o["metadata"] for o in cluster)
    role = next(o for o in objects if o["kind"] == "Role")
    # What the launcher's Kubernetes runner calls, and no more (tests/integration/
    # test_pod_per_job_kubernetes.py records every request it makes and compares).
    assert role["rules"] == [
        {"apiGroups": ["batch"], "resources": ["jobs"], "verbs": ["create", "list", "delete"]},
        {"apiGroups": [""], "resources": ["pods"], "verbs": ["list"]},
        {"apiGroups": [""], "resources": ["pods/log"], "verbs": ["get"]},
    ]
    binding = next(o for o in objects if o["kind"] == "RoleBinding")
    assert binding["roleRef"]["name"] == role["metadata"]["name"] == "jobyard-launcher"
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "jobyard-launcher", "namespace": "jobyard"}
    ]
    pods = {w["metadata"]["name"]: w["spec"]["template"]["spec"] for w in workloads(objects)}
    assert pods["jobyard-worker-render"]["serviceAccountName"] == "jobyard-launcher"
    assert pods["jobyard-worker-render"]["automountServiceAccountToken"] is True
    others = [pod for name, pod in pods.items() if name != "jobyard-worker-render"]
    assert all(pod["serviceAccountName"] == "jobyard" for pod in others)
    assert not any(pod["automountServiceAccountToken"] for pod in others)
    api = _policies(objects)["worker-render-egress"]["egress"]
    assert api == [{"ports": [{"protocol": "TCP", "port": 443}, {"protocol": "TCP", "port": 6443}]}]


@pytest.mark.parametrize("version", VERSIONS)
def test_rbac_and_launcher_objects_pass_strict_validation(version: str) -> None:
    for obj in _pod_per_job_objects():
        if obj["kind"] in {"ServiceAccount", "Role", "RoleBinding", "NetworkPolicy", "Deployment"}:
            kubernetes_validate.validate(obj, version, strict=True)
