"""`jobyard launcher --pool P` and `jobyard run-job ID`: pod-per-job execution."""

from __future__ import annotations

import os
import sys
import threading
from typing import TYPE_CHECKING, Annotated, Any

import typer

from jobyard.cli import log_setup
from jobyard.cli.output import console
from jobyard.cli.pools_cmd import build_environment
from jobyard.cli.processes import install_stop_handlers
from jobyard.cli.state import state_of
from jobyard.errors import ConfigError

if TYPE_CHECKING:
    from jobyard.execution.pods.runner import Runner


def launcher(
    ctx: typer.Context,
    pool: Annotated[
        str, typer.Option("--pool", "-p", envvar="JOBYARD_POOL", help="pod-per-job pool to run.")
    ],
) -> None:
    """Start the queued jobs of a pod-per-job pool, each in a process of its own."""
    from jobyard.execution.heartbeat import Heartbeat
    from jobyard.execution.pods.launcher import Launcher
    from jobyard.execution.pods.local import LocalRunner, job_root

    state = state_of(ctx)
    settings = state.settings()
    log_setup.configure(settings.log_format, role="launcher", pool=pool)
    if pool not in settings.pools:
        declared = ", ".join(sorted(settings.pools)) or "none"
        raise ConfigError(f"pool '{pool}' is not declared (declared pools: {declared})")
    if settings.pools[pool].mode != "pod-per-job":
        raise ConfigError(
            f"pool '{pool}' runs long-lived workers (mode = \"workers\"): start "
            f'`jobyard worker --pool {pool}`, or set mode = "pod-per-job"'
        )
    runtime = state.runtime()
    runner: Runner[Any]
    if settings.launcher.runner == "kubernetes":  # each pool's image is its environment
        from jobyard.execution.pods.kubernetes import KubernetesRunner, api_client, namespace_of

        runner = KubernetesRunner(
            settings, pool, runtime.yard, api_client(settings), namespace_of(settings)
        )
    else:
        python = build_environment(settings, pool, console(stderr=True))
        command = [str(python), "-m", "jobyard"] if python is not None else run_job_command()
        runner = LocalRunner(job_root(settings, pool), command, dict(os.environ))
    stop = threading.Event()
    install_stop_handlers(stop)
    heartbeat = Heartbeat(runtime, pool)
    try:
        heartbeat.start()
        Launcher(runtime, pool, runner, worker_id=heartbeat.record.id).run(stop)
    finally:
        heartbeat.stop()
        runtime.close()


def run_job_command() -> list[str]:
    """How job processes start jobyard: this interpreter (the pool's environment)."""
    return [sys.executable, "-m", "jobyard"]


def run_job(
    job_id: Annotated[str, typer.Argument(help="The job's id.")],
) -> None:
    """Run one attempt of a job for its launcher (the command of a job's process or pod)."""
    from jobyard.execution.pods.run_job import main

    raise typer.Exit(main([job_id]))
