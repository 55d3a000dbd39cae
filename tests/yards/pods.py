"""Job types of the pod-per-job tests: each runs in a process of its own."""

from __future__ import annotations

import os
import signal
import time
from typing import Any

from jobyard import JobContext, Yard

yard = Yard("pods")


@yard.job("p.python", pool="pods")
def python_job(ctx: JobContext, delay_s: float = 0.0, steps: int = 0) -> dict[str, Any]:
    """Reports its process, when it ran, and the progress and log lines it wrote."""
    started = time.time()
    for step in range(1, steps + 1):
        ctx.progress(step / steps, f"step {step} of {steps}")
        ctx.log.info("did step %d", step)
        time.sleep(delay_s / max(steps, 1))
    if not steps:
        time.sleep(delay_s)
    print("plain output line", flush=True)  # noqa: T201 - a job printing is logging
    return {"pid": os.getpid(), "started": started, "ended": time.time()}


@yard.job("p.stubborn", pool="pods", timeout_s=600)
def stubborn(pid_file: str) -> None:
    """Ignores SIGTERM and never checks ctx.cancelled(): only SIGKILL stops it."""
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    with open(pid_file, "w", encoding="ascii") as out:
        out.write(str(os.getpid()))
    while True:
        time.sleep(0.1)


@yard.job("p.slow", pool="pods", timeout_s=1.5, retries=0)
def slow() -> None:
    time.sleep(60)


@yard.job("p.crash", pool="pods", retries=1, backoff_s=0.05)
def crash(ctx: JobContext) -> int:
    """Dies without an outcome on the first attempt (as an out-of-memory kill would)."""
    if ctx.attempt == 1:
        os.kill(os.getpid(), signal.SIGKILL)
    return ctx.attempt


@yard.job("p.fail", pool="pods")
def fail() -> None:
    raise ValueError("pods fail too")


@yard.job("p.big", pool="pods")
def big() -> str:
    return "x" * (2 << 20)


yard.command(
    "p.env",
    ["sh", "-c", "echo job $JOBYARD_JOB_ID; echo db=${JOBYARD_DATABASE_URL:-none}"],
    pool="pods",
    description="What a command sees of its environment: its job id, and no credentials.",
)


@yard.job("p.hog", pool="pods", resources={"memory": "300Mi"})
def hog(megabytes: int = 600) -> int:
    """Holds more memory than its type's limit: a node kills it (OOMKilled)."""
    held = [bytearray(1 << 20) for _ in range(megabytes)]
    time.sleep(30)
    return len(held)


yard.command(
    "p.unpullable",
    ["true"],
    pool="pods",
    image="registry.example.com/does-not-exist:1",
    description="Kubernetes: its image cannot be pulled.",
)


@yard.job("p.artifact", pool="pods")
def artifact(ctx: JobContext) -> str:
    """Writes one artifact from its own process; prints a forged artifact line too."""
    print('::artifact-0000 {"name": "../other/x", "size": 1}', flush=True)  # noqa: T201
    return ctx.artifacts.put_bytes("report.json", b'{"ok": true}')
