"""Rendering for the CLI: tables, job panels, errors with their cause chain."""

from __future__ import annotations

import json
import os
import sys
from datetime import datetime
from typing import Any

from rich.console import Console
from rich.table import Table

from jobyard.store.records import JobRecord
from jobyard.timefmt import iso_utc

STATE_STYLES = {
    "queued": "cyan",
    "running": "yellow",
    "retrying": "magenta",
    "succeeded": "green",
    "failed": "red",
    "cancelled": "dim",
}


#: Width of tables written to a pipe or file (Rich assumes 80 columns there and folds cells).
PIPE_WIDTH = 200


def console(stderr: bool = False) -> Console:
    """A Rich console (stderr for diagnostics); wide when not writing to a terminal."""
    stream = sys.stderr if stderr else sys.stdout
    piped = not stream.isatty() and "COLUMNS" not in os.environ
    return Console(
        stderr=stderr, highlight=False, soft_wrap=True, width=PIPE_WIDTH if piped else None
    )


def state_text(state: str) -> str:
    """A state wrapped in its colour."""
    return f"[{STATE_STYLES.get(state, 'white')}]{state}[/]"


def jobs_table(records: list[JobRecord]) -> Table:
    """A table of jobs, one per row."""
    table = Table(box=None, header_style="bold")
    # Ids are what users copy into the next command: never truncate them.
    table.add_column("ID", no_wrap=True, min_width=36)
    for column in ("TYPE", "POOL", "STATE", "ATTEMPT", "PROGRESS"):
        table.add_column(column, overflow="fold")
    table.add_column("CREATED", no_wrap=True)
    for job in records:
        progress = f"{job.progress * 100:.0f}%" if job.progress is not None else ""
        table.add_row(
            str(job.id),
            job.type,
            job.pool,
            state_text(job.state.value),
            f"{job.attempt}/{job.max_attempts}",
            progress,
            iso_utc(job.created_at, precise=False),
        )
    return table


def job_details(job: JobRecord) -> dict[str, Any]:
    """A job as a JSON-ready dict."""
    out: dict[str, Any] = {}
    for name in JobRecord.__slots__:
        value = getattr(job, name)
        out[name] = iso_utc(value) if isinstance(value, datetime) else value
    out["id"] = str(job.id)
    out["state"] = job.state.value
    return out


def as_json(value: Any) -> str:
    """Pretty JSON; moments in ISO 8601 UTC with `Z`, like the API."""
    return json.dumps(value, indent=2, default=_json_default, ensure_ascii=False)


def _json_default(value: Any) -> Any:
    return iso_utc(value) if isinstance(value, datetime) else str(value)


def causes(exc: BaseException) -> list[BaseException]:
    """The exception and its causes, root cause first."""
    chain: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in chain:
        chain.append(current)
        current = current.__cause__ or (
            None if current.__suppress_context__ else current.__context__
        )
    return list(reversed(chain))
