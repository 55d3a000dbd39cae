"""What `jobyard run-job` needs to run one attempt, handed over by the launcher."""

from __future__ import annotations

import json
import os
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from jobyard.errors import ConfigError

#: A file holding the spec (local runner) …
SPEC_FILE_ENV = "JOBYARD_JOB_SPEC"
#: … or the spec itself (Kubernetes: the Job's environment).
SPEC_JSON_ENV = "JOBYARD_JOB_SPEC_JSON"


@dataclass(frozen=True)
class LaunchSpec:
    """One attempt of one job; carries the args so the job process needs no database."""

    job_id: str
    attempt: int
    type: str
    args: dict[str, Any]
    timeout_s: float
    #: The secret that marks `run-job`'s outcome line (see `stream`).
    nonce: str
    #: Artifact storage (`ctx.artifacts`); its credentials come from the environment.
    storage_url: str
    storage_options: dict[str, Any]

    def to_json(self) -> str:
        return json.dumps(asdict(self), separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> LaunchSpec:
        data = json.loads(text)
        return cls(
            job_id=str(uuid.UUID(data["job_id"])),
            attempt=int(data["attempt"]),
            type=str(data["type"]),
            args=dict(data["args"]),
            timeout_s=float(data["timeout_s"]),
            nonce=str(data["nonce"]),
            storage_url=str(data["storage_url"]),
            storage_options=dict(data["storage_options"]),
        )

    def write(self, path: Path) -> None:
        """Write readable by this user only: it holds the outcome nonce."""
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(self.to_json())


def spec_from_environment(job_id: str) -> LaunchSpec:
    """The spec the launcher gave this process, checked against the id on the command line.

    Raises:
        ConfigError: no spec (run-job is started by a launcher), or one for another job.
    """
    text: str | None = os.environ.get(SPEC_JSON_ENV)
    path = os.environ.get(SPEC_FILE_ENV)
    if text is None and path:
        text = Path(path).read_text(encoding="utf-8")
    if text is None:
        raise ConfigError(
            f"run-job runs one attempt for a launcher: set {SPEC_FILE_ENV} or {SPEC_JSON_ENV} "
            "(submit the job instead: jobyard submit TYPE)"
        )
    try:
        spec = LaunchSpec.from_json(text)
    except (ValueError, KeyError, TypeError) as exc:
        raise ConfigError(f"the job spec is unreadable: {exc}") from exc
    if spec.job_id != job_id:
        raise ConfigError(f"the job spec is for job {spec.job_id}, not {job_id}")
    return spec
