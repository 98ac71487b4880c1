"""``L`` and ``#`` cron expressions against an independent calendar oracle.

For each expression the oracle walks every day of a year with Python's ``calendar`` module and
lists the days on which a window starts. The scheduler side is observed only through
``plan --json``: starting before the year, we follow ``next_change`` from one start to its end and
on to the next start, and compare the sequence of start instants with the oracle's.
"""

from __future__ import annotations

import calendar
import json
from collections.abc import Callable
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from helpers import UTC, iso, parse_instant, run_cli, write_schedule

# --------------------------------------------------------------------------- oracle


def cron_dow_to_python(cron_dow: int) -> int:
    """cron: 0 = Sunday .. 6 = Saturday (7 = Sunday); Python: 0 = Monday .. 6 = Sunday."""
    return (cron_dow - 1) % 7


def last_day_of_month(day: date) -> bool:
    return day.day == calendar.monthrange(day.year, day.month)[1]


def nth_weekday(cron_dow: int, nth: int) -> Callable[[date], bool]:
    def predicate(day: date) -> bool:
        weekdays = [
            d
            for d in range(1, calendar.monthrange(day.year, day.month)[1] + 1)
            if calendar.weekday(day.year, day.month, d) == cron_dow_to_python(cron_dow)
        ]
        return len(weekdays) >= nth and day.day == weekdays[nth - 1]

    return predicate


def last_weekday(cron_dow: int) -> Callable[[date], bool]:
    def predicate(day: date) -> bool:
        weekdays = [
            d
            for d in range(1, calendar.monthrange(day.year, day.month)[1] + 1)
            if calendar.weekday(day.year, day.month, d) == cron_dow_to_python(cron_dow)
        ]
        return day.day == weekdays[-1]

    return predicate


def in_month(month: int, inner: Callable[[date], bool]) -> Callable[[date], bool]:
    return lambda day: day.month == month and inner(day)


def oracle_starts(year: int, predicate: Callable[[date], bool], at: time, zone: str) -> list[datetime]:
    tz = ZoneInfo(zone)
    starts = []
    day = date(year, 1, 1)
    while day.year == year:
        if predicate(day):
            # fold=0: the first pass of a repeated wall-clock time
            starts.append(datetime.combine(day, at, tzinfo=tz).astimezone(UTC))
        day += timedelta(days=1)
    return starts


# --------------------------------------------------------------------------- observed via plan --json


def run_plan(capsys: pytest.CaptureFixture[str], schedule: Path, at: datetime) -> dict[str, Any]:
    code, out, err = run_cli(capsys, "plan", "--schedule", str(schedule), "--at", iso(at), "--json")
    assert code == 0, err
    tasks = json.loads(out)["tasks"]
    assert len(tasks) == 1
    entry: dict[str, Any] = tasks[0]
    return entry


def observed_starts(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, cron: str, zone: str, year: int
) -> list[datetime]:
    write_schedule(
        tmp_path,
        f"""\
        version: 1
        timezone: {zone}
        tasks:
          - name: t
        windows:
          - name: w
            tasks: [t]
            cron: "{cron}"
            duration: 1h
        """,
    )
    tz = ZoneInfo(zone)
    begin = datetime(year, 1, 1, tzinfo=tz).astimezone(UTC)
    finish = datetime(year + 1, 1, 1, tzinfo=tz).astimezone(UTC)
    entry = run_plan(capsys, tmp_path, begin)
    assert entry["desired"] == "online"
    starts: list[datetime] = []
    for _ in range(400):
        if entry["next_change"] is None:
            break
        start = parse_instant(entry["next_change"])
        if start >= finish:
            break
        starts.append(start)
        entry = run_plan(capsys, tmp_path, start)
        assert (entry["desired"], entry["source"]) == ("offline", "window:w"), start
        end = parse_instant(entry["next_change"])
        assert end == start + timedelta(hours=1), start
        entry = run_plan(capsys, tmp_path, end)
        assert entry["desired"] == "online", end
    return starts


# --------------------------------------------------------------------------- cases

CASES: list[tuple[str, str, int, Callable[[date], bool], time]] = [
    ("0 12 L * *", "UTC", 2027, last_day_of_month, time(12)),
    ("0 12 L * *", "Europe/Berlin", 2028, last_day_of_month, time(12)),
    ("0 8 L * *", "Australia/Sydney", 2027, last_day_of_month, time(8)),
    # 2027-10-31 is the Berlin fall-back day: 02:30 repeats, only the first pass starts
    ("30 2 L * *", "Europe/Berlin", 2027, last_day_of_month, time(2, 30)),
    ("0 12 L 2 *", "UTC", 2028, in_month(2, last_day_of_month), time(12)),
    ("0 12 * * 5#2", "Europe/Berlin", 2027, nth_weekday(5, 2), time(12)),
    ("0 12 * * 1#1", "America/New_York", 2028, nth_weekday(1, 1), time(12)),
    ("0 12 * * 0#5", "UTC", 2027, nth_weekday(0, 5), time(12)),
    ("0 9 * * 3#4", "Australia/Lord_Howe", 2027, nth_weekday(3, 4), time(9)),
    ("0 12 * * L5", "Europe/Berlin", 2027, last_weekday(5), time(12)),
    ("0 12 * * L0", "UTC", 2028, last_weekday(0), time(12)),
    # last Sunday at 02:30 in Berlin: hits the spring-forward gap (2027-03-28, starts at
    # 03:00 CEST) and the fall-back fold (2027-10-31, first pass only)
    ("30 2 * * L0", "Europe/Berlin", 2027, last_weekday(0), time(2, 30)),
]


@pytest.mark.parametrize(
    ("cron", "zone", "year", "predicate", "at"),
    CASES,
    ids=[f"{c[0]}|{c[1]}|{c[2]}" for c in CASES],
)
def test_starts_match_calendar_oracle(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    cron: str,
    zone: str,
    year: int,
    predicate: Callable[[date], bool],
    at: time,
) -> None:
    expected = oracle_starts(year, predicate, at, zone)
    if cron == "30 2 * * L0" and zone == "Europe/Berlin":
        # 02:30 does not exist on 2027-03-28: the start is the first instant after the gap
        gap_day = datetime(2027, 3, 28, 1, 0, tzinfo=UTC)
        expected = [gap_day if s.date() == gap_day.date() else s for s in expected]
    assert expected, "oracle found no day: the case is useless"
    observed = observed_starts(capsys, tmp_path, cron, zone, year)
    assert [s.isoformat() for s in observed] == [s.isoformat() for s in expected]


def test_oracle_self_check() -> None:
    # a few facts checked by hand against a printed calendar
    assert nth_weekday(5, 2)(date(2027, 1, 8))  # second Friday of January 2027
    assert last_weekday(5)(date(2027, 4, 30))  # last Friday of April 2027
    assert last_weekday(0)(date(2027, 10, 31))  # last Sunday of October 2027
    assert last_day_of_month(date(2028, 2, 29))
    assert not last_day_of_month(date(2027, 2, 28 - 1))
    assert [d for d in range(1, 32) if nth_weekday(0, 5)(date(2027, 1, d))] == [31]
