"""Job type figures: runs, failures, percentiles and the newest failure."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from jobyard.store.type_stats import summarize

T0 = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def _row(
    type_: str, state: str, seconds: float, at: int, error: str | None = None
) -> dict[str, object]:
    finished = T0 + timedelta(minutes=at)
    return {
        "type": type_,
        "state": state,
        "started_at": finished - timedelta(seconds=seconds),
        "finished_at": finished,
        "error": error,
    }


def test_summary_per_type() -> None:
    rows = [  # newest first, as the query returns them
        _row("a", "failed", 9.0, 100, "newest failure"),
        *[_row("a", "succeeded", float(s), 99 - s) for s in range(1, 21)],
        _row("a", "failed", 1.0, 10, "older failure"),
        _row("b", "succeeded", 0.5, 50),
    ]
    a, b = summarize(rows)
    assert (a.type, a.runs, a.failed) == ("a", 22, 2)
    assert a.failure_rate == 2 / 22
    assert a.p50_s == 9.5  # 1, 1, 2 … 9, 9, 10 … 20: the mean of the 11th and 12th
    assert a.p95_s is not None and 18.0 < a.p95_s <= 20.0
    assert a.last_error == "newest failure" and a.last_failure_at == T0 + timedelta(minutes=100)
    assert (b.runs, b.failed, b.p50_s, b.p95_s, b.last_failure_at) == (1, 0, 0.5, 0.5, None)
    assert summarize([]) == []
