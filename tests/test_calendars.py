"""Calendars (issue 10): country holidays and workdays, date sets, ICS files, through real files.

Schedules and ICS files are written to disk and read by the real loader; states come from
``plan --json`` or the window engine at real instants in real zones.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import zipfile
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from helpers import child_environment, parse_instant, run_cli, utc, write_schedule

from esa_scheduler.engine.diagnostics import schedule_warnings
from esa_scheduler.engine.schedule.load import load_schedule
from esa_scheduler.engine.windows import Timeline

ROOT = Path(__file__).resolve().parent.parent

CN_OFFICE = """
version: 1
timezone: Asia/Shanghai
calendars:
  cn-workdays: {country: CN, kind: workdays}
  cn-holidays: {country: CN}
tasks:
  - name: office
  - name: daily
windows:
  - name: office-hours
    tasks: [office]
    cron: "0 9 * * *"
    duration: 9h
    only_on: [cn-workdays]
  - name: daily-job
    tasks: [daily]
    cron: "0 9 * * *"
    duration: 1h
    skip: [cn-holidays]
"""

OPS_ICS = """\
BEGIN:VCALENDAR
VERSION:2.0
PRODID:-//esa-scheduler tests//EN
BEGIN:VEVENT
UID:weekly@ops
SUMMARY:ESA maintenance
DTSTART;TZID=Europe/Berlin:20270321T020000
DTEND;TZID=Europe/Berlin:20270321T040000
RRULE:FREQ=WEEKLY;COUNT=6
EXDATE;TZID=Europe/Berlin:20270404T020000
END:VEVENT
BEGIN:VEVENT
UID:weekly@ops
RECURRENCE-ID;TZID=Europe/Berlin:20270411T020000
SUMMARY:ESA maintenance (moved)
DTSTART;TZID=Europe/Berlin:20270412T220000
DTEND;TZID=Europe/Berlin:20270413T010000
END:VEVENT
BEGIN:VEVENT
UID:weekly@ops
RECURRENCE-ID;TZID=Europe/Berlin:20270418T020000
SUMMARY:ESA maintenance
DTSTART;TZID=Europe/Berlin:20270418T020000
DTEND;TZID=Europe/Berlin:20270418T040000
STATUS:CANCELLED
END:VEVENT
BEGIN:VEVENT
UID:autumn@ops
SUMMARY:ESA autumn
DTSTART;TZID=Europe/Berlin:20271024T020000
DTEND;TZID=Europe/Berlin:20271024T040000
RRULE:FREQ=WEEKLY;COUNT=2
END:VEVENT
BEGIN:VEVENT
UID:allday@ops
SUMMARY:ESA freeze day
DTSTART;VALUE=DATE:20270501
DTEND;VALUE=DATE:20270503
END:VEVENT
BEGIN:VEVENT
UID:floating@ops
SUMMARY:ESA floating
DTSTART:20270601T100000
DURATION:PT1H30M
END:VEVENT
BEGIN:VEVENT
UID:lunch@ops
SUMMARY:Team lunch
DTSTART:20270602T100000Z
DTEND:20270602T110000Z
END:VEVENT
END:VCALENDAR
"""

ICS_WINDOW = """
version: 1
timezone: Europe/Berlin
calendars:
  ops-maintenance: {ics: calendars/ops.ics}
tasks:
  - name: a
windows:
  - name: maint
    tasks: [a]
    calendar: ops-maintenance
    summary: "ESA*"
