"""Next-fire computation: cron in timezones across DST, month ends, leap days; intervals."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError

from jobyard.domain.schedules import Catchup, ScheduleSpec, plan_firing
from jobyard.domain.triggers import (
    FORWARD_SCAN_LIMIT,
    Trigger,
    jitter_offset,
    normalize_cron,
    parse_duration,
)

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)  # type: ignore[arg-type,misc]


def cron(expression: str, timezone: str = "UTC") -> Trigger:
    return Trigger(normalize_cron(expression), timezone, None, utc(2000, 1, 1))


def local(moments: list[datetime], zone: ZoneInfo) -> list[str]:
    return [m.astimezone(zone).strftime("%Y-%m-%d %H:%M %Z") for m in moments]


def test_daily_cron_in_a_timezone_follows_local_wall_clock() -> None:
    times = cron("0 9 * * *", "Europe/Berlin").upcoming(utc(2026, 3, 27, 12), 4)
    # 09:00 local every day: 08:00 UTC in winter, 07:00 UTC from the spring-forward day on.
    assert [t.hour for t in times] == [8, 7, 7, 7]
    assert local(times, BERLIN)[0] == "2026-03-28 09:00 CET"
    assert local(times, BERLIN)[1] == "2026-03-29 09:00 CEST"


def test_fire_time_skipped_by_spring_forward_runs_once_just_after_the_change() -> None:
    # 2026-03-29 02:00 CET jumps to 03:00 CEST in Berlin: 02:30 does not exist that day.
    times = cron("30 2 * * *", "Europe/Berlin").upcoming(utc(2026, 3, 27, 12), 3)
    assert local(times, BERLIN) == [
        "2026-03-28 02:30 CET",
        "2026-03-29 03:00 CEST",
        "2026-03-30 02:30 CEST",
    ]


def test_fire_time_in_the_repeated_hour_runs_once() -> None:
    # 2026-10-25 03:00 CEST falls back to 02:00 CET: 02:30 happens twice, fires once.
    times = cron("30 2 * * *", "Europe/Berlin").upcoming(utc(2026, 10, 24, 12), 3)
    assert local(times, BERLIN) == [
        "2026-10-25 02:30 CEST",
        "2026-10-26 02:30 CET",
        "2026-10-27 02:30 CET",
    ]
    # Asked from inside the second 02:xx hour: the first 02:30 is past, the next is tomorrow.
    inside_second = utc(2026, 10, 25, 1, 10)  # 02:10 CET
    assert cron("30 2 * * *", "Europe/Berlin").next_after(inside_second) == utc(2026, 10, 26, 1, 30)


def test_wildcard_hour_cron_runs_in_both_occurrences_of_the_repeated_hour() -> None:
    times = cron("*/30 * * * *", "America/New_York").upcoming(utc(2026, 11, 1, 5, 0), 4)
    # 01:00 EDT, 01:30 EDT, 01:00 EST, 01:30 EST: four runs, 30 minutes apart in real time.
    assert local(times, NEW_YORK) == [
        "2026-11-01 01:30 EDT",
        "2026-11-01 01:00 EST",
        "2026-11-01 01:30 EST",
        "2026-11-01 02:00 EST",
    ]
    assert all(b - a == timedelta(minutes=30) for a, b in itertools.pairwise(times))


def test_hourly_cron_across_spring_forward_never_repeats_or_goes_back() -> None:
    times = cron("@hourly", "America/New_York").upcoming(utc(2026, 3, 8, 5, 30), 4)
    assert local(times, NEW_YORK) == [
        "2026-03-08 01:00 EST",
        "2026-03-08 03:00 EDT",
        "2026-03-08 04:00 EDT",
        "2026-03-08 05:00 EDT",
    ]


def test_month_ends() -> None:
    on_31st = cron("0 0 31 * *").upcoming(utc(2026, 1, 1), 4)
    assert [(t.month, t.day) for t in on_31st] == [(1, 31), (3, 31), (5, 31), (7, 31)]
    last_day = cron("0 0 L * *").upcoming(utc(2026, 1, 1), 3)
    assert [(t.month, t.day) for t in last_day] == [(1, 31), (2, 28), (3, 31)]
    leap_last = cron("0 0 L 2 *").upcoming(utc(2027, 3, 1), 2)
    assert [(t.year, t.day) for t in leap_last] == [(2028, 29), (2029, 28)]


def test_leap_day_schedule_waits_for_the_next_leap_year() -> None:
    times = cron("0 12 29 2 *").upcoming(utc(2026, 1, 1), 3)
    assert [t.year for t in times] == [2028, 2032, 2036]
    assert all((t.month, t.day, t.hour) == (2, 29, 12) for t in times)


def test_next_is_strictly_after_the_given_moment() -> None:
    trigger = cron("*/5 * * * *")
    assert trigger.next_after(utc(2026, 1, 1, 0, 5)) == utc(2026, 1, 1, 0, 10)
    assert trigger.next_after(utc(2026, 1, 1, 0, 4, 59, 999999)) == utc(2026, 1, 1, 0, 5)


def test_six_field_cron_has_seconds_first() -> None:
    times = cron("*/20 * * * * *").upcoming(utc(2026, 1, 1), 3)
    assert [t.second for t in times] == [20, 40, 0]


def test_interval_counts_from_its_anchor_and_skips_ahead_arithmetically() -> None:
    trigger = Trigger(None, "UTC", 90.0, utc(2026, 1, 1))
    assert trigger.next_after(utc(2026, 1, 1)) == utc(2026, 1, 1, 0, 1, 30)
    assert trigger.next_after(utc(2026, 1, 1, 0, 3)) == utc(2026, 1, 1, 0, 4, 30)
    # Before the anchor, the anchor itself is next.
    assert trigger.next_after(utc(2025, 12, 31)) == utc(2026, 1, 1)
    # A year later: no drift, still on the 90 s grid.
    far = trigger.next_after(utc(2027, 1, 1, 0, 0, 1))
    assert (far - utc(2026, 1, 1)).total_seconds() % 90 == 0


def test_interval_ignores_dst() -> None:
    trigger = Trigger(None, "Europe/Berlin", 3600.0, utc(2026, 3, 29, 0))
    times = trigger.upcoming(utc(2026, 3, 29, 0), 3)
    assert [b - a for a, b in itertools.pairwise(times)] == [timedelta(hours=1)] * 2


def test_due_between_keeps_the_newest_and_counts_all() -> None:
    interval = Trigger(None, "UTC", 60.0, utc(2026, 1, 1))
    kept, total = interval.due_between(utc(2026, 1, 1, 0, 1), utc(2026, 1, 1, 1, 0), keep=3)
    assert total == 60
    assert kept == [utc(2026, 1, 1, 0, 58), utc(2026, 1, 1, 0, 59), utc(2026, 1, 1, 1, 0)]
    minutely = cron("* * * * *")
    kept, total = minutely.due_between(utc(2026, 1, 1, 0, 1), utc(2026, 1, 1, 1, 0), keep=3)
    assert total == 60 and kept[-1] == utc(2026, 1, 1, 1, 0)
    assert minutely.due_between(utc(2026, 1, 1, 2), utc(2026, 1, 1, 1), keep=3) == ([], 0)


def test_due_between_far_behind_walks_back_from_now() -> None:
    minutely = cron("* * * * *")
    start, now = utc(2026, 1, 1), utc(2026, 3, 1, 0, 0, 30)
    kept, total = minutely.due_between(start, now, keep=3)
    assert kept == [utc(2026, 2, 28, 23, 58), utc(2026, 2, 28, 23, 59), utc(2026, 3, 1)]
    assert total > FORWARD_SCAN_LIMIT


def test_catchup_policies() -> None:
    now = utc(2026, 1, 1, 12)
    due = [now - timedelta(hours=h) for h in (3, 2, 1, 0)]
    grace = timedelta(minutes=1)
    skip = plan_firing(due, 4, catchup=Catchup.SKIP_MISSED, now=now, grace=grace)
    assert skip.fires == [now] and skip.skipped == 3
    once = plan_firing(due[:3], 3, catchup=Catchup.RUN_ONCE, now=now, grace=grace)
    assert once.fires == [due[2]] and once.skipped == 2
    late_only = plan_firing(due[:3], 3, catchup=Catchup.SKIP_MISSED, now=now, grace=grace)
    assert late_only.fires == [] and late_only.skipped == 3
    every = plan_firing(due, 40, catchup=Catchup.RUN_ALL, now=now, grace=grace)
    assert every.fires == due and every.skipped == 36


def test_jitter_is_deterministic_and_bounded() -> None:
    planned = utc(2026, 1, 1)
    offsets = {jitter_offset(f"s{i}", planned, 30.0) for i in range(50)}
    assert all(timedelta(0) <= o < timedelta(seconds=30) for o in offsets)
    assert len(offsets) > 40
    assert jitter_offset("s1", planned, 30.0) == jitter_offset("s1", planned, 30.0)
    assert jitter_offset("s1", planned, 0.0) == timedelta(0)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("90", 90.0), ("90s", 90.0), ("15m", 900.0), ("1h30m", 5400.0), ("1d", 86400.0), (5, 5.0)],
)
def test_parse_duration(text: str | int, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "ten minutes", "5x", "1h-2m"])
def test_parse_duration_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="not a duration"):
        parse_duration(text)


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"cron": "61 * * * *"}, "invalid cron expression '61 \\* \\* \\* \\*': Bad minute"),
        ({"cron": "* * *"}, "has 3 fields"),
        ({"cron": "@sometimes"}, "unknown cron macro"),
        ({"cron": "0 0 30 2 *"}, "invalid cron expression"),
        ({"cron": "0 * * * *", "timezone": "Mars/Olympus"}, "unknown timezone 'Mars/Olympus'"),
        ({"interval_s": 0.5}, "at least 1 second"),
        ({"interval_s": "soon"}, "not a duration"),
        ({}, "exactly one of 'cron' or 'interval_s'"),
        ({"cron": "0 * * * *", "interval_s": 60}, "exactly one of"),
        ({"cron": "0 * * * *", "overlap": "sometimes"}, "overlap"),
        ({"cron": "0 * * * *", "name": "has space"}, "name"),
    ],
)
def test_spec_rejects_with_the_field(values: dict[str, object], message: str) -> None:
    body = {"name": "nightly", "type": "t.echo", **values}
    with pytest.raises(ValidationError, match=message):
        ScheduleSpec.model_validate(body)


def test_spec_accepts_durations_and_macros() -> None:
    spec = ScheduleSpec.model_validate(
        {"name": "n", "type": "t.echo", "interval_s": "15m", "jitter_s": "30s"}
    )
    assert spec.interval_s == 900.0 and spec.jitter_s == 30.0
    daily = ScheduleSpec.model_validate({"name": "d", "type": "t.echo", "cron": " @daily "})
    assert daily.cron == "0 0 * * *"
