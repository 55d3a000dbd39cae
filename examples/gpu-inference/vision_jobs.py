"""Job types of the GPU example: torch is imported inside the job, so web and scheduler
images need no GPU libraries, and the job falls back to the CPU where no GPU is present."""

from __future__ import annotations

from jobyard import JobContext, Yard

yard = Yard("vision")


@yard.job("vision.classify", pool="vision", timeout_s=120, retries=1)
def classify(ctx: JobContext, image_key: str) -> dict[str, str]:
    """Classify one image on the pool's GPU (or CPU)."""
    import torch

    device = "cuda" if torch.cuda.is_available() else "cpu"
    ctx.log.info("classifying %s on %s", image_key, device)
    return {"image": image_key, "device": device}


@yard.job("vision.store_labels", pool="general", timeout_s=60)
def store_labels(ctx: JobContext, image_key: str, labels: list[str]) -> int:
    """Write the labels of one image to the application database."""
    ctx.log.info("storing %d labels for %s", len(labels), image_key)
    return len(labels)
