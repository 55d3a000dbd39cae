"""GPU use of a worker's host, sampled through NVML (`nvidia-ml-py`) with each heartbeat.

"GPU 31 % busy" is the figure that tells a team its GPU pool starves; the heartbeat row
carries each visible GPU's utilisation and memory, and `/metrics`, the pools page and the
Grafana dashboard show them per worker. Without an NVIDIA driver (every CI machine, most
laptops) NVML does not load and nothing is reported: no error, no empty series.

Which GPUs are the worker's: NVML sees every GPU of the host, so `CUDA_VISIBLE_DEVICES` (or
the NVIDIA container runtime's `NVIDIA_VISIBLE_DEVICES`) narrows them, by index or UUID; in
a Kubernetes pod the device plugin already shows NVML only the pod's GPUs.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

log = logging.getLogger(__name__)


class GpuProbe:
    """Samples the visible GPUs; `available` is False where NVML cannot load."""

    def __init__(self, environ: Mapping[str, str]) -> None:
        self._nvml: Any = None
        self._wanted = _visible(environ)
        try:
            import pynvml

            pynvml.nvmlInit()
        except Exception as exc:  # no driver, no library, no GPU: the common case
            log.debug("no GPU metrics: %s", exc)
            return
        self._nvml = pynvml

    @property
    def available(self) -> bool:
        return self._nvml is not None

    def sample(self) -> list[dict[str, Any]]:
        """Each visible GPU: index, uuid, name, utilisation (0 to 1), memory used and total."""
        if self._nvml is None:
            return []
        nvml = self._nvml
        found = []
        try:
            for index in range(nvml.nvmlDeviceGetCount()):
                handle = nvml.nvmlDeviceGetHandleByIndex(index)
                uuid = _text(nvml.nvmlDeviceGetUUID(handle))
                if self._wanted is not None and not {str(index), uuid} & self._wanted:
                    continue
                rates = nvml.nvmlDeviceGetUtilizationRates(handle)
                memory = nvml.nvmlDeviceGetMemoryInfo(handle)
                found.append(
                    {
                        "index": index,
                        "uuid": uuid,
                        "name": _text(nvml.nvmlDeviceGetName(handle)),
                        "utilization": rates.gpu / 100,
                        "memory_used_bytes": int(memory.used),
                        "memory_total_bytes": int(memory.total),
                    }
                )
        except Exception as exc:  # a GPU fell off the bus: report it, keep the heartbeat
            log.warning("sampling the GPUs failed: %s", exc)
        return found


def _visible(environ: Mapping[str, str]) -> set[str] | None:
    """The GPU indexes or UUIDs this process may use; None for all of them."""
    for name in ("CUDA_VISIBLE_DEVICES", "NVIDIA_VISIBLE_DEVICES"):
        value = environ.get(name)
        if value is not None and value.strip().lower() not in ("all", ""):
            return {part.strip() for part in value.split(",") if part.strip()}
        if value is not None and value.strip() == "" and name == "CUDA_VISIBLE_DEVICES":
            return set()  # CUDA_VISIBLE_DEVICES="" hides every GPU
    return None


def _text(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else value