"""


def write_ics(folder: Path, text: str = OPS_ICS, name: str = "calendars/ops.ics") -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text.replace("\n", "\r\n"), encoding="utf-8")
    return path


def plan_entry(capsys: pytest.CaptureFixture[str], schedule: Path, task: str, at: datetime) -> dict[str, object]:
    code, out, err = run_cli(
        capsys, "plan", "--schedule", str(schedule), "--at", at.strftime("%Y-%m-%dT%H:%M:%SZ"), "--json"
    )
    assert code == 0, err
    document = json.loads(out)
    assert set(document) == {"at", "tasks"}
    entry: dict[str, object] = next(t for t in document["tasks"] if t["name"] == task)
    assert set(entry) == {"name", "site_id", "desired", "source", "matches", "next_change"}
    return entry


def desired(
    capsys: pytest.CaptureFixture[str], schedule: Path, task: str, at: datetime
) -> tuple[object, datetime | None]:
    entry = plan_entry(capsys, schedule, task, at)
    change = entry["next_change"]
    return entry["desired"], parse_instant(str(change)) if change is not None else None


def intervals(schedule: Path, begin: datetime, end: datetime, window: int = 0) -> list[tuple[str, str]]:
    loaded = load_schedule(schedule)
    timeline = Timeline(loaded.windows[window], begin, end)
    return [
        (a.strftime("%Y-%m-%dT%H:%MZ"), b.strftime("%Y-%m-%dT%H:%MZ"))
        for a, b in timeline.intervals_between(begin, end)
    ]


def validate(capsys: pytest.CaptureFixture[str], schedule: Path) -> tuple[int, list[str]]:
    """``validate``, its warnings looking ahead from a pinned instant (not the real clock)."""
    code, out, err = run_cli(capsys, "validate", "--schedule", str(schedule), "--at", "2027-01-10T12:00:00Z")
    assert "Traceback" not in out + err
    return code, [line for line in (out + err).splitlines() if line.strip()]


# --------------------------------------------------------------------------- China: workdays and holidays


@pytest.mark.parametrize(
    ("at", "expected"),
    [
        ("2026-02-14T02:00", "offline"),  # Saturday, an official make-up workday
        ("2026-01-04T02:00", "offline"),  # Sunday, an official make-up workday
        ("2026-02-13T02:00", "offline"),  # an ordinary Friday
        ("2026-02-17T02:00", "online"),  # Tuesday in the Spring Festival holiday
        ("2026-10-06T02:00", "online"),  # Tuesday, a substituted day off of National Day
        ("2026-02-21T02:00", "online"),  # an ordinary Saturday
    ],
)
def test_only_on_cn_workdays(tmp_path: Path, capsys: pytest.CaptureFixture[str], at: str, expected: str) -> None:
    schedule = write_schedule(tmp_path, CN_OFFICE)
    assert desired(capsys, schedule, "office", utc(at))[0] == expected


def test_next_change_lands_on_calendar_edges(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    schedule = write_schedule(tmp_path, CN_OFFICE)
    # Friday evening: the next start is the Saturday workday, 09:00 CST = 01:00Z
    assert desired(capsys, schedule, "office", utc("2026-02-13T10:00")) == ("online", utc("2026-02-14T01:00"))
    # after it: Sunday, five days off (16th to 20th), a weekend and the 23rd (substituted) pass by
    assert desired(capsys, schedule, "office", utc("2026-02-14T10:00")) == ("online", utc("2026-02-24T01:00"))
    # cn-holidays: 1 to 3 October do not happen; Sunday the 4th is not a public holiday
    assert desired(capsys, schedule, "daily", utc("2026-09-30T01:30")) == ("offline", utc("2026-09-30T02:00"))
    assert desired(capsys, schedule, "daily", utc("2026-09-30T02:00")) == ("online", utc("2026-10-04T01:00"))


def test_skip_cn_holidays_removes_national_day(tmp_path: Path) -> None:
    schedule = write_schedule(tmp_path, CN_OFFICE)
    spans = intervals(schedule, utc("2026-09-29T00:00"), utc("2026-10-05T00:00"), window=1)
    assert spans == [
        ("2026-09-29T01:00Z", "2026-09-29T02:00Z"),
        ("2026-09-30T01:00Z", "2026-09-30T02:00Z"),
        ("2026-10-04T01:00Z", "2026-10-04T02:00Z"),
    ]


def test_operator_patches_a_country_calendar(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    patched = CN_OFFICE.replace(
        "cn-workdays: {country: CN, kind: workdays}",
        "cn-workdays: {country: CN, kind: workdays, add_workdays: [2027-02-20],"
        ' add_holidays: ["2027-03-03..2027-03-04"]}',
    ).replace("cn-holidays: {country: CN}", "cn-holidays: {country: CN, remove: [2026-10-01]}")
    schedule = write_schedule(tmp_path, patched)
    assert desired(capsys, schedule, "office", utc("2027-02-20T02:00"))[0] == "offline"  # Saturday patched in
    assert desired(capsys, schedule, "office", utc("2027-03-03T02:00"))[0] == "online"  # Wednesday patched out
    assert desired(capsys, schedule, "office", utc("2027-03-05T02:00"))[0] == "offline"
    assert desired(capsys, schedule, "daily", utc("2026-10-01T01:30"))[0] == "offline"  # no longer skipped
    assert desired(capsys, schedule, "daily", utc("2026-10-02T01:30"))[0] == "online"


def test_subdivision_holidays(tmp_path: Path) -> None:
    schedule = write_schedule(
        tmp_path,
        """
        version: 1
        timezone: Europe/Berlin
        calendars:
          de-be-holidays: {country: DE, subdiv: be}
          de-holidays: {country: DE}
        tasks:
          - name: a
        windows:
          - name: berlin
            tasks: [a]
            cron: "0 12 * * *"
            duration: 1h
            skip: [de-be-holidays]
          - name: federal
            tasks: [a]
            cron: "0 12 * * *"
            duration: 1h
            skip: [de-holidays]
        """,
    )
    # International Women's Day is a holiday in Berlin only (2027-03-08 12:00 CET = 11:00Z)
    assert intervals(schedule, utc("2027-03-08T00:00"), utc("2027-03-09T00:00"), window=0) == []
    assert intervals(schedule, utc("2027-03-08T00:00"), utc("2027-03-09T00:00"), window=1) == [
        ("2027-03-08T11:00Z", "2027-03-08T12:00Z")
    ]


def test_date_set_calendar(tmp_path: Path) -> None:
    schedule = write_schedule(
        tmp_path,
        """
        version: 1
        timezone: Europe/Berlin
        calendars:
          year-end-freeze:
            dates: [2026-12-24, "2026-12-28..2027-01-03"]
        tasks:
          - name: a
        windows:
          - name: nightly
            tasks: [a]
            cron: "30 2 * * *"
            duration: 1h
            skip: [year-end-freeze]
          - name: freeze
            tasks: [a]
            cron: "0 0 * * *"
            duration: 1d
            only_on: [year-end-freeze]
        """,
    )
    starts = [a for a, _ in intervals(schedule, utc("2026-12-23T00:00"), utc("2027-01-05T00:00"), window=0)]
    assert starts == [f"{day}T01:30Z" for day in ("2026-12-23", "2026-12-25", "2026-12-26", "2026-12-27", "2027-01-04")]
    assert intervals(schedule, utc("2026-12-20T00:00"), utc("2027-01-10T00:00"), window=1) == [
        ("2026-12-23T23:00Z", "2026-12-24T23:00Z"),
        ("2026-12-27T23:00Z", "2027-01-03T23:00Z"),
    ]


# --------------------------------------------------------------------------- ICS calendars


def test_ics_events_are_the_window_occurrences_across_dst(tmp_path: Path) -> None:
    write_ics(tmp_path)
    schedule = write_schedule(tmp_path, ICS_WINDOW)
    assert intervals(schedule, utc("2027-01-01T00:00"), utc("2028-01-01T00:00")) == [
        ("2027-03-21T01:00Z", "2027-03-21T03:00Z"),  # 02:00-04:00 CET
        ("2027-03-28T01:00Z", "2027-03-28T02:00Z"),  # 02:00 does not exist: 03:00 CEST, to 04:00 CEST
        # 4 April: EXDATE; 11 April moved to the 12th 22:00 CEST until 01:00 on the 13th
        ("2027-04-12T20:00Z", "2027-04-12T23:00Z"),
        # 18 April: cancelled
        ("2027-04-25T00:00Z", "2027-04-25T02:00Z"),  # CEST
        ("2027-04-30T22:00Z", "2027-05-02T22:00Z"),  # all-day 1 and 2 May, Berlin midnight to midnight
        ("2027-06-01T08:00Z", "2027-06-01T09:30Z"),  # floating 10:00 in the window's zone, DURATION
        ("2027-10-24T00:00Z", "2027-10-24T02:00Z"),  # CEST
        ("2027-10-31T00:00Z", "2027-10-31T03:00Z"),  # 02:00 CEST (first pass) to 04:00 CET: 3 real hours
    ]


def test_floating_and_all_day_events_follow_the_window_zone(tmp_path: Path) -> None:
    write_ics(tmp_path)
    schedule = write_schedule(tmp_path, ICS_WINDOW + "    timezone: Asia/Shanghai\n")
    spans = intervals(schedule, utc("2027-04-30T00:00"), utc("2027-06-02T00:00"))
    assert spans == [("2027-04-30T16:00Z", "2027-05-02T16:00Z"), ("2027-06-01T02:00Z", "2027-06-01T03:30Z")]


def test_plan_names_the_ics_event(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_ics(tmp_path)
    schedule = write_schedule(tmp_path, ICS_WINDOW)
    entry = plan_entry(capsys, schedule, "a", utc("2027-04-12T21:00"))
    assert entry["desired"] == "offline"
    assert entry["source"] == "window:maint"
    assert entry["matches"] == ['window:maint: "ESA maintenance (moved)" (uid weekly@ops)']
    assert entry["next_change"] == "2027-04-12T23:00:00Z"
    # next_change from before the cancelled instance goes straight to the 25th
    assert desired(capsys, schedule, "a", utc("2027-04-13T00:00")) == ("online", utc("2027-04-25T00:00"))


def test_summary_glob_keeps_matching_events_only(tmp_path: Path) -> None:
    write_ics(tmp_path)
    schedule = write_schedule(tmp_path, ICS_WINDOW.replace('summary: "ESA*"', 'summary: "Team *"'))
    assert intervals(schedule, utc("2027-01-01T00:00"), utc("2028-01-01T00:00")) == [
        ("2027-06-02T10:00Z", "2027-06-02T11:00Z")
    ]


def test_ics_calendar_as_a_date_filter(tmp_path: Path) -> None:
    write_ics(tmp_path)
    schedule = write_schedule(
        tmp_path,
        """
        version: 1
        timezone: Europe/Berlin
        calendars:
          ops: {ics: calendars/ops.ics}
        tasks:
          - name: a
        windows:
          - name: noon
            tasks: [a]
            cron: "0 12 * * *"
            duration: 1h
            skip: [ops]
        """,
    )
    days = [a[:10] for a, _ in intervals(schedule, utc("2027-04-10T00:00"), utc("2027-05-05T00:00"))]
    # the moved event touches the 12th and the 13th (it ends at 01:00); the 18th was cancelled; the
    # all-day event covers 1 and 2 May (its end date is exclusive)
    missing = {"2027-04-12", "2027-04-13", "2027-04-25", "2027-05-01", "2027-05-02"}
    expected = [(utc("2027-04-10T00:00") + timedelta(days=n)).strftime("%Y-%m-%d") for n in range(25)]
    assert days == [d for d in expected if d not in missing]


def test_ics_file_with_a_byte_order_mark(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Some calendar apps export UTF-8 with a BOM; it is not part of BEGIN:VCALENDAR."""
    write_ics(tmp_path, "\ufeff" + OPS_ICS)
    schedule = write_schedule(tmp_path, ICS_WINDOW)
    assert validate(capsys, schedule)[0] == 0
    assert intervals(schedule, utc("2027-06-01T00:00"), utc("2027-06-02T00:00")) == [
        ("2027-06-01T08:00Z", "2027-06-01T09:30Z")
    ]


