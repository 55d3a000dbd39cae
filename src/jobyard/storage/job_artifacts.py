"""`ctx.artifacts`: how a running job writes its outputs to storage and reads its inputs.

A file is recorded (URL, size, SHA-256, content type) only once it is complete: local files
are written under a temporary name and renamed, object stores (s3, gs, az) publish an object
only when its upload completes, and an upload that fails is discarded. So a job that fails
halfway leaves no partial artifact recorded.
"""

from __future__ import annotations

import hashlib
import mimetypes
import posixpath
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import IO, Any

from jobyard.storage.location import Storage, check_name
from jobyard.storage.records import ArtifactRecord

CHUNK = 1024 * 1024


class HashingWriter:
    """A binary file wrapper that counts and hashes what goes through it."""

    def __init__(self, target: IO[bytes]) -> None:
        self._target = target
        self.sha256 = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes | bytearray | memoryview) -> int:
        self.sha256.update(data)
        self.size += len(data)
        self._target.write(data)
        return len(data)

    def writable(self) -> bool:
        return True


class JobArtifacts:
    """One attempt's artifacts; `sink` records each one as it completes.

    `storage` is called on first use, so a job process whose storage cannot be reached (or
    whose backend package is missing) fails only if the job uses `ctx.artifacts`.
    """

    def __init__(
        self,
        storage: Callable[[], Storage],
        job_id: str,
        attempt: int,
        sink: Callable[[ArtifactRecord], None],
        clock: Callable[[], datetime],
    ) -> None:
        self._make_storage = storage
        self._opened: Storage | None = None
        self._job_id = job_id
        self._attempt = attempt
        self._sink = sink
        self._clock = clock

    @property
    def _storage(self) -> Storage:
        if self._opened is None:
            self._opened = self._make_storage()
        return self._opened

    def url(self, name: str) -> str:
        """Where the artifact called `name` is (or will be) stored."""
        return self._storage.job_url(self._job_id, name)

    @contextmanager
    def open(self, name: str, content_type: str | None = None) -> Iterator[HashingWriter]:
        """Write an artifact as a stream; it is recorded when the block ends without error."""
        url = self.url(name)
        storage = self._storage
        with atomic_write(storage.fs, storage.path_of(url)) as writer:
            yield writer
        self._sink(
            ArtifactRecord(
                job_id=uuid.UUID(self._job_id),
                attempt=self._attempt,
                name=name,
                url=url,
                size=writer.size,
                sha256=writer.sha256.hexdigest(),
                content_type=content_type or guess_type(name),
                created_at=self._clock(),
            )
        )

    @contextmanager
    def open_output(self, url: str) -> Iterator[HashingWriter]:
        """Write to any storage URL (another bucket, a shared folder): complete or not at all,
        like an artifact, but not recorded with the job."""
        fs, path = self._storage.resolve(url)
        with atomic_write(fs, path) as writer:
            yield writer

    def put_bytes(self, name: str, data: bytes, content_type: str | None = None) -> str:
        """Store `data` as the artifact `name`; its URL."""
        with self.open(name, content_type) as out:
            out.write(data)
        return self.url(name)

    def put_file(
        self, path: str | Path, name: str | None = None, content_type: str | None = None
    ) -> str:
        """Copy a local file into storage (as `name`, default its file name); its URL."""
        source = Path(path)
        target = check_name(name or source.name)
        with source.open("rb") as reader, self.open(target, content_type) as out:
            copy_stream(reader, out)
        return self.url(target)

    def open_input(self, url: str) -> IO[bytes]:
        """Open any storage URL (this job's, another's, a bucket's) for reading."""
        return self._storage.open_input(url)


@contextmanager
def atomic_write(fs: Any, path: str) -> Iterator[HashingWriter]:
    """Write `path` so that it exists only once complete: a local file under a temporary name,
    renamed at the end; an object store's upload, published on close or aborted."""
    local = _is_local(fs)
    if local:
        fs.makedirs(posixpath.dirname(path), exist_ok=True)
    staging = f"{path}.partial-{uuid.uuid4().hex}" if local else path
    handle: Any = fs.open(staging, "wb")
    writer = HashingWriter(handle)
    try:
        yield writer
    except BaseException:
        _abandon(fs, handle, staging)
        raise
    handle.close()
    if local:
        fs.mv(staging, path)


def copy_stream(reader: IO[bytes], writer: Any) -> None:
    """Copy `reader` to `writer` in 1 MiB chunks: memory stays flat whatever the size."""
    while chunk := reader.read(CHUNK):
        writer.write(chunk)


def guess_type(name: str) -> str:
    """The content type the name's extension suggests."""
    return mimetypes.guess_type(name)[0] or "application/octet-stream"


def _abandon(fs: Any, handle: Any, path: str) -> None:
    """Drop a write that did not finish: nothing of it may remain."""
    if _is_local(fs):
        handle.close()
        if fs.exists(path):
            fs.rm_file(path)
        return
    discard = getattr(handle, "discard", None)
    if callable(discard):
        discard()  # object stores: abort the upload, nothing is published
    else:
        handle.close()


def _is_local(fs: Any) -> bool:
    """Whether `fs` is the local disk (written under a temporary name, then renamed)."""
    from fsspec.implementations.local import LocalFileSystem

    return isinstance(fs, LocalFileSystem)
