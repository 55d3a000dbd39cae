"""`jobyard pools build`: build the virtualenvs of pools that have their own requirements."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Annotated, NoReturn

import typer
from rich.console import Console

from jobyard.cli.output import console
from jobyard.cli.state import state_of
from jobyard.config import Settings
from jobyard.environments.pool_env import ACTIVE_ENV, PoolEnvironment
from jobyard.errors import ConfigError

pools_app = typer.Typer(help="Pool environments.", no_args_is_help=True)


def build_environment(settings: Settings, pool: str, out: Console) -> Path | None:
    """The Python of the pool's environment, built first if needed (with a progress line);
    None for a pool that runs in jobyard's own environment."""
    environment = PoolEnvironment.of(settings, pool)
    if environment is None:
        return None
    if environment.is_built():
        return environment.python
    started = time.monotonic()
    with out.status(f"building the environment of pool {pool}…") as status:

        def show(line: str) -> None:
            status.update(f"building the environment of pool {pool}: {line[:100]}")

        python = environment.build(show)
    out.print(f"pool {pool}: environment built in {time.monotonic() - started:.1f}s")
    return python


def reexec_in_environment(settings: Settings, pool: str, out: Console) -> None:
    """Run this same command again inside the pool's environment, unless already there."""
    environment = PoolEnvironment.of(settings, pool)
    if environment is None or os.environ.get(ACTIVE_ENV) == environment.key:
        return
    python = build_environment(settings, pool, out)
    assert python is not None
    _exec(python, environment.key)


def _exec(python: Path, key: str) -> NoReturn:
    os.environ[ACTIVE_ENV] = key
    os.execv(python, [str(python), "-m", "jobyard", *sys.argv[1:]])


@pools_app.command("build")
def build(
    ctx: typer.Context,
    pool: Annotated[
        str | None, typer.Argument(help="One pool; default every pool with requirements.")
    ] = None,
) -> None:
    """Build (or confirm) the virtualenv of pools with `requirements`, ahead of time."""
    settings = state_of(ctx).settings()
    if pool is not None and pool not in settings.pools:
        declared = ", ".join(sorted(settings.pools)) or "none"
        raise ConfigError(f"pool '{pool}' is not declared (declared pools: {declared})")
    chosen = [pool] if pool is not None else list(settings.pools)
    out = console()
    built = 0
    for name in chosen:
        environment = PoolEnvironment.of(settings, name)
        if environment is None:
            if pool is not None:
                out.print(f"pool {name} has no requirements: it runs in jobyard's environment")
            continue
        was_built = environment.is_built()
        python = build_environment(settings, name, out)
        if was_built:
            out.print(f"pool {name}: environment up to date")
        out.print(f"  {python}", markup=False)
        built += 1
    if pool is None and not built:
        out.print("no pool has requirements: every pool runs in jobyard's environment")
