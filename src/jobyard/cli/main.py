"""The Typer root: options shared by every command, error rendering, exit codes."""

from __future__ import annotations

import logging
import sys
import traceback
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import ValidationError

from jobyard.cli import (
    config_cmd,
    db_cmd,
    deploy_cmd,
    exitcodes,
    inspect_cmd,
    jobs_cmd,
    keys_cmd,
    pods_cmd,
    pools_cmd,
    processes,
    rerun_cmd,
    schedules_cmd,
    up_cmd,
)
from jobyard.cli.output import causes, console
from jobyard.cli.state import CliState
from jobyard.errors import ConfigError, JobyardError, ServiceUnavailable

EPILOG = """\b
Examples:
  jobyard up --demo                         everything on this machine, demo jobs loaded
  jobyard submit demo.echo --args '{"message": "hi"}' --wait
  jobyard jobs ls --state failed            what went wrong
  jobyard worker --pool media               one worker of the media pool
  JOBYARD_DATABASE_URL=postgresql://postgres@localhost/jobyard jobyard db upgrade
"""

app = typer.Typer(
    name="jobyard",
    help="Background jobs with durable records, worker pools and a web API.",
    epilog=EPILOG,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)


@app.callback()
def root(
    ctx: typer.Context,
    config: Annotated[
        Path | None,
        typer.Option("--config", "-c", envvar="JOBYARD_CONFIG", help="Path of jobyard.toml."),
    ] = None,
    verbose: Annotated[
        int, typer.Option("--verbose", "-v", count=True, help="More output; -v shows tracebacks.")
    ] = 0,
) -> None:
    """Background jobs with durable records, worker pools and a web API."""
    ctx.obj = CliState(config=config, verbose=verbose)
    logging.basicConfig(
        level=logging.DEBUG if verbose > 1 else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    if verbose < 2:  # migrations, up's readiness polls and jobs' HTTP requests are not news
        for noisy in ("alembic", "httpx"):
            logging.getLogger(noisy).setLevel(logging.WARNING)


jobs_cmd.jobs_app.command("rerun")(rerun_cmd.rerun)
app.add_typer(jobs_cmd.jobs_app, name="jobs")
app.add_typer(config_cmd.config_app, name="config")
app.add_typer(db_cmd.db_app, name="db")
app.add_typer(schedules_cmd.schedules_app, name="schedules")
app.add_typer(keys_cmd.keys_app, name="keys")
app.add_typer(deploy_cmd.deploy_app, name="deploy")
app.add_typer(pools_cmd.pools_app, name="pools")
app.command("submit")(jobs_cmd.submit)
app.command("up")(up_cmd.up)
app.command("web")(processes.web)
app.command("worker")(processes.worker)
app.command("scheduler")(processes.scheduler)
app.command("launcher")(pods_cmd.launcher)
app.command("run-job")(pods_cmd.run_job)
app.command("inspect")(inspect_cmd.inspect)


def _click_exception_class() -> type[Exception]:
    """The ClickException class the CLI raises: typer ≥ 0.2x ships its own copy of click, so
    `click.ClickException` would not catch its usage errors."""
    return next(c for c in typer.BadParameter.__mro__ if c.__name__ == "ClickException")


#: Usage errors (missing argument, unknown command or option, bad value): exit 2.
USAGE_ERRORS: Any = _click_exception_class()


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the command, render errors as one line per cause, exit with a code."""
    args = sys.argv[1:] if argv is None else argv
    verbose = any(a in ("-v", "-vv", "--verbose") for a in args)
    command = typer.main.get_command(app)
    try:
        code = command.main(args=args, prog_name="jobyard", standalone_mode=False)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except USAGE_ERRORS as exc:
        exc.show()  # click's usage line, then the error
        sys.exit(exitcodes.USAGE)
    except (typer.Abort, KeyboardInterrupt):
        console(stderr=True).print("interrupted")
        sys.exit(exitcodes.INTERRUPTED)
    except JobyardError as exc:
        sys.exit(_report(exc, verbose))
    except Exception as exc:  # the last resort: never a bare traceback unless asked
        err = console(stderr=True)
        if verbose:
            err.print(traceback.format_exc(), markup=False)
        err.print(f"error: unexpected {type(exc).__name__}: {exc}", markup=False)
        err.print("run again with -v for the traceback", markup=False)
        sys.exit(exitcodes.FAILURE)
    # Without standalone mode click returns the code of a `typer.Exit` instead of exiting.
    sys.exit(code if isinstance(code, int) else exitcodes.OK)


def _first_line(exc: BaseException) -> str:
    """The cause's own words: first line, without SQLAlchemy's `(driver.Error) ` prefix."""
    lines = str(exc).strip().splitlines()
    line = lines[0] if lines else type(exc).__name__
    return line.split(") ", 1)[1] if line.startswith("(") and ") " in line else line


def _report(exc: JobyardError, verbose: bool) -> int:
    err = console(stderr=True)
    if verbose:
        err.print(traceback.format_exc(), markup=False)
    chain = causes(exc)
    err.print(f"error: {exc.message}", markup=False, style="bold red")
    shown = [exc.message]
    for cause in chain[:-1]:
        line = _first_line(cause)
        # pydantic's dump repeats what the message already says, field by field; a driver's
        # error is often the same text SQLAlchemy wraps again: one line per cause, once.
        if isinstance(cause, JobyardError | ValidationError) or any(line in s for s in shown):
            continue
        err.print(f"  caused by {type(cause).__name__}: {line}", markup=False)
        shown.append(line)
    if isinstance(exc, ConfigError):
        return exitcodes.USAGE
    if isinstance(exc, ServiceUnavailable):
        return exitcodes.UNAVAILABLE
    return exitcodes.FAILURE
