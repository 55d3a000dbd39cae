"""`transfer.copy`: stream one storage URL to another (or into the job's artifacts)."""

from __future__ import annotations

import posixpath
from typing import Any

from jobyard.context import Fail, JobContext
from jobyard.storage.job_artifacts import copy_stream
from jobyard.storage.location import StorageError


def copy(ctx: JobContext, source: str, destination: str | None, name: str | None) -> dict[str, Any]:
    """Copy `source` to `destination`, or to the job's artifact `name` (default: the source's
    file name) when no destination is given; its URL, size and SHA-256."""
    try:
        reader = ctx.artifacts.open_input(source)
    except (StorageError, OSError) as exc:
        raise Fail(f"cannot read {source}: {exc}") from None
    with reader:
        if destination is None:
            target = name or posixpath.basename(source.rstrip("/")) or "copy"
            with ctx.artifacts.open(target) as out:
                copy_stream(reader, out)
            return {
                "url": ctx.artifacts.url(target),
                "size": out.size,
                "sha256": out.sha256.hexdigest(),
            }
        try:
            with ctx.artifacts.open_output(destination) as external:
                copy_stream(reader, external)
        except StorageError as exc:
            raise Fail(f"cannot write {destination}: {exc}") from None
        return {"url": destination, "size": external.size, "sha256": external.sha256.hexdigest()}
