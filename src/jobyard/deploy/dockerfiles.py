"""Dockerfiles per dependency set: the base image, plus one per distinct pool requirements.

Pools that share a requirements file share an image; pools without one run the base image.
Every image installs the project, runs as an unprivileged user (uid 10001, matching the
Kubernetes securityContext) and starts `jobyard`; a pool image defaults to its worker.
"""

from __future__ import annotations

from dataclasses import dataclass

from jobyard.config import Settings

PYTHON_IMAGE = "python:3.12-slim"
UID = 10001


@dataclass(frozen=True)
class Dockerfile:
    """One file to write and what uses it."""

    filename: str
    text: str
    pools: tuple[str, ...]


def _text(requirements: str | None, command: list[str]) -> str:
    lines = [
        "# Rendered by `jobyard deploy dockerfiles`; build from the project root.",
        f"FROM {PYTHON_IMAGE}",
        "ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1",
        f"RUN useradd --uid {UID} --user-group --create-home --shell /usr/sbin/nologin jobyard",
        "WORKDIR /app",
    ]
    if requirements:
        lines += [
            f"COPY {requirements} /tmp/requirements.txt",
            "RUN pip install -r /tmp/requirements.txt && rm /tmp/requirements.txt",
        ]
    lines += [
        "COPY . /app",
        "RUN pip install /app",
        f"USER {UID}:{UID}",
        'ENTRYPOINT ["jobyard"]',
        "CMD [" + ", ".join(f'"{part}"' for part in command) + "]",
    ]
    return "\n".join(lines) + "\n"


def render(settings: Settings) -> list[Dockerfile]:
    """The base Dockerfile and one per distinct requirements file."""
    by_requirements: dict[str, list[str]] = {}
    for name, pool in settings.pools.items():
        if pool.requirements:
            by_requirements.setdefault(pool.requirements, []).append(name)
    files = [
        Dockerfile(
            "Dockerfile",
            _text(None, ["web", "--host", "0.0.0.0"]),
            tuple(name for name, pool in settings.pools.items() if not pool.requirements),
        )
    ]
    for requirements, pools in sorted(by_requirements.items()):
        first = pools[0]
        files.append(
            Dockerfile(
                f"Dockerfile.{first}",
                _text(requirements, ["worker", "--pool", first]),
                tuple(pools),
            )
        )
    return files
