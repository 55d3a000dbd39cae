"""Demo job types for `jobyard up --demo`: one that echoes, one that reports progress, one
that fails on its first attempt and succeeds on the retry."""

from __future__ import annotations

import time
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from jobyard.app import Yard
from jobyard.context import JobContext

yard = Yard("demo")


class EchoArgs(BaseModel):
    """Any JSON object; `message` is shown in the dashboard."""

    model_config = ConfigDict(extra="allow")
    message: str = "hello from jobyard"


@yard.job("demo.echo", pool="general", args=EchoArgs)
def echo(ctx: JobContext, args: EchoArgs) -> dict[str, Any]:
    """Return the arguments unchanged."""
    ctx.log.info("echoing %s", args.message)
    return args.model_dump()


@yard.job("demo.progress", pool="media", timeout_s=600)
def progress(
    ctx: JobContext,
    steps: int = Field(10, ge=1, le=1000),
    delay_s: float = Field(0.3, ge=0, le=10),
) -> dict[str, int]:
    """Work through `steps` steps, reporting progress and a log line for each."""
    for step in range(1, steps + 1):
        if ctx.cancelled():
            ctx.log.warning("cancelled at step %d", step)
            return {"steps_done": step - 1}
        time.sleep(delay_s)
        ctx.progress(step / steps, f"step {step} of {steps}")
        ctx.log.info("finished step %d of %d", step, steps)
    return {"steps_done": steps}


@yard.job("demo.flaky", pool="general", retries=2, backoff_s=0.5, backoff_max_s=2)
def flaky(ctx: JobContext, fail_times: int = Field(1, ge=0, le=10)) -> dict[str, int]:
    """Fail the first `fail_times` attempts, then succeed."""
    if ctx.attempt <= fail_times:
        raise RuntimeError(f"flaky by design: attempt {ctx.attempt} of {fail_times} failing")
    ctx.log.info("succeeded on attempt %d", ctx.attempt)
    return {"attempt": ctx.attempt}
