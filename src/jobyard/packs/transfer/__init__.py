"""The transfer pack: downloads into artifact storage and copies between storage URLs.

Enable it with `[packs.transfer]` in jobyard.toml (options below), or in Python with
`yard = transfer.pack(pool="io")`. Job types:

- `transfer.download` {url, name?, sha256?, max_bytes?}: an http(s) URL into the job's
  artifacts, streamed, resumed after a dropped connection, checked against `sha256`;
  private and loopback addresses are refused unless `allow_networks` lists them (SSRF).
- `transfer.copy` {source, destination?, name?}: any storage URL to another, or into the
  job's artifacts.
- `transfer.upload` {path, destination?, name?}: a file on the worker into storage.
"""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator

from jobyard.app import Yard
from jobyard.context import JobContext
from jobyard.packs.transfer.copy import copy
from jobyard.packs.transfer.download import Limits, download
from jobyard.packs.transfer.network_guard import Network, check_scheme
from jobyard.storage.location import StorageError, check_name

GIB = 1024**3


class TransferOptions(BaseModel):
    """`[packs.transfer]` in jobyard.toml."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    pool: str = Field("general", description="The pool the transfer job types run on.")
    max_bytes: int = Field(10 * GIB, gt=0, description="Largest download, unless a job asks less.")
    timeout_s: float = Field(30.0, gt=0, description="Connect and read timeout per request.")
    resume_attempts: int = Field(5, ge=0, description="Resumes after dropped connections.")
    retries: int = Field(3, ge=0, description="Attempts after a 5xx, a timeout or a refusal.")
    allow_networks: list[str] = Field(
        default_factory=list,
        description="Private networks downloads may reach anyway (CIDRs such as 10.1.0.0/16).",
    )

    @field_validator("allow_networks")
    @classmethod
    def _networks(cls, values: list[str]) -> list[str]:
        for value in values:
            ipaddress.ip_network(value, strict=False)  # ValueError names the bad one
        return values

    def networks(self) -> list[Network]:
        return [ipaddress.ip_network(value, strict=False) for value in self.allow_networks]


def _artifact_name(name: str) -> str:
    try:
        return check_name(name)
    except StorageError as exc:
        raise ValueError(str(exc)) from None


HttpUrlText = Annotated[str, AfterValidator(check_scheme)]
ArtifactName = Annotated[str, AfterValidator(_artifact_name)]
Sha256 = Annotated[str, Field(pattern=r"^[0-9a-fA-F]{64}$")]


class DownloadArgs(BaseModel):
    """What to download, and how to check it."""

    model_config = ConfigDict(extra="forbid")

    url: HttpUrlText = Field(description="An http or https URL.")
    name: ArtifactName | None = Field(
        None, description="Artifact name; default the URL's file name."
    )
    sha256: Sha256 | None = Field(None, description="Expected SHA-256 (hex); checked at the end.")
    max_bytes: int | None = Field(None, gt=0, description="A lower size limit for this file.")


class _Target(BaseModel):
    """Where a copy goes: a storage URL, or the job's artifacts under `name`."""

    model_config = ConfigDict(extra="forbid")

    destination: str | None = Field(None, description="A storage URL; default the artifacts.")
    name: ArtifactName | None = Field(
        None, description="Artifact name when there is no destination."
    )


class CopyArgs(_Target):
    """Where from and where to."""

    source: str = Field(description="Any storage URL (s3://…, file://…, https://…).")


class UploadArgs(_Target):
    """A file on the worker's filesystem to put into storage."""

    path: str = Field(description="An absolute path on the worker.")


def pack(**options: Any) -> Yard:
    """The transfer job types, configured (pydantic ValidationError for bad options)."""
    config = TransferOptions(**options)
    yard = Yard("transfer")

    @yard.job(
        "transfer.download",
        pool=config.pool,
        args=DownloadArgs,
        retries=config.retries,
        backoff_s=5.0,
    )
    def download_job(ctx: JobContext, args: DownloadArgs) -> dict[str, Any]:
        """Stream an http(s) URL into the job's artifacts."""
        limit = min(args.max_bytes or config.max_bytes, config.max_bytes)
        limits = Limits(limit, config.timeout_s, config.resume_attempts, config.networks())
        name = args.name or _file_name(args.url)
        return download(ctx, args.url, name, args.sha256, limits)

    @yard.job(
        "transfer.copy", pool=config.pool, args=CopyArgs, retries=config.retries, backoff_s=5.0
    )
    def copy_job(ctx: JobContext, args: CopyArgs) -> dict[str, Any]:
        """Copy one storage URL to another, or into the job's artifacts."""
        return copy(ctx, args.source, args.destination, args.name)

    @yard.job(
        "transfer.upload", pool=config.pool, args=UploadArgs, retries=config.retries, backoff_s=5.0
    )
    def upload_job(ctx: JobContext, args: UploadArgs) -> dict[str, Any]:
        """Put a file from the worker into storage."""
        source = f"file://{Path(args.path).resolve()}"
        return copy(ctx, source, args.destination, args.name or Path(args.path).name)

    del download_job, copy_job, upload_job
    return yard


def _file_name(url: str) -> str:
    """An artifact name from the URL's last path segment."""
    last = url.split("?", 1)[0].rstrip("/").rsplit("/", 1)[-1]
    cleaned = re.sub(r"[^A-Za-z0-9._-]", "_", last).lstrip(".")
    return cleaned or "download"
