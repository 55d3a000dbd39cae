"""The media pack: probe, transcode and thumbnail videos with ffmpeg, into artifact storage.

Enable it with `[packs.media]` (its job types run on the `media` pool by default). Inputs are
any storage URL (`s3://…`, `file://…`, another job's artifact); outputs are the job's
artifacts. Job types:

- `media.probe` {source}: duration and streams (codec, size).
- `media.transcode` {source, height=720, crf=23, name?}: H.264/AAC MP4, progress from
  ffmpeg's `-progress` output; cancel and timeout kill ffmpeg.
- `media.thumbnail` {source, at_s=1.0, format=jpeg|png, height?}: one frame.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from jobyard.app import Yard
from jobyard.context import Fail, JobContext
from jobyard.packs.media import ffmpeg
from jobyard.storage.job_artifacts import copy_stream
from jobyard.storage.location import StorageError

F = TypeVar("F", bound=Callable[..., Any])


class MediaOptions(BaseModel):
    """`[packs.media]` in jobyard.toml."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    pool: str = Field("media", description="The pool the media job types run on.")
    timeout_s: float = Field(3600.0, gt=0, description="Longest transcode.")
    retries: int = Field(1, ge=0, description="Attempts after a failure a retry may fix.")


class ProbeArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")
    source: str = Field(description="A storage URL of the video or audio file.")


class TranscodeArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")
    source: str = Field(description="A storage URL of the video.")
    height: int = Field(720, ge=16, le=4320, description="Output height; width keeps the ratio.")
    crf: int = Field(23, ge=0, le=51, description="H.264 quality: lower is better and larger.")
    name: str = Field("transcoded.mp4", description="Artifact name of the MP4.")


class ThumbnailArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")
    source: str = Field(description="A storage URL of the video.")
    at_s: float = Field(1.0, ge=0, description="Moment of the frame, seconds from the start.")
    format: Literal["jpeg", "png"] = "jpeg"
    height: int | None = Field(None, ge=16, le=4320, description="Scale to this height.")


def pack(**options: Any) -> Yard:
    """The media job types, configured (pydantic ValidationError for bad options)."""
    config = MediaOptions(**options)
    yard = Yard("media")

    def job(name: str, args: type[BaseModel]) -> Callable[[F], F]:
        return yard.job(
            name, pool=config.pool, args=args, retries=config.retries, timeout_s=config.timeout_s
        )

    @job("media.probe", ProbeArgs)
    def probe_job(ctx: JobContext, args: ProbeArgs) -> dict[str, Any]:
        """Duration and streams of a media file."""
        with local_copy(ctx, args.source) as path:
            return ffmpeg.probe(path).as_dict()

    @job("media.transcode", TranscodeArgs)
    def transcode_job(ctx: JobContext, args: TranscodeArgs) -> dict[str, Any]:
        """An H.264/AAC MP4 at the given height and quality."""
        with local_copy(ctx, args.source) as path, tempfile.TemporaryDirectory() as folder:
            info = ffmpeg.probe(path)
            out = str(Path(folder) / "out.mp4")
            ffmpeg.run(
                ["-y", "-i", path, "-vf", f"scale=-2:{args.height}", "-c:v", "libx264",
                 "-preset", "veryfast", "-crf", str(args.crf), "-pix_fmt", "yuv420p",
                 "-c:a", "aac", "-movflags", "+faststart", out],
                duration_s=info.duration_s,
                on_progress=lambda fraction: ctx.progress(fraction, "transcoding"),
                cancelled=ctx.cancelled,
            )  # fmt: skip
            result = ffmpeg.probe(out).as_dict()
            url = ctx.artifacts.put_file(out, args.name, "video/mp4")
        return {"url": url, **result}

    @job("media.thumbnail", ThumbnailArgs)
    def thumbnail_job(ctx: JobContext, args: ThumbnailArgs) -> dict[str, Any]:
        """One frame as a JPEG or PNG image."""
        suffix = "jpg" if args.format == "jpeg" else "png"
        with local_copy(ctx, args.source) as path, tempfile.TemporaryDirectory() as folder:
            info = ffmpeg.probe(path)
            if info.duration_s is not None and args.at_s >= info.duration_s:
                raise Fail(f"at_s {args.at_s:g} is past the end ({info.duration_s:g} s)")
            out = str(Path(folder) / f"thumbnail.{suffix}")
            scale = ["-vf", f"scale=-2:{args.height}"] if args.height else []
            ffmpeg.run(
                ["-y", "-ss", f"{args.at_s:.3f}", "-i", path, "-frames:v", "1", *scale, out],
                duration_s=None,
                on_progress=lambda _: None,
                cancelled=ctx.cancelled,
            )
            url = ctx.artifacts.put_file(out, f"thumbnail.{suffix}", f"image/{args.format}")
        return {"url": url}

    del probe_job, transcode_job, thumbnail_job
    return yard


@contextmanager
def local_copy(ctx: JobContext, url: str) -> Iterator[str]:
    """A local path of the storage URL: the file itself for file://, else a temporary copy."""
    if url.startswith("file://") and Path(url.removeprefix("file://")).is_file():
        yield url.removeprefix("file://")
        return
    try:
        source = ctx.artifacts.open_input(url)
    except (StorageError, OSError, ValueError) as exc:
        raise Fail(f"cannot read {url}: {exc}") from None
    with source, tempfile.NamedTemporaryFile(suffix=Path(url).suffix) as copy:
        copy_stream(source, copy)
        copy.flush()
        yield copy.name
