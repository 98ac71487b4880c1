"""Real exports read right, or refused in one line (issue 20, section 1).

What Outlook, Google, Lotus Notes and school-calendar exporters write that RFC 5545 forbids or leaves
open: each case is a real ICS file on disk read by the real loader (``validate`` in process, the
window engine for intervals), in a Europe/Berlin window unless a test says otherwise.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import run_cli, utc, write_schedule

from esa_scheduler.engine.schedule.load import load_schedule
from esa_scheduler.engine.windows import Timeline

WINDOW = """
version: 1
timezone: {zone}
calendars:
  real: {{ics: real.ics}}
tasks:
  - name: a
windows:
  - name: w
    tasks: [a]
    calendar: real
"""


def calendar(tmp_path: Path, events: str, zone: str = "Europe/Berlin") -> Path:
    """``events`` in a VCALENDAR written with CRLF as ``real.ics``, and a schedule whose window uses it."""
    text = f"BEGIN:VCALENDAR\nVERSION:2.0\nPRODID:-//esa-scheduler tests//EN\n{events}END:VCALENDAR\n"
    (tmp_path / "real.ics").write_bytes(text.replace("\n", "\r\n").encode())
    return write_schedule(tmp_path, WINDOW.format(zone=zone))


def validate(capsys: pytest.CaptureFixture[str], schedule: Path) -> tuple[int, list[str]]:
    code, out, err = run_cli(capsys, "validate", "--schedule", str(schedule))
    assert "Traceback" not in out + err
    return code, [line for line in (out + err).splitlines() if line.strip()]


def spans(schedule: Path, begin: str, end: str) -> list[tuple[str, str]]:
    first, last = utc(begin), utc(end)
    timeline = Timeline(load_schedule(schedule).windows[0], first, last)
    return [
        (a.strftime("%Y-%m-%dT%H:%MZ"), b.strftime("%Y-%m-%dT%H:%MZ"))
        for a, b in timeline.intervals_between(first, last)
    ]


def refusal(capsys: pytest.CaptureFixture[str], schedule: Path) -> str:
    """The one line ``validate`` refuses the file with, after the file's name."""
    code, lines = validate(capsys, schedule)
    assert code == 2, lines
    prefix = f"{schedule}: calendars.real.ics: {schedule.parent / 'real.ics'}: "
    found = [line.removeprefix(prefix) for line in lines if line.startswith(prefix)]
    assert len(found) == 1, lines
    return found[0]


# --------------------------------------------------------------------------- refused in one line


@pytest.mark.parametrize(
    ("prop", "first", "second"),
    [
        ("DTSTART", "DTSTART:20270105T090000Z", "DTSTART:20270105T100000Z"),
        ("DTEND", "DTEND:20270105T110000Z", "DTEND:20270105T120000Z"),
        ("STATUS", "STATUS:CONFIRMED", "STATUS:CANCELLED"),
        ("UID", "UID:two-lines@school", "UID:another@school"),
        ("RECURRENCE-ID", "RECURRENCE-ID:20270105T090000Z", "RECURRENCE-ID:20270106T090000Z"),
    ],
)
def test_a_property_that_decides_the_interval_given_twice_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], prop: str, first: str, second: str
) -> None:
    """A published test file has two DTSTART lines in one VEVENT: which one is meant cannot be guessed
    (the reader used to end in ``'list' object has no attribute 'params'``)."""
    uid = "" if prop == "UID" else "UID:two-lines@school\n"
    times = "" if prop in ("DTSTART", "DTEND") else "DTSTART:20270105T090000Z\nDTEND:20270105T100000Z\n"
    events = f"BEGIN:VEVENT\n{uid}SUMMARY:Exams\n{times}{first}\n{second}\nEND:VEVENT\n"
    line = refusal(capsys, calendar(tmp_path, events))
    assert line == (
        f"line 4: event UID 'two-lines@school': {prop} is given 2 times (RFC 5545 allows it once; keep the right one)"
    )


