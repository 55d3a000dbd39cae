"""Object detectors for `vision.detect`: OpenCV's built-in models, and the user's own.

Built in, with no download (their weights ship inside `opencv-python-headless` 4.x; OpenCV 5
moved HOG and the Haar cascades out of its main package, hence the `<5` pin):
`people` (the HOG + linear SVM pedestrian detector), `faces`, `cat_faces`, `full_bodies` and
`upper_bodies` (Haar cascades). A user's model (ONNX Runtime, torch …) plugs in through
`[packs.vision.models]`: a name mapped to `"module:factory"`, where `factory()` returns an
object with `detect(images) -> list[list[Detection]]`; it receives a whole batch at once,
which is where a GPU model gets its throughput.
"""

from __future__ import annotations

import functools
import importlib
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from jobyard.errors import ConfigError

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

    Image = NDArray[np.uint8]
else:
    Image = Any


def opencv() -> Any:
    """The `cv2` module, imported on first use (workers without the pack never load it);
    typed loosely, as its own stubs disagree with its runtime."""
    import cv2

    return cv2


#: Boxes overlapping a better one by more than this (intersection over union) are dropped.
NMS_OVERLAP = 0.4


@dataclass(frozen=True)
class Detection:
    """One object found in an image: its label, a score (higher is surer, in the detector's
    own units) and its box as pixel `x, y, width, height`."""

    label: str
    score: float
    box: tuple[int, int, int, int]

    def as_dict(self) -> dict[str, Any]:
        return {"label": self.label, "score": round(self.score, 4), "box": list(self.box)}


class Detector(Protocol):
    """What a detector does: BGR uint8 images (height, width, 3) in, detections per image out."""

    def detect(self, images: Sequence[Image]) -> list[list[Detection]]:
        """One list of detections per image, in order."""


class HogPeople:
    """OpenCV's HOG pedestrian detector (Dalal & Triggs): upright, whole people."""

    def __init__(self) -> None:
        cv2 = opencv()
        self._hog = cv2.HOGDescriptor()
        self._hog.setSVMDetector(cv2.HOGDescriptor_getDefaultPeopleDetector())

    def detect(self, images: Sequence[Image]) -> list[list[Detection]]:
        import numpy as np

        found = []
        for image in images:
            boxes, weights = self._hog.detectMultiScale(
                image, winStride=(8, 8), padding=(8, 8), scale=1.05
            )
            # An image without people gives an empty tuple rather than an array.
            scores = [float(w) for w in np.ravel(weights)] if len(weights) else []
            found.append(_suppressed("person", boxes, scores))
        return found


class HaarCascade:
    """One of the Haar cascades OpenCV ships (Viola & Jones); scores are its stage margins."""

    def __init__(self, filename: str, label: str) -> None:
        cv2 = opencv()
        self._cascade = cv2.CascadeClassifier(cv2.data.haarcascades + filename)
        if self._cascade.empty():
            raise ConfigError(f"OpenCV does not ship the cascade {filename}")
        self._label = label

    def detect(self, images: Sequence[Image]) -> list[list[Detection]]:
        cv2 = opencv()
        found = []
        for image in images:
            gray = cv2.equalizeHist(cv2.cvtColor(image, cv2.COLOR_BGR2GRAY))
            boxes, _, weights = self._cascade.detectMultiScale3(
                gray, scaleFactor=1.1, minNeighbors=5, minSize=(24, 24), outputRejectLevels=True
            )
            found.append(_suppressed(self._label, boxes, [float(w) for w in weights]))
        return found


def _suppressed(label: str, boxes: Any, scores: list[float]) -> list[Detection]:
    """Overlapping boxes of one object reduced to the best one (greedy non-maximum
    suppression; the detectors return a handful of boxes per image)."""
    rects = [tuple(int(v) for v in box) for box in boxes]
    kept: list[Detection] = []
    for index in sorted(range(len(rects)), key=lambda i: -scores[i]):
        box = rects[index]
        if all(_overlap(box, other.box) <= NMS_OVERLAP for other in kept):
            kept.append(Detection(label, scores[index], box))  # type: ignore[arg-type]
    return kept


def _overlap(a: tuple[int, ...], b: tuple[int, ...]) -> float:
    """Intersection over union of two `x, y, w, h` boxes."""
    width = max(0, min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0]))
    height = max(0, min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1]))
    shared = width * height
    return shared / (a[2] * a[3] + b[2] * b[3] - shared)


BUILT_IN: dict[str, Callable[[], Detector]] = {
    "people": HogPeople,
    "faces": functools.partial(HaarCascade, "haarcascade_frontalface_default.xml", "face"),
    "cat_faces": functools.partial(HaarCascade, "haarcascade_frontalcatface.xml", "cat_face"),
    "full_bodies": functools.partial(HaarCascade, "haarcascade_fullbody.xml", "person"),
    "upper_bodies": functools.partial(HaarCascade, "haarcascade_upperbody.xml", "upper_body"),
}


class Detectors:
    """The detectors one pack offers, built on first use.

    OpenCV's detectors are not safe to call from two threads at once (a `threads` pool), and
    cost little to build: each thread gets its own. A user's model is built once per process
    (it may hold gigabytes of GPU memory) and called by one thread at a time; a batch is how
    it gets its parallelism.
    """

    def __init__(self, models: Mapping[str, str]) -> None:
        clash = sorted(set(models) & set(BUILT_IN))
        if clash:
            raise ConfigError(f"packs.vision.models: {', '.join(clash)} is a built-in detector")
        self._models = {
            name: functools.partial(_user_model, name, spec) for name, spec in models.items()
        }
        self._per_thread = threading.local()
        self._shared: dict[str, _Serialised] = {}
        self._lock = threading.Lock()

    @property
    def names(self) -> list[str]:
        return sorted([*BUILT_IN, *self._models])

    def get(self, name: str) -> Detector:
        if name in self._models:
            with self._lock:
                if name not in self._shared:
                    self._shared[name] = _Serialised(self._models[name]())
                return self._shared[name]
        built: dict[str, Detector] = self._per_thread.__dict__.setdefault("built", {})
        if name not in built:
            built[name] = BUILT_IN[name]()
        return built[name]


class _Serialised:
    """A detector called by one thread at a time."""

    def __init__(self, detector: Detector) -> None:
        self._detector = detector
        self._lock = threading.Lock()

    def detect(self, images: Sequence[Image]) -> list[list[Detection]]:
        with self._lock:
            return self._detector.detect(images)


def _user_model(name: str, spec: str) -> Detector:
    module_name, _, attribute = spec.partition(":")
    try:
        factory = getattr(importlib.import_module(module_name), attribute)
    except (ImportError, AttributeError) as exc:
        raise ConfigError(
            f"packs.vision.models.{name}: cannot load {spec!r} ({exc}); write 'module:factory'"
        ) from None
    detector: Detector = factory()
    if not callable(getattr(detector, "detect", None)):
        raise ConfigError(f"packs.vision.models.{name}: {spec}() has no detect(images) method")
    return detector
