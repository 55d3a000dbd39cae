"""Monitoring that ships with the manifests: ServiceMonitor, alert rules, Grafana dashboard.

Every web replica computes the job metrics from the shared database, so the replicas report
the same series; queries take `max` over replicas instead of `sum`, which would count each
job once per replica.
"""

from __future__ import annotations

import json
from typing import Any

from jobyard.deploy.k8s_meta import Target, labels, metadata

RUN_COUNT = "jobyard_job_duration_seconds_count"
RUN_BUCKET = "jobyard_job_duration_seconds_bucket"


def _per_pool(expression: str) -> str:
    return f"max by (pool) ({expression})"


def _per_gpu(expression: str) -> str:
    """One series per worker GPU, whichever web replica exported it."""
    return f"max by (pool, worker, gpu) ({expression})"


def _finished_rate(state: str | None, window: str) -> str:
    selector = f'{{state="{state}"}}' if state else ""
    return f"sum by (pool) (max by (pool, type, state) (rate({RUN_COUNT}{selector}[{window}])))"


def alert_rules(target: Target) -> list[dict[str, Any]]:
    """The alerts an operator of a job system wants paged on."""
    too_old = f"{_per_pool('jobyard_oldest_queued_age_seconds')} > {target.alert_queued_age_s}"
    failed = _finished_rate("failed", "15m")
    finished = _finished_rate(None, "15m")
    return [
        {
            "alert": "JobyardOldestQueuedJobTooOld",
            "expr": too_old,
            "for": "5m",
            "labels": {"severity": "warning"},
            "annotations": {
                "summary": "Pool {{ $labels.pool }} has a job queued for over "
                f"{target.alert_queued_age_s} s",
                "description": "Workers are too few, stuck, or not consuming the pool's queue.",
            },
        },
        {
            "alert": "JobyardHighFailureRate",
            "expr": f"({failed}) / ({finished}) > {target.alert_failure_ratio}",
            "for": "10m",
            "labels": {"severity": "warning"},
            "annotations": {
                "summary": "Over {{ $value | humanizePercentage }} of pool {{ $labels.pool }}'s "
                "jobs fail",
                "description": "Open the dashboard's failures list for the errors.",
            },
        },
        {
            "alert": "JobyardQueueWithoutConsumer",
            "expr": f"{_per_pool('jobyard_queue_depth')} > 0 "
            f"and {_per_pool('jobyard_workers_alive')} == 0",
            "for": "5m",
            "labels": {"severity": "critical"},
            "annotations": {
                "summary": "Pool {{ $labels.pool }} has queued jobs and no live worker",
                "description": "Check the pool's Deployment, its autoscaler and node capacity.",
            },
        },
        {
            "alert": "JobyardWorkerStalled",
            "expr": f"{_per_pool('jobyard_workers_stalled')} > 0",
            "for": "2m",
            "labels": {"severity": "critical"},
            "annotations": {
                "summary": "A worker of pool {{ $labels.pool }} stopped consuming",
                "description": "It has free slots and messages wait, but it receives nothing. "
                "It reconnects, then exits for its supervisor to restart it; if this alert "
                "stays, the worker is not restarted: check its liveness probe and logs.",
            },
        },
        {
            "alert": "JobyardNoSchedulerLeader",
            "expr": "max(jobyard_scheduler_leader) == 0",
            "for": "2m",
            "labels": {"severity": "critical"},
            "annotations": {
                "summary": "No scheduler holds the leader lease",
                "description": "Periodic jobs do not fire, unpublished jobs are not "
                "re-sent and dead workers' jobs are not retried until one does.",
            },
        },
        {
            "alert": "JobyardMetricsMissing",
            "expr": "absent(jobyard_scheduler_leader)",
            "for": "10m",
            "labels": {"severity": "warning"},
            "annotations": {
                "summary": "Prometheus gets no jobyard metrics",
                "description": "The web pods are down or not scraped; other jobyard alerts "
                "cannot fire meanwhile.",
            },
        },
    ]


def prometheus_rule(target: Target) -> dict[str, Any]:
    """The alerts as a Prometheus Operator PrometheusRule."""
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": metadata(target, target.name("alerts"), "monitoring"),
        "spec": {"groups": [{"name": "jobyard", "rules": alert_rules(target)}]},
    }


def service_monitor(target: Target) -> dict[str, Any]:
    """Tells a Prometheus Operator to scrape the web pods' /metrics."""
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "ServiceMonitor",
        "metadata": metadata(target, target.name("web"), "monitoring"),
        "spec": {
            "selector": {"matchLabels": labels(target, "web")},
            "namespaceSelector": {"matchNames": [target.namespace]},
            "endpoints": [{"port": "http", "path": "/metrics", "interval": "30s"}],
        },
    }


