"""Bounded work on any ICS file (issue 20, section 2): linear unfolding, expansion from the planning
range whatever the rule's start, zone rules and event rules that cannot be expanded cheaply refused,
and limits on events and occurrences, each refused in one line.

Files that took minutes or all the memory before run as a real ``esa-scheduler`` process under an
address-space limit (1 GiB) and a CPU-time limit (30 s, twenty times what they need now), so a
regression fails here instead of stalling the suite; nothing asserts on how long anything took.
"""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import icalendar
import pytest
import recurring_ical_events
from helpers import child_environment, write_schedule
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from esa_scheduler.engine.calendars import ics_bounds
from esa_scheduler.engine.calendars.ics_bounds import calendar_query
from esa_scheduler.engine.schedule.load import load_schedule
from esa_scheduler.errors import ScheduleError

UTC = timezone.utc
UTC_ZONE = ZoneInfo("UTC")
RUNNER = """
import resource, sys
resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))
resource.setrlimit(resource.RLIMIT_CPU, (30, 30))
from esa_scheduler.cli import main
sys.exit(main(sys.argv[1:]))
"""
SCHEDULE = """\
version: 1
timezone: UTC
tasks:
  - name: access-a
calendars:
  ops: {ics: ops.ics}
windows:
  - name: maintenance
    tasks: [access-a]
    calendar: ops
"""


def ics(*events: list[str], zone: list[str] | None = None) -> str:
    lines = ["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//esa-scheduler tests//EN", *(zone or [])]
    for n, event in enumerate(events):
        lines += ["BEGIN:VEVENT", f"UID:e{n}@tests", "DTSTAMP:20260101T000000Z", *event, "END:VEVENT"]
    return "\r\n".join([*lines, "END:VCALENDAR"]) + "\r\n"


def calendar(tmp: Path, text: str) -> Path:
    (tmp / "ops.ics").write_bytes(text.encode())
    return write_schedule(tmp, SCHEDULE)


