"""`transfer.download`: stream an http(s) URL into artifact storage.

The body goes straight to storage in chunks (memory stays flat), with a size limit checked
against both the announced length and the bytes received. A connection that drops midway is
resumed with `Range: bytes=N-` (up to `resume_attempts` times) instead of starting over; a
server that ignores the range makes the attempt fail with a retry. 5xx answers and timeouts
are retried by the job's retry policy; 4xx answers fail the job at once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin, urlsplit

import httpx

from jobyard.context import Fail, JobContext, Retry
from jobyard.packs.transfer.network_guard import Network, check_destination
from jobyard.storage.job_artifacts import HashingWriter

CHUNK = 256 * 1024
MAX_REDIRECTS = 5
#: Errors after which the same request may be resumed where it stopped.
DROPPED = (httpx.ReadError, httpx.RemoteProtocolError, httpx.ReadTimeout)


@dataclass(frozen=True)
class Limits:
    """How a download may go: its size, its timeouts, how often it resumes."""

    max_bytes: int
    timeout_s: float
    resume_attempts: int
    allowed: Sequence[Network]


def download(
    ctx: JobContext, url: str, name: str, sha256: str | None, limits: Limits
) -> dict[str, Any]:
    """Fetch `url` into the artifact `name`; its URL, size and SHA-256."""
    with httpx.Client(timeout=limits.timeout_s, follow_redirects=False) as client:
        with ctx.artifacts.open(name) as out:
            source = _stream(ctx, client, url, out, limits)
            digest = out.sha256.hexdigest()
            if sha256 is not None and digest != sha256.lower():
                raise Fail(f"SHA-256 mismatch: expected {sha256.lower()}, got {digest}")
            size = out.size
    return {"url": ctx.artifacts.url(name), "size": size, "sha256": digest, "source": source}


def _stream(
    ctx: JobContext, client: httpx.Client, url: str, out: HashingWriter, limits: Limits
) -> str:
    """Write the body of `url` to `out`, resuming after drops; the URL it came from."""
    resumes = 0
    total: int | None = None
    while True:
        headers = {"Range": f"bytes={out.size}-"} if out.size else {}
        try:
            url, response = _get(client, url, headers, limits.allowed)
            try:
                _check_status(response, url)
                if out.size and response.status_code != 206:
                    host = urlsplit(url).hostname
                    raise Retry(f"{host} ignored the Range request; starting over")
                total = _expected_total(response, out.size, limits.max_bytes)
                for chunk in response.iter_bytes(CHUNK):
                    out.write(chunk)
                    if out.size > limits.max_bytes:
                        raise Fail(f"{url} is larger than max_bytes ({limits.max_bytes} bytes)")
                    if total:
                        ctx.progress(out.size / total, f"{out.size} of {total} bytes")
            finally:
                response.close()
            if total is not None and out.size < total:
                raise httpx.RemoteProtocolError("the body ended early")
            return url
        except DROPPED as exc:
            resumes += 1
            if resumes > limits.resume_attempts:
                raise Retry(f"connection dropped {resumes} times: {exc}") from None
            ctx.log.warning("connection dropped at %d bytes (%s); resuming", out.size, exc)
        except httpx.TransportError as exc:  # refused, connect timeout: the retry policy's
            raise Retry(f"cannot reach {url}: {exc}") from None


def _get(
    client: httpx.Client, url: str, headers: dict[str, str], allowed: Sequence[Network]
) -> tuple[str, httpx.Response]:
    """GET with redirects followed by hand, every hop checked by the network guard."""
    for _ in range(MAX_REDIRECTS + 1):
        check_destination(url, allowed)
        request = client.build_request("GET", url, headers=headers)
        response = client.send(request, stream=True)
        if response.is_redirect and "location" in response.headers:
            response.close()
            url = urljoin(url, response.headers["location"])
            continue
        return url, response
    raise Fail(f"more than {MAX_REDIRECTS} redirects from {url}")


def _check_status(response: httpx.Response, url: str) -> None:
    if response.status_code >= 500:
        raise Retry(f"{url} answered {response.status_code}")
    if response.status_code >= 400:
        raise Fail(f"{url} answered {response.status_code} {response.reason_phrase}")


def _expected_total(response: httpx.Response, already: int, max_bytes: int) -> int | None:
    length = response.headers.get("content-length")
    if length is None or not length.isdigit():
        return None
    total = already + int(length)
    if total > max_bytes:
        raise Fail(f"the file is {total} bytes, over max_bytes ({max_bytes})")
    return total