def event_spans(schedule: Path, begin: datetime, end: datetime) -> list[tuple[str, str, str]]:
    """Each expanded event of the first window's calendar as (UID, start, end), in UTC, sorted."""
    window = load_schedule(schedule).windows[0]
    assert window.events is not None
    spans = [(e.uid, *e.interval(window.tz)) for e in window.events.events(begin, end)]
    return sorted((uid, a.strftime("%Y-%m-%dT%H:%MZ"), b.strftime("%Y-%m-%dT%H:%MZ")) for uid, a, b in spans)


DURATION_ICS = """\
BEGIN:VCALENDAR
VERSION:2.0
PRODID:-//esa-scheduler tests//EN
BEGIN:VEVENT
UID:spring
DTSTART{form}:20270328T013000{z}
DURATION:PT2H
END:VEVENT
BEGIN:VEVENT
UID:autumn
DTSTART{form}:20271031T013000{z}
DURATION:PT2H
END:VEVENT
BEGIN:VEVENT
UID:autumn-weekly
DTSTART{form}:20271024T013000{z}
DURATION:PT2H
RRULE:FREQ=WEEKLY;COUNT=2
END:VEVENT
BEGIN:VEVENT
UID:day
DTSTART{form}:20270327T100000{z}
DURATION:P1D
END:VEVENT
BEGIN:VEVENT
UID:24h
DTSTART{form}:20270327T100000{z}
DURATION:PT24H
END:VEVENT
BEGIN:VEVENT
UID:day-and-2h
DTSTART{form}:20271030T100000{z}
DURATION:P1DT2H
END:VEVENT
BEGIN:VEVENT
UID:week
DTSTART{form}:20271025T100000{z}
DURATION:P1W
END:VEVENT
BEGIN:VEVENT
UID:period
DTSTART{form}:20270105T100000{z}
DURATION:PT1H
RDATE;VALUE=PERIOD{form}:20270110T100000{z}/20270110T130000{z}
END:VEVENT
END:VCALENDAR
"""

# Berlin wall clock (a TZID, or floating in a Berlin window): hours are elapsed time, days and weeks calendar days
BERLIN_DURATIONS = [
    ("24h", "2027-03-27T09:00Z", "2027-03-28T09:00Z"),  # 24 real hours: 11:00 CEST
    ("autumn", "2027-10-30T23:30Z", "2027-10-31T01:30Z"),  # 01:30 CEST + 2 real hours (was 3)
    ("autumn-weekly", "2027-10-23T23:30Z", "2027-10-24T01:30Z"),
    ("autumn-weekly", "2027-10-30T23:30Z", "2027-10-31T01:30Z"),
    ("day", "2027-03-27T09:00Z", "2027-03-28T08:00Z"),  # 10:00 CET to 10:00 CEST the next day: 23 hours
    ("day-and-2h", "2027-10-30T08:00Z", "2027-10-31T11:00Z"),  # to 10:00 CET the next day, then 2 hours
    ("period", "2027-01-05T09:00Z", "2027-01-05T10:00Z"),
    ("period", "2027-01-10T09:00Z", "2027-01-10T12:00Z"),  # an RDATE period keeps its own end
    ("spring", "2027-03-28T00:30Z", "2027-03-28T02:30Z"),  # 01:30 CET + 2 real hours (was 1)
    ("week", "2027-10-25T08:00Z", "2027-11-01T09:00Z"),  # Monday 10:00 CEST to Monday 10:00 CET
]
UTC_DURATIONS = [
    ("24h", "2027-03-27T10:00Z", "2027-03-28T10:00Z"),
    ("autumn", "2027-10-31T01:30Z", "2027-10-31T03:30Z"),
    ("autumn-weekly", "2027-10-24T01:30Z", "2027-10-24T03:30Z"),
    ("autumn-weekly", "2027-10-31T01:30Z", "2027-10-31T03:30Z"),
    ("day", "2027-03-27T10:00Z", "2027-03-28T10:00Z"),
    ("day-and-2h", "2027-10-30T10:00Z", "2027-10-31T12:00Z"),
    ("period", "2027-01-05T10:00Z", "2027-01-05T11:00Z"),
    ("period", "2027-01-10T10:00Z", "2027-01-10T13:00Z"),
    ("spring", "2027-03-28T01:30Z", "2027-03-28T03:30Z"),
    ("week", "2027-10-25T10:00Z", "2027-11-01T10:00Z"),
]


@pytest.mark.parametrize(
    ("form", "z", "expected"),
    [(";TZID=Europe/Berlin", "", BERLIN_DURATIONS), ("", "", BERLIN_DURATIONS), ("", "Z", UTC_DURATIONS)],
    ids=["tzid", "floating", "utc"],
)
def test_duration_hours_are_elapsed_and_days_are_calendar_days(
    tmp_path: Path, form: str, z: str, expected: list[tuple[str, str, str]]
) -> None:
    """RFC 5545 3.3.6: dur-time is exact time, dur-day and dur-week nominal (across both 2027 Berlin DST changes)."""
    write_ics(tmp_path, DURATION_ICS.format(form=form, z=z))
    schedule = write_schedule(tmp_path, ICS_WINDOW.replace('summary: "ESA*"', "timezone: Europe/Berlin"))
    assert event_spans(schedule, utc("2027-01-01T00:00"), utc("2028-01-01T00:00")) == expected


