"""`jobyard up`: the whole system on one machine under one supervisor."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Annotated

import httpx
import typer
from rich.console import Console

from jobyard import access
from jobyard.app import Yard
from jobyard.cli.output import console
from jobyard.cli.pools_cmd import build_environment
from jobyard.cli.processes import install_stop_handlers, require_free_port
from jobyard.cli.state import state_of
from jobyard.config import UP_CONFIG_POINTER, Settings
from jobyard.embedded import redis as embedded_redis
from jobyard.environments.pool_env import ACTIVE_ENV, PoolEnvironment
from jobyard.loader import load_yard_for
from jobyard.runtime import Runtime, check_configuration
from jobyard.supervisor import ChildSpec, Supervisor

DEMO_CONFIG = Path(__file__).resolve().parent.parent / "packs" / "demo" / "jobyard.toml"


#: How long `up` waits for web's /readyz before saying it is up.
READY_WAIT_S = 60.0


def _require_a_key(settings: Settings, yard: Yard) -> None:
    runtime = Runtime.open(settings, yard=yard)
    try:
        access.ensure_bootstrap_key(runtime)
        access.require_a_key(runtime, settings.web.host)
    finally:
        runtime.close()


def _wait_until_ready(
    url: str, stop: threading.Event, out: Console, supervisor: Supervisor
) -> bool:
    """Poll web's /readyz (with a spinner) until it answers 200, up to `READY_WAIT_S`, or
    until a child stops with a configuration error."""
    deadline = time.monotonic() + READY_WAIT_S
    with out.status("starting web, workers and the scheduler…"):
        while time.monotonic() < deadline and not stop.is_set():
            if supervisor.poll_fatal():
                return False
            try:
                if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                    return True
            except httpx.HTTPError:
                pass
            stop.wait(0.2)
    return False


def up(
    ctx: typer.Context,
    demo: Annotated[bool, typer.Option(help="Load the demo job types and pools.")] = False,
    port: Annotated[
        int | None, typer.Option(envvar="JOBYARD_WEB__PORT", help="Web port (default 8000).")
    ] = None,
    host: Annotated[
        str | None, typer.Option(envvar="JOBYARD_WEB__HOST", help="Web bind address.")
    ] = None,
) -> None:
    """Run web, one worker per pool and the scheduler; Ctrl-C stops everything."""
    state = state_of(ctx)
    if demo:
        state.config = DEMO_CONFIG
    overrides = {k: v for k, v in {"host": host, "port": port}.items() if v is not None}
    settings = state.settings()
    if overrides:
        settings = settings.model_copy(update={"web": settings.web.model_copy(update=overrides)})
    yard = load_yard_for(settings)
    check_configuration(settings, yard)
    auth_mode = access.effective_mode(settings)
    require_free_port(settings.web.host, settings.web.port)
    from jobyard.store import migrate  # Alembic only where it is used (`store.schema_version`)

    out = console()
    # Environments first: a pool whose requirements cannot be built starts nothing.
    pythons = {pool: build_environment(settings, pool, out) for pool in settings.pools}
    redis_process = _start_embedded_broker(settings, out)
    try:
        migrate.upgrade_url(settings.database)
        if auth_mode == "keys" and not access.is_loopback(settings.web.host):
            _require_a_key(settings, yard)  # web would refuse, and be restarted, in a loop
    except BaseException:
        _stop_broker(redis_process)
        raise
    _point_to_config(state.config)
    children = _children(settings, state.config, pythons, quiet=state.verbose == 0)
    supervisor = Supervisor(children, on_event=out.print)
    stop = threading.Event()
    install_stop_handlers(stop)
    supervisor.start()
    url = f"http://{settings.web.host}:{settings.web.port}"
    if _wait_until_ready(url, stop, out, supervisor):
        _welcome(out, settings, url, auth_mode)
    elif supervisor.fatal is None:
        out.print(f"[yellow]web did not answer {url}/readyz within {READY_WAIT_S:g}s[/]")
        _welcome(out, settings, url, auth_mode, ready=False)
    try:
        if supervisor.fatal is None:
            supervisor.run(stop)
    finally:
        out.print("stopping…")
        supervisor.stop()
        _stop_broker(redis_process)
        out.print("stopped")
    if supervisor.fatal is not None:
        name, code = supervisor.fatal
        console(stderr=True).print(
            f"error: {name} stopped with a configuration error (its message is above); "
            "jobyard up stopped everything",
            markup=False,
        )
        raise typer.Exit(code)


def _welcome(
    out: Console, settings: Settings, url: str, auth_mode: str, *, ready: bool = True
) -> None:
    if ready:
        out.print(
            f"[bold green]jobyard is up[/]: dashboard {url}/  API {url}/api/v1  docs {url}/docs"
        )
    if auth_mode == "open":
        out.print(
            f"the dashboard and API are open, with no login: {settings.web.host} accepts "
            "connections from this machine only (auth.mode = 'keys' requires API keys)"
        )
    else:
        out.print("log in with an API key: jobyard keys create --name NAME --role admin")
    out.print(f"health {url}/readyz  metrics {url}/metrics")
    out.print(f"pools: {', '.join(settings.pools)}; data in {settings.resolved_data_dir}")
    out.print("press Ctrl-C to stop")


def _start_embedded_broker(settings: Settings, out: Console) -> subprocess.Popen[bytes] | None:
    if not settings.embedded_broker:
        return None
    process = embedded_redis.start(settings.embedded_redis_socket)
    out.print(f"embedded Redis on {settings.embedded_redis_socket}")
    return process


def _stop_broker(process: subprocess.Popen[bytes] | None) -> None:
    if process is not None:
        process.terminate()
        process.wait(10)


def _point_to_config(config: Path | None) -> None:
    """Let other commands run from this folder use the same config as this `up`."""
    UP_CONFIG_POINTER.parent.mkdir(parents=True, exist_ok=True)
    if config is None:
        UP_CONFIG_POINTER.unlink(missing_ok=True)
    else:
        UP_CONFIG_POINTER.write_text(str(config.resolve()), encoding="utf-8")


def _children(
    settings: Settings, config: Path | None, pythons: dict[str, Path | None], *, quiet: bool
) -> list[ChildSpec]:
    """Children inherit this environment (database and broker URLs) plus these values; the
    workers of a pool with requirements run in its environment (`pythons`)."""
    env = {
        "JOBYARD_DATA_DIR": str(settings.resolved_data_dir),
        "JOBYARD_WEB__HOST": settings.web.host,
        "JOBYARD_WEB__PORT": str(settings.web.port),
    }
    if config is not None:
        env["JOBYARD_CONFIG"] = str(config)
    base = [sys.executable, "-m", "jobyard"]
    specs = [ChildSpec("web", [*base, "web"], env)]
    for name, pool in settings.pools.items():
        if pool.mode == "pod-per-job":  # its job processes run in the pool's environment
            specs.append(ChildSpec(f"launcher-{name}", [*base, "launcher", "--pool", name], env))
            continue
        python = pythons.get(name)
        environment = PoolEnvironment.of(settings, name)
        own = {ACTIVE_ENV: environment.key} if python and environment else {}
        loud = [] if quiet else ["-v"]  # `up -v`: Celery's banner and per-task lines too
        argv = [str(python or sys.executable), "-m", "jobyard", *loud, "worker", "--pool", name]
        if quiet:  # no Celery banner or root warning per worker
            argv.append("--quiet")
        specs.append(ChildSpec(f"worker-{name}", argv, {**env, **own}))
    specs.append(ChildSpec("scheduler", [*base, "scheduler"], env))
    return specs
