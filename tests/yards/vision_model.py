"""A user's own detector for the vision pack's model hook: finds the brightest 32x32 block.

It records the size of every batch it is given (in `VISION_BATCH_LOG`), so a test can see
that a user's model receives whole batches."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from jobyard.packs.vision.detectors import Detection


class Brightest:
    def detect(self, images: Sequence[Any]) -> list[list[Detection]]:
        log = os.environ.get("VISION_BATCH_LOG")
        if log:
            with open(log, "a", encoding="utf-8") as out:
                out.write(f"{len(images)}\n")
        found = []
        for image in images:
            gray = image.mean(axis=2)
            best, where = -1.0, (0, 0)
            for y in range(0, gray.shape[0] - 31, 16):
                for x in range(0, gray.shape[1] - 31, 16):
                    value = float(gray[y : y + 32, x : x + 32].mean())
                    if value > best:
                        best, where = value, (x, y)
            found.append([Detection("bright", best / 255, (where[0], where[1], 32, 32))])
        return found


def make() -> Brightest:
    return Brightest()
