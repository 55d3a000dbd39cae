"""The raw Celery baseline for `bench/vision.py`: one task per image, the same detector.

That is how the teams in the issue run detection today (a Celery worker, a task per image);
the task reads the image, runs the detector jobyard's vision pack uses, and counts itself in
Redis. A module-level app is what `celery -A` expects. `yard` is the (empty) application
the jobyard side loads; its vision job types come from `[packs.vision]`.
"""

from __future__ import annotations

import importlib
import os

import redis
from celery import Celery

from jobyard import Yard
from jobyard.packs.vision.detectors import BUILT_IN, Detector, opencv

app = Celery("raw-vision", broker=os.environ.get("BENCH_BROKER", "redis://127.0.0.1:6379/9"))
app.conf.update(
    task_ignore_result=True, worker_hijack_root_logger=False, worker_prefetch_multiplier=1
)
yard = Yard("vision-bench")
_state: dict[str, object] = {}


def _detector(name: str) -> Detector:
    """A built-in detector by name, or a user's model by `module:factory`."""
    key = f"detector:{name}"
    if key not in _state:
        if ":" in name:
            module, _, factory = name.partition(":")
            _state[key] = getattr(importlib.import_module(module), factory)()
        else:
            _state[key] = BUILT_IN[name]()
    detector = _state[key]
    assert isinstance(detector, object)
    return detector  # type: ignore[return-value]


def _client() -> redis.Redis:
    if "redis" not in _state:
        _state["redis"] = redis.Redis.from_url(
            os.environ.get("BENCH_COUNTER", "redis://127.0.0.1:6379/9")
        )
    client = _state["redis"]
    assert isinstance(client, redis.Redis)
    return client


@app.task(name="bench.detect")  # type: ignore[untyped-decorator]
def detect(path: str, detector: str) -> None:
    cv2 = opencv()
    image = cv2.imread(path, cv2.IMREAD_COLOR)
    _detector(detector).detect([image])
    _client().incr("bench:done")