def esa(tmp: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    env = child_environment({"HOME": str(tmp), "LANG": "C.UTF-8"})
    return subprocess.run(
        [sys.executable, "-c", RUNNER, *argv], cwd=tmp, env=env, capture_output=True, text=True, check=False
    )


def refusal(tmp: Path, text: str) -> str:
    """The one problem ``load_schedule`` reports for the calendar ``text``."""
    with pytest.raises(ScheduleError) as caught:
        load_schedule(calendar(tmp, text))
    assert len(caught.value.problems) == 1, caught.value.problems
    return caught.value.problems[0]


# --- unfolding and what is read -----------------------------------------------------------------


def folded(name: str, size: int) -> list[str]:
    value = f"{name}:" + "x" * size
    return [value[:75], *(" " + value[i : i + 74] for i in range(75, len(value), 74))]


def test_a_15_mb_folded_description_is_unfolded_in_linear_time(tmp_path: Path) -> None:
    """Joining each continuation to the line so far took 90 s for this file (quadratic)."""
    event = ["DTSTART:20270105T020000Z", "DURATION:PT1H", "SUMMARY:upgrade", *folded("DESCRIPTION", 15_600_000)]
    schedule = calendar(tmp_path, ics(event))
    assert os.path.getsize(tmp_path / "ops.ics") > 15_600_000
    ran = esa(tmp_path, "plan", "--schedule", str(schedule), "--at", "2027-01-05T02:30:00Z", "--json")
    assert ran.returncode == 0, ran.stderr[-2000:]
    assert '"desired": "offline"' in ran.stdout and "upgrade" in ran.stdout


def test_a_long_property_that_makes_intervals_is_refused_by_line(tmp_path: Path) -> None:
    event = ["DTSTART:20270105T020000Z", "DURATION:PT1H", *folded("SUMMARY", 70_000)]
    problem = refusal(tmp_path, ics(event))
    assert problem.endswith(f"ops.ics: line 9: SUMMARY is 70008 characters long (at most {64 * 1024} are read)")


def test_properties_that_cannot_change_an_interval_are_not_read(tmp_path: Path) -> None:
    """A malformed ATTENDEE or X- property no longer refuses the file; nothing about the events changes."""
    event = ["DTSTART:20270105T020000Z", "DURATION:PT1H", 'ATTENDEE;CN=a"b:mailto:x', "X-BROKEN;=:1"]
    schedule = calendar(tmp_path, ics(event))
    window = load_schedule(schedule).windows[0]
    assert window.events is not None
    found = window.events.events(datetime(2027, 1, 5, tzinfo=UTC), datetime(2027, 1, 6, tzinfo=UTC))
    assert [e.interval(UTC_ZONE) for e in found] == [
        (datetime(2027, 1, 5, 2, tzinfo=UTC), datetime(2027, 1, 5, 3, tzinfo=UTC))
    ]


# --- expansion from the planning range ------------------------------------------------------------


def test_an_hourly_rule_from_year_one_is_expanded_from_the_range(tmp_path: Path) -> None:
    """From DTSTART, this rule walked 17 million hours: three minutes and a gigabyte."""
    event = ["DTSTART:00010101T020000Z", "DURATION:PT10M", "RRULE:FREQ=HOURLY", "SUMMARY:probe"]
    schedule = calendar(tmp_path, ics(event))
    assert esa(tmp_path, "validate", "--schedule", str(schedule)).returncode == 0
    ran = esa(tmp_path, "plan", "--schedule", str(schedule), "--at", "2027-03-28T05:05:00Z", "--json")
    assert ran.returncode == 0, ran.stderr[-2000:]
    assert '"next_change": "2027-03-28T05:10:00Z"' in ran.stdout


def test_a_zone_that_changes_every_minute_since_1601_is_refused(tmp_path: Path) -> None:
    zone = ["BEGIN:VTIMEZONE", "TZID:Odd", "BEGIN:STANDARD", "DTSTART:16010101T000000", "RRULE:FREQ=MINUTELY"]
    zone += ["TZOFFSETFROM:+0100", "TZOFFSETTO:+0100", "END:STANDARD", "BEGIN:DAYLIGHT", "DTSTART:16010325T020000"]
    zone += ["RRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=-1SU", "TZOFFSETFROM:+0100", "TZOFFSETTO:+0200", "END:DAYLIGHT"]
    schedule = calendar(
        tmp_path, ics(["DTSTART;TZID=Odd:20270105T020000", "DURATION:PT1H"], zone=[*zone, "END:VTIMEZONE"])
    )
    ran = esa(tmp_path, "validate", "--schedule", str(schedule))
    assert ran.returncode == 2, ran.stderr[-2000:]
    assert ran.stderr.splitlines() == [
        f"{schedule}: calendars.ops.ics: {tmp_path / 'ops.ics'}: VTIMEZONE 'Odd': STANDARD RRULE FREQ=MINUTELY "
        "changes the offset more than 1000 times by 2200 (a zone changes it once or twice a year: FREQ=YEARLY)"
    ]


def test_outlook_zones_from_1601_are_expanded(tmp_path: Path) -> None:
    zone = ["BEGIN:VTIMEZONE", "TZID:Customized Time Zone", "BEGIN:STANDARD", "DTSTART:16011028T030000"]
    zone += ["RRULE:FREQ=YEARLY;BYDAY=-1SU;BYMONTH=10", "TZOFFSETFROM:+0200", "TZOFFSETTO:+0100", "END:STANDARD"]
    zone += ["BEGIN:DAYLIGHT", "DTSTART:16010325T020000", "RRULE:FREQ=YEARLY;BYDAY=-1SU;BYMONTH=3"]
    zone += ["TZOFFSETFROM:+0100", "TZOFFSETTO:+0200", "END:DAYLIGHT", "END:VTIMEZONE"]
    event = ["DTSTART;TZID=Customized Time Zone:20270705T020000", "DURATION:PT1H"]
    window = load_schedule(calendar(tmp_path, ics(event, zone=zone))).windows[0]
    assert window.events is not None
    found = window.events.events(datetime(2027, 7, 1, tzinfo=UTC), datetime(2027, 7, 9, tzinfo=UTC))
    assert [e.interval(UTC_ZONE)[0] for e in found] == [datetime(2027, 7, 5, 0, tzinfo=UTC)]


@pytest.mark.parametrize(
    ("rule", "problem"),
    [
        ("FREQ=HOURLY;BYMONTH=2;BYMONTHDAY=30", "no occurrence in 1000 of its periods (FREQ=HOURLY;"),
        ("FREQ=DAILY;BYSETPOS=2", "no occurrence in 1000 of its periods (FREQ=DAILY;BYSETPOS=2)"),
        ("FREQ=WEEKLY;COUNT=1001", "COUNT=1001 is more than 1000 (FREQ=WEEKLY;COUNT=1001)"),
    ],
)
def test_rules_that_expansion_cannot_bound_are_refused(tmp_path: Path, rule: str, problem: str) -> None:
    """A rule whose days never come walked to year 9999 at every expansion (70 million hours here)."""
    line = refusal(tmp_path, ics(["DTSTART:20270105T020000Z", "DURATION:PT1H", f"RRULE:{rule}"]))
    assert line.endswith(f"ops.ics: event UID 'e0@tests': RRULE refused: {problem}") or problem in line, line


def test_rules_that_are_rare_but_real_are_kept(tmp_path: Path) -> None:
    event = ["DTSTART:20240229T020000Z", "DURATION:PT1H", "RRULE:FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=29;COUNT=1000"]
    window = load_schedule(calendar(tmp_path, ics(event))).windows[0]
    assert window.events is not None
    found = window.events.events(datetime(2028, 1, 1, tzinfo=UTC), datetime(2028, 12, 31, tzinfo=UTC))
    assert [e.interval(UTC_ZONE)[0] for e in found] == [datetime(2028, 2, 29, 2, tzinfo=UTC)]


# --- limits ---------------------------------------------------------------------------------------


def test_a_calendar_with_more_events_than_the_limit_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ics_bounds, "MAX_EVENTS", 3)
    events = [[f"DTSTART:2027010{n}T020000Z", "DURATION:PT1H"] for n in range(1, 5)]
    assert load_schedule(calendar(tmp_path, ics(*events[:3]))).windows[0].events is not None
    assert refusal(tmp_path, ics(*events)).endswith(
        "ops.ics: 4 events, more than the 3 a calendar may have (split it, or export only the events of the coming "
        "year or two)"
    )


