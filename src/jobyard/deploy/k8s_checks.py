"""What `deploy kubernetes` refuses before rendering anything: names, images and pool
settings Kubernetes would reject, each named in one line."""

from __future__ import annotations

import re

from jobyard.config import PoolConfig, Settings
from jobyard.deploy.k8s_meta import DNS_LABEL, LABEL_VALUE, QUANTITY, Target
from jobyard.errors import ConfigError

MAX_RELEASE = 20
# The registry/repository[:tag][@digest] grammar of container image references.
_NAME_PART = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
IMAGE_REFERENCE = re.compile(
    rf"^(?:[a-zA-Z0-9.-]+(?::[0-9]+)?/)?{_NAME_PART}(?:/{_NAME_PART})*"
    r"(?::[\w][\w.-]{0,127})?(?:@sha256:[a-f0-9]{64})?$"
)


def check_target(settings: Settings, target: Target) -> None:
    """Refuse what would render invalid objects, before anything is written.

    Raises:
        ConfigError: naming the option or the `pools.NAME.field` at fault.
    """
    problems = _target_problems(target)
    for name, pool in settings.pools.items():
        problems += _pool_problems(name, pool, target)
    if problems:
        raise ConfigError("cannot render Kubernetes manifests:\n  " + "\n  ".join(problems))


def _target_problems(target: Target) -> list[str]:
    problems = []
    for option, namespace in (
        ("--namespace", target.namespace),
        ("--ingress-namespace", target.ingress_namespace),
        ("--monitoring-namespace", target.monitoring_namespace),
        ("--keda-namespace", target.keda_namespace),
    ):
        if not DNS_LABEL.match(namespace) or len(namespace) > 63:
            problems.append(f"{option} '{namespace}' is not a DNS-1123 label")
    if not DNS_LABEL.match(target.release) or len(target.release) > MAX_RELEASE:
        problems.append(
            f"--release '{target.release}' must be a DNS-1123 label of at most {MAX_RELEASE} "
            "characters (object names add '-worker-<pool>')"
        )
    if not IMAGE_REFERENCE.match(target.image):
        problems.append(f"--image '{target.image}' is not an image reference such as repo/app:1.0")
    if target.autoscaler not in {"keda", "hpa"}:
        problems.append(f"--autoscaler '{target.autoscaler}': use keda or hpa")
    if target.monitoring not in {"annotations", "operator"}:
        problems.append(f"--monitoring '{target.monitoring}': use annotations or operator")
    for option, size in (
        ("--postgres-storage", target.postgres_storage),
        ("--redis-storage", target.redis_storage),
    ):
        if not QUANTITY.match(size):
            problems.append(f"{option} '{size}' is not a quantity such as 10Gi")
    return problems


def _pool_problems(name: str, pool: PoolConfig, target: Target) -> list[str]:
    problems = []
    where = f"pools.{name}"
    if pool.requirements and not pool.image:
        problems.append(
            f"{where}.image: the pool has its own requirements "
            f"({pool.requirements}), so it needs its own image"
        )
    if pool.image is not None and not IMAGE_REFERENCE.match(pool.image):
        problems.append(f"{where}.image: '{pool.image}' is not an image reference")
    for field in ("cpu", "memory"):
        if getattr(pool.resources, field) is None:
            problems.append(
                f"{where}.resources.{field} is missing: on Kubernetes every pool states what "
                'one worker needs (for example cpu = "2", memory = "4Gi")'
            )
    full = f"{target.release}-worker-{name}"
    if len(full) > 63:
        problems.append(f"{where}: the object name '{full}' is over 63 characters")
    for key, value in pool.node_selector.items():
        if not _label_key_ok(key):
            problems.append(f"{where}.node_selector: '{key}' is not a label key")
        if len(value) > 63 or (value and not LABEL_VALUE.match(value)):
            problems.append(f"{where}.node_selector.{key}: '{value}' is not a label value")
    return problems


def _label_key_ok(key: str) -> bool:
    prefix, _, name = key.rpartition("/")
    if prefix and (len(prefix) > 253 or not all(DNS_LABEL.match(p) for p in prefix.split("."))):
        return False
    return 0 < len(name) <= 63 and LABEL_VALUE.match(name) is not None
