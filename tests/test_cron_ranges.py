"""A cron range whose ends are equal (``5-5``, ``jun-jun``) means that one value, as cron reads it.

croniter 7.0.0 alone expands such a range to the whole field (``0 5-5 * * *`` fires every hour).
Each case compares the engine's next starts in a real zone with an oracle that scans the zone's
wall clock minute by minute and applies the field's meaning directly.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime, timedelta
from itertools import islice
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from helpers import iso, run_cli, utc, write_schedule

from esa_scheduler.engine.cron import CronExpr
from esa_scheduler.engine.schedule.load import load_schedule
from esa_scheduler.errors import ScheduleError

Wall = Callable[[datetime], bool]
ZONE = ZoneInfo("America/New_York")


def oracle(matches: Wall, after: datetime, count: int, tz: ZoneInfo = ZONE) -> list[datetime]:
    """The first ``count`` UTC minutes after ``after`` whose wall time in ``tz`` matches, first pass only."""
    found: list[datetime] = []
    seen: set[datetime] = set()
    minute = after.replace(second=0, microsecond=0) + timedelta(minutes=1)
    while len(found) < count:
        wall = minute.astimezone(tz).replace(tzinfo=None)
        if matches(wall) and wall not in seen:
            found.append(minute)
        seen.add(wall)
        minute += timedelta(minutes=1)
    return found


def starts(expression: str, after: datetime, count: int, tz: ZoneInfo = ZONE) -> list[datetime]:
    return list(islice(CronExpr.parse(expression).after(after, tz), count))


def cron_weekday(wall: datetime) -> int:
    """cron numbers Sunday 0 .. Saturday 6; Python numbers Monday 0 .. Sunday 6."""
    return (wall.weekday() + 1) % 7


CASES: list[tuple[str, Wall, str]] = [
    ("5-5 * * * *", lambda w: w.minute == 5, "2027-03-01T10:00"),
    ("0 5-5 * * *", lambda w: (w.hour, w.minute) == (5, 0), "2027-03-01T10:00"),
    ("0 0 5-5 * *", lambda w: (w.day, w.hour, w.minute) == (5, 0, 0), "2027-02-20T00:00"),
    ("0 0 * jun-jun *", lambda w: (w.month, w.hour, w.minute) == (6, 0, 0), "2027-05-20T00:00"),
    ("0 0 * 6-6 *", lambda w: (w.month, w.hour, w.minute) == (6, 0, 0), "2027-05-20T00:00"),
    ("0 0 * JUN-Jun *", lambda w: (w.month, w.hour, w.minute) == (6, 0, 0), "2027-05-20T00:00"),
    ("0 0 * 6-jun *", lambda w: (w.month, w.hour, w.minute) == (6, 0, 0), "2027-05-20T00:00"),
    ("0 0 * * mon-mon", lambda w: (cron_weekday(w), w.hour, w.minute) == (1, 0, 0), "2027-03-01T10:00"),
    ("0 0 * * Sun-SUN", lambda w: (cron_weekday(w), w.hour, w.minute) == (0, 0, 0), "2027-03-01T10:00"),
    ("0 0 * * 3-3", lambda w: (cron_weekday(w), w.hour, w.minute) == (3, 0, 0), "2027-03-01T10:00"),
    ("0 5-5/2 * * *", lambda w: (w.hour, w.minute) == (5, 0), "2027-03-01T10:00"),
    ("0 1,5-5,7 * * *", lambda w: w.hour in (1, 5, 7) and w.minute == 0, "2027-03-01T10:00"),
    ("10-10,40 9-9 * * *", lambda w: w.hour == 9 and w.minute in (10, 40), "2027-03-01T10:00"),
    ("0 0 1-1 jan-jan *", lambda w: (w.month, w.day, w.hour, w.minute) == (1, 1, 0, 0), "2027-12-20T00:00"),
]


@pytest.mark.parametrize(("expression", "matches", "after"), CASES, ids=[c[0] for c in CASES])
def test_equal_ends_mean_one_value(expression: str, matches: Wall, after: str) -> None:
    """The engine's next starts are exactly the oracle's, in a zone with DST (a monthly or yearly
    expression is checked on fewer starts: the oracle scans every minute in between)."""
    count = {"0 0 5-5 * *": 2, "0 0 1-1 jan-jan *": 1}.get(expression, 12)
    assert starts(expression, utc(after), count) == oracle(matches, utc(after), count)


def test_other_ranges_keep_their_meaning() -> None:
    """Only equal ends collapse: ``5-7`` and ``mon-fri`` stay ranges."""
    after = utc("2027-03-01T10:00")
    hours = starts("0 5-7 * * *", after, 6)
    assert hours == oracle(lambda w: w.hour in (5, 6, 7) and w.minute == 0, after, 6)
    weekdays = starts("0 0 * * mon-fri", after, 10)
    assert weekdays == oracle(lambda w: 1 <= cron_weekday(w) <= 5 and (w.hour, w.minute) == (0, 0), after, 10)


def test_a_fixed_single_value_hour_range_is_wall_clock_on_fall_back() -> None:
    """``30 1-1 * * *`` has a fixed hour: on New York's fall-back day it starts once, at the first 01:30."""
    expression = CronExpr.parse("30 1-1 * * *")
    assert expression.wall_clock
    fall_back_eve = utc("2027-11-06T12:00")
    observed = list(islice(expression.after(fall_back_eve, ZONE), 2))
    assert observed == oracle(lambda w: (w.hour, w.minute) == (1, 30), fall_back_eve, 2)
    assert iso(observed[0]) == iso(datetime(2027, 11, 7, 1, 30, tzinfo=ZONE))
    assert observed[1] - observed[0] == timedelta(hours=25)
    assert not CronExpr.parse("30 * * * *").wall_clock


@pytest.mark.parametrize("expression", ["0 60-60 * * *", "0 24-24 * * *", "0 0 * 13-13 *", "0 5-5/0 * * *"])
def test_out_of_range_single_values_are_still_one_line_errors(expression: str) -> None:
    with pytest.raises(ValueError, match="invalid cron") as caught:
        CronExpr.parse(expression)
    message = str(caught.value)
    assert repr(expression) in message and "\n" not in message


def test_schedule_file_error_names_the_file_and_the_expression(tmp_path: Path) -> None:
    path = write_schedule(
        tmp_path,
        """
        version: 1
        tasks: [{name: a}]
        windows:
          - {name: bad, tasks: [a], cron: "0 25-25 * * *", duration: 1h}
        """,
    )
    with pytest.raises(ScheduleError) as caught:
        load_schedule(str(path))
    assert len(caught.value.problems) == 1
    problem = caught.value.problems[0]
    assert str(path) in problem and "0 25-25 * * *" in problem and "\n" not in problem


def test_plan_next_change_of_a_single_hour_range(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Through ``plan --json``: the window opens at 05:00 Berlin the next day, not at the next hour."""
    path = write_schedule(
        tmp_path,
        """
        version: 1
        timezone: Europe/Berlin
        tasks: [{name: a}]
        windows:
          - {name: early, tasks: [a], cron: "0 5-5 * * *", duration: 30m}
        """,
    )
    code, out, err = run_cli(capsys, "plan", "--schedule", str(path), "--at", "2027-03-01T10:00:00Z", "--json")
    assert code == 0, err
    task = json.loads(out)["tasks"][0]
    assert task["desired"] == "online"
    berlin_five = datetime(2027, 3, 2, 5, 0, tzinfo=ZoneInfo("Europe/Berlin"))
    assert task["next_change"] == iso(berlin_five)