def test_floating_times_in_a_dst_gap_or_fold_read_like_tzid_times(tmp_path: Path) -> None:
    """RFC 5545 3.3.5: a time skipped by a DST gap has the offset before the gap; a repeated time is its first pass."""
    events = "".join(
        f"BEGIN:VEVENT\nUID:{uid}\nDTSTART{form}:{start}\nDTEND{form}:{end}\nEND:VEVENT\n"
        for form in ("", ";TZID=Europe/Berlin")
        for uid, start, end in (
            (f"gap{form[:5]}", "20270328T023000", "20270328T043000"),
            (f"fold{form[:5]}", "20271031T023000", "20271031T033000"),
        )
    )
    write_ics(tmp_path, f"BEGIN:VCALENDAR\nVERSION:2.0\nPRODID:-//t//EN\n{events}END:VCALENDAR\n")
    schedule = write_schedule(tmp_path, ICS_WINDOW.replace('summary: "ESA*"', "timezone: Europe/Berlin"))
    assert event_spans(schedule, utc("2027-01-01T00:00"), utc("2028-01-01T00:00")) == [
        ("fold", "2027-10-31T00:30Z", "2027-10-31T02:30Z"),  # 02:30 CEST to 03:30 CET
        ("fold;TZID", "2027-10-31T00:30Z", "2027-10-31T02:30Z"),
        ("gap", "2027-03-28T01:30Z", "2027-03-28T02:30Z"),  # 02:30 "CET" (was 03:00 CEST, 01:00Z) to 04:30 CEST
        ("gap;TZID", "2027-03-28T01:30Z", "2027-03-28T02:30Z"),
    ]


# --------------------------------------------------------------------------- validation


BASE = """
version: 1
timezone: Europe/Berlin
calendars:
{calendars}
tasks:
  - name: a
windows:
  - name: w
    tasks: [a]
{window}
"""
CRON = '    cron: "0 12 * * *"\n    duration: 1h\n'


def problems_for(tmp_path: Path, capsys: pytest.CaptureFixture[str], calendars: str, window: str = CRON) -> list[str]:
    indented = textwrap.indent(textwrap.dedent(calendars).strip(), "  ")
    schedule = write_schedule(tmp_path, BASE.format(calendars=indented, window=window))
    code, lines = validate(capsys, schedule)
    assert code == 2, lines
    return lines


def only_line(lines: list[str], *needles: str) -> str:
    found = [line for line in lines if all(n in line for n in needles)]
    assert len(found) == 1, "\n".join(lines)
    return found[0]


@pytest.mark.parametrize(
    ("calendars", "window", "needles"),
    [
        (
            "cn-holidays: {country: CN}",
            CRON + "    skip: [cn-holiday]\n",
            ("windows[0] (w).skip[0]: unknown calendar 'cn-holiday' (did you mean 'cn-holidays'?)",),
        ),
        (
            "cn-holidays: {country: CN}",
            CRON + "    only_on: [cn-holidays, nope]\n",
            ("windows[0] (w).only_on[1]: unknown calendar 'nope'",),
        ),
        ("x: {country: CNN}", CRON, ("calendars.x.country: unknown country 'CNN' (close matches: CN, PCN, CHN",)),
        (
            "x: {country: DE, subdiv: BX}",
            CRON,
            ("calendars.x.subdiv: unknown DE subdivision 'BX' (close matches:", "BE"),
        ),
        (
            "x: {country: Germany}",
            CRON,
            ("calendars.x.country: unknown country 'Germany' (close matches: DE (Germany))",),
        ),
        (
            "x: {country: united states}",
            CRON,
            ("calendars.x.country: unknown country 'united states' (close matches: US (United States)",),
        ),
        (
            "x: {country: CN, subdiv: XJ}",
            CRON,
            ("calendars.x.subdiv: the holidays library knows no subdivisions of CN (leave subdiv out)",),
        ),
        (
            "x: {country: DE, subdiv: XX}",
            CRON,
            (
                "calendars.x.subdiv: unknown DE subdivision 'XX' (DE subdivisions: BB, BE, BW, BY, HB, HE, HH, MV, "
                "NI, NW, RP, SH, SL, SN, ST, TH, Augsburg)",
            ),
        ),
        ("x: {dates: [2026-12-24, 2026-13-01]}", CRON, ("line 4, column 27", "invalid date '2026-13-01'")),
        (
            'x: {dates: [2026-12-24, "2026-12-31..2026-12-28"]}',
            CRON,
            ("calendars.x.dates[1]: range '2026-12-31..2026-12-28' ends before it starts",),
        ),
        ('x: {dates: ["2026-12-32"]}', CRON, ("calendars.x.dates[0]: invalid date or range '2026-12-32'",)),
        (
            "x: {dates: [2026-12-24, 1900-01-01]}",
            CRON,
            ("calendars.x.dates[1]: date 1900-01-01 is outside the supported years 1970-9000",),
        ),
        (
            'x: {country: CN, add_holidays: ["2026-12-24", "8999-12-30..9001-01-02"]}',
            CRON,
            ("calendars.x.add_holidays[1]: date 9001-01-02 is outside the supported years 1970-9000",),
        ),
        ('x: {dates: ["next friday"]}', CRON, ("calendars.x.dates[0]: invalid date or range 'next friday'",)),
        (
            "x: {dates: [2026-12-24 10:00:00]}",
            CRON,
            ("calendars.x.dates[0]: expected a date like 2026-12-25, not a date-time (got '2026-12-24T10:00:00')",),
        ),
        (
            "x: {dates: [2026-12-23, 20261224]}",
            CRON,
            (
                "calendars.x.dates[1]: expected a date like 2026-12-24 or a range like 2026-12-28..2027-01-03 "
                "(got 20261224)",
            ),
        ),
        # not read as seconds since 1970 (2027-01-01)
        ("x: {dates: [1798761600]}", CRON, ("calendars.x.dates[0]: expected a date like", "(got 1798761600)")),
        ("x: {country: CN, remove: [true]}", CRON, ("calendars.x.remove[0]: expected a date like", "(got true)")),
        ("x: {country: CN, add_workdays: [2027-01-02], add_holidays: [2027-01-02]}", CRON, ("2027-01-02 is also in",)),
        (
            "x: {country: CN, dates: [2026-12-24]}",
            CRON,
            ("calendars.x: give exactly one of 'country', 'dates' or 'ics'",),
        ),
        ("x: {dates: [2026-12-24], kind: workdays}", CRON, ("calendars.x: kind only apply to country calendars",)),
        ("x: {country: CN, kind: weekdays}", CRON, ("calendars.x.kind:", "'holidays' or 'workdays'")),
        ("x: {countri: CN}", CRON, ("calendars.x.countri: unknown key 'countri' (did you mean 'country'?)",)),
        ("x: {ics: missing.ics}", CRON, ("calendars.x.ics: cannot read", "missing.ics: No such file or directory")),
        ("x: {country: CN}", "    calendar: x\n", ("windows[0] (w).calendar: 'x' is not an ICS calendar",)),
        (
            "x: {country: CN}",
            CRON + "    calendar: x\n",
            ("windows[0] (w): give only one of 'cron' (recurring), 'calendar'",),
        ),
        (
            "x: {country: CN}",
            '    start: "2027-01-01T00:00:00"\n    end: "2027-01-02T00:00:00"\n    skip: [x]\n',
            ("windows[0] (w): skip only apply to recurring (cron or calendar) windows",),
        ),
        ("x: {country: CN}", CRON + '    summary: "ESA*"\n', ("windows[0] (w).summary: only applies to 'calendar'",)),
    ],
)
def test_calendar_validation_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], calendars: str, window: str, needles: tuple[str, ...]
) -> None:
    line = only_line(problems_for(tmp_path, capsys, calendars, window), *needles)
    assert line.startswith(str(tmp_path / "ops.yaml") + ": ")