def _panel(
    panel_id: int, title: str, expressions: dict[str, str], unit: str, x: int, y: int
) -> dict[str, Any]:
    return {
        "id": panel_id,
        "type": "timeseries",
        "title": title,
        "datasource": {"type": "prometheus", "uid": "${datasource}"},
        "gridPos": {"h": 8, "w": 12, "x": x, "y": y},
        "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
        "targets": [
            {
                "refId": chr(ord("A") + index),
                "expr": expr,
                "legendFormat": legend,
                "datasource": {"type": "prometheus", "uid": "${datasource}"},
            }
            for index, (legend, expr) in enumerate(expressions.items())
        ],
    }


def _quantile(q: float) -> str:
    return f'histogram_quantile({q}, max by (pool, le) (rate({RUN_BUCKET}{{pool=~"$pool"}}[5m])))'


def grafana_dashboard() -> dict[str, Any]:
    """A Grafana dashboard: throughput, queue depth and latency per pool, failures, workers,
    and how busy each worker's GPUs are."""
    pool = '{pool=~"$pool"}'
    specs: list[tuple[str, dict[str, str], str]] = [
        (
            "Finished jobs per second",
            {
                "{{pool}}": "sum by (pool) (max by (pool, type, state) "
                f"(rate({RUN_COUNT}{pool}[5m])))"
            },
            "ops",
        ),
        ("Queued jobs", {"{{pool}}": _per_pool(f"jobyard_queue_depth{pool}")}, "short"),
        (
            "Oldest queued job",
            {"{{pool}}": _per_pool(f"jobyard_oldest_queued_age_seconds{pool}")},
            "s",
        ),
        (
            "Run time",
            {"{{pool}} p50": _quantile(0.5), "{{pool}} p95": _quantile(0.95)},
            "s",
        ),
        (
            "Failed jobs per second",
            {
                "{{pool}}": "sum by (pool) (max by (pool, type, state) "
                f'(rate({RUN_COUNT}{{state="failed", pool=~"$pool"}}[5m])))'
            },
            "ops",
        ),
        (
            "Workers alive and jobs running",
            {
                "{{pool}} workers": _per_pool(f"jobyard_workers_alive{pool}"),
                "{{pool}} running": _per_pool(f"jobyard_jobs_running{pool}"),
            },
            "short",
        ),
        (
            "GPU busy per worker",
            {"{{worker}} GPU {{gpu}}": _per_gpu(f"jobyard_worker_gpu_utilization_ratio{pool}")},
            "percentunit",
        ),
        (
            "GPU memory used per worker",
            {"{{worker}} GPU {{gpu}}": _per_gpu(f"jobyard_worker_gpu_memory_used_bytes{pool}")},
            "bytes",
        ),
    ]
    panels = [
        _panel(index + 1, title, expressions, unit, x=(index % 2) * 12, y=(index // 2) * 8)
        for index, (title, expressions, unit) in enumerate(specs)
    ]
    return {
        "uid": "jobyard-overview",
        "title": "jobyard",
        "tags": ["jobyard"],
        "timezone": "browser",
        "schemaVersion": 39,
        "refresh": "30s",
        "time": {"from": "now-6h", "to": "now"},
        "templating": {
            "list": [
                {"name": "datasource", "type": "datasource", "query": "prometheus"},
                {
                    "name": "pool",
                    "type": "query",
                    "datasource": {"type": "prometheus", "uid": "${datasource}"},
                    "query": "label_values(jobyard_queue_depth, pool)",
                    "includeAll": True,
                    "multi": True,
                    "current": {"text": "All", "value": "$__all"},
                    "allValue": ".*",
                },
            ]
        },
        "panels": panels,
    }


def grafana_config_map(target: Target) -> dict[str, Any]:
    """The dashboard in a ConfigMap that Grafana's dashboard sidecar picks up."""
    meta = metadata(target, target.name("grafana-dashboard"), "monitoring")
    meta["labels"]["grafana_dashboard"] = "1"
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": meta,
        "data": {"jobyard.json": json.dumps(grafana_dashboard(), indent=2)},
    }


def monitoring_objects(target: Target) -> list[dict[str, Any]]:
    """The Grafana ConfigMap always; the Operator's objects when asked for."""
    objects = [grafana_config_map(target)]
    if target.monitoring == "operator":
        objects += [service_monitor(target), prometheus_rule(target)]
    return objects
