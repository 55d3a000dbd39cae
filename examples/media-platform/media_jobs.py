"""Job types of the media-platform example; heavy libraries are imported inside the jobs."""

from __future__ import annotations

import subprocess
from pathlib import Path

from jobyard import JobContext, Yard

yard = Yard("media")


@yard.job("media.fetch", pool="general", retries=5, backoff_s=2.0, timeout_s=300)
def fetch(ctx: JobContext, url: str, key: str) -> dict[str, str]:
    """Download a source file into object storage."""
    import httpx

    with httpx.stream("GET", url, follow_redirects=True, timeout=60) as response:
        response.raise_for_status()
        size = int(response.headers.get("content-length", 0))
        ctx.log.info("fetching %s (%d bytes) to %s", url, size, key)
    return {"key": key}


@yard.job("media.transcode", pool="media", retries=2, timeout_s=3600)
def transcode(ctx: JobContext, source: str, height: int) -> dict[str, str]:
    """Transcode a video to one rendition with ffmpeg (hour-long inputs are normal here)."""
    target = str(Path(source).with_suffix(f".{height}p.mp4"))
    ctx.progress(0.0, "starting ffmpeg")
    subprocess.run(["ffmpeg", "-y", "-i", source, "-vf", f"scale=-2:{height}", target], check=True)
    ctx.progress(1.0, "done")
    return {"rendition": target}


@yard.job("media.purge_expired", pool="general", timeout_s=600)
def purge_expired(ctx: JobContext) -> int:
    """Delete uploads past their retention (scheduled nightly)."""
    ctx.log.info("purging expired uploads")
    return 0


@yard.job("media.legacy_thumbnail", pool="legacy", timeout_s=120)
def legacy_thumbnail(source: str) -> str:
    """Thumbnails through a library pinned to versions the other pools cannot use."""
    return f"{source}.jpg"
