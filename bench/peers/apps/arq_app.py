"""arq: WorkerSettings with library defaults (max_jobs=10, poll_delay=0.5 s,
keep_result=3600 s). Job bodies are async functions."""

from __future__ import annotations

from typing import Any, ClassVar

from arq.connections import RedisSettings
from common import record_done, record_start

REDIS = RedisSettings(host="127.0.0.1", port=6379, database=1)


async def noop(_ctx: dict[str, Any], run: str, n: int) -> None:
    record_done(run, n)


async def lat(_ctx: dict[str, Any], run: str) -> None:
    record_start(run)


class WorkerSettings:
    functions: ClassVar[list[Any]] = [noop, lat]
    redis_settings = REDIS
