"""A Yard exercising every path of the executor."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from jobyard import Batch, BatchContext, JobContext, Retry, Yard

yard = Yard("tests")


@yard.job("t.echo", pool="general")
def echo(message: str, count: int = 1) -> dict[str, Any]:
    return {"message": message, "count": count}


class Point(BaseModel):
    x: int
    y: int


@yard.job("t.model", pool="general", args=Point)
def model(point: Point) -> int:
    return point.x + point.y


@yard.job("t.fail", pool="general", retries=1, backoff_s=0.05, jitter=False)
def fail(reason: str = "boom") -> None:
    raise ValueError(reason)


@yard.job("t.flaky", pool="general", retries=2, backoff_s=0.05)
def flaky(ctx: JobContext) -> int:
    if ctx.attempt == 1:
        raise RuntimeError("first attempt fails")
    return ctx.attempt


@yard.job("t.retry", pool="general", retries=1)
def retry(ctx: JobContext) -> int:
    if ctx.attempt == 1:
        raise Retry("not yet", after_s=0.05)
    return ctx.attempt


@yard.job("t.progress", pool="media")
def progress(ctx: JobContext, steps: int = 4, delay_s: float = 0.3) -> int:
    for step in range(1, steps + 1):
        time.sleep(delay_s)
        ctx.progress(step / steps, f"step {step}")
        ctx.log.info("did step %d", step)
    return steps


@yard.job("t.big_result", pool="general")
def big_result() -> str:
    return "x" * (1024 * 1024 + 10)


@yard.job("t.unserializable", pool="general")
def unserializable() -> object:
    return object()


@yard.job("t.until_cancelled", pool="general", timeout_s=60)
def until_cancelled(ctx: JobContext, marker: str) -> str:
    Path(marker).write_text("started")
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if ctx.cancelled():
            return "stopped"
        time.sleep(0.05)
    return "not cancelled"


@yard.job("t.ignores_cancel", pool="media", timeout_s=120)
def ignores_cancel(marker: str) -> str:
    """Never looks at `ctx.cancelled()`: only a hard cancel stops it."""
    Path(marker).write_text(str(os.getpid()))
    time.sleep(60)
    return "ran to the end"


@yard.job("t.slow_timeout", pool="media", timeout_s=1)
def slow_timeout() -> None:
    time.sleep(30)


def _mark_started(directory: str, key: str) -> None:
    """`<key>.started` holding this process's pid, written whole before it appears: a test
    that sees the file reads the pid (a plain write let one read an empty file)."""
    partial = Path(directory, f"{key}.started.partial")
    partial.write_text(str(os.getpid()))
    partial.replace(Path(directory, f"{key}.started"))


def record(ctx: JobContext, key: str, directory: str, sleep_s: float = 0.0) -> int:
    """Sleep, then append one completion line per finished attempt (exactly-once checks)."""
    _mark_started(directory, key)
    time.sleep(sleep_s)
    with open(Path(directory, "completions.log"), "a", encoding="utf-8") as out:
        out.write(f"{key} {ctx.attempt}\n")
    return ctx.attempt


yard.job("t.record", pool="media", timeout_s=120)(record)
#: The same job on other pools, for tests that keep several Celery pool kinds busy at once.
yard.job("t.record_general", pool="general", timeout_s=120)(record)
yard.job("t.record_io", pool="io", timeout_s=120)(record)


@yard.job("t.bulk", pool="bulk", retries=1, backoff_s=0.05)
def bulk(
    ctx: JobContext, key: str, directory: str, sleep_s: float = 0.0, fail: bool = False
) -> int:
    """Many short jobs delivered several per message."""
    _mark_started(directory, key)
    time.sleep(sleep_s)
    if fail and ctx.attempt == 1:
        raise RuntimeError("first attempt fails")
    with open(Path(directory, "completions.log"), "a", encoding="utf-8") as out:
        out.write(f"{key} {ctx.attempt}\n")
    return ctx.attempt


@yard.job("t.noop", pool="general")
def noop() -> None:
    return None


@yard.job("t.artifact", pool="general")
def artifact(ctx: JobContext, text: str, fail_midway: bool = False) -> dict[str, str]:
    """Writes a small artifact, then a 3 MiB one as a stream (abandoned when `fail_midway`)."""
    url = ctx.artifacts.put_bytes("notes/hello.txt", text.encode())
    with ctx.artifacts.open("big.bin") as out:
        for index in range(3):
            out.write(bytes([index]) * 1024 * 1024)
            if fail_midway:
                raise RuntimeError("stopped halfway through big.bin")
    with ctx.artifacts.open_input(url) as back:
        return {"url": url, "read_back": back.read().decode()}


class Square(BaseModel):
    n: int
    fail: bool = False
    sleep_s: float = 0.0


@yard.job("t.batch_square", pool="media", timeout_s=2, batch=Batch(max_size=8, max_wait_ms=300))
def batch_square(ctx: BatchContext, items: list[Square]) -> list[dict[str, int]]:
    """A batched type: squares, and the size and first item of the batch each ran in."""
    ctx.log.info("batch of %d", len(items))
    if len(items) > 1 and any(item.fail for item in items):
        raise ValueError("a bad item spoiled the batch")
    for index, item in enumerate(items):
        if item.fail:
            raise ValueError(f"item {item.n} is bad")
        time.sleep(item.sleep_s)
        ctx.jobs[index].progress(0.5, "half way")
    leader = items[0].n  # tells the batches apart
    return [{"square": item.n**2, "batch": len(items), "leader": leader} for item in items]