BROKEN_ICS = {
    "garbage line": ("BEGIN:VCALENDAR\nVERSION:2.0\nthis is not a content line\nEND:VCALENDAR\n", "line 3: "),
    "unclosed event": (
        "BEGIN:VCALENDAR\nVERSION:2.0\nBEGIN:VEVENT\nUID:u1\nDTSTART:20270101T000000Z\nEND:VCALENDAR\n",
        "line 6: END:VCALENDAR has no matching BEGIN",
    ),
    "bad date-time": (
        "BEGIN:VCALENDAR\nBEGIN:VEVENT\nUID:bad-start@ops\nDTSTART:2027XX\nEND:VEVENT\nEND:VCALENDAR\n",
        "event UID 'bad-start@ops': DTSTART: ",
    ),
    "rrule refused": (
        "BEGIN:VCALENDAR\nBEGIN:VEVENT\nUID:bad-rule@ops\nDTSTART:20270101T000000Z\nDURATION:PT1H\n"
        "RRULE:FREQ=SOMETIMES\nEND:VEVENT\nEND:VCALENDAR\n",
        "event UID 'bad-rule@ops': RRULE refused: ",
    ),
    "rrule refused by the expansion": (
        "BEGIN:VCALENDAR\nBEGIN:VEVENT\nUID:ok@ops\nDTSTART:20270101T000000Z\nEND:VEVENT\nBEGIN:VEVENT\n"
        "UID:setpos@ops\nDTSTART:20270101T000000Z\nRRULE:FREQ=WEEKLY;BYSETPOS=0\nEND:VEVENT\nEND:VCALENDAR\n",
        "event UID 'setpos@ops': RRULE refused: ",
    ),
    "rrule interval 0": (
        "BEGIN:VCALENDAR\nBEGIN:VEVENT\nUID:zero@ops\nDTSTART:20270101T000000Z\nRRULE:FREQ=WEEKLY;INTERVAL=0\n"
        "END:VEVENT\nEND:VCALENDAR\n",
        "event UID 'zero@ops': RRULE refused: INTERVAL must be a positive integer (FREQ=WEEKLY;INTERVAL=0)",
    ),
    "rrule every minute": (
        "BEGIN:VCALENDAR\nBEGIN:VEVENT\nUID:minutely@ops\nDTSTART:20270101T000000Z\nRRULE:FREQ=MINUTELY\n"
        "END:VEVENT\nEND:VCALENDAR\n",
        "event UID 'minutely@ops': RRULE refused: FREQ=SECONDLY and FREQ=MINUTELY are not supported",
    ),
    "rrule every ten minutes": (
        "BEGIN:VCALENDAR\nBEGIN:VEVENT\nUID:often@ops\nDTSTART:20270101T000000Z\n"
        "RRULE:FREQ=HOURLY;BYMINUTE=0,10,20,30,40,50\nEND:VEVENT\nEND:VCALENDAR\n",
        "line 2: event UID 'often@ops': RRULE refused: up to 144 occurrences a day, more than 24 "
        "(FREQ=HOURLY;BYMINUTE=0,10,20,30,40,50)",
    ),
    "rrule every second of half an hour": (
        "BEGIN:VCALENDAR\nBEGIN:VEVENT\nUID:seconds@ops\nDTSTART:20270101T000000Z\nRRULE:FREQ=DAILY;BYMINUTE="
        + ",".join(map(str, range(31)))
        + ";BYSECOND="
        + ",".join(map(str, range(60)))
        + "\nEND:VEVENT\nEND:VCALENDAR\n",
        "line 2: event UID 'seconds@ops': RRULE refused: up to 1860 occurrences a day, more than 24 (FREQ=DAILY;",
    ),
    "unknown zone": (
        "BEGIN:VCALENDAR\nBEGIN:VEVENT\nUID:mars@ops\nDTSTART;TZID=Mars/Olympus:20270101T000000\nEND:VEVENT\n"
        "END:VCALENDAR\n",
        "event UID 'mars@ops': DTSTART: unknown TZID 'Mars/Olympus'",
    ),
    "no start": (
        "BEGIN:VCALENDAR\nBEGIN:VEVENT\nUID:nostart@ops\nSUMMARY:x\nEND:VEVENT\nEND:VCALENDAR\n",
        "event UID 'nostart@ops': DTSTART is missing",
    ),
    "not a calendar": ("BEGIN:VEVENT\nUID:x\nDTSTART:20270101T000000Z\nEND:VEVENT\n", "not an iCalendar file"),
    "same uid twice": (
        "BEGIN:VCALENDAR\nBEGIN:VEVENT\nUID:dup@ops\nDTSTART:20270101T100000Z\nEND:VEVENT\n"
        "BEGIN:VEVENT\nUID:dup@ops\nDTSTART:20270102T100000Z\nEND:VEVENT\nEND:VCALENDAR\n",
        "line 6: event UID 'dup@ops': another event with this UID and no RECURRENCE-ID begins at line 2 "
        "(only one of them would be used; give each event its own UID)",
    ),
    "end before start": (
        "BEGIN:VCALENDAR\nBEGIN:VEVENT\nUID:backwards@ops\nDTSTART;TZID=Europe/Berlin:20270101T100000\n"
        "DTEND;TZID=Asia/Shanghai:20270101T120000\nEND:VEVENT\nEND:VCALENDAR\n",
        # 09:00Z and 04:00Z: the wall times alone would look the right way round
        "line 2: event UID 'backwards@ops': DTEND;TZID=Asia/Shanghai:20270101T120000 is before "
        "DTSTART;TZID=Europe/Berlin:20270101T100000",
    ),
    "negative duration": (
        "BEGIN:VCALENDAR\nBEGIN:VEVENT\nUID:negative@ops\nDTSTART:20270101T100000Z\nDURATION:-PT1H\n"
        "END:VEVENT\nEND:VCALENDAR\n",
        "line 2: event UID 'negative@ops': DURATION:-PT1H is negative",
    ),
    "date start, date-time end": (
        "BEGIN:VCALENDAR\nBEGIN:VEVENT\nUID:mixed@ops\nDTSTART;VALUE=DATE:20270105\nDTEND:20270105T100000\n"
        "END:VEVENT\nEND:VCALENDAR\n",
        "line 2: event UID 'mixed@ops': DTSTART;VALUE=DATE:20270105 is a date, so DTEND must be a date too "
        "(DTEND:20270105T100000)",
    ),
    "date start, hours of duration": (
        "BEGIN:VCALENDAR\nBEGIN:VEVENT\nUID:hours@ops\nDTSTART;VALUE=DATE:20270105\nDURATION:P1DT2H\n"
        "END:VEVENT\nEND:VCALENDAR\n",
        "line 2: event UID 'hours@ops': DTSTART;VALUE=DATE:20270105 is a date, so DURATION must be whole days "
        "or weeks (DURATION:P1DT2H)",
    ),
    "floating start, utc end": (
        "BEGIN:VCALENDAR\nBEGIN:VEVENT\nUID:half-floating@ops\nDTSTART:20270105T100000\n"
        "DTEND:20270105T120000Z\nEND:VEVENT\nEND:VCALENDAR\n",
        "line 2: event UID 'half-floating@ops': DTSTART:20270105T100000 is floating (no TZID, no Z), so DTEND "
        "must be floating too (DTEND:20270105T120000Z)",
    ),
    "utc start, floating end": (
        "BEGIN:VCALENDAR\nBEGIN:VEVENT\nUID:half-fixed@ops\nDTSTART:20270105T100000Z\n"
        "DTEND:20270105T120000\nEND:VEVENT\nEND:VCALENDAR\n",
        "line 2: event UID 'half-fixed@ops': DTSTART:20270105T100000Z has a zone (TZID or Z), so DTEND "
        "must have one too (DTEND:20270105T120000)",
    ),
    "start not a date": (
        "BEGIN:VCALENDAR\nBEGIN:VEVENT\nUID:start@ops\nDTSTART:PT1H\nEND:VEVENT\nEND:VCALENDAR\n",
        "line 2: event UID 'start@ops': DTSTART:PT1H is not a date or a date-time",
    ),
    "end not a date": (
        "BEGIN:VCALENDAR\nBEGIN:VEVENT\nUID:end@ops\nDTSTART:20270105T100000Z\nDTEND:PT1H\nEND:VEVENT\nEND:VCALENDAR\n",
        "line 2: event UID 'end@ops': DTEND:PT1H is not a date or a date-time",
    ),
    "duration not a duration": (
        "BEGIN:VCALENDAR\nBEGIN:VEVENT\nUID:length@ops\nDTSTART:20270105T100000Z\nDURATION:20270105T120000Z\n"
        "END:VEVENT\nEND:VCALENDAR\n",
        "line 2: event UID 'length@ops': DURATION:20270105T120000Z is not a duration (like PT2H or P1D)",
    ),
    "end and duration": (
        "BEGIN:VCALENDAR\nBEGIN:VEVENT\nUID:both@ops\nDTSTART:20270105T100000Z\nDTEND:20270105T120000Z\n"
        "DURATION:PT1H\nEND:VEVENT\nEND:VCALENDAR\n",
        "line 2: event UID 'both@ops': give DTEND or DURATION, not both",
    ),
}


