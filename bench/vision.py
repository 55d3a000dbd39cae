"""Images per minute for object detection: raw Celery (a task per image), jobyard with one
job per image, and jobyard with batched jobs, measured in one run on this machine.

    .venv/bin/python bench/vision.py [--images 240] [--workers 2] [--batch 16]
        [--detector faces|people|...] [--model module:factory]

Every row runs the same detector (OpenCV, or `--model`: a user's own, e.g. a torch network
on a GPU, see README) over the same images, generated from the photographs scikit-image
ships, with `--workers` prefork processes. jobyard records every job, its result and its
attempt in PostgreSQL; raw Celery records nothing. With an NVIDIA GPU the table also shows
how busy it was (NVML, sampled every 0.2 s).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis
from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.throughput import (  # noqa: E402
    REDIS,
    bench_database,
    drained,
    env_of,
    migrated,
    spawn,
    stop,
    wait_until,
)
from jobyard.config import Settings, load_settings  # noqa: E402
from jobyard.dispatch import submit  # noqa: E402
from jobyard.execution.gpu import GpuProbe  # noqa: E402
from jobyard.runtime import Runtime  # noqa: E402

console = Console(width=150)


@dataclass
class Row:
    name: str
    images: int
    seconds: float
    batch: int
    recorded: str
    gpu_busy: float | None = None

    @property
    def per_min(self) -> float:
        return self.images / self.seconds * 60


def make_images(folder: Path, count: int) -> list[str]:
    """`count` JPEG photographs: scikit-image's, at a few sizes, so no two are the same."""
    import cv2
    import skimage.data

    sources = [skimage.data.astronaut(), skimage.data.coffee(), skimage.data.rocket(),
               skimage.data.chelsea(), skimage.data.immunohistochemistry()]  # fmt: skip
    paths = []
    for index in range(count):
        pixels = cv2.cvtColor(sources[index % len(sources)], cv2.COLOR_RGB2BGR)
        scale = 0.8 + 0.4 * ((index // len(sources)) % 5) / 4
        resized = cv2.resize(pixels, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        path = folder / f"image-{index:05d}.jpg"
        cv2.imwrite(str(path), resized)
        paths.append(str(path))
    return paths


class GpuBusy:
    """Mean GPU utilisation while a row runs (None without a GPU)."""

    def __init__(self) -> None:
        self._probe = GpuProbe(os.environ)
        self._samples: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        if self._probe.available:
            self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.2):
            gpus = self._probe.sample()
            if gpus:
                self._samples.append(sum(g["utilization"] for g in gpus) / len(gpus))

    def stop(self) -> float | None:
        self._stop.set()
        return sum(self._samples) / len(self._samples) if self._samples else None


def bench_celery(paths: list[str], workers: int, detector: str, logs: Path) -> Row:
    # The producer here and the worker process must use the same Redis database: the app
    # reads its broker from the environment when the module is first imported.
    os.environ["BENCH_BROKER"] = os.environ["BENCH_COUNTER"] = REDIS
    from bench import raw_vision

    client = redis.Redis.from_url(REDIS)
    client.flushdb()
    env = {**os.environ, "BENCH_BROKER": REDIS, "BENCH_COUNTER": REDIS, "PYTHONPATH": str(ROOT)}
    worker = spawn(
        [sys.executable, "-m", "celery", "-A", "bench.raw_vision", "worker", "-c", str(workers),
         "-P", "prefork", "--without-gossip", "--without-mingle", "--without-heartbeat",
         "-l", "WARNING"],
        env,
        logs / "celery-vision.log",
    )  # fmt: skip
    done = lambda n: int(client.get("bench:done") or 0) >= n  # noqa: E731
    try:
        for _ in range(workers):  # every process has loaded OpenCV and its model
            raw_vision.detect.delay(paths[0], detector)
        wait_until(lambda: done(workers), 120, "celery worker start")
        busy = GpuBusy()
        start = time.perf_counter()
        with raw_vision.app.producer_or_acquire() as producer:
            for path in paths:
                raw_vision.detect.apply_async((path, detector), producer=producer)
        wait_until(lambda: done(workers + len(paths)), 1800, "celery detections")
        seconds = time.perf_counter() - start
        return Row("raw Celery, a task per image", len(paths), seconds, 1, "nothing", busy.stop())
    finally:
        stop(worker)
        client.flushdb()


def vision_settings(database_url: str, workers: int, batch: int, model: str | None) -> Settings:
    pack: dict[str, Any] = {"pool": "vision", "batch_size": batch, "max_wait_ms": 20}
    if model:
        pack["models"] = {"model": model}
    return load_settings(
        None,
        environ={},
        database_url=database_url,
        broker_url=REDIS,
        yard="bench.raw_vision:yard",
        queue_prefix=f"bench-vision-{batch}",
        pools={"vision": {"concurrency": workers, "celery_pool": "prefork", "prefetch": 1}},
        packs={"vision": pack},
    )


def bench_jobyard(
    paths: list[str], workers: int, batch: int, detector: str, model: str | None, logs: Path
) -> Row:
    redis.Redis.from_url(REDIS).flushdb()
    with bench_database() as database_url:
        settings = migrated(vision_settings(database_url, workers, batch, model))
        env = env_of(settings)
        worker = spawn([sys.executable, "-m", "jobyard", "worker", "--pool", "vision"], env,
                       logs / f"jobyard-vision-{batch}.log")  # fmt: skip
        runtime = Runtime.open(settings)
        name = "model" if model else detector
        try:
            warm = [submit.JobRequest("vision.detect", {"image": f"file://{paths[0]}",
                                                        "detector": name})] * workers  # fmt: skip
            submit.submit_many(runtime, warm, submitted_by="bench")
            wait_until(lambda: drained(runtime), 120, "jobyard worker start")
            requests = [
                submit.JobRequest("vision.detect", {"image": f"file://{path}", "detector": name})
                for path in paths
            ]
            busy = GpuBusy()
            start = time.perf_counter()
            for offset in range(0, len(requests), 1000):
                submit.submit_many(runtime, requests[offset : offset + 1000], submitted_by="bench")
            wait_until(lambda: drained(runtime), 1800, "jobyard detections")
            seconds = time.perf_counter() - start
        finally:
            runtime.close()
            stop(worker)
            redis.Redis.from_url(REDIS).flushdb()
    label = "one job per image" if batch == 1 else f"batched jobs (batch_size={batch})"
    return Row(f"jobyard, {label}", len(paths), seconds, batch, "job, result, attempt",
               busy.stop())  # fmt: skip


def report(rows: list[Row], workers: int, detector: str) -> None:
    table = Table(title=f"vision.detect ({detector}), {workers} prefork worker processes, "
                  f"{os.cpu_count()} CPUs")  # fmt: skip
    for column in ("system", "images", "seconds", "images/min", "vs raw Celery", "GPU busy",
                   "recorded per image"):  # fmt: skip
        table.add_column(column, justify="left" if column in ("system", "recorded per image")
                         else "right")  # fmt: skip
    base = rows[0].per_min
    for row in rows:
        busy = "—" if row.gpu_busy is None else f"{row.gpu_busy:.0%}"
        table.add_row(row.name, str(row.images), f"{row.seconds:.1f}", f"{row.per_min:,.0f}",
                      f"{row.per_min / base:.2f}x", busy, row.recorded)  # fmt: skip
    console.print(table)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=240)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--detector", default="faces", help="a built-in detector of the pack")
    parser.add_argument("--model", help="module:factory of your own detector (jobyard rows)")
    args = parser.parse_args()
    logs = ROOT / "bench" / "results" / time.strftime("vision-%Y%m%d-%H%M%S")
    logs.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as folder:
        paths = make_images(Path(folder), args.images)
        console.print(f"{len(paths)} images in {folder}; logs in {logs}")
        rows = [bench_celery(paths, args.workers, args.model or args.detector, logs)]
        for batch in (1, args.batch):
            rows.append(bench_jobyard(paths, args.workers, batch, args.detector, args.model, logs))
    report(rows, args.workers, args.model or args.detector)
    (logs / "results.json").write_text(json.dumps([r.__dict__ for r in rows], indent=2))


if __name__ == "__main__":
    main()
