"""The one way jobyard writes a moment for people and programs: ISO 8601 in UTC with `Z`.

The API (pydantic) already writes `2026-11-30T20:41:24.354723Z`; the CLI and the dashboard
use these helpers so every surface reads the same. The dashboard shows local time on screen
and keeps this form in each `<time datetime>`.
"""

from __future__ import annotations

from datetime import UTC, datetime


def iso_utc(moment: datetime, *, precise: bool = True) -> str:
    """`2026-11-30T20:41:24.354723Z` (`precise=False`: `2026-11-30T20:41:24Z`)."""
    stamp = moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)
    text = stamp.strftime("%Y-%m-%dT%H:%M:%S.%f" if precise else "%Y-%m-%dT%H:%M:%S")
    return text + "Z"
