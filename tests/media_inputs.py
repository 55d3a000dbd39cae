"""Media test inputs made on the spot, never downloaded."""

from __future__ import annotations

import subprocess
from pathlib import Path

from jobyard.packs.media import ffmpeg


def make_test_video(path: Path) -> Path:
    """10 s of 320x240 `testsrc` pattern with a 440 Hz tone, H.264/AAC, made by ffmpeg."""
    subprocess.run(
        [ffmpeg.binary(), "-hide_banner", "-loglevel", "error", "-y",
         "-f", "lavfi", "-i", "testsrc=duration=10:size=320x240:rate=25",
         "-f", "lavfi", "-i", "sine=frequency=440:duration=10",
         "-c:v", "libx264", "-c:a", "aac", "-shortest", str(path)],
        check=True,
        timeout=120,
    )  # fmt: skip
    return path