def test_a_calendar_with_more_lines_than_the_limit_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """40,000 EXDATE lines of one event took validate 1.6 s: lines are counted apart from events."""
    monkeypatch.setattr(ics_bounds, "MAX_LINES", 13)
    event = ["DTSTART:20270101T020000Z", "DURATION:PT1H", "RRULE:FREQ=DAILY"]
    exdates = [f"EXDATE:2027010{n}T020000Z" for n in range(2, 6)]
    assert load_schedule(calendar(tmp_path, ics([*event, *exdates[:2]]))).windows[0].events is not None
    assert refusal(tmp_path, ics([*event, *exdates])).endswith(
        "ops.ics: 15 content lines, more than the 13 a calendar may have"
    )


def test_rules_that_make_more_occurrences_than_the_limit_stop_in_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """validate looks 400 days ahead: 10 hourly rules make 96,000 occurrences there, 7 s of work."""
    from esa_scheduler import cli

    monkeypatch.setattr(ics_bounds, "MAX_RULE_OCCURRENCES", 500)
    events = [[f"DTSTART:20270101T0{n}0000Z", "DURATION:PT10M", "RRULE:FREQ=DAILY"] for n in range(2)]
    schedule = calendar(tmp_path, ics(*events))
    assert cli.main(["plan", "--schedule", str(schedule), "--at", "2027-01-10T00:00:00Z"]) == 0  # a month: 62
    capsys.readouterr()
    assert cli.main(["validate", "--schedule", str(schedule), "--at", "2027-01-10T00:00:00Z"]) == 2
    assert capsys.readouterr().err.splitlines() == [
        f"{schedule}: calendars.ops.ics: {tmp_path / 'ops.ics'}: its recurring events make more than 500 "
        "occurrences (the most one command expands: about 1 a day over the 400 days validate looks at)"
    ]


