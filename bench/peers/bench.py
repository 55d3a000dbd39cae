"""Orchestrates the queue benchmark and writes results.json + RESULTS.md.

    python bench.py [--n 20000] [--lat-n 1000] [--reps 3] [--libs a,b,...]

For every library and every repetition (workers are restarted each time):
  1. reset the broker state, workers stopped;
  (a) enqueue:  one producer process enqueues N no-op jobs, one call per job;
  (d) drain:    start the workers; they drain the N queued jobs
                (rate = N / (last job finished - first job started));
  (b) e2e:      workers running and idle; producer enqueues N more jobs;
                rate = N / (last job finished - first enqueue call);
  (c) latency:  LAT_N jobs one at a time, each submitted only after the
                previous one has started; enqueue-call -> job-start in ms
                (20 warm-up jobs first, not counted);
  then stop the workers (SIGTERM to their process group, SIGKILL after 15 s).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import signal
import statistics
import subprocess
import time
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
APPS = os.path.join(HERE, "apps")
VENV = os.environ.get(
    "QBENCH_VENV", os.path.join(os.path.expanduser("~"), ".cache", "peer-bench", "venv")
)
ARQ_VENV = os.environ.get(
    "QBENCH_ARQ_VENV", os.path.join(os.path.expanduser("~"), ".cache", "peer-bench", "venv-arq")
)
OUT = os.environ.get("PEER_BENCH_OUT", os.path.join(os.getcwd(), "bench", "results", "peers"))
LOGS = os.path.join(OUT, "logs")
JY_VENV = os.environ.get("JOBYARD_VENV", os.path.join(os.getcwd(), ".venv"))
JY_CFG = os.path.join(HERE, "jobyard_cfg")
JY_WEB_URL = "http://127.0.0.1:18765"

import redis  # noqa: E402

Popen = subprocess.Popen[bytes]

SIDE = redis.Redis.from_url(
    "redis://127.0.0.1:6379/2", socket_timeout=None
)  # redis-py>=6 defaults to 5 s


def b(venv: str, exe: str) -> str:
    return os.path.join(venv, "bin", exe)


# name -> (python used by the producer, [worker commands], extra env, settings note)
LIBS = {
    "celery-redis": (
        b(VENV, "python"),
        [
            [
                b(VENV, "celery"),
                "-A",
                "celery_app",
                "worker",
                "-c",
                "2",
                "-P",
                "prefork",
                "-l",
                "WARNING",
            ]
        ],
        {"BENCH_BROKER": "redis"},
        "1 worker, prefork pool -c 2; defaults: prefetch_multiplier=4, acks_late=False, no result backend, json",
    ),
    "celery-rabbitmq": (
        b(VENV, "python"),
        [
            [
                b(VENV, "celery"),
                "-A",
                "celery_app",
                "worker",
                "-c",
                "2",
                "-P",
                "prefork",
                "-l",
                "WARNING",
            ]
        ],
        {"BENCH_BROKER": "amqp"},
        "as celery-redis, broker RabbitMQ (py-amqp, durable queue, persistent messages, no publisher confirms)",
    ),
    "rq": (
        b(VENV, "python"),
        [
            [
                b(VENV, "rq"),
                "worker",
                "-u",
                "redis://127.0.0.1:6379/1",
                "--logging_level",
                "WARNING",
                "default",
            ]
        ]
        * 2,
        {},
        "2 x `rq worker` (default Worker: forks a work-horse per job), result_ttl default (500 s)",
    ),
    "rq-simple": (
        b(VENV, "python"),
        [
            [
                b(VENV, "rq"),
                "worker",
                "-u",
                "redis://127.0.0.1:6379/1",
                "--logging_level",
                "WARNING",
                "-w",
                "rq.worker.SimpleWorker",
                "default",
            ]
        ]
        * 2,
        {},
        "2 x `rq worker -w rq.worker.SimpleWorker` (no fork: jobs run in the worker process)",
    ),
    "dramatiq": (
        b(VENV, "python"),
        [[b(VENV, "dramatiq"), "dramatiq_app", "--processes", "2", "--threads", "8"]],
        {},
        "RedisBroker, default middleware, --processes 2 --threads 8 (CLI defaults on 2 cores)",
    ),
    "huey": (
        b(VENV, "python"),
        [[b(VENV, "huey_consumer"), "huey_app.huey", "-w", "2", "-k", "process", "-q"]],
        {},
        "RedisHuey (blocking BRPOP), consumer -w 2 -k process (default is 1 thread)",
    ),
    "arq": (
        b(ARQ_VENV, "python"),
        [[b(ARQ_VENV, "python"), "arq_worker.py"]] * 2,
        {},
        "2 worker processes, defaults: max_jobs=10, poll_delay=0.5 s, keep_result=3600 s (separate venv: arq needs redis<6)",
    ),
    "taskiq": (
        b(VENV, "python"),
        [
            [
                b(VENV, "taskiq"),
                "worker",
                "taskiq_app:broker",
                "--workers",
                "2",
                "--log-level",
                "WARNING",
            ]
        ],
        {},
        "taskiq-redis ListQueueBroker (LPUSH/BRPOP), no result backend, --workers 2 (default), max_async_tasks=100",
    ),
    "procrastinate": (
        b(VENV, "python"),
        [
            [
                b(VENV, "procrastinate"),
                "--app=procrastinate_app.app",
                "--log-level",
                "warning",
                "worker",
            ]
        ]
        * 2,
        {},
        "PostgreSQL, 2 x `procrastinate worker` (concurrency 1 each, LISTEN/NOTIFY, jobs kept)",
    ),
    "jobyard-py": (
        b(JY_VENV, "python"),
        [[b(JY_VENV, "python"), "jobyard_worker.py"]],
        {"JOBYARD_CONFIG": os.path.join(JY_CFG, "default.toml")},
        "(a) `yard.submit()` one call per job (Python API, runtime opened before timing). PostgreSQL "
        "db peer_bench_jobyard + Redis broker db 3; pool `bench` with jobyard's defaults: 1 worker, "
        "Celery prefork concurrency 2, prefetch 1, dispatch_chunk 50, acks_late; worker at WARNING "
        "(apps/jobyard_worker.py); `jobyard scheduler` running for the whole repetition; no web",
    ),
    "jobyard-http": (
        b(JY_VENV, "python"),
        [[b(JY_VENV, "python"), "jobyard_worker.py"]],
        {"JOBYARD_CONFIG": os.path.join(JY_CFG, "default.toml"), "JOBYARD_WEB_URL": JY_WEB_URL},
        "(b) HTTP `POST /api/v1/jobs` one request per job (keep-alive `http.client` connection) to `jobyard web` "
        "(uvicorn, 1 process, auth open on loopback); same pool, worker and scheduler as (a); "
        "web + scheduler running for the whole repetition",
    ),
    "jobyard-batch": (
        b(JY_VENV, "python"),
        [[b(JY_VENV, "python"), "jobyard_worker.py"]],
        {
            "JOBYARD_CONFIG": os.path.join(JY_CFG, "default.toml"),
            "JOBYARD_WEB_URL": JY_WEB_URL,
            "JOBYARD_BATCH": "500",
        },
        "(c) HTTP `POST /api/v1/jobs/batch`, 500 jobs per request (latency: a batch of 1 per "
        "request); same pool as (a); web + scheduler running",
    ),
}

# jobyard processes that run for the whole repetition (started after reset, before the
# enqueue phase; the worker itself is started at the drain phase like every other library)
JY_SERVICES = {
    "jobyard-py": ["scheduler"],
    "jobyard-http": ["scheduler", "web"],
    "jobyard-batch": ["scheduler", "web"],
}


def loadavg() -> list[str]:
    return open("/proc/loadavg").read().split()[:3]


def tree_rss_kb(pid: int) -> int:
    """RSS of a process and all its descendants (kB), from /proc."""
    total, stack, seen = 0, [pid], set()
    while stack:
        cur = stack.pop()
        if cur in seen:
            continue
        seen.add(cur)
        try:
            for line in open(f"/proc/{cur}/status"):
                if line.startswith("VmRSS"):
                    total += int(line.split()[1])
                    break
            kids = open(f"/proc/{cur}/task/{cur}/children").read().split()
            stack += [int(k) for k in kids]
        except (OSError, ValueError):
            continue
    return total


class PeakRss:
    """Samples the tree RSS of some processes every 0.25 s and keeps each one's peak (MB)."""

    def __init__(self, named: dict[str, int]) -> None:
        import threading

        self.named, self.peak = named, dict.fromkeys(named, 0.0)
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()

    def _run(self) -> None:
        while not self._stop.wait(0.25):
            for k, pid in list(self.named.items()):
                self.peak[k] = max(self.peak[k], tree_rss_kb(pid) / 1024)

    def add(self, name: str, pid: int) -> None:
        self.peak.setdefault(name, 0.0)
        self.named[name] = pid

    def stop(self) -> dict[str, float]:
        self._stop.set()
        self._t.join()
        return {k: round(v, 1) for k, v in self.peak.items()}


