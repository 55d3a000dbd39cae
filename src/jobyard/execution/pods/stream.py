"""The one channel from a job process to its launcher: its output, line by line.

- a plain line is a log line;
- `::progress 0.4 fitting model` sets the progress (a fraction in [0, 1], then a message);
- `::log {"level": "WARNING", "message": "..."}` is a log line with a level (Python jobs);
- `::jobyard-<nonce> {"status": ...}` is the attempt's outcome, written once by `run-job`;
- `::artifact-<nonce> {"name": ...}` is an artifact `ctx.artifacts` completed (the launcher
  records it under the job's own storage URL, never a URL the line names).

The nonce is known to `run-job` and the launcher only (a command job's program does not get
it), so nothing a job prints can pass for its outcome. Output is the channel because it is the
one thing every runner can read back (a file locally, pod logs on Kubernetes) and it needs no
credentials inside the job's process.
"""

from __future__ import annotations

import json
import math
import secrets
from dataclasses import dataclass
from typing import Any, Literal

PROGRESS = "::progress"
LOG = "::log "
#: Longest stored log line; longer ones are cut (a result line is not a log line).
MAX_LINE_CHARS = 16_384


def new_nonce() -> str:
    """A fresh secret for one attempt's outcome line."""
    return secrets.token_hex(12)


def outcome_prefix(nonce: str) -> str:
    return f"::jobyard-{nonce} "


def artifact_prefix(nonce: str) -> str:
    return f"::artifact-{nonce} "


@dataclass(frozen=True)
class ArtifactLine:
    """An artifact the job completed: its name under the job's storage folder and contents."""

    name: str
    size: int
    sha256: str
    content_type: str

    def to_json(self) -> str:
        return json.dumps(self.__dict__, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> ArtifactLine:
        data = json.loads(text)
        if not isinstance(data, dict):
            raise ValueError("not an artifact")
        return cls(
            name=str(data["name"]),
            size=int(data["size"]),
            sha256=str(data["sha256"]),
            content_type=str(data["content_type"]),
        )


@dataclass(frozen=True)
class LogLine:
    level: str
    message: str


@dataclass(frozen=True)
class ProgressLine:
    fraction: float
    message: str | None


@dataclass(frozen=True)
class Outcome:
    """How the attempt ended, as `run-job` reports it."""

    status: Literal["succeeded", "failed"]
    result: Any = None
    error: str | None = None
    error_type: str | None = None
    traceback: str | None = None
    retry_after_s: float | None = None
    #: A failure that no retry can fix (unknown job type, result too large).
    permanent: bool = False

    def to_json(self) -> str:
        return json.dumps(
            {k: v for k, v in self.__dict__.items() if v is not None and v is not False},
            separators=(",", ":"),
            allow_nan=False,
        )

    @classmethod
    def from_json(cls, text: str) -> Outcome:
        data = json.loads(text)
        if not isinstance(data, dict) or data.get("status") not in ("succeeded", "failed"):
            raise ValueError("not an outcome")
        return cls(
            status=data["status"],
            result=data.get("result"),
            error=data.get("error"),
            error_type=data.get("error_type"),
            traceback=data.get("traceback"),
            retry_after_s=data.get("retry_after_s"),
            permanent=bool(data.get("permanent", False)),
        )


Parsed = LogLine | ProgressLine | Outcome | ArtifactLine


def parse(line: str, nonce: str | None) -> Parsed:
    """What one output line (without its newline) says; with no nonce, never an outcome."""
    prefix = outcome_prefix(nonce) if nonce else None
    if prefix is not None and line.startswith(prefix):
        try:
            return Outcome.from_json(line[len(prefix) :])
        except ValueError:
            return LogLine("ERROR", "unreadable outcome line from run-job")
    if nonce and line.startswith(artifact_prefix(nonce)):
        try:
            return ArtifactLine.from_json(line[len(artifact_prefix(nonce)) :])
        except (ValueError, KeyError, TypeError):
            return LogLine("ERROR", "unreadable artifact line from run-job")
    if line.startswith(PROGRESS + " ") or line == PROGRESS:
        progress = _progress(line[len(PROGRESS) :].strip())
        if progress is not None:
            return progress
    elif line.startswith(LOG):
        logged = _log(line[len(LOG) :])
        if logged is not None:
            return logged
    return LogLine("INFO", line[:MAX_LINE_CHARS])


def _progress(text: str) -> ProgressLine | None:
    number, _, message = text.partition(" ")
    try:
        fraction = float(number)
    except ValueError:
        return None
    if math.isnan(fraction):
        return None
    return ProgressLine(min(max(fraction, 0.0), 1.0), message.strip()[:MAX_LINE_CHARS] or None)


def _log(text: str) -> LogLine | None:
    try:
        data = json.loads(text)
    except ValueError:
        return None
    if not isinstance(data, dict) or not isinstance(data.get("message"), str):
        return None
    level = str(data.get("level", "INFO")).upper()
    return LogLine(level[:16], data["message"][:MAX_LINE_CHARS])


def progress_line(fraction: float, message: str | None) -> str:
    return f"{PROGRESS} {fraction:.4f}" + (f" {message}" if message else "")


def log_line(level: str, message: str) -> str:
    return LOG + json.dumps({"level": level, "message": message}, ensure_ascii=False)


class LineSplitter:
    """Bytes in, complete decoded lines out; a partial last line waits for its end."""

    def __init__(self) -> None:
        self._pending = b""

    def feed(self, data: bytes) -> list[str]:
        data = self._pending + data
        *lines, self._pending = data.split(b"\n")
        return [_decode(line) for line in lines]

    @property
    def pending(self) -> int:
        """Bytes of an unterminated line held back."""
        return len(self._pending)

    def rest(self) -> list[str]:
        """The unterminated last line, once the writer is gone."""
        pending, self._pending = self._pending, b""
        return [_decode(pending)] if pending else []


def _decode(raw: bytes) -> str:
    return raw.rstrip(b"\r").decode("utf-8", errors="replace")
