"""`jobyard web`, `jobyard worker`, `jobyard scheduler`: the long-running processes."""

from __future__ import annotations

import os
import signal
import socket
import threading
from types import FrameType
from typing import Annotated, Any

import typer

from jobyard.cli import log_setup
from jobyard.cli.output import console
from jobyard.cli.pools_cmd import reexec_in_environment
from jobyard.cli.state import state_of
from jobyard.config import find_config_file
from jobyard.errors import ConfigError
from jobyard.loader import load_yard_for
from jobyard.runtime import Runtime, check_configuration


def web(
    ctx: typer.Context,
    host: Annotated[
        str | None, typer.Option(envvar="JOBYARD_WEB__HOST", help="Bind address.")
    ] = None,
    port: Annotated[int | None, typer.Option(envvar="JOBYARD_WEB__PORT", help="Bind port.")] = None,
    access_log: Annotated[bool, typer.Option(help="Log every HTTP request.")] = False,
    workers: Annotated[
        int | None,
        typer.Option(
            envvar="JOBYARD_WEB__WORKERS", min=1, max=64, help="Processes (default web.workers)."
        ),
    ] = None,
) -> None:
    """Serve the dashboard, REST API, OpenAPI docs (/docs), health checks and /metrics."""
    import uvicorn

    from jobyard.api.app import create_app
    from jobyard.api.factory import FACTORY

    state = state_of(ctx)
    settings = state.settings()
    yard = load_yard_for(settings)
    check_configuration(settings, yard)
    log_setup.configure(settings.log_format, role="web")
    bind = host or settings.web.host
    bind_port = port or settings.web.port
    require_free_port(bind, bind_port)
    # An unreachable or unmigrated database is a one-line error here, not uvicorn's traceback
    # of a failed lifespan.
    Runtime.open(settings, yard=yard).close()
    processes = workers or settings.web.workers
    app: Any = create_app(settings, yard=yard, host=bind) if processes == 1 else FACTORY
    if processes > 1:  # each process builds its app from the same settings (`api.factory`)
        config = find_config_file(state.config, os.environ)
        if config is not None:
            os.environ["JOBYARD_CONFIG"] = str(config)
        os.environ["JOBYARD_WEB__HOST"] = bind
        os.environ["JOBYARD_WEB__PORT"] = str(bind_port)
    uvicorn.run(
        app,
        factory=processes > 1,
        workers=processes,
        host=bind,
        port=bind_port,
        access_log=access_log,
        log_level="info",
        # JSON logs: uvicorn's own loggers go through the root handler too.
        log_config=None if settings.log_format == "json" else uvicorn.config.LOGGING_CONFIG,
        # Compressing every event message for every client cost more CPU than the bytes saved:
        # with 200 live clients it was what pushed request latency up.
        ws_per_message_deflate=False,
    )


def worker(
    ctx: typer.Context,
    pool: Annotated[
        str, typer.Option("--pool", "-p", envvar="JOBYARD_POOL", help="Pool to work for.")
    ],
    check: Annotated[
        bool,
        typer.Option("--check", help="Liveness probe: exit 0 if this pool's worker here is alive."),
    ] = False,
    max_age: Annotated[
        float | None, typer.Option("--max-age", help="With --check: oldest sign of life, s.")
    ] = None,
    quiet: Annotated[
        bool,
        typer.Option("--quiet", "-q", help="No Celery banner or start-up warnings (as under up)."),
    ] = False,
) -> None:
    """Run a Celery worker that consumes one pool's queue (or, with --check, probe one).

    It logs one line per finished attempt; Celery's own per-task lines appear with -v.
    """
    if check:
        from jobyard.execution.liveness import probe_main

        limit = [] if max_age is None else ["--max-age", str(max_age)]
        raise typer.Exit(probe_main(["--pool", pool, *limit]))
    from jobyard.execution.celery.worker import run_worker

    settings = state_of(ctx).settings()
    log_setup.configure(settings.log_format, role="worker", pool=pool)
    yard = load_yard_for(settings)
    check_configuration(settings, yard)
    if pool not in settings.pools:
        declared = ", ".join(sorted(settings.pools)) or "none"
        raise ConfigError(f"pool '{pool}' is not declared (declared pools: {declared})")
    if settings.pools[pool].mode == "pod-per-job":
        raise ConfigError(
            f"pool '{pool}' runs each job in a process of its own (mode = \"pod-per-job\"): "
            f"start `jobyard launcher --pool {pool}` instead of a worker"
        )
    # An unreachable or unmigrated database is a one-line error here, not a Celery traceback
    # from inside a bootstep.
    Runtime.open(settings, yard=yard).close()
    reexec_in_environment(settings, pool, console(stderr=True))
    verbose = state_of(ctx).verbose
    raise typer.Exit(run_worker(settings, yard, pool, quiet=quiet, verbose=verbose > 0))


def scheduler(
    ctx: typer.Context,
    check: Annotated[
        bool, typer.Option("--check", help="Liveness probe: exit 0 if the loop here turns.")
    ] = False,
) -> None:
    """Fire schedules, re-dispatch unpublished jobs, promote retries, reap lost jobs."""
    if check:
        from jobyard.execution.liveness import probe_main

        raise typer.Exit(probe_main([], scheduler=True))
    from jobyard.scheduler import loop

    runtime: Runtime = state_of(ctx).runtime()
    log_setup.configure(runtime.settings.log_format, role="scheduler")
    stop = threading.Event()
    install_stop_handlers(stop)
    try:
        loop.run(runtime, stop)
    finally:
        runtime.close()


def require_free_port(host: str, port: int) -> None:
    """Refuse at once, in one line, to serve on a port something else listens on.

    Raises:
        ConfigError: naming the address and what to do.
    """
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise ConfigError(
                f"cannot listen on {host}:{port} ({exc.strerror}): stop what uses that port "
                "or choose another with --port"
            ) from exc


def install_stop_handlers(stop: threading.Event) -> None:
    """SIGTERM and SIGINT set `stop` (only CLI entry points install handlers)."""

    def handle(_signum: int, _frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, handle)
    signal.signal(signal.SIGINT, handle)