def start_services(lib: str, tag: str) -> dict[str, Popen]:
    """jobyard scheduler (and web) for the whole repetition; waits until web answers /readyz."""
    _, _, env, _ = LIBS[lib]
    e = dict(os.environ, **env, PYTHONPATH=APPS)
    procs = {}
    for name in JY_SERVICES.get(lib, []):
        log = open(os.path.join(LOGS, f"{tag}-{name}.log"), "w")
        procs[name] = subprocess.Popen(
            [b(JY_VENV, "jobyard"), name],
            cwd=APPS,
            env=e,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    # the scheduler must become leader (else it only polls its lease and does no work)
    log_path = os.path.join(LOGS, f"{tag}-scheduler.log")
    deadline = time.time() + 20
    while "became scheduler leader" not in open(log_path).read():
        if time.time() > deadline or procs["scheduler"].poll() is not None:
            stop_workers(list(procs.values()))
            raise RuntimeError(f"{lib}: jobyard scheduler did not become leader")
        time.sleep(0.2)
    if "web" in procs:
        import urllib.request

        deadline = time.time() + 90
        while True:
            try:
                if urllib.request.urlopen(JY_WEB_URL + "/readyz", timeout=2).status == 200:
                    break
            except Exception:
                pass
            if time.time() > deadline or procs["web"].poll() is not None:
                stop_workers(list(procs.values()))
                raise RuntimeError(f"{lib}: jobyard web did not become ready")
            time.sleep(0.2)
    return procs


def driver(lib: str, phase: str, n: int, run: str, timeout: float) -> dict[str, Any]:
    py, _, env, _ = LIBS[lib]
    e = dict(os.environ, **env)
    out = subprocess.run(
        [py, os.path.join(HERE, "driver.py"), lib, phase, str(n), run, str(timeout)],
        cwd=APPS,
        env=e,
        capture_output=True,
        text=True,
        timeout=timeout + 120,
    )
    if out.returncode != 0:
        raise RuntimeError(f"{lib} {phase} failed rc={out.returncode}\n{out.stderr[-3000:]}")
    answer: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return answer


def start_workers(lib: str, tag: str) -> list[Popen]:
    _, cmds, env, _ = LIBS[lib]
    e = dict(os.environ, **env, PYTHONPATH=APPS)
    procs = []
    for i, cmd in enumerate(cmds):
        log = open(os.path.join(LOGS, f"{tag}-w{i}.log"), "w")
        procs.append(
            subprocess.Popen(
                cmd, cwd=APPS, env=e, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        )
    return procs


def stop_workers(procs: list[Popen]) -> None:
    for p in procs:
        try:
            os.killpg(p.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    deadline = time.time() + 15
    for p in procs:
        try:
            p.wait(timeout=max(0.1, deadline - time.time()))
        except subprocess.TimeoutExpired:
            pass
    for p in procs:  # anything left in the group (children) gets SIGKILL
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        p.wait()


def one_rep(lib: str, rep: int, n: int, lat_n: int, timeout: float) -> dict[str, Any]:
    tag = f"{lib}-r{rep}"
    res = {
        "lib": lib,
        "rep": rep,
        "n": n,
        "lat_n": lat_n,
        "start_utc": dt.datetime.utcnow().strftime("%H:%M:%S"),
        "load_start": loadavg(),
    }
    try:
        _one_rep(res, lib, tag, n, lat_n, timeout)
    finally:
        res["load_end"] = loadavg()
        res["end_utc"] = dt.datetime.utcnow().strftime("%H:%M:%S")
    return res


def _one_rep(
    res: dict[str, Any], lib: str, tag: str, n: int, lat_n: int, timeout: float
) -> dict[str, Any]:
    SIDE.flushdb()  # side-channel db only; no worker is running now
    driver(lib, "reset", 0, tag, timeout)
    services = start_services(lib, tag) if lib in JY_SERVICES else {}
    rss = PeakRss({k: p.pid for k, p in services.items()})
    try:
        _phases(res, lib, tag, n, lat_n, timeout, rss)
    finally:
        res["peak_rss_mb"] = rss.stop()
        stop_workers(list(services.values()))
    return res


def _phases(
    res: dict[str, Any],
    lib: str,
    tag: str,
    n: int,
    lat_n: int,
    timeout: float,
    rss: PeakRss | None,
) -> None:
    # (a) enqueue, no workers
    res["enqueue"] = driver(lib, "enqueue", n, f"{tag}-a", timeout)
    procs = start_workers(lib, tag)
    if rss is not None:  # every worker process with its children (prefork pools), summed
        for index, proc in enumerate(procs):
            rss.add("worker" if index == 0 else f"worker{index + 1}", proc.pid)
    try:
        # (d) drain the N queued jobs
        got = SIDE.blpop(f"{tag}-a".join(["b:", ":end"]), timeout=timeout)
        if got is None:
            res["drain"] = {"timeout": True, "done": int(SIDE.get(f"b:{tag}-a:done") or 0)}
        else:
            first = float(SIDE.get(f"b:{tag}-a:first") or 0)
            res["drain"] = {"seconds": float(got[1]) - first, "rate": n / (float(got[1]) - first)}
        time.sleep(1.0)
        # (b) end-to-end with workers running
        res["e2e"] = driver(lib, "e2e", n, f"{tag}-b", timeout)
        time.sleep(1.0)
        # (c) sequential latency
        res["latency"] = driver(lib, "latency", lat_n, f"{tag}-c", timeout)
    finally:
        stop_workers(procs)


def versions() -> dict[str, Any]:
    pkgs = [
        "celery",
        "kombu",
        "amqp",
        "billiard",
        "redis",
        "hiredis",
        "rq",
        "dramatiq",
        "huey",
        "taskiq",
        "taskiq-redis",
        "procrastinate",
        "psycopg",
        "psycopg-pool",
    ]
    code = (
        "import json,sys,importlib.metadata as m\n"
        "out={}\n"
        "for p in sys.argv[1:]:\n"
        "    try: out[p]=m.version(p)\n"
        "    except Exception: pass\n"
        "print(json.dumps(out))"
    )
    main = json.loads(subprocess.check_output([b(VENV, "python"), "-c", code, *pkgs], text=True))
    try:
        arq = json.loads(
            subprocess.check_output(
                [b(ARQ_VENV, "python"), "-c", code, "arq", "redis", "hiredis"], text=True
            )
        )
    except Exception:
        arq = {}
    try:
        jy = json.loads(
            subprocess.check_output(
                [
                    b(JY_VENV, "python"),
                    "-c",
                    code,
                    "jobyard",
                    "celery",
                    "kombu",
                    "redis",
                    "hiredis",
                    "sqlalchemy",
                    "psycopg",
                    "fastapi",
                    "uvicorn",
                    "httpx",
                    "pydantic",
                    "starlette",
                ],
                text=True,
            )
        )
        jy["jobyard_commit"] = subprocess.check_output(
            ["git", "-C", os.path.dirname(JY_VENV), "rev-parse", "HEAD"], text=True
        ).strip()
    except Exception as e:
        jy = {"error": repr(e)}
    deb = {}
    for p in ["redis-server", "postgresql-15", "rabbitmq-server", "erlang-base"]:
        try:
            deb[p] = subprocess.check_output(["dpkg-query", "-W", "-f=${Version}", p], text=True)
        except Exception:
            deb[p] = "n/a"
    cpu = "unknown"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_gb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return {
        "python_packages": main,
        "arq_venv_packages": arq,
        "jobyard_venv_packages": jy,
        "debian_packages": deb,
        "python": platform.python_version(),
        "os": platform.platform(),
        "cpus": os.cpu_count(),
        "cpu_model": cpu,
        "mem_gib": round(mem_gb, 1),
    }


# --------------------------------------------------------------------------
def mmm(vals: list[float], fmt: str) -> str:
    if not vals:
        return "n/a"
    s = sorted(vals)
    return f"{fmt.format(statistics.median(s))} ({fmt.format(s[0])}–{fmt.format(s[-1])})"


def spread(vals: list[float]) -> float:
    if len(vals) < 2:
        return 0.0
    med = statistics.median(vals)
    return (max(vals) - min(vals)) / med * 100 if med else 0.0


def worker_rss(rs: list[dict[str, Any]]) -> list[float]:
    """Each repetition's peak RSS of all worker processes with their children (MB)."""
    sums = [
        sum(v for k, v in r.get("peak_rss_mb", {}).items() if k.startswith("worker")) for r in rs
    ]
    return [value for value in sums if value]


def render(data: dict[str, Any]) -> str:
    cfg, res, ver = data["config"], data["results"], data["versions"]
    libs = [lib for lib in LIBS if any(r["lib"] == lib for r in res)]
    L = []
    L.append("# Python task-queue baseline: throughput and latency\n")
    L.append(
        f"Run {data['started']} → {data['finished']} (UTC) on one machine: {ver['cpus']} vCPU "
        f"({ver['cpu_model']}), {ver['mem_gib']} GiB RAM, {ver['os']}, Python {ver['python']}. "
        "Broker/DB servers, producer and workers all share the same 2 cores.\n"
    )
    L.append(
        f"N = {cfg['n']} no-op jobs for throughput and {cfg['lat_n']} sequential jobs for latency "
        "(+20 warm-up) unless the table's N / lat-jobs columns say otherwise (lowered for slow libraries "
        f"to keep the run under ~20 min), {cfg['reps']} repetitions per library; workers restarted for every repetition. "
        "Cells are **median (min–max)** over the repetitions. Reproduce with `./run.sh` "
        "(see the header of `bench.py` for the exact procedure).\n"
    )
    L.append(
        "| library / broker | N | (a) enqueue jobs/s | (d) drain jobs/s | (b) end-to-end jobs/s | lat-jobs | (c) latency p50 ms | p95 ms | p99 ms | workers' peak RSS MB |"
    )
    L.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for lib in libs:
        rs = [r for r in res if r["lib"] == lib]

        def col(phase: str, key: str, rs: list[dict[str, Any]] = rs) -> list[float]:
            return [r[phase][key] for r in rs if phase in r and key in r[phase]]

        tmo = [
            f"{p}" for r in rs for p in ("drain", "e2e", "latency") if r.get(p, {}).get("timeout")
        ]
        name = lib + (" ⚠ timeout in " + ",".join(sorted(set(tmo))) if tmo else "")
        L.append(
            f"| {name} | {rs[0].get('n', cfg['n']):,} | {mmm(col('enqueue', 'rate'), '{:,.0f}')} | "
            f"{mmm(col('drain', 'rate'), '{:,.0f}')} | "
            f"{mmm(col('e2e', 'rate'), '{:,.0f}')} | {rs[0].get('lat_n', cfg['lat_n']):,} | "
            f"{mmm(col('latency', 'p50_ms'), '{:.2f}')} | "
            f"{mmm(col('latency', 'p95_ms'), '{:.2f}')} | {mmm(col('latency', 'p99_ms'), '{:.2f}')} | "
            f"{mmm(worker_rss(rs), '{:,.0f}')} |"
        )
    L.append("")
    L.append(
        "Columns: **(a)** one producer process enqueues N jobs, one library call per job, no worker "
        "running; **(d)** (extra) the workers are then started and drain those N queued jobs, rate = "
        "N / (last job finished − first job started); **(b)** with the workers running and idle, the "
        "producer enqueues N new jobs, rate = N / (last job finished − first enqueue call), producer and "
        "workers competing for the 2 cores; **(c)** enqueue-call → job-start latency, one job at a time "
        "(the next job is submitted only after the previous one has started).\n"
    )
    L.append("Spread (max−min)/median in % across repetitions, to judge noise:\n")
    L.append("| library | enqueue | drain | e2e | p50 | p95 | p99 |")
    L.append("|---|---:|---:|---:|---:|---:|---:|")
    for lib in libs:
        rs = [r for r in res if r["lib"] == lib]
        cells = []
        for phase, key in [
            ("enqueue", "rate"),
            ("drain", "rate"),
            ("e2e", "rate"),
            ("latency", "p50_ms"),
            ("latency", "p95_ms"),
            ("latency", "p99_ms"),
        ]:
            v = [r[phase][key] for r in rs if phase in r and key in r[phase]]
            cells.append(f"{spread(v):.0f}%" if v else "n/a")
        L.append(f"| {lib} | " + " | ".join(cells) + " |")
    L.append("")
    L.append("## Settings per library\n")
    L.append(
        "Every job body is a no-op plus one pipelined round trip (SET NX + INCR) to a side-channel Redis "
        "db (latency jobs: one RPUSH of the start timestamp), the same for every library, including "
        "procrastinate. Worker logging at WARNING everywhere (no per-job log lines). Redis: "
        '`--save "" --appendonly no`, broker db 1, side channel db 2. PostgreSQL 15 Debian defaults '
        "(fsync on, synchronous_commit on) over TCP 127.0.0.1. RabbitMQ Debian defaults.\n"
    )
    L.append("| library | settings |")
    L.append("|---|---|")
    for lib in libs:
        L.append(f"| {lib} | {LIBS[lib][3]} |")
    L.append("")
    L.append("## Versions\n")
    L.append("| component | version |")
    L.append("|---|---|")
    for k, v in ver["python_packages"].items():
        L.append(f"| {k} (PyPI) | {v} |")
    for k, v in ver.get("jobyard_venv_packages", {}).items():
        L.append(f"| {k} (jobyard venv) | {v} |")
    for k, v in ver["arq_venv_packages"].items():
        L.append(f"| {k} (PyPI, arq venv) | {v} |")
    for k, v in ver["debian_packages"].items():
        L.append(f"| {k} (Debian) | {v} |")
    L.append("")
    if data.get("notes"):
        L.append("## Caveats\n")
        L.append(data["notes"].strip() + "\n")
    L.append(
        "Raw per-repetition numbers: `results.json`. Worker logs of the last run go to `logs/` (git-ignored).\n"
    )
    return "\n".join(L)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=20000)
    ap.add_argument("--lat-n", type=int, default=1000)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--libs", default=",".join(LIBS))
    ap.add_argument("--timeout", type=float, default=300.0)
    ap.add_argument(
        "--n-for", default="", help="per-library N overrides, e.g. rq=2000,procrastinate=5000"
    )
    ap.add_argument(
        "--lat-n-for", default="", help="per-library latency-job overrides, e.g. arq=200"
    )
    ap.add_argument("--out", default=os.path.join(OUT, "results.json"))
    ap.add_argument("--render-only", action="store_true")
    ap.add_argument("--wait-load", type=float, default=0.0, help="start when the 1-min load < this")
    ap.add_argument("--wait-until", default="16:35", help="but do not wait past HH:MM UTC")
    args = ap.parse_args()
    if args.render_only:
        data = json.load(open(args.out))
        notes = os.path.join(HERE, "NOTES.md")
        if os.path.exists(notes):
            data["notes"] = open(notes).read()
        open(os.path.join(OUT, "RESULTS.md"), "w").write(render(data))
        return
    os.makedirs(LOGS, exist_ok=True)  # also creates OUT
    gate = []
    if args.wait_load:
        # wait until the 1-minute load average is below the threshold, checking every 30 s,
        # but never past --wait-until (HH:MM UTC)
        hh, mm = map(int, args.wait_until.split(":"))
        now = dt.datetime.utcnow()
        limit = now.replace(hour=hh, minute=mm, second=0, microsecond=0)
        while True:
            la = loadavg()
            now = dt.datetime.utcnow()
            gate.append({"utc": now.strftime("%H:%M:%S"), "load": la})
            print(f"{now:%H:%M:%S} load {la}", flush=True)
            if float(la[0]) < args.wait_load:
                gate[-1]["go"] = "load below threshold"
                break
            if now >= limit:
                gate[-1]["go"] = "deadline reached, load still high"
                break
            time.sleep(30)
    libs = [lib for lib in args.libs.split(",") if lib]
    n_for = {k: int(v) for k, v in (x.split("=") for x in args.n_for.split(",") if x)}
    lat_n_for = {k: int(v) for k, v in (x.split("=") for x in args.lat_n_for.split(",") if x)}
    data = {
        "started": dt.datetime.utcnow().strftime("%Y-%m-%d %H:%M"),
        "config": {
            "n": args.n,
            "lat_n": args.lat_n,
            "reps": args.reps,
            "libs": libs,
            "n_for": n_for,
            "lat_n_for": lat_n_for,
        },
        "versions": versions(),
        "load_gate": gate,
        "results": [],
    }
    for rep in range(1, args.reps + 1):  # interleave libraries across reps to spread drift
        for lib in libs:
            t = time.time()
            try:
                r = one_rep(
                    lib, rep, n_for.get(lib, args.n), lat_n_for.get(lib, args.lat_n), args.timeout
                )
            except Exception as e:  # keep going; record the failure
                r = {"lib": lib, "rep": rep, "error": str(e)[-2000:]}
            r["wall_s"] = time.time() - t
            data["results"].append(r)
            print(json.dumps(r), flush=True)
            json.dump(data, open(args.out, "w"), indent=1)
    data["finished"] = dt.datetime.utcnow().strftime("%Y-%m-%d %H:%M")
    json.dump(data, open(args.out, "w"), indent=1)
    notes = os.path.join(HERE, "NOTES.md")
    if os.path.exists(notes):
        data["notes"] = open(notes).read()
    open(os.path.join(OUT, "RESULTS.md"), "w").write(render(data))


if __name__ == "__main__":
    main()
