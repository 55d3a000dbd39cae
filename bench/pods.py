"""pod-per-job on this machine, side by side with a `workers` pool, in one run.

    .venv/bin/python bench/pods.py [--jobs 200] [--parallel 4]

For the same no-op job in a pod-per-job pool (`max_parallel = N`, a fresh `jobyard run-job`
process per job, local runner) and in a prefork `workers` pool of the same concurrency:
submit→job-code-started latency p50/p95 into an idle pool (the job returns when its code
began; a fresh process must start and import the job's module first), end-to-end jobs/s for
`--jobs` one-by-one submits, and memory per running job (a job process's RSS, or a
worker's whole process tree divided by its slots, sampled while every slot holds a job). Then
the time to build a pool environment with one small requirement: new (warm uv cache), new
with an empty uv cache (everything downloaded), and when it is already built.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.throughput import (  # noqa: E402
    _tree_rss_mb,
    bench_database,
    bench_settings,
    env_of,
)
from jobyard.config import Settings  # noqa: E402
from jobyard.dispatch import submit  # noqa: E402
from jobyard.domain.states import TERMINAL_STATES  # noqa: E402
from jobyard.environments.pool_env import PoolEnvironment  # noqa: E402
from jobyard.runtime import Runtime  # noqa: E402
from jobyard.store import jobs, migrate  # noqa: E402

console = Console(width=150)


def settings_for(database_url: str, data_dir: Path, parallel: int) -> Settings:
    return bench_settings(
        database_url,
        {
            "bench": {"concurrency": parallel, "celery_pool": "prefork", "prefetch": 1},
            "pods": {"mode": "pod-per-job", "max_parallel": parallel},
        },
        data_dir=data_dir,
    )


def start(settings: Settings, *args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "jobyard", *args],
        env=env_of(settings),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


def stop(process: subprocess.Popen[bytes]) -> None:
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(30)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def wait_all(runtime: Runtime, ids: list[uuid.UUID], timeout_s: float = 600) -> list[object]:
    deadline = time.monotonic() + timeout_s
    done: dict[uuid.UUID, object] = {}
    while len(done) < len(ids) and time.monotonic() < deadline:
        for job_id in ids:
            if job_id not in done:
                job = jobs.get(runtime.db, job_id)
                if job.state in TERMINAL_STATES:
                    done[job_id] = job
        time.sleep(0.05)
    return [done[i] for i in ids]


def start_latencies(runtime: Runtime, job_type: str, count: int) -> list[float]:
    """submit→job-code-started (ms) of `count` jobs submitted one at a time to an idle pool
    (each after the last one finished), so no job waits for a slot."""
    waits = []
    for _ in range(count):
        request = submit.JobRequest(job_type, {})
        job_id = submit.submit_one(runtime, request, submitted_by="bench").job.id
        (job,) = wait_all(runtime, [job_id])
        waits.append((job.result - job.created_at.timestamp()) * 1000)  # type: ignore[attr-defined]
    return waits


def throughput(runtime: Runtime, job_type: str, count: int) -> float:
    """End-to-end jobs/s of `count` jobs submitted one by one as fast as possible."""
    began = time.monotonic()
    ids = [
        submit.submit_one(runtime, submit.JobRequest(job_type, {}), submitted_by="bench").job.id
        for _ in range(count)
    ]
    wait_all(runtime, ids)
    return count / (time.monotonic() - began)


def memory_per_job(
    runtime: Runtime, job_type: str, parallel: int, tree_of: subprocess.Popen[bytes]
) -> float:
    """RSS per running job, while `parallel` jobs hold their slots for 3 s."""
    ids = [
        submit.submit_one(
            runtime, submit.JobRequest(job_type, {"hold_s": 3.0}), submitted_by="bench"
        ).job.id
        for _ in range(parallel)
    ]
    time.sleep(2.0)
    if job_type == "bench.pod_started":
        pids = _run_job_pids()
        rss = sum(_tree_rss_mb(pid) for pid in pids) / max(len(pids), 1)
    else:
        rss = _tree_rss_mb(tree_of.pid) / parallel
    wait_all(runtime, ids)
    return rss


def _run_job_pids() -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if b"run-job" in (entry / "cmdline").read_bytes():
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def env_builds(data_dir: Path) -> dict[str, float]:
    requirements = data_dir / "requirements-bench.txt"
    requirements.write_text("tabulate==0.9.0\n", encoding="utf-8")
    timings: dict[str, float] = {}
    for label, cache in (("new, warm uv cache", None), ("new, empty uv cache", "empty")):
        root = Path(tempfile.mkdtemp(prefix="jobyard-bench-env-"))
        env = PoolEnvironment("bench", requirements, root)
        saved = os.environ.get("UV_CACHE_DIR")
        if cache:
            os.environ["UV_CACHE_DIR"] = str(root / "uv-cache")
        began = time.monotonic()
        env.build()
        timings[label] = time.monotonic() - began
        began = time.monotonic()
        env.build()
        timings["already built"] = time.monotonic() - began
        if saved is None:
            os.environ.pop("UV_CACHE_DIR", None)
        shutil.rmtree(root, ignore_errors=True)
    return timings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=200)
    parser.add_argument("--parallel", type=int, default=4)
    parser.add_argument("--latency-jobs", type=int, default=40)
    parser.add_argument("--skip-env", action="store_true", help="Skip the environment builds.")
    options = parser.parse_args()
    rows = []
    with bench_database() as url, tempfile.TemporaryDirectory() as folder:
        settings = settings_for(url, Path(folder), options.parallel)
        migrate.upgrade_url(settings.database)
        runtime = Runtime.open(settings)
        for label, job_type, command in (
            (f"pod-per-job, max_parallel {options.parallel}", "bench.pod_started", "launcher"),
            (f"workers, prefork concurrency {options.parallel}", "bench.started", "worker"),
        ):
            pool = "pods" if command == "launcher" else "bench"
            process = start(settings, command, "--pool", pool)
            time.sleep(6)  # start-up is not what is measured
            with console.status(f"{label}: {options.jobs} jobs…"):
                throughput(runtime, job_type, options.parallel * 2)  # warm up
                waits = start_latencies(runtime, job_type, options.latency_jobs)
                rate = throughput(runtime, job_type, options.jobs)
                rss = memory_per_job(runtime, job_type, options.parallel, process)
            stop(process)
            cuts = statistics.quantiles(waits, n=20)
            rows.append((label, statistics.median(waits), cuts[18], rate, rss))
        runtime.close()
        builds = {} if options.skip_env else env_builds(Path(folder))
    table = Table(
        title=f"no-op jobs on PostgreSQL + Redis: start latency of {options.latency_jobs} jobs "
        f"into an idle pool; end-to-end of {options.jobs} submitted one by one at once"
    )
    for column in ("pool", "submit→started p50", "p95", "end-to-end", "memory per running job"):
        table.add_column(column, justify="right" if column != "pool" else "left")
    for label, p50, p95, rate, rss in rows:
        table.add_row(
            label, f"{p50:.0f} ms", f"{p95:.0f} ms", f"{rate:.1f} jobs/s", f"{rss:.0f} MB"
        )
    console.print(table)
    if builds:
        envs = Table(title="pool environment with one small requirement (uv)")
        envs.add_column("build")
        envs.add_column("time", justify="right")
        for label, seconds in builds.items():
            envs.add_row(label, f"{seconds:.2f} s")
        console.print(envs)


if __name__ == "__main__":
    main()
