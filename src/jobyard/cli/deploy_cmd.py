"""`jobyard deploy kubernetes`: manifests rendered from the same jobyard.toml."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from jobyard.cli.output import console
from jobyard.cli.state import state_of
from jobyard.config import Settings
from jobyard.deploy import compose, dockerfiles, kubernetes, observability, yaml_out
from jobyard.deploy.k8s_meta import AMQP_PORT, REDIS_PORT, Target
from jobyard.loader import load_yard_for
from jobyard.runtime import check_configuration

deploy_app = typer.Typer(
    help="Render deployment manifests from jobyard.toml.", no_args_is_help=True
)


def _longest_timeouts(ctx: typer.Context) -> tuple[Settings, dict[str, float]]:
    settings = state_of(ctx).settings()
    yard = load_yard_for(settings)
    check_configuration(settings, yard)
    longest: dict[str, float] = {}
    for job in yard.jobs.values():
        longest[job.pool] = max(longest.get(job.pool, 0.0), job.timeout_s)
    return settings, longest


@deploy_app.command("dockerfiles")
def render_dockerfiles(
    ctx: typer.Context,
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder to write.")] = Path("."),
) -> None:
    """Write a Dockerfile for the base image and one per pool dependency set."""
    settings, _longest = _longest_timeouts(ctx)
    out.mkdir(parents=True, exist_ok=True)
    for dockerfile in dockerfiles.render(settings):
        (out / dockerfile.filename).write_text(dockerfile.text, encoding="utf-8")
        pools = ", ".join(dockerfile.pools) or "web and scheduler"
        console().print(f"wrote {out / dockerfile.filename} (for {pools})")


@deploy_app.command("compose")
def render_compose(
    ctx: typer.Context,
    out: Annotated[Path, typer.Option("--out", "-o", help="File to write.")] = Path(
        "docker-compose.yaml"
    ),
    image: Annotated[str, typer.Option(help="Image of web, scheduler and workers.")] = (
        "jobyard:latest"
    ),
) -> None:
    """Write a docker-compose file: web, scheduler, one service per pool, PostgreSQL, Redis."""
    settings, longest = _longest_timeouts(ctx)
    document = compose.render(settings, longest, image=image)
    out.write_text(yaml_out.dump(document), encoding="utf-8")
    console().print(
        f"wrote {out}: {len(document['services'])} services; next to it put jobyard.toml, "
        "then POSTGRES_PASSWORD=… docker compose up (scale a pool with --scale worker-NAME=N)"
    )


@deploy_app.command("kubernetes")
def render_kubernetes(
    ctx: typer.Context,
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder to write.")] = Path("deploy"),
    namespace: Annotated[str, typer.Option(help="Namespace of every object.")] = "jobyard",
    image: Annotated[str, typer.Option(help="Image of web, scheduler and workers.")] = (
        "jobyard:latest"
    ),
    release: Annotated[str, typer.Option(help="Name prefix of every object.")] = "jobyard",
    secret: Annotated[
        str, typer.Option(help="Secret with database-url, broker-url (and datastore passwords).")
    ] = "jobyard",
    web_replicas: Annotated[int, typer.Option(min=1, help="Web replicas.")] = 2,
    autoscaler: Annotated[
        str, typer.Option(help="keda (queued + running jobs) or hpa (CPU).")
    ] = "keda",
    ingress_host: Annotated[str | None, typer.Option(help="Host of the web Ingress.")] = None,
    ingress_class: Annotated[str | None, typer.Option(help="ingressClassName.")] = None,
    ingress_namespace: Annotated[
        str, typer.Option(help="Namespace of the ingress controller (may reach web).")
    ] = "ingress-nginx",
    monitoring_namespace: Annotated[
        str, typer.Option(help="Namespace of Prometheus (may scrape web).")
    ] = "monitoring",
    keda_namespace: Annotated[
        str, typer.Option(help="Namespace of KEDA (may query the in-cluster PostgreSQL).")
    ] = "keda",
    postgres: Annotated[
        bool, typer.Option("--postgres", help="Run PostgreSQL in the cluster (StatefulSet + PVC).")
    ] = False,
    redis: Annotated[
        bool, typer.Option("--redis", help="Run Redis, the broker, in the cluster.")
    ] = False,
    storage_class: Annotated[
        str | None, typer.Option(help="storageClassName of the datastores' volumes.")
    ] = None,
    monitoring: Annotated[
        str,
        typer.Option(
            help="annotations (prometheus.io/* on the web Service) or operator "
            "(ServiceMonitor + PrometheusRule)."
        ),
    ] = "annotations",
    artifacts_storage: Annotated[
        str,
        typer.Option(help="Size of the shared artifact volume (file:// storage only)."),
    ] = "20Gi",
) -> None:
    """Write one YAML file per component, a kustomization.yaml and a Grafana dashboard."""
    settings, longest = _longest_timeouts(ctx)
    target = Target(
        namespace=namespace,
        image=image,
        release=release,
        secret=secret,
        web_replicas=web_replicas,
        autoscaler=autoscaler,
        ingress_host=ingress_host,
        ingress_class=ingress_class,
        ingress_namespace=ingress_namespace,
        monitoring_namespace=monitoring_namespace,
        keda_namespace=keda_namespace,
        postgres=postgres,
        redis=redis,
        storage_class=storage_class,
        broker_port=AMQP_PORT if settings.broker.startswith("amqp") and not redis else REDIS_PORT,
        monitoring=monitoring,
        artifacts_storage=artifacts_storage,
    )
    files = kubernetes.render(settings, target, longest)
    out.mkdir(parents=True, exist_ok=True)
    for name, objects in files.items():
        (out / name).write_text(yaml_out.dump_all(objects), encoding="utf-8")
    kustomization = {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "namespace": namespace,
        "resources": sorted(files),
        "labels": [{"pairs": {"app.kubernetes.io/part-of": "jobyard"}, "includeSelectors": False}],
    }
    (out / "kustomization.yaml").write_text(yaml_out.dump(kustomization))
    dashboard = json.dumps(observability.grafana_dashboard(), indent=2)
    (out / "grafana-dashboard.json").write_text(dashboard + "\n", encoding="utf-8")
    count = sum(len(objects) for objects in files.values())
    console().print(f"wrote {count} objects in {len(files) + 1} files to {out}")
    keys = (
        "database-url, broker-url"
        + (", postgres-password" if postgres else "")
        + (", redis-password" if redis else "")
    )
    console().print(f"before applying, create Secret '{secret}' in '{namespace}' with {keys}")
