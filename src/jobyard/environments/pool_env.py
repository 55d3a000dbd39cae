"""`PoolEnvironment`: where a pool's virtualenv lives, whether it is current, how to build it.

An environment is `<data_dir>/envs/<pool>-<key>/`, the key a hash of the requirements file's
bytes, the Python version and how jobyard itself is installed into it (this checkout, or this
release), so a changed file gives a new environment and an unchanged one is never rebuilt.
Builds take an exclusive lock, so two processes starting at once build it once; a build that
did not finish (no marker file) is removed and done again.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import platform
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from jobyard.config import Settings
from jobyard.errors import ConfigError

#: Written last: an environment without it is a build that did not finish.
COMPLETE_MARKER = ".jobyard-env-complete"
#: Set in processes that run inside a pool environment (its key), so they do not re-enter it.
ACTIVE_ENV = "JOBYARD_POOL_ENV"


class EnvironmentBuildError(ConfigError):
    """A pool's environment could not be built: its file, a requirement, or the build."""


@dataclass(frozen=True)
class PoolEnvironment:
    """The virtualenv of one pool."""

    pool: str
    requirements: Path
    root: Path

    @classmethod
    def of(cls, settings: Settings, pool: str) -> PoolEnvironment | None:
        """The pool's environment, or None when it runs in jobyard's own environment."""
        declared = settings.pools[pool].requirements
        if not declared:
            return None
        return cls(pool, settings.resolve_path(declared), settings.resolved_data_dir / "envs")

    @property
    def key(self) -> str:
        try:
            content = self.requirements.read_bytes()
        except OSError as exc:
            raise EnvironmentBuildError(
                f"pool '{self.pool}': cannot read its requirements file {self.requirements}: "
                f"{exc.strerror}"
            ) from None
        digest = hashlib.sha256(content)
        digest.update(f"\0{platform.python_implementation()} {platform.python_version()}".encode())
        digest.update(f"\0{' '.join(jobyard_requirement())}".encode())
        return digest.hexdigest()[:16]

    @property
    def path(self) -> Path:
        return self.root / f"{self.pool}-{self.key}"

    @property
    def python(self) -> Path:
        return self.path / "bin" / "python"

    def is_built(self) -> bool:
        return (self.path / COMPLETE_MARKER).is_file()

    def build(self, on_line: Callable[[str], None] = lambda _line: None) -> Path:
        """Build the environment unless it is current; returns its Python.

        Raises:
            EnvironmentBuildError: the file is missing, a requirement cannot be resolved, or
                the build failed; one line with the pool and uv's own message.
        """
        path = self.path  # reads the file: a missing one fails here, before any lock
        if self.is_built():
            return self.python
        self.root.mkdir(parents=True, exist_ok=True)
        with _exclusive(self.root / f"{path.name}.lock"):
            if self.is_built():  # another process built it while this one waited
                return self.python
            shutil.rmtree(path, ignore_errors=True)
            try:
                self._run(["venv", "--quiet", "--python", sys.executable, str(path)], on_line)
                self._run(
                    [
                        "pip",
                        "install",
                        "--python",
                        str(self.python),
                        "-r",
                        str(self.requirements),
                        *jobyard_requirement(),
                    ],
                    on_line,
                )
            except BaseException:
                shutil.rmtree(path, ignore_errors=True)
                raise
            (path / COMPLETE_MARKER).write_text(self.requirements.name, encoding="utf-8")
        return self.python

    def _run(self, args: list[str], on_line: Callable[[str], None]) -> None:
        command = [uv_binary(), *args]
        process = subprocess.Popen(
            command,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            text=True,
            env={**os.environ, "NO_COLOR": "1"},
        )
        assert process.stdout is not None
        lines = []
        for line in process.stdout:
            lines.append(line.rstrip())
            on_line(line.rstrip())
        if process.wait() != 0:
            raise EnvironmentBuildError(
                f"pool '{self.pool}': cannot build its environment from {self.requirements}: "
                + uv_message(lines)
            )


#: What uv draws around its error messages (the cross, and box-drawing characters).
TREE_DRAWING = " \u00d7\u2570\u2500\u25b6\u2502\u251c\u252c\u2534\u253c\u256d\u256e\u256f"


def uv_message(lines: list[str]) -> str:
    """uv's error, on one line: its own words without the tree drawing."""
    words = [line.strip(TREE_DRAWING).strip() for line in lines]
    meaningful = [w for w in words if w and not w.startswith(("Using ", "Creating ", "Resolved "))]
    return " ".join(meaningful) or "uv failed without a message"


def uv_binary() -> str:
    """The uv executable of the `uv` wheel jobyard depends on."""
    from uv import find_uv_bin

    return str(find_uv_bin())


def jobyard_requirement() -> list[str]:
    """How to install this jobyard into a pool environment: editable from the checkout it
    runs from, else the same release."""
    checkout = Path(__file__).resolve().parents[3]
    if (checkout / "pyproject.toml").is_file() and (checkout / "src" / "jobyard").is_dir():
        return ["--editable", str(checkout)]
    return [f"jobyard=={metadata.version('jobyard')}"]


@contextmanager
def _exclusive(lock_path: Path) -> Iterator[None]:
    fd = os.open(lock_path, os.O_CREAT | os.O_RDWR, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)
