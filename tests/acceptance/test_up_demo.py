"""`jobyard up --demo` in a subprocess, on the embedded default, driven over HTTP."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from functools import partial
from pathlib import Path
from typing import Any

import httpx

from tests.factories import wait_for
from tests.services import free_port

EXPECTED = {
    "demo.echo": ("succeeded", {"message": "hi", "extra": [1, 2]}),
    "demo.progress": ("succeeded", {"steps_done": 3}),
    "demo.flaky": ("succeeded", {"attempt": 2}),
}


def test_up_demo_runs_every_demo_job(tmp_path: Path) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("JOBYARD_")}
    # The demo enables the transfer pack (this test's file server is on 127.0.0.1); the media
    # and vision packs, whose wheels the demo install leaves out, are enabled here.
    env["JOBYARD_PACKS"] = (
        '{"transfer": {"allow_networks": ["127.0.0.0/8"]}, "media": {}, "vision": {}}'
    )
    video, photo = _media_inputs(tmp_path)
    (tmp_path / "site").mkdir()
    (tmp_path / "site" / "data.csv").write_bytes(b"id,value\n" + b"1,2\n" * 50_000)
    site = subprocess.Popen(
        [sys.executable, "-m", "http.server", str(site_port := free_port()), "--bind",
         "127.0.0.1", "--directory", str(tmp_path / "site")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    log_path = tmp_path / "up.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "jobyard", "up", "--demo", "--port", str(port)],
            cwd=tmp_path,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: _ready(base), timeout_s=60, what="jobyard up to serve /readyz")
        submitted = {
            "demo.echo": _submit(base, "demo.echo", {"message": "hi", "extra": [1, 2]}),
            "demo.progress": _submit(base, "demo.progress", {"steps": 3, "delay_s": 0.2}),
            "demo.flaky": _submit(base, "demo.flaky", {}),
        }
        for job_type, job_id in submitted.items():
            job = wait_for(partial(_terminal, base, job_id), timeout_s=60, what=job_type)
            assert (job["state"], job["result"]) == EXPECTED[job_type], job
        # The transfer pack through `up`: a download into artifacts, served back by web.
        fetched = _submit(
            base, "transfer.download", {"url": f"http://127.0.0.1:{site_port}/data.csv"}
        )
        job = wait_for(partial(_terminal, base, fetched), timeout_s=60, what="the download")
        assert job["state"] == "succeeded", job
        (artifact,) = httpx.get(f"{base}/api/v1/jobs/{fetched}").json()["artifacts"]
        served = httpx.get(f"{base}{artifact['download']}")
        assert served.content == (tmp_path / "site" / "data.csv").read_bytes()
        assert (tmp_path / ".jobyard" / "artifacts" / fetched / "data.csv").exists()
        _check_media_and_vision(base, video, photo)
        flaky = httpx.get(f"{base}/api/v1/jobs/{submitted['demo.flaky']}").json()
        assert [a["outcome"] for a in flaky["attempts"]] == ["failed", "succeeded"]
        logs = httpx.get(f"{base}/api/v1/jobs/{submitted['demo.progress']}/logs").json()
        assert len(logs["items"]) == 3
        assert (tmp_path / ".jobyard" / "jobyard.db").exists()
        # The demo's [[schedules]] were synced by the scheduler it runs.
        listed = wait_for(
            lambda: httpx.get(f"{base}/api/v1/schedules").json()["items"],
            timeout_s=30,
            what="the demo schedules",
        )
        assert {s["name"]: s["managed_by"] for s in listed} == {
            "demo-heartbeat": "config",
            "demo-nightly-transcode": "config",
        }
        # Another terminal in the same folder, no settings: the CLI finds the running demo.
        cli = subprocess.run(
            [
                sys.executable,
                "-m",
                "jobyard",
                "submit",
                "demo.echo",
                "--args",
                '{"message": "from the cli"}',
                "--wait",
            ],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert cli.returncode == 0, cli.stderr
        assert '"message": "from the cli"' in cli.stdout
    finally:
        site.terminate()
        site.wait(10)
        process.send_signal(signal.SIGINT)
        code = process.wait(60)
    output = log_path.read_text(errors="replace")
    assert code == 0, output[-3000:]
    assert "jobyard is up" in output and f"http://127.0.0.1:{port}" in output
    assert "stopped" in output
    assert not _alive_children(tmp_path)
    # Quiet by default: no Celery banner, root warning, readiness polls or per-task lines;
    # one line per finished attempt.
    for noise in ("[config]", "SecurityWarning", "GET http", "received", "Task jobyard"):
        assert noise not in output, noise
    assert "job demo.flaky" in output and "attempt 1 failed" in output
    assert "attempt 2 succeeded" in output


def _media_inputs(folder: Path) -> tuple[Path, Path]:
    """A 10 s test-pattern video with a tone (made by ffmpeg) and a photograph with a face."""
    import cv2
    import skimage.data

    from tests.media_inputs import make_test_video

    astronaut: Any = skimage.data.astronaut  # scikit-image ships no types

    video = make_test_video(folder / "clip.mp4")
    photo = folder / "astronaut.jpg"
    cv2.imwrite(str(photo), cv2.cvtColor(astronaut(), cv2.COLOR_RGB2BGR))
    return video, photo


def _check_media_and_vision(base: str, video: Path, photo: Path) -> None:
    """media.transcode, media.thumbnail and vision.detect through `up`, outputs served back."""
    jobs = {
        "transcode": _submit(base, "media.transcode", {"source": f"file://{video}", "height": 120}),
        "thumbnail": _submit(base, "media.thumbnail", {"source": f"file://{video}", "at_s": 5}),
        "detect": _submit(
            base,
            "vision.detect",
            {"image": f"file://{photo}", "detector": "faces", "annotate": True},
        ),
    }
    for name, job_id in jobs.items():
        job = wait_for(partial(_terminal, base, job_id), timeout_s=120, what=name)
        assert job["state"] == "succeeded", job
    transcoded = httpx.get(f"{base}/api/v1/jobs/{jobs['transcode']}").json()
    assert 9.5 < transcoded["result"]["duration_s"] < 10.5
    assert transcoded["result"]["streams"][0]["height"] == 120
    for name, suffix, magic in [("thumbnail", "jpg", b"\xff\xd8"), ("detect", "jpg", b"\xff\xd8")]:
        (artifact,) = httpx.get(f"{base}/api/v1/jobs/{jobs[name]}").json()["artifacts"]
        assert artifact["name"].endswith(suffix)
        assert httpx.get(f"{base}{artifact['download']}").content.startswith(magic)
    detected = httpx.get(f"{base}/api/v1/jobs/{jobs['detect']}").json()["result"]
    assert [d["label"] for d in detected["detections"]] == ["face"]


def _ready(base: str) -> bool:
    try:
        return httpx.get(f"{base}/readyz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def _submit(base: str, job_type: str, args: dict[str, object]) -> str:
    response = httpx.post(f"{base}/api/v1/jobs", json={"type": job_type, "args": args})
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def _terminal(base: str, job_id: str) -> dict[str, object] | None:
    job: dict[str, object] = httpx.get(f"{base}/api/v1/jobs/{job_id}").json()
    return job if job["state"] in {"succeeded", "failed", "cancelled"} else None


def _alive_children(cwd: Path) -> list[str]:
    """jobyard processes still running from this test's folder."""
    alive = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            if Path(proc, "cwd").resolve() == cwd.resolve() and "jobyard" in Path(
                proc, "cmdline"
            ).read_text(errors="replace"):
                alive.append(proc.name)
        except OSError:
            continue
    return alive


