"""Running ffmpeg: finding the binary, reading what it says about a file, following its
`-progress` output, and stopping it on cancel or timeout.

The binary is the system's `ffmpeg` when there is one, else the one the `imageio-ffmpeg`
wheel ships (`jobyard[media]`), so a laptop needs no system package.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from jobyard.context import Fail

DURATION = re.compile(r"Duration: (\d+):(\d+):(\d+(?:\.\d+)?)")
STREAM = re.compile(r"Stream #\d+:(\d+)[^:]*: (Video|Audio|Subtitle): ([a-z0-9_]+)([^\n]*)")
SIZE = re.compile(r", (\d{2,5})x(\d{2,5})[ ,\[]")
NOT_MEDIA = ("Invalid data found", "could not find codec parameters", "does not contain any stream")


def binary() -> str:
    """The ffmpeg to run (Fail when there is none)."""
    found = shutil.which("ffmpeg")
    if found:
        return found
    try:
        import imageio_ffmpeg  # type: ignore[import-untyped]
    except ImportError:
        raise Fail("ffmpeg is not installed: install jobyard[media] or a system ffmpeg") from None
    path: str = imageio_ffmpeg.get_ffmpeg_exe()
    return path


@dataclass(frozen=True)
class Probe:
    """What ffmpeg reads from a media file's header."""

    duration_s: float | None
    streams: list[dict[str, Any]]

    def as_dict(self) -> dict[str, Any]:
        return {"duration_s": self.duration_s, "streams": self.streams}


def probe(path: str) -> Probe:
    """Duration and streams of a local file (Fail when it is not a media file)."""
    done = subprocess.run(
        [binary(), "-hide_banner", "-i", path],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    text = done.stderr
    if any(marker in text for marker in NOT_MEDIA) or "Stream #" not in text:
        raise Fail(f"not a video or audio file: {_last_line(text)}")
    match = DURATION.search(text)
    duration = None
    if match:
        hours, minutes, seconds = match.groups()
        duration = int(hours) * 3600 + int(minutes) * 60 + float(seconds)
    streams = []
    for index, kind, codec, rest in STREAM.findall(text):
        stream: dict[str, Any] = {"index": int(index), "type": kind.lower(), "codec": codec}
        size = SIZE.search(rest)
        if kind == "Video" and size:
            stream["width"], stream["height"] = int(size.group(1)), int(size.group(2))
        streams.append(stream)
    return Probe(duration, streams)


def run(
    args: Sequence[str],
    *,
    duration_s: float | None,
    on_progress: Callable[[float], None],
    cancelled: Callable[[], bool],
) -> None:
    """Run ffmpeg with `-progress` on stdout, reporting the fraction done; kill it when the job
    is cancelled, times out (the worker's time limit raises here) or anything else raises."""
    command = [binary(), "-hide_banner", "-nostats", "-loglevel", "error", "-progress", "pipe:1"]
    process = subprocess.Popen(
        [*command, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        for line in process.stdout:
            if cancelled():
                raise Fail("cancelled while ffmpeg ran")
            key, _, value = line.strip().partition("=")
            if key == "out_time_us" and value.isdigit() and duration_s:
                on_progress(min(int(value) / 1e6 / duration_s, 1.0))
        code = process.wait()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    if code != 0:
        error = process.stderr.read() if process.stderr else ""
        raise Fail(f"ffmpeg failed (exit {code}): {_last_line(error)}")


def _last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1][:500] if lines else "no output"