@pytest.mark.parametrize("case", sorted(BROKEN_ICS))
def test_malformed_ics_is_reported_by_line_or_uid(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], case: str
) -> None:
    text, needle = BROKEN_ICS[case]
    path = write_ics(tmp_path, text, "ops.ics")
    line = only_line(problems_for(tmp_path, capsys, "ops: {ics: ops.ics}", "    calendar: ops\n"), "calendars.ops.ics")
    assert f"calendars.ops.ics: {path}: " in line
    assert needle in line


@pytest.mark.parametrize(
    "rule",
    [
        "FREQ=HOURLY",
        "FREQ=HOURLY;INTERVAL=2;BYMINUTE=0,30",
        "FREQ=HOURLY;INTERVAL=5;BYMINUTE=0,15,30,45;BYHOUR=0,1,2,3,4,5,6,7,8,9,10,11,12",  # 5 hours of 13 named
        "FREQ=DAILY;BYHOUR=2,14;BYMINUTE=0,15,30,45;BYSECOND=0,30,45",
        "FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR,SA,SU;BYHOUR=0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23",
    ],
)
def test_rules_up_to_24_occurrences_a_day_are_accepted(tmp_path: Path, rule: str) -> None:
    write_ics(
        tmp_path,
        f"BEGIN:VCALENDAR\nBEGIN:VEVENT\nUID:u@ops\nDTSTART:20270101T000000Z\nRRULE:{rule}\nEND:VEVENT\nEND:VCALENDAR\n",
    )
    assert load_schedule(write_schedule(tmp_path, ICS_WINDOW)).windows[0].events is not None


@pytest.mark.parametrize(
    ("rule", "count"),
    [
        ("FREQ=HOURLY;BYSECOND=0,30", 48),
        ("FREQ=HOURLY;INTERVAL=3;BYMINUTE=0,15,30,45", 32),
        ("FREQ=MONTHLY;BYHOUR=1,2,3,4,5;BYMINUTE=0,10,20,30,40", 25),
    ],
)
def test_rules_over_24_occurrences_a_day_are_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], rule: str, count: int
) -> None:
    write_ics(
        tmp_path,
        f"BEGIN:VCALENDAR\nBEGIN:VEVENT\nUID:u@ops\nDTSTART:20270101T000000Z\nRRULE:{rule}\nEND:VEVENT\nEND:VCALENDAR\n",
    )
    lines = problems_for(tmp_path, capsys, "ops: {ics: calendars/ops.ics}", "    calendar: ops\n")
    assert f"RRULE refused: up to {count} occurrences a day, more than 24" in only_line(lines, "calendars.ops.ics")


def test_every_bad_event_is_reported(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = (
        "BEGIN:VCALENDAR\nBEGIN:VEVENT\nUID:one@ops\nDTSTART:20270101T100000Z\nDURATION:-P1D\nEND:VEVENT\n"
        "BEGIN:VEVENT\nUID:fine@ops\nDTSTART:20270101T100000Z\nEND:VEVENT\n"
        "BEGIN:VEVENT\nUID:two@ops\nDTSTART:20270101T100000Z\nDTEND:20270101T090000Z\nEND:VEVENT\nEND:VCALENDAR\n"
    )
    write_ics(tmp_path, text, "ops.ics")
    lines = problems_for(tmp_path, capsys, "ops: {ics: ops.ics}", "    calendar: ops\n")
    assert [line.split(": ", 3)[3] for line in lines if "calendars.ops.ics" in line] == [
        "line 2: event UID 'one@ops': DURATION:-P1D is negative",
        "line 11: event UID 'two@ops': DTEND:20270101T090000Z is before DTSTART:20270101T100000Z",
    ]


@pytest.mark.parametrize(
    ("calendars", "window", "problem"),
    [
        ("x: {country: XX}", CRON + "    skip: [x]\n    only_on: [x]\n", "calendars.x.country: unknown country 'XX'"),
        ("x: {ics: missing.ics}", "    calendar: x\n    skip: [x]\n", "calendars.x.ics: cannot read"),
        ('x: {dates: ["2026-12-32"]}', CRON + "    skip: [x]\n", "calendars.x.dates[0]: invalid date or range"),
    ],
)
def test_a_broken_calendar_is_reported_once_not_at_every_reference(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], calendars: str, window: str, problem: str
) -> None:
    lines = problems_for(tmp_path, capsys, calendars, window)
    assert [line.split(": ", 1)[1] for line in lines if line.startswith(str(tmp_path))] == [
        only_line(lines, problem).split(": ", 1)[1]
    ]


