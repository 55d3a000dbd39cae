"""A detector of MegaDetector's cost for the GPU rows of `bench/vision.py`: a randomly
initialised YOLOv5-style network (CSP backbone, SPPF, three detection scales) at 640 px.

    .venv/bin/python bench/vision.py --model bench.torch_detector:make --batch 64

Its boxes mean nothing (random weights); its cost per image is what a real detector of this
architecture costs, which is what throughput and GPU use depend on. It runs the batch at once
on the GPU in half precision (on the CPU in float32 when there is none). `torch` is not a
jobyard dependency: install it where you run this (`pip install torch`).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from jobyard.packs.vision.detectors import Detection, opencv

SIZE = int(os.environ.get("BENCH_TORCH_SIZE", "640"))
#: YOLOv5 "x": width 1.25, depth 1.33 (MegaDetector v5 is YOLOv5x6).
WIDTH, DEPTH = 1.25, 1.33


def channels(base: int) -> int:
    return max(8, int(base * WIDTH) // 8 * 8)


def conv(c_in: int, c_out: int, k: int = 1, s: int = 1) -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, k, s, k // 2, bias=False), nn.BatchNorm2d(c_out), nn.SiLU()
    )


class Bottleneck(nn.Module):
    def __init__(self, c: int) -> None:
        super().__init__()
        self.body = nn.Sequential(conv(c, c, 1), conv(c, c, 3))

    def forward(self, x: Any) -> Any:
        return x + self.body(x)


class C3(nn.Module):
    def __init__(self, c_in: int, c_out: int, n: int) -> None:
        super().__init__()
        half = c_out // 2
        self.a, self.b = conv(c_in, half), conv(c_in, half)
        self.m = nn.Sequential(*(Bottleneck(half) for _ in range(max(1, round(n * DEPTH)))))
        self.out = conv(2 * half, c_out)

    def forward(self, x: Any) -> Any:
        return self.out(torch.cat([self.m(self.a(x)), self.b(x)], 1))


class Sppf(nn.Module):
    def __init__(self, c: int) -> None:
        super().__init__()
        self.a, self.out = conv(c, c // 2), conv(c * 2, c)
        self.pool = nn.MaxPool2d(5, 1, 2)

    def forward(self, x: Any) -> Any:
        x = self.a(x)
        y1 = self.pool(x)
        y2 = self.pool(y1)
        return self.out(torch.cat([x, y1, y2, self.pool(y2)], 1))


class Yolo(nn.Module):
    def __init__(self, classes: int = 3) -> None:
        super().__init__()
        c = [channels(v) for v in (64, 128, 256, 512, 1024)]
        self.stem = conv(3, c[0], 6, 2)
        self.p3 = nn.Sequential(conv(c[0], c[1], 3, 2), C3(c[1], c[1], 3),
                                conv(c[1], c[2], 3, 2), C3(c[2], c[2], 6))  # fmt: skip
        self.p4 = nn.Sequential(conv(c[2], c[3], 3, 2), C3(c[3], c[3], 9))
        self.p5 = nn.Sequential(conv(c[3], c[4], 3, 2), C3(c[4], c[4], 3), Sppf(c[4]))
        outputs = 3 * (5 + classes)
        self.heads = nn.ModuleList(nn.Conv2d(ch, outputs, 1) for ch in (c[2], c[3], c[4]))

    def forward(self, x: Any) -> list[Any]:
        p3 = self.p3(self.stem(x))
        p4 = self.p4(p3)
        p5 = self.p5(p4)
        return [head(p) for head, p in zip(self.heads, (p3, p4, p5), strict=True)]


class TorchDetector:
    """The whole batch in one forward pass (what a GPU needs to stay busy)."""

    def __init__(self) -> None:
        self.device = "cuda" if torch.cuda.is_available() else "cpu"
        self.dtype = torch.float16 if self.device == "cuda" else torch.float32
        self.model = Yolo().eval().to(self.device, self.dtype)

    def detect(self, images: Sequence[Any]) -> list[list[Detection]]:
        cv2 = opencv()
        with torch.inference_mode():
            batch = torch.stack(
                [torch.from_numpy(cv2.resize(image, (SIZE, SIZE))) for image in images]
            )
            tensor = batch.to(self.device).permute(0, 3, 1, 2).to(self.dtype) / 255
            outputs = self.model(tensor)
            scores = torch.sigmoid(outputs[-1][:, 4]).flatten(1).amax(1).float().cpu()
        found = []
        for image, score in zip(images, scores.tolist(), strict=True):
            height, width = image.shape[:2]
            found.append([Detection("animal", score, (0, 0, width, height))])
        return found


def make() -> TorchDetector:
    return TorchDetector()
