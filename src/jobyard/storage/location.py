"""`Storage`: the configured fsspec filesystem, the URL of each job's artifacts, and reading any
URL a job is given as input.

fsspec names the backend by the URL's scheme (`file`, `s3` through s3fs, `gs` through gcsfs,
`az` through adlfs); credentials are the backend's own business (environment variables,
instance roles), so they never pass through jobyard's settings.
"""

from __future__ import annotations

import posixpath
import re
import uuid
from collections.abc import Mapping
from typing import IO, TYPE_CHECKING, Any

from jobyard.errors import ConfigError

if TYPE_CHECKING:
    from fsspec.spec import AbstractFileSystem

    from jobyard.config import Settings

#: What an artifact name may be: relative, `/`-separated, no `..`, no control characters.
NAME_PATTERN = re.compile(r"^(?!/)(?!.*(^|/)\.\.?(/|$))[^\x00-\x1f\\]{1,500}$")


class StorageError(Exception):
    """A storage URL or artifact that cannot be used; the message says which and why."""


class Storage:
    """One installation's artifact storage."""

    def __init__(self, url: str, options: Mapping[str, Any]) -> None:
        self.url = url.rstrip("/")
        self.scheme = url.partition("://")[0]
        self._options = dict(options)
        self.fs, self.root = _filesystem(self.url, self._options)

    @classmethod
    def of(cls, settings: Settings) -> Storage:
        """The storage `[storage]` configures (ConfigError naming `storage.url` if unusable)."""
        try:
            return cls(settings.storage_url, settings.storage.options)
        except StorageError as exc:
            raise ConfigError(f"storage.url: {exc}") from exc

    def job_url(self, job_id: uuid.UUID | str, name: str) -> str:
        """Where the job's artifact called `name` lives."""
        check_name(name)
        return f"{self.url}/{job_id}/{name}"

    def path_of(self, url: str) -> str:
        """The filesystem path of a URL under this storage."""
        if not url.startswith(self.url + "/"):
            raise StorageError(f"{url} is not under the artifact storage {self.url}")
        return posixpath.join(self.root, url[len(self.url) + 1 :])

    def open_input(self, url: str) -> IO[bytes]:
        """Open any storage URL for reading (the configured options apply to its scheme)."""
        fs, path = self.resolve(url)
        try:
            handle: IO[bytes] = fs.open(path, "rb")
        except FileNotFoundError:
            raise StorageError(f"{url} does not exist") from None
        return handle

    def resolve(self, url: str) -> tuple[AbstractFileSystem, str]:
        """The filesystem and path of any URL; this storage's options for its own scheme."""
        if url.startswith(self.url + "/"):
            return self.fs, self.path_of(url)
        scheme = url.partition("://")[0]
        return _filesystem(url, self._options if scheme == self.scheme else {})

    def delete(self, url: str) -> None:
        """Remove one artifact's file; one that is already gone is fine."""
        try:
            self.fs.rm_file(self.path_of(url))
        except FileNotFoundError:
            pass


def check_name(name: str) -> str:
    """An artifact name, or StorageError saying what is wrong with it."""
    if not NAME_PATTERN.match(name):
        raise StorageError(
            f"artifact name {name!r} must be a relative path of 1 to 500 characters, "
            "without '..', a leading '/', backslashes or control characters"
        )
    return name


def check_url(url: str) -> str:
    """A storage URL whose scheme fsspec knows, or ValueError saying what is wrong: for the
    args of job types that read storage, so a bad URL is a 422 at submit."""
    import fsspec

    scheme, sep, rest = url.partition("://")
    if not sep or not rest:
        raise ValueError(f"{url!r} is not a storage URL (write file://path or s3://bucket/key)")
    if scheme not in fsspec.available_protocols():
        raise ValueError(f"unknown storage scheme {scheme!r} in {url}")
    return url


def _filesystem(url: str, options: Mapping[str, Any]) -> tuple[AbstractFileSystem, str]:
    import fsspec  # here, not at import: a pod-per-job process may never touch storage
    from fsspec.core import url_to_fs

    scheme, sep, _ = url.partition("://")
    if not sep:
        raise StorageError(f"{url!r} is not a URL (write file://path or s3://bucket/key)")
    if scheme not in fsspec.available_protocols():
        raise StorageError(f"unknown storage scheme {scheme!r} in {url}")
    try:
        fs, path = url_to_fs(url, **options)
    except ImportError as exc:
        raise StorageError(
            f"{scheme}:// needs a package that is not installed ({exc}); install jobyard with "
            "the matching extra: jobyard[s3], jobyard[gcs] or jobyard[azure]"
        ) from None
    except (TypeError, ValueError) as exc:
        raise StorageError(f"{url}: {exc}") from None
    return fs, str(path)
