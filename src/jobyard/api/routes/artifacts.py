"""`/api/v1/jobs/{id}/artifacts/{name}`: download a job's artifact, streamed from storage."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import IO
from urllib.parse import quote

from fastapi import APIRouter
from fastapi.responses import StreamingResponse

from jobyard.api.auth import Viewer
from jobyard.api.deps import RuntimeDep
from jobyard.api.responses import COMMON
from jobyard.api.schemas import Problem
from jobyard.errors import ArtifactNotFound
from jobyard.storage.location import StorageError
from jobyard.store import artifacts, jobs

#: Bytes read from storage per chunk sent: memory stays flat whatever the file's size.
CHUNK = 1024 * 1024

router = APIRouter(prefix="/api/v1/jobs", tags=["jobs"], responses=COMMON)


@router.get(
    "/{job_id}/artifacts/{name:path}",
    response_class=StreamingResponse,
    responses={404: {"model": Problem}, 200: {"content": {"application/octet-stream": {}}}},
)
def download_artifact(
    job_id: uuid.UUID, name: str, runtime: RuntimeDep, _caller: Viewer
) -> StreamingResponse:
    """The artifact's bytes, with its content type, size and SHA-256 (`X-Checksum-SHA256`)."""
    jobs.get(runtime.db, job_id)  # job_not_found before artifact_not_found
    with runtime.db.read() as conn:
        record = artifacts.get(conn, job_id, name)
    if record is None:
        raise ArtifactNotFound(f"job {job_id} has no artifact named {name!r}")
    try:
        handle = runtime.storage.open_input(record.url)
    except (StorageError, OSError) as exc:
        raise ArtifactNotFound(
            f"artifact {name!r} of job {job_id} is recorded but cannot be read from storage: {exc}"
        ) from None
    filename = quote(name.rsplit("/", 1)[-1])
    return StreamingResponse(
        _chunks(handle),
        media_type=record.content_type,
        headers={
            "Content-Length": str(record.size),
            "Content-Disposition": f"attachment; filename*=UTF-8''{filename}",
            "X-Checksum-SHA256": record.sha256,
        },
    )


def _chunks(handle: IO[bytes]) -> Iterator[bytes]:
    try:
        while chunk := handle.read(CHUNK):
            yield chunk
    finally:
        handle.close()