def test_a_vtimezone_with_several_tzids_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A school calendar export names one VTIMEZONE twice; icalendar used to fail on it with a traceback."""
    zone = (
        "BEGIN:VTIMEZONE\nTZID:America/New_York\nTZID:US/Eastern\nBEGIN:STANDARD\nDTSTART:19701101T020000\n"
        "RRULE:FREQ=YEARLY;BYMONTH=11;BYDAY=1SU\nTZOFFSETFROM:-0400\nTZOFFSETTO:-0500\nEND:STANDARD\n"
        "BEGIN:DAYLIGHT\nDTSTART:19700308T020000\nRRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=2SU\nTZOFFSETFROM:-0500\n"
        "TZOFFSETTO:-0400\nEND:DAYLIGHT\nEND:VTIMEZONE\n"
    )
    event = (
        "BEGIN:VEVENT\nUID:class@school\nDTSTART;TZID=America/New_York:20270105T090000\n"
        "DTEND;TZID=America/New_York:20270105T100000\nEND:VEVENT\n"
    )
    line = refusal(capsys, calendar(tmp_path, zone + event))
    assert line == "line 4: VTIMEZONE has 2 TZID lines: 'America/New_York' (line 5), 'US/Eastern' (line 6); give it one"


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (
            "X-WR-TIMEZONE:Mars/Olympus\n",
            "line 4: X-WR-TIMEZONE: unknown zone 'Mars/Olympus' (use an IANA name like Europe/Berlin)",
        ),
        (
            "X-WR-TIMEZONE:Europe/Berlin\nX-WR-TIMEZONE:Europe/Paris\n",
            "line 4: X-WR-TIMEZONE is given 2 times (give the calendar one zone)",
        ),
    ],
)
def test_a_calendar_zone_that_cannot_be_used_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], header: str, expected: str
) -> None:
    """The expansion reads floating and UTC times in X-WR-TIMEZONE: an unknown one, or two, ended in a
    ZoneInfoNotFoundError traceback."""
    events = "BEGIN:VEVENT\nUID:u@google\nDTSTART:20270105T090000\nDTEND:20270105T100000\nEND:VEVENT\n"
    assert refusal(capsys, calendar(tmp_path, header + events)) == expected


# --------------------------------------------------------------------------- read as the producer meant


GOOGLE_HOLIDAYS = """\
BEGIN:VEVENT
UID:christmas@google
SUMMARY:Christmas Day
DTSTART;TZID=America/Los_Angeles:20271225
DTEND;TZID=America/Los_Angeles:20271226
END:VEVENT
BEGIN:VEVENT
UID:new-year@google
SUMMARY:New Year's Day
DTSTART;TZID="America/Los_Angeles":20270101
DTEND;TZID="America/Los_Angeles":20270102
RRULE:FREQ=YEARLY;COUNT=3
EXDATE;TZID=America/Los_Angeles:20280101
END:VEVENT
"""


@pytest.mark.parametrize(
    ("zone", "expected"),
    [
        (
            "Europe/Berlin",
            [
                ("2026-12-31T23:00Z", "2027-01-01T23:00Z"),
                ("2027-12-24T23:00Z", "2027-12-25T23:00Z"),
                ("2028-12-31T23:00Z", "2029-01-01T23:00Z"),  # 2028 is the EXDATE, a date with a TZID too
            ],
        ),
        (
            "Asia/Shanghai",
            [
                ("2026-12-31T16:00Z", "2027-01-01T16:00Z"),
                ("2027-12-24T16:00Z", "2027-12-25T16:00Z"),
                ("2028-12-31T16:00Z", "2029-01-01T16:00Z"),
            ],
        ),
    ],
)
def test_a_date_with_a_tzid_is_that_date_in_the_windows_zone(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], zone: str, expected: list[tuple[str, str]]
) -> None:
    """Google writes all-day holidays as ``DTSTART;TZID=America/Los_Angeles:20041225`` (RFC 5545 3.2.19
    forbids TZID on a date): they are all-day events, not midnight to midnight in Los Angeles."""
    schedule = calendar(tmp_path, GOOGLE_HOLIDAYS, zone)
    assert validate(capsys, schedule)[0] == 0
    assert spans(schedule, "2026-06-01T00:00", "2030-01-01T00:00") == expected


def test_a_floating_until_is_read_in_the_zone_of_dtstart(tmp_path: Path) -> None:
    """RFC 5545 3.3.10 wants UNTIL in UTC beside a zoned DTSTART; read floating, as other libraries do,
    it is wall time in DTSTART's zone, so the last stand-up (10:00 New York, 15:00 UTC) is kept."""
    events = (
        "BEGIN:VEVENT\nUID:standup@outlook\nDTSTART;TZID=America/New_York:20270104T100000\n"
        "DTEND;TZID=America/New_York:20270104T103000\nRRULE:FREQ=DAILY;UNTIL=20270106T100000\nEND:VEVENT\n"
        "BEGIN:VEVENT\nUID:utc-until@outlook\nDTSTART;TZID=America/New_York:20270111T100000\n"
        "DTEND;TZID=America/New_York:20270111T103000\nRRULE:FREQ=DAILY;UNTIL=20270112T150000Z\nEND:VEVENT\n"
    )
    assert spans(calendar(tmp_path, events), "2027-01-01T00:00", "2027-02-01T00:00") == [
        ("2027-01-04T15:00Z", "2027-01-04T15:30Z"),
        ("2027-01-05T15:00Z", "2027-01-05T15:30Z"),
        ("2027-01-06T15:00Z", "2027-01-06T15:30Z"),
        ("2027-01-11T15:00Z", "2027-01-11T15:30Z"),
        ("2027-01-12T15:00Z", "2027-01-12T15:30Z"),
    ]


