"""What a re-run campaign selects, how its args change, and its name."""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from jobyard.domain.states import JobState
from jobyard.domain.triggers import parse_duration
from jobyard.errors import InvalidRequest

#: Only finished jobs are re-run: a queued or running one is still on its way.
RERUNNABLE = (JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED)
CAMPAIGN_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,79}$")


@dataclass(frozen=True)
class RerunSelection:
    """Jobs of one type, in some final states, created in a time range; re-runs excluded
    (re-processing with a newer model runs each original once, not its earlier re-runs)."""

    type: str
    states: tuple[JobState, ...] = (JobState.SUCCEEDED,)
    since: datetime | None = None
    until: datetime | None = None
    args_patch: dict[str, Any] = field(default_factory=dict)
    campaign: str | None = None

    def __post_init__(self) -> None:
        if not self.states:
            raise InvalidRequest("choose at least one state to re-run")
        wrong = [s.value for s in self.states if s not in RERUNNABLE]
        if wrong:
            allowed = ", ".join(s.value for s in RERUNNABLE)
            raise InvalidRequest(f"only finished jobs are re-run ({allowed}), not {wrong}")
        if self.since and self.until and self.since >= self.until:
            raise InvalidRequest("--since must be before --until")
        if self.campaign is not None and not CAMPAIGN_PATTERN.match(self.campaign):
            raise InvalidRequest(
                "campaign must be 1 to 80 letters, digits, '.', '_' or '-', "
                "starting with a letter or digit"
            )
        if not isinstance(self.args_patch, dict):
            raise InvalidRequest("args_patch must be a JSON object")

    @property
    def campaign_id(self) -> str:
        """The given campaign name, or one derived from the selection: the same command
        names the same campaign, so running it again resumes it."""
        if self.campaign is not None:
            return self.campaign
        described = json.dumps(
            {
                "type": self.type,
                "states": sorted(s.value for s in self.states),
                "since": self.since.isoformat() if self.since else None,
                "until": self.until.isoformat() if self.until else None,
                "patch": self.args_patch,
            },
            sort_keys=True,
        )
        return hashlib.sha256(described.encode()).hexdigest()[:16]

    @property
    def key_prefix(self) -> str:
        return f"rerun:{self.campaign_id}:"


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch: objects merge key by key, `null` removes a key, anything
    else replaces."""
    if not isinstance(patch, dict):
        return patch
    merged = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = merge_patch(merged.get(key), value)
    return merged


def parse_moment(text: str, now: datetime) -> datetime:
    """A moment from ISO 8601 (`2026-11-01`, `2026-11-01T08:00:00Z`; UTC unless it says
    otherwise) or a duration back from now (`7d`, `12h`).

    Raises:
        InvalidRequest: neither.
    """
    try:
        return now - timedelta(seconds=parse_duration(text))
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidRequest(
            f"'{text}' is not a moment: write 2026-11-01, 2026-11-01T08:00:00Z or 7d (ago)"
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