def _run_jobyard(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("JOBYARD_")}
    return subprocess.run(
        [sys.executable, "-m", "jobyard", *args],
        cwd=tmp_path,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_a_busy_port_or_an_unreachable_database_stops_at_once_in_one_line(
    tmp_path: Path,
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        for args in (("up", "--demo", "--port", port), ("web", "--port", port)):
            demo = {"JOBYARD_YARD": "jobyard.packs.demo:yard"} if args[0] == "web" else {}
            done = _run_jobyard(
                tmp_path, *args, **demo, JOBYARD_POOLS='{"general": {}, "media": {}}'
            )
            assert done.returncode == 2, done.stdout + done.stderr
            assert f"cannot listen on 127.0.0.1:{port}" in done.stderr
            assert "Traceback" not in done.stderr and "jobyard is up" not in done.stdout
    done = _run_jobyard(
        tmp_path,
        "web",
        "--port",
        str(free_port()),
        JOBYARD_YARD="jobyard.packs.demo:yard",
        JOBYARD_POOLS='{"general": {}, "media": {}}',
        JOBYARD_DATABASE_URL="postgresql://jobyard:pw@127.0.0.1:1/jobyard",
    )
    assert done.returncode == 3, done.stderr
    assert "is unreachable" in done.stderr and "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) <= 2, done.stderr