LOTUS_SERIES = """\
BEGIN:VEVENT
DTSTART:20270105T090000Z
DTEND:20270105T100000Z
TRANSP:OPAQUE
RDATE;VALUE=PERIOD:20270105T090000Z/20270105T100000Z
 ,20270112T090000Z/20270112T100000Z,20270119T130000Z/PT2H
RDATE;VALUE=PERIOD:20270126T090000Z/20270126T100000Z
RECURRENCE-ID;RANGE=THISANDFUTURE:20270105T090000Z
UID:9A1F0C3B7D2E4F56C12586E70033ED9C-Lotus_Notes_Generated
SUMMARY:Design review
END:VEVENT
BEGIN:VEVENT
UID:invited-twice@example
RECURRENCE-ID:20270201T090000Z
DTSTART:20270201T090000Z
DTEND:20270201T093000Z
END:VEVENT
BEGIN:VEVENT
UID:invited-twice@example
RECURRENCE-ID:20270208T090000Z
DTSTART:20270209T090000Z
DTEND:20270209T093000Z
END:VEVENT
BEGIN:VEVENT
UID:khal@example
DTSTART;TZID=Europe/Berlin:20270301T100000
DTEND;TZID=Europe/Berlin:20270301T110000
RDATE;VALUE=PERIOD;TZID=Europe/Berlin:20270302T100000/20270302T123000
END:VEVENT
"""


def test_every_rdate_period_is_an_occurrence(tmp_path: Path) -> None:
    """Lotus Notes writes a series as RDATE periods on one ``RANGE=THISANDFUTURE`` override with no
    master: all four meetings happen (only the first was kept). Single instances without a master stay
    what they are, and a master's zoned RDATE period keeps its own end."""
    assert spans(calendar(tmp_path, LOTUS_SERIES), "2027-01-01T00:00", "2027-04-01T00:00") == [
        ("2027-01-05T09:00Z", "2027-01-05T10:00Z"),
        ("2027-01-12T09:00Z", "2027-01-12T10:00Z"),
        ("2027-01-19T13:00Z", "2027-01-19T15:00Z"),
        ("2027-01-26T09:00Z", "2027-01-26T10:00Z"),
        ("2027-02-01T09:00Z", "2027-02-01T09:30Z"),
        ("2027-02-09T09:00Z", "2027-02-09T09:30Z"),
        ("2027-03-01T09:00Z", "2027-03-01T10:00Z"),
        ("2027-03-02T09:00Z", "2027-03-02T11:30Z"),
    ]


APPLE_EDITED = """\
BEGIN:VEVENT
UID:invoice@apple
SUMMARY:Pay the hosting invoice
DTSTART;VALUE=DATE:20270115
DTEND;VALUE=DATE:20270116
RRULE:FREQ=MONTHLY;BYMONTHDAY=15;COUNT=4
EXDATE;VALUE=DATE:20270215
EXDATE;VALUE=DATE:20270315
END:VEVENT
BEGIN:VEVENT
UID:invoice@apple
SUMMARY:Pay the hosting invoice (late)
RECURRENCE-ID;VALUE=DATE:20270215
DTSTART;VALUE=DATE:20270217
DTEND;VALUE=DATE:20270218
END:VEVENT
"""


def test_an_edited_instance_survives_the_exdate_apple_writes_beside_it(tmp_path: Path) -> None:
    """Apple iCal lists an edited instance in its master's EXDATE as well as writing the override: the
    edited instance happens (17 February); 15 March, excluded with no override, does not."""
    assert spans(calendar(tmp_path, APPLE_EDITED, "UTC"), "2027-01-01T00:00", "2027-06-01T00:00") == [
        ("2027-01-15T00:00Z", "2027-01-16T00:00Z"),
        ("2027-02-17T00:00Z", "2027-02-18T00:00Z"),
        ("2027-04-15T00:00Z", "2027-04-16T00:00Z"),
    ]


