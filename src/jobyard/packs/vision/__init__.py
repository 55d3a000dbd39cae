"""The vision pack: object detection on images from storage, batched.

Enable it with `[packs.vision]` (needs `jobyard[vision]`: OpenCV). One job per image; a worker
runs up to `batch_size` queued detections in one call, so a model on a GPU sees whole
batches. Job type:

- `vision.detect` {image, detector="people", min_score?, annotate=false, max_side?}: boxes,
  labels and scores, and with `annotate` an `annotated.jpg` artifact with the boxes drawn.

Detectors: `people` (HOG), `faces`, `cat_faces`, `full_bodies`, `upper_bodies` (Haar
cascades), all shipped inside OpenCV, plus the user's own in `[packs.vision.models]`
(`animals = "myproject.models:make_detector"`, see `detectors.Detector`).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, create_model

from jobyard.app import Yard
from jobyard.context import BatchContext, Fail
from jobyard.domain.batch import MAX_BATCH_SIZE, Batch
from jobyard.packs.vision import images
from jobyard.packs.vision.detectors import Detection, Detectors, Image
from jobyard.storage.location import check_url

StorageUrl = Annotated[str, AfterValidator(check_url)]


class VisionOptions(BaseModel):
    """`[packs.vision]` in jobyard.toml."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    pool: str = Field("general", description="The pool vision.detect runs on (a GPU pool).")
    batch_size: int = Field(16, ge=1, le=MAX_BATCH_SIZE, description="Images per call.")
    max_wait_ms: float = Field(50.0, ge=0, le=10_000, description="Wait for a fuller batch.")
    timeout_s: float = Field(300.0, gt=0, description="Longest call (one batch).")
    retries: int = Field(1, ge=0, description="Attempts after a failure a retry may fix.")
    max_bytes: int = Field(50 * 1024 * 1024, ge=1, description="Largest image file read.")
    max_side: int = Field(1280, ge=32, le=16384, description="Images are scaled down to this.")
    models: dict[str, str] = Field(
        default_factory=dict, description='Own detectors: name = "module:factory".'
    )


class DetectArgs(BaseModel):
    """One image to run a detector on (the detector names are checked per pack)."""

    model_config = ConfigDict(extra="forbid")
    image: StorageUrl = Field(description="A storage URL of the image (file://, s3:// …).")
    detector: str = Field("people", description="Which detector to run.")
    min_score: float | None = Field(None, description="Drop detections scoring below this.")
    annotate: bool = Field(False, description="Also store annotated.jpg with the boxes drawn.")
    max_side: int | None = Field(None, ge=32, le=16384, description="Scale down to this first.")


def pack(**options: Any) -> Yard:
    """The vision job types, configured (pydantic ValidationError for bad options)."""
    config = VisionOptions(**options)
    detectors = Detectors(config.models)
    names = tuple(detectors.names)
    detector_names: Any = Literal[names]
    args = create_model(
        "DetectArgs",
        __base__=DetectArgs,
        detector=(detector_names, Field("people", description="Which detector to run.")),
    )
    yard = Yard("vision")

    @yard.job(
        "vision.detect",
        pool=config.pool,
        args=args,
        retries=config.retries,
        timeout_s=config.timeout_s,
        batch=Batch(config.batch_size, config.max_wait_ms),
    )
    def detect(ctx: BatchContext, items: list[DetectArgs]) -> list[Any]:
        """Objects in images: boxes, labels and scores (batched)."""
        results: list[Any] = [None] * len(items)
        loaded: dict[int, Image] = {}
        for index, item in enumerate(items):
            try:
                loaded[index] = images.load(ctx.jobs[index], item.image, config.max_bytes)
            except Fail as exc:
                results[index] = exc  # fails this job alone; the others carry on
        ctx.progress(0.2, f"{len(loaded)} images read")
        for name in sorted({items[index].detector for index in loaded}):
            chosen = [index for index in loaded if items[index].detector == name]
            scaled = [
                images.scaled(loaded[i], items[i].max_side or config.max_side) for i in chosen
            ]
            found = detectors.get(name).detect([pixels for pixels, _ in scaled])
            if len(found) != len(chosen):
                raise RuntimeError(f"detector {name} returned {len(found)} lists for {len(chosen)}")
            for index, (_, factor), detections in zip(chosen, scaled, found, strict=True):
                kept = _kept(images.unscaled(detections, factor), items[index].min_score)
                results[index] = _result(ctx, index, items[index], name, loaded[index], kept)
        return results

    del detect
    return yard


def _kept(found: list[Detection], min_score: float | None) -> list[Detection]:
    return [d for d in found if min_score is None or d.score >= min_score]


def _result(
    ctx: BatchContext,
    index: int,
    item: DetectArgs,
    detector: str,
    image: Image,
    found: list[Detection],
) -> dict[str, Any]:
    height, width = image.shape[:2]
    result: dict[str, Any] = {
        "image": item.image,
        "width": width,
        "height": height,
        "detector": detector,
        "count": len(found),
        "detections": [d.as_dict() for d in found],
    }
    if item.annotate:
        jpeg = images.annotated_jpeg(image, found)
        result["annotated"] = ctx.jobs[index].artifacts.put_bytes(
            "annotated.jpg", jpeg, "image/jpeg"
        )
    return result