# --- the moved start changes no occurrence --------------------------------------------------------

FREQS = ["YEARLY", "MONTHLY", "WEEKLY", "DAILY", "HOURLY"]
DAYS = ["MO", "TU", "WE", "TH", "FR", "SA", "SU"]


@st.composite
def rules(draw: st.DrawFn) -> tuple[list[str], datetime]:
    """An event with a recurrence rule, and the start of a span to expand it in, after its DTSTART."""
    freq = draw(st.sampled_from(FREQS))
    parts = [f"FREQ={freq}", f"INTERVAL={draw(st.integers(1, 5))}"]
    if draw(st.booleans()) and freq != "HOURLY":
        parts.append("BYDAY=" + ",".join(draw(st.lists(st.sampled_from(DAYS), min_size=1, max_size=3, unique=True))))
    if draw(st.booleans()) and freq in ("YEARLY", "MONTHLY"):
        parts.append(f"BYMONTHDAY={draw(st.sampled_from(['1', '15', '29', '30', '31', '-1', '1,31']))}")
    if draw(st.booleans()) and freq == "YEARLY":
        parts.append(f"BYMONTH={draw(st.sampled_from(['2', '3,10', '12']))}")
    if draw(st.booleans()) and freq in ("MONTHLY", "WEEKLY") and any(p.startswith("BYDAY") for p in parts):
        parts.append(f"BYSETPOS={draw(st.sampled_from(['1', '-1']))}")
    if draw(st.booleans()):
        parts.append(f"WKST={draw(st.sampled_from(DAYS))}")
    years = {"HOURLY": 1, "DAILY": 3, "WEEKLY": 6}.get(freq, 12)
    start = datetime(2027 - years, 1, 1) + timedelta(
        days=draw(st.integers(0, 364 * years)), hours=draw(st.integers(0, 23)), minutes=draw(st.sampled_from([0, 30]))
    )
    zone = draw(st.sampled_from(["Z", "TZID=Europe/Berlin", "floating"]))
    stamp = f"{start:%Y%m%dT%H%M%S}"
    dtstart = {"Z": f"DTSTART:{stamp}Z", "floating": f"DTSTART:{stamp}"}.get(
        zone, f"DTSTART;TZID=Europe/Berlin:{stamp}"
    )
    span = datetime(2027, 1, 1, tzinfo=UTC) + timedelta(hours=draw(st.integers(0, 24 * 200)))
    return [dtstart, "DURATION:PT45M", "RRULE:" + ";".join(parts)], span


def intervals(query: object, begin: datetime, days: int) -> list[tuple[object, object]]:
    found = query.between(begin, begin + timedelta(days=days))  # type: ignore[attr-defined]
    return sorted((c.decoded("DTSTART"), c.decoded("DTEND")) for c in found)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rules())
def test_a_moved_start_expands_exactly_what_the_rule_makes(case: tuple[list[str], datetime]) -> None:
    """Against ``recurring-ical-events`` expanding the same rule from its own DTSTART."""
    event, span = case
    parsed = icalendar.Calendar.from_ical(ics(event))
    ours = calendar_query(parsed, "test")
    theirs = recurring_ical_events.of(icalendar.Calendar.from_ical(ics(event)))
    days = 2 if "FREQ=HOURLY" in event[-1] else 60
    assert intervals(ours, span, days) == intervals(theirs, span, days)
