"""Reading images from storage for detection, scaling them, and drawing what was found."""

from __future__ import annotations

from typing import Any

from jobyard.context import Fail, JobContext
from jobyard.packs.vision.detectors import Detection, Image, opencv
from jobyard.storage.location import StorageError

#: Larger images are refused: decoding one would take more memory than a worker should.
MAX_PIXELS = 100_000_000


def load(ctx: JobContext, url: str, max_bytes: int) -> Image:
    """The image at a storage URL as BGR pixels; `Fail` when it cannot be read or decoded."""
    import numpy as np

    cv2 = opencv()

    try:
        with ctx.artifacts.open_input(url) as source:
            data = source.read(max_bytes + 1)
    except (StorageError, OSError, ValueError) as exc:
        raise Fail(f"cannot read {url}: {exc}") from None
    if len(data) > max_bytes:
        raise Fail(f"{url} is over the {max_bytes} byte limit of packs.vision.max_bytes")
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        raise Fail(f"{url} is not an image OpenCV can decode (JPEG, PNG, TIFF, WebP, BMP …)")
    if image.shape[0] * image.shape[1] > MAX_PIXELS:
        raise Fail(f"{url} has over {MAX_PIXELS} pixels")
    return image  # type: ignore[no-any-return]


def scaled(image: Image, max_side: int) -> tuple[Image, float]:
    """The image shrunk so its longer side is at most `max_side`, and the factor applied."""
    cv2 = opencv()
    height, width = image.shape[:2]
    factor = min(1.0, max_side / max(height, width))
    if factor == 1.0:
        return image, 1.0
    size = (max(1, round(width * factor)), max(1, round(height * factor)))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA), factor


def unscaled(found: list[Detection], factor: float) -> list[Detection]:
    """Boxes found on a scaled image, in the original image's pixels."""
    if factor == 1.0:
        return found
    return [
        Detection(d.label, d.score, tuple(round(v / factor) for v in d.box))  # type: ignore[arg-type]
        for d in found
    ]


def annotated_jpeg(image: Image, found: list[Detection]) -> bytes:
    """The image with each detection's box and label drawn, as JPEG."""
    cv2 = opencv()
    canvas: Any = image.copy()
    for detection in found:
        x, y, w, h = detection.box
        cv2.rectangle(canvas, (x, y), (x + w, y + h), (0, 200, 0), 2)
        caption = f"{detection.label} {detection.score:.2f}"
        cv2.putText(
            canvas, caption, (x, max(12, y - 4)), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 200, 0), 1
        )
    ok, encoded = cv2.imencode(".jpg", canvas, [cv2.IMWRITE_JPEG_QUALITY, 90])
    if not ok:
        raise RuntimeError("OpenCV could not encode the annotated image")
    return bytes(encoded)
