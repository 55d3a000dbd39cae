"""How many pods run: per-pool autoscaling (a KEDA ScaledObject counting the pool's queued and
running jobs in jobyard's own tables, or an HPA on CPU) and the disruption budgets that keep
web and each pool serving through node drains."""

from __future__ import annotations

from typing import Any

from jobyard.config import PoolConfig, Settings
from jobyard.deploy.k8s_meta import Target, labels, metadata


def scaled_object(name: str, pool: PoolConfig, target: Target) -> dict[str, Any]:
    """KEDA scales a pool on its queued + running jobs in jobyard's own tables.

    Counting running jobs too keeps scale-in from targeting a busy fleet, and counting rows
    (not broker messages) sees what prefetch hides.
    """
    query = (
        "SELECT count(*) FROM jobyard_jobs "
        f"WHERE pool = '{name}' AND state IN ('queued', 'running')"
    )
    return {
        "apiVersion": "keda.sh/v1alpha1",
        "kind": "ScaledObject",
        "metadata": metadata(target, f"{target.release}-worker-{name}", "worker", name),
        "spec": {
            "scaleTargetRef": {"name": f"{target.release}-worker-{name}"},
            "pollingInterval": 15,
            "cooldownPeriod": 300,
            "minReplicaCount": pool.autoscale.min_replicas,
            "maxReplicaCount": pool.autoscale.max_replicas,
            "triggers": [
                {
                    "type": "postgresql",
                    "metadata": {
                        "connectionFromEnv": "JOBYARD_DATABASE_URL",
                        "query": query,
                        "targetQueryValue": str(pool.autoscale.target_queue_length),
                        "activationTargetQueryValue": "0",
                    },
                }
            ],
        },
    }


def hpa(name: str, pool: PoolConfig, target: Target) -> dict[str, Any]:
    """The alternative without KEDA: CPU-based autoscaling between the pool's bounds."""
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": metadata(target, f"{target.release}-worker-{name}", "worker", name),
        "spec": {
            "scaleTargetRef": {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "name": f"{target.release}-worker-{name}",
            },
            "minReplicas": max(pool.autoscale.min_replicas, 1),
            "maxReplicas": pool.autoscale.max_replicas,
            "metrics": [
                {
                    "type": "Resource",
                    "resource": {
                        "name": "cpu",
                        "target": {"type": "Utilization", "averageUtilization": 70},
                    },
                }
            ],
        },
    }


def disruption_budgets(settings: Settings, target: Target) -> list[dict[str, Any]]:
    """Web keeps one pod through drains; each pool loses at most one at a time."""
    budgets = [
        {
            "apiVersion": "policy/v1",
            "kind": "PodDisruptionBudget",
            "metadata": metadata(target, f"{target.release}-web", "web"),
            "spec": {"minAvailable": 1, "selector": {"matchLabels": labels(target, "web")}},
        }
    ]
    for name in settings.pools:
        budgets.append(
            {
                "apiVersion": "policy/v1",
                "kind": "PodDisruptionBudget",
                "metadata": metadata(target, f"{target.release}-worker-{name}", "worker", name),
                "spec": {
                    "maxUnavailable": 1,
                    "selector": {"matchLabels": labels(target, "worker", name)},
                },
            }
        )
    return budgets