MALFORMED_BOOKKEEPING = """\
BEGIN:VEVENT
UID:labour-day@google
SUMMARY:Labour Day
DTSTART;VALUE=DATE:20270501
DTEND;VALUE=DATE:20270502
CREATED:00001231T000000Z
LAST-MODIFIED:00001231T000000Z
DTSTAMP:2027
SEQUENCE:first
END:VEVENT
BEGIN:VEVENT
UID:may-day@google
SUMMARY:Bank holiday
DTSTART;VALUE=DATE:20270503
DTEND;VALUE=DATE:20270504
CREATED:00001231T000000Z
CLASS:PUBLIC
CLASS:PRIVATE
END:VEVENT
"""


def test_malformed_properties_that_cannot_move_an_interval_are_warnings(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A 1.6 MB Google export writes ``CREATED:00001231T000000Z``: the file was refused whole. Such
    properties are set aside with one warning each (validate exits 0, plan says it on stderr), and the
    events happen as written."""
    schedule = calendar(tmp_path, MALFORMED_BOOKKEEPING)
    code, lines = validate(capsys, schedule)
    assert code == 0, lines
    prefix = f"{schedule}: calendars.real.ics: {tmp_path / 'real.ics'}: warning: "
    warnings = sorted(line.removeprefix(prefix) for line in lines if line.startswith(prefix))
    ignored = "cannot change when an event happens"
    assert warnings == [
        f"line 14: event UID 'may-day@google': CLASS: given 2 times (RFC 5545 allows it once; the first is kept); "
        f"ignored, as CLASS {ignored}",
        f"line 4: event UID 'labour-day@google': CREATED: Wrong datetime format: 00001231T000000Z "
        f"(and in 1 more event(s)); ignored, as CREATED {ignored}",
        f"line 4: event UID 'labour-day@google': DTSTAMP: Expected datetime, date, or time. Got: '2027'; "
        f"ignored, as DTSTAMP {ignored}",
        f"line 4: event UID 'labour-day@google': LAST-MODIFIED: Wrong datetime format: 00001231T000000Z; "
        f"ignored, as LAST-MODIFIED {ignored}",
        f"line 4: event UID 'labour-day@google': SEQUENCE: Expected int, got: first; ignored, as SEQUENCE {ignored}",
    ]
    assert spans(schedule, "2027-04-01T00:00", "2027-06-01T00:00") == [
        ("2027-04-30T22:00Z", "2027-05-01T22:00Z"),
        ("2027-05-02T22:00Z", "2027-05-03T22:00Z"),
    ]
    code, _, err = run_cli(capsys, "plan", "--schedule", str(schedule), "--at", "2027-04-01T00:00:00Z")
    assert code == 0
    assert sum(line.startswith(prefix) for line in err.splitlines()) == 5


def test_a_malformed_start_is_still_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Only what cannot change an interval is set aside: a bad DTSTART, EXDATE or RRULE refuses the file."""
    events = (
        "BEGIN:VEVENT\nUID:bad-exdate@google\nDTSTART:20270105T090000Z\nDTEND:20270105T100000Z\n"
        "RRULE:FREQ=DAILY;COUNT=3\nEXDATE:00001231T000000Z\nCREATED:00001231T000000Z\nEND:VEVENT\n"
    )
    assert refusal(capsys, calendar(tmp_path, events)).startswith("line 4: event UID 'bad-exdate@google': EXDATE: ")


ALARM_WITH_AN_EVENT = """\
BEGIN:VEVENT
UID:freeze@ops
DTSTART:20270105T090000Z
DTEND:20270105T100000Z
BEGIN:VALARM
ACTION:DISPLAY
TRIGGER:-PT15M
BEGIN:VEVENT
UID:inside-the-alarm@ops
DTSTART:20270106T090000Z
DURATION:PT5H
END:VEVENT
END:VALARM
END:VEVENT
BEGIN:VEVENT
UID:release@ops
DTSTART:20270107T090000Z
DURATION:PT2H
END:VEVENT
"""


def test_an_event_inside_a_skipped_component_is_skipped_with_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A VALARM is skipped whole, whatever it holds: a VEVENT written inside one made ``validate`` and the
    timer run end in ``zip() argument 2 is longer than argument 1``, as the events' written properties
    were taken from lines icalendar never read."""
    schedule = calendar(tmp_path, ALARM_WITH_AN_EVENT, "UTC")
    code, lines = validate(capsys, schedule)
    assert code == 0, lines
    assert spans(schedule, "2027-01-01T00:00", "2027-02-01T00:00") == [
        ("2027-01-05T09:00Z", "2027-01-05T10:00Z"),
        ("2027-01-07T09:00Z", "2027-01-07T11:00Z"),
    ]
