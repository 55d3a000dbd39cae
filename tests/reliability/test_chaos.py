"""1,000 jobs while workers are killed at random: all end, none completes twice."""

from __future__ import annotations

import os
import random
import signal
import time
from collections import Counter
from pathlib import Path

from sqlalchemy import func, select

from jobyard.dispatch import submit
from jobyard.domain.states import TERMINAL_STATES, JobState
from jobyard.store.models import attempts_table, jobs_table
from tests.factories import Stack
from tests.reliability.helpers import completions

JOBS = 1000
DEADLINE_S = 240


def _states(stack: Stack) -> Counter[str]:
    with stack.runtime.db.read() as conn:
        rows = conn.execute(select(jobs_table.c.state, func.count()).group_by(jobs_table.c.state))
        return Counter({row[0]: row[1] for row in rows})


def _children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(p) for p in path.read_text().split()] if path.exists() else []


def _kill_something(stack: Stack, rng: random.Random) -> str:
    """SIGKILL a prefork child (often) or a whole worker (sometimes, then restart it)."""
    name = rng.choice(["worker-media-a", "worker-media-b"])
    process = stack.processes[name]
    children = _children(process.pid)
    if children and rng.random() < 0.7:
        os.kill(rng.choice(children), signal.SIGKILL)
        return f"child of {name}"
    stack.stop(name, signal.SIGKILL)
    stack.worker("media", name=name)
    return name


def test_thousand_jobs_with_random_worker_kills(stack: Stack, tmp_path: Path) -> None:
    rng = random.Random(20261122)
    out = tmp_path / "out"
    out.mkdir()
    stack.scheduler()
    stack.workers("media", "media", names=["worker-media-a", "worker-media-b"])
    requests = [
        submit.JobRequest(
            "t.record",
            {"key": f"k{i}", "directory": str(out), "sleep_s": rng.choice([0.0, 0.0, 0.01, 0.05])},
        )
        for i in range(JOBS)
    ]
    submit.submit_many(stack.runtime, requests, submitted_by="chaos")

    kills: list[str] = []
    deadline = time.monotonic() + DEADLINE_S
    while time.monotonic() < deadline:
        states = _states(stack)
        if sum(states[s.value] for s in TERMINAL_STATES) == JOBS:
            break
        if len(kills) < 12 and states[JobState.SUCCEEDED.value] > 40 * (len(kills) + 1):
            kills.append(_kill_something(stack, rng))
        time.sleep(0.1)
    states = _states(stack)
    assert states == {"succeeded": JOBS}, (states, kills, stack.logs())
    assert len(kills) >= 8, kills

    with stack.runtime.db.read() as conn:
        succeeded = Counter(
            row.job_id
            for row in conn.execute(
                select(attempts_table.c.job_id).where(attempts_table.c.outcome == "succeeded")
            )
        )
        final = {
            row.args["key"]: row.attempt
            for row in conn.execute(select(jobs_table.c.args, jobs_table.c.attempt))
        }
    assert len(succeeded) == JOBS and set(succeeded.values()) == {1}
    done = completions(out)
    # The attempt that committed success ran its body to the end exactly once.
    assert all(done[(key, attempt)] == 1 for key, attempt in final.items())
    retried = sum(1 for a in final.values() if a > 1)
    print(f"kills: {kills}; jobs needing more than one attempt: {retried}")  # noqa: T201
