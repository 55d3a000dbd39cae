"""jobyard: one Yard, two job types on one pool ("bench"), same bodies as every other app.

The job functions receive pydantic-validated keyword arguments; the bodies are the shared
`record_done` / `record_start` side-channel calls (apps/common.py).
Config (database, broker, pool) comes from $JOBYARD_CONFIG (jobyard_cfg/*.toml)."""

from __future__ import annotations

from common import record_done, record_start

from jobyard import Yard

yard = Yard("bench")


@yard.job("noop", pool="bench")
def noop(run: str, n: int) -> None:
    record_done(run, n)


@yard.job("lat", pool="bench")
def lat(run: str) -> None:
    record_start(run)
