"""Declaring job types."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from pydantic import BaseModel

from jobyard import JobContext, Yard
from jobyard.clock import utcnow
from jobyard.config import load_settings
from jobyard.errors import ConfigError, InvalidArgs, UnknownJobType
from jobyard.storage.job_artifacts import JobArtifacts
from jobyard.storage.location import Storage


class _Hooks:
    def report_progress(self, fraction: float, message: str | None) -> None:
        self.last = (fraction, message)

    def is_cancelled(self) -> bool:
        return False


def _ctx() -> JobContext:
    unused = JobArtifacts(lambda: Storage("memory://unused", {}), "id", 1, print, utcnow)
    return JobContext("id", 1, logging.getLogger("test"), _Hooks(), unused)


def test_schema_from_signature_and_call() -> None:
    yard = Yard()

    @yard.job(pool="general", retries=2, timeout_s=5)
    def resize(ctx: JobContext, path: str, width: int = 100) -> dict[str, Any]:
        ctx.progress(2.0)
        return {"path": path, "width": width}

    definition = yard.definition(f"{__name__}.test_schema_from_signature_and_call.<locals>.resize")
    assert definition.retry.max_attempts == 3 and definition.timeout_s == 5
    assert definition.validate_args({"path": "a.png"}) == {"path": "a.png", "width": 100}
    assert definition.call(_ctx(), {"path": "a", "width": 3}) == {"path": "a", "width": 3}
    with pytest.raises(InvalidArgs) as caught:
        definition.validate_args({"width": "wide", "colour": "red"})
    fields = {e["field"] for e in caught.value.details["errors"]}
    assert fields == {"path", "width", "colour"}


def test_explicit_model_and_no_context() -> None:
    yard = Yard()

    class Args(BaseModel):
        n: int

    @yard.job("double", args=Args)
    def double(args: Args) -> int:
        return args.n * 2

    @yard.job("coro")
    async def coro(x: int) -> int:
        return x + 1

    assert yard.definition("double").call(_ctx(), {"n": 4}) == 8
    assert yard.definition("coro").call(_ctx(), {"x": 1}) == 2


def test_declaration_errors() -> None:
    yard = Yard()
    with pytest.raises(ConfigError, match="priority must be between 0 and 9"):
        yard.job("p", priority=12)
    with pytest.raises(ConfigError, match="timeout_s must be > 0"):
        yard.job("t", timeout_s=0)
    with pytest.raises(ConfigError, match=r"\*args"):
        yard.job("v")(lambda *_items: None)

    @yard.job("same")
    def first() -> None: ...

    with pytest.raises(ConfigError, match="declared twice"):
        yard.job("same")(first)
    with pytest.raises(UnknownJobType, match="known: same"):
        yard.definition("other")


def test_undeclared_pool_is_an_error_at_start() -> None:
    yard = Yard()
    yard.job("infer", pool="gpu")(lambda: None)
    settings = load_settings(None, environ={}, pools={"general": {}})
    with pytest.raises(ConfigError, match=r"uses pool 'gpu'.*add \[pools.gpu\]"):
        yard.check_pools(settings)