def test_each_calendar_is_checked_on_its_own(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A wrongly typed field of one calendar does not hide the problems of the others, or of the windows."""
    calendars = """
        a: {country: CN, kind: weekdays}
        b: {country: XX}
        c: {dates: [20261224]}
        d: {countri: CN}
        e: {dates: ["2026-13-45"]}
        f: {dates: [2026-12-24]}
    """
    window = CRON + "    skip: [a, b, c, d, e, f, g]\n"
    lines = [line.split(": ", 1)[1] for line in problems_for(tmp_path, capsys, calendars, window) if "ops.yaml" in line]
    assert lines == [
        "calendars.a.kind: Input should be 'holidays' or 'workdays' (got 'weekdays')",
        "calendars.c.dates[0]: expected a date like 2026-12-24 or a range like 2026-12-28..2027-01-03 (got 20261224)",
        "calendars.d.countri: unknown key 'countri' (did you mean 'country'?)",
        "calendars.b.country: unknown country 'XX' (close matches: XK, SX, MX, CX, AX)",
        "calendars.e.dates[0]: invalid date or range '2026-13-45' (use 2026-12-24 or 2026-12-28..2027-01-03)",
        "windows[0] (w).skip[6]: unknown calendar 'g' (define it under 'calendars:')",
    ]


def test_calendar_names_are_unique_across_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_schedule(tmp_path, "version: 1\ncalendars:\n  freeze: {dates: [2026-12-24]}\n", "a.yaml")
    write_schedule(tmp_path, "version: 1\ncalendars:\n  freeze: {dates: [2026-12-25]}\n", "b.yaml")
    code, lines = validate(capsys, tmp_path)
    assert code == 2
    assert only_line(lines, "b.yaml: calendars.freeze: duplicate calendar name 'freeze'", "a.yaml")


def test_unannounced_workdays_year_is_a_warning(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    schedule = write_schedule(tmp_path, CN_OFFICE)
    code, lines = validate(capsys, schedule)
    assert code == 0
    assert only_line(lines, "valid: 1 file(s)")
    loaded = load_schedule(schedule)
    # the pinned library knows China's make-up workdays through 2026
    warnings = schedule_warnings(loaded, utc("2026-12-03T00:00"))
    assert warnings == [
        f"{schedule}: calendars.cn-workdays: warning: the holidays library (0.107) does not know CN's official "
        f"make-up workdays for {year} yet; once they are announced, add them with add_workdays "
        "(and the days off with add_holidays)"
        for year in (2027, 2028)
    ] + [
        # it only knows the statutory holidays of those years, not the days off around them
        f"{schedule}: calendars.cn-holidays: warning: the holidays library (0.107) does not know CN's official "
        f"days off for {year} yet, only the statutory holidays; once they are announced, add the other days off "
        "with add_holidays"
        for year in (2027, 2028)
    ]
    assert schedule_warnings(loaded, utc("2025-06-01T00:00")) == []
    patched = write_schedule(
        tmp_path, CN_OFFICE.replace("kind: workdays}", "kind: workdays, add_workdays: [2027-02-20]}")
    )
    assert [w for w in schedule_warnings(load_schedule(patched), utc("2026-12-03T00:00")) if "2027" in w] == [
        w for w in warnings if "cn-holidays" in w and "2027" in w
    ]
    # Bulgaria has substituted days off but the library knows no make-up workdays there: none to miss
    bulgaria = write_schedule(
        tmp_path,
        CN_OFFICE.replace("{country: CN, kind: workdays}", "{country: BG, kind: workdays}").replace(
            "{country: CN}", "{country: BG}"
        ),
    )
    assert schedule_warnings(load_schedule(bulgaria), utc("2026-12-03T00:00")) == []


def beyond_the_library(schedule: Path, calendar: str, country: str, year: int, covers: str, result: str) -> str:
    return (
        f"{schedule}: calendars.{calendar}: warning: the holidays library (0.107) has no {country} dates for {year} "
        f"(it covers {covers}), so {result}; patch the year with add_holidays and add_workdays"
    )


def test_years_the_library_does_not_cover_are_noted_by_plan(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    schedule = write_schedule(tmp_path, CN_OFFICE)
    code, out, err = run_cli(capsys, "plan", "--schedule", str(schedule), "--at", "2150-02-14T02:00:00Z", "--json")
    assert code == 0
    assert err.splitlines() == [
        beyond_the_library(
            schedule, "cn-workdays", "CN", year, "1950-2100", "every Monday to Friday is a workday that year"
        )
        for year in (2150, 2151)
    ] + [
        beyond_the_library(schedule, "cn-holidays", "CN", year, "1950-2100", "the calendar holds no dates that year")
        for year in (2150, 2151)
    ]
    assert json.loads(out)["tasks"][0]["desired"] == "online"  # a Saturday
    # validate looks 400 days ahead of its pinned --at, into years the library covers: no error
    assert validate(capsys, schedule)[0] == 0


def test_years_before_the_library_are_noted_too(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    schedule = write_schedule(
        tmp_path,
        """
        version: 1
        calendars:
          de: {country: DE}
          de-patched: {country: DE, add_holidays: [1986-01-01, 1987-01-01]}
          freeze: {dates: [1985-12-24]}
        tasks:
          - name: a
        windows:
          - name: w
            tasks: [a]
            cron: "0 3 * * *"
            duration: 1h
            skip: [de, de-patched, freeze]
        """,
    )
    code, _, err = run_cli(capsys, "plan", "--schedule", str(schedule), "--at", "1985-12-24T02:00:00Z")
    assert code == 0
    # de-patched was patched for 1986 and 1987: taken as known; date sets have no library
    assert err.splitlines() == [
        beyond_the_library(schedule, "de", "DE", year, "1991-2100", "the calendar holds no dates that year")
        for year in (1985, 1986, 1987)
    ] + [beyond_the_library(schedule, "de-patched", "DE", 1985, "1991-2100", "the calendar holds no dates that year")]


def test_the_timer_run_is_silent_and_plans_beyond_the_library(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    schedule = write_schedule(tmp_path, CN_OFFICE)
    state = str(tmp_path / "state")
    for at, desired_state in (("2150-02-16T02:00:00Z", "offline"), ("2150-02-14T02:00:00Z", "online")):
        args = [
            "run",
            "--emulator",
            "--dry-run",
            "--json",
            "--schedule",
            str(schedule),
            "--at",
            at,
            "--state-dir",
            state,
        ]
        code, out, err = run_cli(capsys, *args)
        assert code == 0, err
        assert "warning" not in out + err
        logged = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
        office = next(r for r in logged if r["event"] == "task.result" and r["task"] == "office")
        assert office["desired"] == desired_state, at  # Monday: a workday by the weekdays; Saturday: not


# --------------------------------------------------------------------------- no cost when unused


IMPORTS = (
    "import sys, handler\n"
    "from esa_scheduler.engine.schedule.load import load_schedule\n"
    "from esa_scheduler.engine.planner import plan\n"
    "from datetime import datetime, timezone\n"
    "plan(load_schedule(sys.argv[1]), datetime(2027, 1, 4, tzinfo=timezone.utc))\n"
    "print(sorted(m for m in ('holidays', 'icalendar', 'recurring_ical_events') if m in sys.modules))\n"
)


@pytest.mark.parametrize(
    ("calendars", "imported"),
    [
        ("", []),
        ("calendars:\n  freeze: {dates: [2027-01-04]}\n", []),
        ("calendars:\n  de: {country: DE}\n", ["holidays"]),
        ("calendars:\n  ops: {ics: ops.ics}\n", ["icalendar", "recurring_ical_events"]),
    ],
)
def test_calendar_libraries_are_imported_only_when_used(tmp_path: Path, calendars: str, imported: list[str]) -> None:
    write_ics(tmp_path, OPS_ICS, "ops.ics")
    window = "windows:\n  - name: w\n    tasks: [a]\n    cron: '0 3 * * *'\n    duration: 1h\n"
    schedule = write_schedule(tmp_path, f"version: 1\n{calendars}tasks:\n  - name: a\n{window}")
    out = subprocess.run(
        [sys.executable, "-c", IMPORTS, str(schedule)], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == repr(imported)


def test_readme_calendars_example_is_valid(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    readme = (ROOT / "docs" / "schedule.md").read_text(encoding="utf-8")
    section = readme.split("## Calendars", 1)[1]
    example = section.split("```yaml\n", 1)[1].split("```", 1)[0]
    write_ics(tmp_path)
    tasks = "version: 1\ntasks:\n  - name: access-logs-prod\n  - pattern: 'waf-*'\n"
    schedule = write_schedule(tmp_path, tasks + example)
    code, lines = validate(capsys, schedule)
    assert code == 0, lines
    assert only_line(lines, "valid: 1 file(s), 2 task entries (1 pattern(s)), 3 window(s)")


def test_overlapping_events_unite_and_are_all_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_ics(
        tmp_path,
        "BEGIN:VCALENDAR\nVERSION:2.0\nPRODID:-//t//EN\n"
        "BEGIN:VEVENT\nUID:long@ops\nSUMMARY:ESA long\nDTSTART:20270602T100000Z\nDTEND:20270602T140000Z\nEND:VEVENT\n"
        "BEGIN:VEVENT\nUID:short@ops\nSUMMARY:ESA short\nDTSTART:20270602T110000Z\nDTEND:20270602T120000Z\nEND:VEVENT\n"
        "END:VCALENDAR\n",
    )
    schedule = write_schedule(tmp_path, ICS_WINDOW)
    inside = plan_entry(capsys, schedule, "a", utc("2027-06-02T11:30"))
    assert inside["matches"] == ['window:maint: "ESA long" (uid long@ops); "ESA short" (uid short@ops)']
    assert inside["next_change"] == "2027-06-02T14:00:00Z"
    assert plan_entry(capsys, schedule, "a", utc("2027-06-02T12:30"))["matches"] == [
        'window:maint: "ESA long" (uid long@ops)'
    ]


PACKAGED_RUN = """
import sys
import esa_scheduler, holidays, icalendar
assert all(m.__file__.startswith(sys.argv[2]) for m in (esa_scheduler, holidays, icalendar)), sys.path
from datetime import datetime, timezone
from esa_scheduler.engine.planner import TaskRef, plan
from esa_scheduler.engine.schedule.load import load_schedule
schedule = load_schedule(sys.argv[1])
for at in (datetime(2027, 4, 12, 21, tzinfo=timezone.utc), datetime(2027, 4, 13, 2, tzinfo=timezone.utc)):
    print([d.desired for d in plan(schedule, at, [TaskRef("office"), TaskRef("maint")]).decisions])
"""


@pytest.mark.slow
def test_the_function_package_carries_the_calendar_libraries(tmp_path: Path) -> None:
    """The zip alone (no site-packages) loads and plans a schedule with a country and an ICS calendar."""
    zip_path = tmp_path / "esa-scheduler.zip"
    command = [sys.executable, "scripts/package.py", "--deps-from-env", "--output", str(zip_path)]
    subprocess.run([*command, "--build-dir", str(tmp_path / "build")], cwd=ROOT, check=True, capture_output=True)
    code = tmp_path / "code"
    with zipfile.ZipFile(zip_path) as archive:
        archive.extractall(code)
    write_ics(tmp_path)
    schedule = write_schedule(
        tmp_path,
        """
        version: 1
        timezone: Asia/Shanghai
        calendars:
          cn-workdays: {country: CN, kind: workdays}
          ops: {ics: calendars/ops.ics}
        tasks:
          - name: office
          - name: maint
        windows:
          - name: office-hours
            tasks: [office]
            cron: "0 9 * * *"
            duration: 9h
            only_on: [cn-workdays]
          - name: maintenance
            tasks: [maint]
            calendar: ops
        """,
    )
    env = child_environment({"PYTHONPATH": str(code)})
    out = subprocess.run(
        [sys.executable, "-S", "-c", PACKAGED_RUN, str(schedule), str(code)],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
    )
    # 21:00Z: the moved ICS event runs, the office is closed; 02:00Z (10:00 in Shanghai on a workday): the reverse
    assert out.stdout.split("\n")[:2] == ["['offline', 'online']", "['online', 'offline']"]


def test_only_on_a_sparse_date_set_jumps_its_gaps_and_ends_with_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    schedule = write_schedule(
        tmp_path,
        """
        version: 1
        timezone: Asia/Shanghai
        calendars:
          freeze: {dates: ["2027-03-02", "2027-12-24..2027-12-25"]}
        tasks:
          - name: a
        windows:
          - name: frozen
            tasks: [a]
            cron: "0 9 * * *"
            duration: 2h
            only_on: [freeze]
        """,
    )
    # 09:00 Shanghai is 01:00Z; nine months of rejected days lie between the two parts of the set
    assert intervals(schedule, utc("2027-03-01T00:00"), utc("2028-01-01T00:00")) == [
        ("2027-03-02T01:00Z", "2027-03-02T03:00Z"),
        ("2027-12-24T01:00Z", "2027-12-24T03:00Z"),
        ("2027-12-25T01:00Z", "2027-12-25T03:00Z"),
    ]
    assert desired(capsys, schedule, "a", utc("2027-03-03T00:00")) == ("online", utc("2027-12-24T01:00"))
    # after the last listed date the window never happens again
    assert desired(capsys, schedule, "a", utc("2027-12-25T05:00")) == ("online", None)
