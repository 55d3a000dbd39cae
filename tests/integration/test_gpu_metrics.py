"""GPU use per worker: sampled through NVML where a driver is, absent (no error, no series)
where none is, and shown by /metrics, /api/v1/workers and the pools page from the heartbeat."""

from __future__ import annotations

from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from jobyard.execution.gpu import GpuProbe, _visible
from jobyard.runtime import Runtime
from jobyard.store import workers
from jobyard.store.records import WorkerRecord

#: What a worker on one H200 reports (the keys `GpuProbe.sample` writes).
H200 = {
    "index": 0,
    "uuid": "GPU-5f2c",
    "name": "NVIDIA H200",
    "utilization": 0.31,
    "memory_used_bytes": 40 * 2**30,
    "memory_total_bytes": 141 * 2**30,
}


def test_the_probe_reports_what_nvml_sees_or_nothing() -> None:
    probe = GpuProbe({})
    sampled = probe.sample()
    if not probe.available:  # CI and this machine: no NVIDIA driver
        assert sampled == []
    for gpu in sampled:  # a machine with a GPU
        assert set(gpu) == set(H200)
        assert (
            0 <= gpu["utilization"] <= 1 and gpu["memory_used_bytes"] <= gpu["memory_total_bytes"]
        )
    assert GpuProbe({"CUDA_VISIBLE_DEVICES": ""}).sample() == []  # every GPU hidden


def test_visible_devices_narrow_the_gpus() -> None:
    assert _visible({}) is None
    assert _visible({"CUDA_VISIBLE_DEVICES": "1, 3"}) == {"1", "3"}
    assert _visible({"NVIDIA_VISIBLE_DEVICES": "all"}) is None
    assert _visible({"NVIDIA_VISIBLE_DEVICES": "GPU-5f2c"}) == {"GPU-5f2c"}
    assert _visible({"CUDA_VISIBLE_DEVICES": ""}) == set()


def test_heartbeat_gpus_reach_metrics_api_and_pools_page(client: TestClient) -> None:
    runtime: Runtime = client.app.state.runtime  # type: ignore[attr-defined]
    now = runtime.clock()
    worker = WorkerRecord(
        id="media@gpu-node-1:42",
        pool="media",
        hostname="gpu-node-1",
        pid=42,
        concurrency=2,
        celery_pool="prefork",
        queue=runtime.settings.queue_for("media"),
        started_at=now,
        heartbeat_at=now,
        stopped_at=None,
    )
    with runtime.db.write() as conn:
        workers.heartbeat(conn, worker, now, gpus=[H200])
    samples = {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(client.get("/metrics").text)
        for sample in family.samples
    }
    labels = (("gpu", "0"), ("model", "NVIDIA H200"), ("pool", "media"), ("worker", worker.id))
    assert samples[("jobyard_worker_gpu_utilization_ratio", labels)] == 0.31
    assert samples[("jobyard_worker_gpu_memory_used_bytes", labels)] == 40 * 2**30
    assert samples[("jobyard_worker_gpu_memory_total_bytes", labels)] == 141 * 2**30
    listed = {w["id"]: w for w in client.get("/api/v1/workers").json()}
    assert listed[worker.id]["gpus"] == [H200]
    page = client.get("/pools", headers={"accept": "text/html"}).text
    assert "NVIDIA H200 #0: 31 % busy, 40.0 / 141.0 GiB" in page
