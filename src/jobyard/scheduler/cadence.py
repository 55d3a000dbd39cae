"""`Cadence`: a leader duty that runs at most once per interval, whatever the tick rate."""

from __future__ import annotations

from datetime import datetime


class Cadence:
    """Says when a duty is due; the first call always is (a new leader acts at once)."""

    def __init__(self) -> None:
        self._last: datetime | None = None

    def due(self, now: datetime, interval_s: float) -> bool:
        """Whether `interval_s` passed since the last due moment; if so, `now` becomes it."""
        if self._last is not None and (now - self._last).total_seconds() < interval_s:
            return False
        self._last = now
        return True
