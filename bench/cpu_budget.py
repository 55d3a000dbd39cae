"""CPU time per job, process by process, for each submission path end to end, beside Celery's.

    .venv/bin/python bench/cpu_budget.py [--n 3000] [--reps 1]
        [--libs jobyard-http,jobyard-py,celery-redis] [--profile DIR]

Runs the peers bench's end-to-end phase (`bench/peers`: the same apps, configuration,
driver and services; install the peers first with `bench/peers/run.sh`) after a warm-up,
and reads every process's CPU time from /proc before and after it: the web process, the
scheduler, the worker with its pool children, all PostgreSQL processes, redis-server,
RabbitMQ, and the client (the driver, from this process's reaped children). On a machine
whose cores all take part, the total is what bounds the rate: 2 cores at 4 ms per job run
at most 500 jobs/s however the work overlaps.

With `--profile DIR`, py-spy (not a dependency: `pip install py-spy`) samples the web process
and the worker with its children over the same phase, writes their stacks to DIR, and prints
the functions each spends its own time in. Only the thread holding the GIL is sampled, so
the shares are of the Python CPU time (py-spy's idle detection counted threads waiting in
`Condition.wait` here); profiling slows the run, so its rates are not comparable.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.peers import bench as peers

#: Process groups read from /proc by command name (every process of these servers).
SERVERS = {"postgres": "PostgreSQL", "redis-server": "Redis", "beam.smp": "RabbitMQ"}
GROUPS = ["web", "scheduler", "worker", "PostgreSQL", "Redis", "RabbitMQ", "client"]
WARMUP_JOBS = 300
TIMEOUT_S = 600.0
TOP_FUNCTIONS = 15

ProcTable = dict[int, tuple[str, int, float]]


def processes() -> ProcTable:
    """pid → (command name, parent pid, CPU seconds used) of every process."""
    tick = os.sysconf("SC_CLK_TCK")
    table: ProcTable = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path("/proc", entry, "stat").read_text()
        except OSError:  # ended meanwhile
            continue
        end = stat.rindex(")")
        fields = stat[end + 2 :].split()
        cpu_s = (int(fields[11]) + int(fields[12])) / tick
        table[int(entry)] = (stat[stat.index("(") + 1 : end], int(fields[1]), cpu_s)
    return table


def tree(table: ProcTable, root: int) -> set[int]:
    """`root` and every process below it."""
    members = {root}
    grew = True
    while grew:
        grew = False
        for pid, (_, parent, _) in table.items():
            if parent in members and pid not in members:
                members.add(pid)
                grew = True
    return members


def cpu_by_group(roots: dict[str, list[int]]) -> dict[str, float]:
    """CPU seconds used so far by each group: named process trees, then the servers."""
    table = processes()
    used = dict.fromkeys(GROUPS, 0.0)
    for group, pids in roots.items():
        for root in pids:
            used[group] += sum(table[pid][2] for pid in tree(table, root) if pid in table)
    for command, cpu_s in ((comm, cpu) for comm, _, cpu in table.values()):
        for prefix, group in SERVERS.items():
            if command.startswith(prefix):
                used[group] += cpu_s
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    used["client"] = children.ru_utime + children.ru_stime
    return used


def py_spy() -> str | None:
    """py-spy on PATH or beside this interpreter (installed into the same virtualenv)."""
    beside = Path(sys.executable).parent / "py-spy"
    return str(beside) if beside.exists() else shutil.which("py-spy")


def start_profiler(pid: int, out: Path) -> subprocess.Popen[bytes]:
    """py-spy sampling `pid` and its children until interrupted."""
    command = [
        py_spy() or "py-spy",
        "record",
        "--format",
        "raw",
        "--rate",
        "250",
        "--nonblocking",
        "--gil",
    ]
    command += ["--subprocesses", "--pid", str(pid), "--output", str(out)]
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def stop_profiler(profiler: subprocess.Popen[bytes]) -> None:
    profiler.send_signal(signal.SIGINT)  # py-spy writes its file when interrupted
    try:
        profiler.wait(timeout=30)
    except subprocess.TimeoutExpired:
        profiler.kill()


def own_time(stacks: Path) -> tuple[Counter[str], int]:
    """Samples per innermost function (its own time) in a py-spy raw file, and the total."""
    counts: Counter[str] = Counter()
    for line in stacks.read_text().splitlines():
        frames, _, samples = line.rpartition(" ")
        if not frames or not samples.isdigit():
            continue
        innermost = frames.rsplit(";", 1)[-1]
        function, _, where = innermost.partition(" (")
        path = where.split(":", 1)[0]
        counts[f"{function} ({_short(path)})"] += int(samples)
    return counts, sum(counts.values())


def by_library(counts: Counter[str]) -> Counter[str]:
    """Own time summed by the library (top-level package) of each function."""
    libraries: Counter[str] = Counter()
    for function, samples in counts.items():
        where = function.rpartition(" (")[2].rstrip(")")
        top = where.split("/", 1)[0] if "/" in where else where.removesuffix(".py")
        libraries[top] += samples
    return libraries


def _short(path: str) -> str:
    for marker in ("site-packages/", "/src/", "python3.11/"):
        if marker in path:
            return path.split(marker, 1)[1]
    return path


def measure(lib: str, n: int, rep: int, profile: Path | None) -> dict[str, Any]:
    """One end-to-end phase of `n` jobs after a warm-up; CPU ms per job by group."""
    tag = f"cpu-{lib}-r{rep}"
    peers.SIDE.flushdb()
    peers.driver(lib, "reset", 0, tag, TIMEOUT_S)
    services = peers.start_services(lib, tag) if lib in peers.JY_SERVICES else {}
    workers = peers.start_workers(lib, tag)
    profilers: list[subprocess.Popen[bytes]] = []
    try:
        peers.driver(lib, "e2e", WARMUP_JOBS, f"{tag}-warm", TIMEOUT_S)
        time.sleep(1.0)
        roots = {name: [process.pid] for name, process in services.items()}
        roots["worker"] = [process.pid for process in workers]
        if profile is not None:
            for name in ("web", "worker"):
                for index, pid in enumerate(roots.get(name, [])):
                    out = profile / f"{lib}-r{rep}-{name}{index or ''}.txt"
                    profilers.append(start_profiler(pid, out))
            time.sleep(1.0)  # py-spy attached
        before = cpu_by_group(roots)
        result = peers.driver(lib, "e2e", n, f"{tag}-b", TIMEOUT_S)
        after = cpu_by_group(roots)
    finally:
        for profiler in profilers:
            stop_profiler(profiler)
        peers.stop_workers(workers)
        peers.stop_workers(list(services.values()))
    if result.get("timeout"):
        raise RuntimeError(f"{lib}: {result.get('done')} of {n} jobs done in {TIMEOUT_S:g} s")
    per_job = {group: (after[group] - before[group]) * 1000 / n for group in GROUPS}
    return {"lib": lib, "rate": result["rate"], "cpu_ms": per_job}


def report(console: Console, runs: list[dict[str, Any]], cores: int) -> None:
    table = Table(title=f"CPU ms per job, end to end (median of repetitions; {cores} cores)")
    for column in ["path", "jobs/s", *GROUPS, "total", f"at most, {cores} cores"]:
        table.add_column(column, justify="left" if column == "path" else "right")
    for lib in dict.fromkeys(run["lib"] for run in runs):
        mine = [run for run in runs if run["lib"] == lib]
        rate = statistics.median(run["rate"] for run in mine)
        cells = [statistics.median(run["cpu_ms"][group] for run in mine) for group in GROUPS]
        total = statistics.median(sum(run["cpu_ms"].values()) for run in mine)
        table.add_row(
            lib,
            f"{rate:,.0f}",
            *(f"{value:.2f}" if value >= 0.005 else "-" for value in cells),
            f"{total:.2f}",
            f"{cores * 1000 / total:,.0f}/s",
        )
    console.print(table)


def report_profiles(console: Console, profile: Path) -> None:
    for stacks in sorted(profile.glob("*.txt")):  # every run's, this one's and earlier ones
        counts, total = own_time(stacks)
        if not total:
            continue
        libraries = Table(title=f"{stacks.stem}: own time by library, {total:,} samples")
        libraries.add_column("library")
        libraries.add_column("share", justify="right")
        for library, samples in by_library(counts).most_common(TOP_FUNCTIONS):
            libraries.add_row(library, f"{100 * samples / total:.1f} %")
        functions = Table(title=f"{stacks.stem}: own time by function")
        functions.add_column("function (file)")
        functions.add_column("share", justify="right")
        for function, samples in counts.most_common(TOP_FUNCTIONS):
            functions.add_row(function, f"{100 * samples / total:.1f} %")
        console.print(libraries, functions)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=3000, help="jobs per measured phase")
    parser.add_argument("--reps", type=int, default=1)
    parser.add_argument("--libs", default="jobyard-http,jobyard-py,celery-redis")
    parser.add_argument("--profile", type=Path, help="py-spy the web and worker into DIR")
    args = parser.parse_args()
    libs = [lib.strip() for lib in args.libs.split(",") if lib.strip()]
    unknown = [lib for lib in libs if lib not in peers.LIBS]
    if unknown:
        parser.error(f"unknown --libs {', '.join(unknown)} (known: {', '.join(peers.LIBS)})")
    missing = [lib for lib in libs if not Path(peers.LIBS[lib][0]).exists()]
    if missing:
        parser.error(f"{', '.join(missing)} not installed: run bench/peers/run.sh once first")
    if args.profile is not None:
        if py_spy() is None:
            parser.error("--profile needs py-spy (pip install py-spy)")
        args.profile.mkdir(parents=True, exist_ok=True)
    os.makedirs(peers.LOGS, exist_ok=True)
    console = Console(width=max(140, shutil.get_terminal_size().columns))
    runs = []
    for rep in range(args.reps):
        for lib in libs:
            with console.status(f"{lib}, repetition {rep + 1} of {args.reps}"):
                run = measure(lib, args.n, rep, args.profile)
            console.print(f"{lib} r{rep + 1}: {run['rate']:,.0f} jobs/s")
            runs.append(run)
    report(console, runs, os.cpu_count() or 1)
    if args.profile is not None:
        report_profiles(console, args.profile)


if __name__ == "__main__":
    main()
