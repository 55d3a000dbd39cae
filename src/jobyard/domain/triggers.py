"""When a schedule fires: cron (in a timezone, DST handled) or a fixed interval.

Pure functions of their arguments; the clock is always passed in. Cron follows Debian cron
through `cronsim`: a fire time that a spring-forward change skips runs at the first minute
after the change, one in an hour a fall-back change repeats runs once (its first occurrence),
and expressions with a wildcard hour (`*/15 * * * *`) run in both occurrences of that hour.
"""

from __future__ import annotations

import hashlib
import re
from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cronsim import CronSim, CronSimError

CRON_MACROS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
#: Fire times walked one by one before switching to a backwards walk from `now`.
FORWARD_SCAN_LIMIT = 5000
_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w)")
_UNIT_S = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}


@dataclass(frozen=True, slots=True)
class Trigger:
    """A cron expression in a timezone, or an interval counted from `anchor`."""

    cron: str | None
    timezone: str
    interval_s: float | None
    anchor: datetime

    def next_after(self, after: datetime) -> datetime:
        """The first fire time strictly after `after` (UTC)."""
        if self.interval_s is not None:
            step = _interval_us(self.interval_s)
            elapsed = _microseconds(after - self.anchor)
            count = elapsed // step + 1 if elapsed >= 0 else 0
            return self.anchor + timedelta(microseconds=count * step)
        assert self.cron is not None
        return _next_cron(self.cron, self.timezone, after)

    def upcoming(self, after: datetime, count: int) -> list[datetime]:
        """The next `count` fire times after `after`."""
        times: list[datetime] = []
        moment = after
        for _ in range(count):
            moment = self.next_after(moment)
            times.append(moment)
        return times

    def due_between(self, first: datetime, now: datetime, keep: int) -> tuple[list[datetime], int]:
        """Fire times from `first` (a fire time) up to `now` inclusive.

        Returns:
            The last `keep` of them, ascending, and how many there were in all.
        """
        if first > now:
            return [], 0
        if self.interval_s is not None:
            step = _interval_us(self.interval_s)
            total = _microseconds(now - first) // step + 1
            start = max(0, total - keep)
            kept = [first + timedelta(microseconds=i * step) for i in range(start, total)]
            return kept, total
        kept_times: deque[datetime] = deque(maxlen=keep)
        moment, total = first, 0
        while moment <= now:
            if total == FORWARD_SCAN_LIMIT:
                return self._due_backwards(first, now, keep)
            kept_times.append(moment)
            total += 1
            moment = self.next_after(moment)
        return list(kept_times), total

    def _due_backwards(
        self, first: datetime, now: datetime, keep: int
    ) -> tuple[list[datetime], int]:
        """Far behind (long downtime, frequent cron): the last `keep` fires, found from `now`."""
        assert self.cron is not None
        zone = _zone(self.timezone)
        walker = CronSim(self.cron, (now + timedelta(seconds=1)).astimezone(zone), reverse=True)
        newest: list[datetime] = []
        for local in walker:
            moment = local.astimezone(UTC)
            if moment < first or len(newest) == keep:
                break
            if moment <= now and (not newest or moment < newest[-1]):
                newest.append(moment)
        # Only a lower bound is known; the caller reports it as "at least".
        return sorted(newest), FORWARD_SCAN_LIMIT + len(newest)


def jitter_offset(key: str, planned: datetime, jitter_s: float) -> timedelta:
    """A delay in [0, jitter_s) that depends only on the schedule and the fire time.

    Deterministic, so a takeover by another scheduler computes the same due time.
    """
    if jitter_s <= 0:
        return timedelta(0)
    digest = hashlib.blake2b(f"{key}|{planned.isoformat()}".encode(), digest_size=8).digest()
    fraction = int.from_bytes(digest, "big") / 2**64
    return timedelta(seconds=fraction * jitter_s)


def normalize_cron(expression: str) -> str:
    """The expression with macros (`@daily`) expanded and whitespace collapsed.

    Raises:
        ValueError: naming what is wrong with the expression.
    """
    text = " ".join(expression.split())
    text = CRON_MACROS.get(text.lower(), text)
    if text.startswith("@"):
        raise ValueError(
            f"unknown cron macro '{text}': use one of {', '.join(sorted(set(CRON_MACROS)))}"
        )
    fields = len(text.split())
    if fields not in (5, 6):
        raise ValueError(
            f"cron expression '{expression}' has {fields} fields: use 5 (minute hour "
            "day-of-month month day-of-week) or 6 (seconds first)"
        )
    try:
        next(CronSim(text, datetime(2000, 1, 1, tzinfo=UTC)))
    except CronSimError as exc:
        raise ValueError(f"invalid cron expression '{expression}': {exc}") from None
    except StopIteration:
        raise ValueError(f"cron expression '{expression}' never fires") from None
    return text


def check_timezone(name: str) -> str:
    """The IANA timezone name, checked.

    Raises:
        ValueError: unknown zone.
    """
    try:
        _zone(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"unknown timezone '{name}': use an IANA name such as 'UTC' or 'Europe/Berlin'"
        ) from None
    return name


def parse_duration(text: str | float) -> float:
    """Seconds from a number or a duration such as `90`, `90s`, `15m`, `1h30m`, `1d`.

    Raises:
        ValueError: the text is not a duration.
    """
    if isinstance(text, int | float):
        return float(text)
    compact = text.replace(" ", "").lower()
    try:
        return float(compact)
    except ValueError:
        pass
    matches = list(_DURATION.finditer(compact))
    if not matches or "".join(m.group(0) for m in matches) != compact:
        raise ValueError(f"'{text}' is not a duration: use seconds or e.g. 90s, 15m, 1h30m, 1d")
    return sum(float(m.group(1)) * _UNIT_S[m.group(2)] for m in matches)


def _next_cron(expression: str, timezone: str, after: datetime) -> datetime:
    zone = _zone(timezone)
    walker = CronSim(expression, after.astimezone(zone))
    for local in walker:
        moment = local.astimezone(UTC)
        # Debian-cron DST handling works on wall-clock time: from inside a repeated hour it
        # can name that hour's first occurrence, which is already past; walk on.
        if moment > after:
            return moment
    raise ValueError(f"cron expression '{expression}' never fires again")


@lru_cache(maxsize=64)
def _zone(name: str) -> ZoneInfo:
    if not name or name.startswith(("/", ".")) or ".." in name:
        raise ValueError(name)
    return ZoneInfo(name)


def _interval_us(interval_s: float) -> int:
    return max(1, round(interval_s * 1_000_000))


def _microseconds(delta: timedelta) -> int:
    return (delta.days * 86400 + delta.seconds) * 1_000_000 + delta.microseconds
