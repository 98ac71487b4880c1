"""``esa-scheduler validate`` on ICS files: a real-shaped calendar of 1,300 events, one 8 MB folded
property, and a calendar at the limits ``validate`` keeps under 2 s and 200 MB.

The real-shaped calendar is written as Google Calendar exports one (about 1.2 KB an event, as in
the 1.6 MB export of issue 20): X-WR-TIMEZONE and the zone's VTIMEZONE, eight years of history,
events with attendees, folded descriptions and alarms, all-day holidays, weekly and daily series
with EXDATEs, moved occurrences (RECURRENCE-ID) and cancelled ones. Each figure is the median of
``cli.main(["validate", ...])`` run several times in a fresh process, after a first run that
imports what validate needs (as a warm FC instance has), in CPU seconds (which other processes
on a shared machine do not inflate), and that process's peak memory.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from esa_scheduler.engine.calendars.ics_bounds import MAX_EVENTS, MAX_RULE_OCCURRENCES, RULE_SPAN_DAYS

REAL_EVENTS = 1300
FOLDED_MB = 8
RUNNER = """
import statistics, sys, time
from esa_scheduler.cli import main
times = []
for _ in range(int(sys.argv[2]) + 1):  # the first run imports what validate needs: not counted
    started = time.process_time()
    code = main(["validate", "--schedule", sys.argv[1]])
    times.append(time.process_time() - started)
peak = [line.split()[1] for line in open("/proc/self/status") if line.startswith("VmHWM:")][0]
print(f"took {statistics.median(times[1:])} {peak} {code}")
"""
SCHEDULE = """\
version: 1
timezone: Europe/Berlin
tasks:
  - name: access-logs
calendars:
  team: {ics: team.ics}
windows:
  - name: maintenance
    tasks: [access-logs]
    calendar: team
    summary: "Maintenance*"
"""
ZONE = [
    "BEGIN:VTIMEZONE",
    "TZID:Europe/Berlin",
    "X-LIC-LOCATION:Europe/Berlin",
    "BEGIN:DAYLIGHT",
    "TZOFFSETFROM:+0100",
    "TZOFFSETTO:+0200",
    "TZNAME:CEST",
    "DTSTART:19700329T020000",
    "RRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=-1SU",
    "END:DAYLIGHT",
    "BEGIN:STANDARD",
    "TZOFFSETFROM:+0200",
    "TZOFFSETTO:+0100",
    "TZNAME:CET",
    "DTSTART:19701025T030000",
    "RRULE:FREQ=YEARLY;BYMONTH=10;BYDAY=-1SU",
    "END:STANDARD",
    "END:VTIMEZONE",
]
HEAD = [
    "BEGIN:VCALENDAR",
    "PRODID:-//Google Inc//Google Calendar 70.9054//EN",
    "VERSION:2.0",
    "CALSCALE:GREGORIAN",
    "METHOD:PUBLISH",
    "X-WR-CALNAME:Platform team",
    "X-WR-TIMEZONE:Europe/Berlin",
    *ZONE,
]
SUMMARIES = ["Maintenance: edge upgrade", "Standup", "Maintenance: log pipeline", "1:1", "Planning", "Review"]


def fold(line: str) -> list[str]:
    """A content line cut at 75 octets (ASCII here), continued with a space, as exporters write."""
    return [line[:75]] + [" " + line[i : i + 74] for i in range(75, len(line), 74)]


def real_event(n: int) -> list[str]:
    """The nth event of the real-shaped calendar (deterministic: the same file every run)."""
    day = date(2020, 1, 6) + timedelta(days=(n * 3) % 2900)
    hour = 8 + n % 10
    uid = f"{n:05d}{'abcdef0123'[n % 10]}q7m2k9v3s1h@google.com"
    local = f"{day:%Y%m%d}T{hour:02d}{(n % 4) * 15:02d}00"
    end = f"{day:%Y%m%d}T{hour + 1:02d}{(n % 4) * 15:02d}00"
    lines = ["BEGIN:VEVENT"]
    if n % 40 == 0:  # an all-day holiday
        lines += [f"DTSTART;VALUE=DATE:{day:%Y%m%d}", f"DTEND;VALUE=DATE:{day + timedelta(days=1):%Y%m%d}"]
    else:
        lines += [f"DTSTART;TZID=Europe/Berlin:{local}", f"DTEND;TZID=Europe/Berlin:{end}"]
    if n % 12 == 1:  # a weekly series with exceptions
        lines.append(f"RRULE:FREQ=WEEKLY;UNTIL={day + timedelta(weeks=40):%Y%m%d}T215959Z;BYDAY=MO,WE")
        lines += [f"EXDATE;TZID=Europe/Berlin:{day + timedelta(weeks=w):%Y%m%d}T{local[9:]}" for w in (3, 7, 11)]
    elif n % 400 == 5:  # a daily one without end (a stand-up)
        lines.append("RRULE:FREQ=DAILY;BYDAY=MO,TU,WE,TH,FR")
    elif n % 12 == 2 and n > 2:  # a moved occurrence of the previous series
        lines.append(f"RECURRENCE-ID;TZID=Europe/Berlin:{local}")
    lines += [
        "DTSTAMP:20261201T101500Z",
        f"UID:{uid}",
        f"CREATED:{day - timedelta(days=30):%Y%m%d}T090000Z",
        f"LAST-MODIFIED:{day - timedelta(days=2):%Y%m%d}T171200Z",
        *fold(f"DESCRIPTION:Agenda for meeting {n}: " + "notes, links and dial-in details; " * (n % 9)),
        f"LOCATION:Room {n % 17}\\, Building B",
        f"SEQUENCE:{n % 3}",
        "STATUS:CANCELLED" if n % 53 == 0 else "STATUS:CONFIRMED",
        f"SUMMARY:{SUMMARIES[n % len(SUMMARIES)]} {n}",
        "TRANSP:OPAQUE",
        *fold(f"ORGANIZER;CN=Ops Team:mailto:ops-{n % 5}@example.com"),
    ]
    for a in range(n % 4):
        lines += fold(
            f"ATTENDEE;CUTYPE=INDIVIDUAL;ROLE=REQ-PARTICIPANT;PARTSTAT=ACCEPTED;CN=person{a}@example.com;"
            f"X-NUM-GUESTS=0:mailto:person{a}@example.com"
        )
    lines += ["BEGIN:VALARM", "ACTION:DISPLAY", "DESCRIPTION:This is an event reminder", "TRIGGER:-P0DT0H10M0S"]
    return [*lines, "END:VALARM", "END:VEVENT"]


def write(folder: Path, lines: list[str]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "team.ics").write_bytes(("\r\n".join(lines) + "\r\n").encode())
    (folder / "schedule.yaml").write_text(SCHEDULE)
    return folder / "schedule.yaml"


def real_shaped(folder: Path, events: int = REAL_EVENTS) -> Path:
    return write(folder, [*HEAD, *(line for n in range(events) for line in real_event(n)), "END:VCALENDAR"])


def folded_property(folder: Path) -> Path:
    """One event whose DESCRIPTION is 8 MB, folded into 112,000 lines."""
    text = "DESCRIPTION:" + "x" * (FOLDED_MB * 1024 * 1024)
    event = ["BEGIN:VEVENT", "UID:big@bench", "DTSTAMP:20261201T000000Z", "DTSTART:20270105T020000Z"]
    event += ["DURATION:PT1H", "SUMMARY:Maintenance", *fold(text), "END:VEVENT"]
    return write(folder, [*HEAD, *event, "END:VCALENDAR"])


def at_the_limits(folder: Path, count: int = MAX_EVENTS) -> Path:
    """``count`` real-shaped events, one-off ones, then hourly rules up to ``MAX_RULE_OCCURRENCES`` in
    ``RULE_SPAN_DAYS`` (their events make room for them)."""
    hourly = MAX_RULE_OCCURRENCES // (24 * RULE_SPAN_DAYS)
    events = [line for n in range(count - hourly) for line in real_event(n) if "RRULE" not in line]
    rules = []
    for n in range(hourly):
        rules += ["BEGIN:VEVENT", f"UID:hourly-{n}@bench", "DTSTAMP:20261201T000000Z", f"DTSTART:20260101T00{n:02d}00Z"]
        rules += ["DURATION:PT5M", "RRULE:FREQ=HOURLY", "SUMMARY:Maintenance: probe", "END:VEVENT"]
    return write(folder, [*HEAD, *events, *rules, "END:VCALENDAR"])


def validate(schedule: Path, runs: int) -> tuple[float, int]:
    """Median seconds of ``runs`` validations in one process, after one that imports what it needs,
    and the process's peak resident memory in MB (VmHWM: this process's own, whatever its parent's)."""
    out = subprocess.run(
        [sys.executable, "-c", RUNNER, str(schedule), str(runs)], capture_output=True, text=True, check=True
    ).stdout
    took, peak, code = out.strip().splitlines()[-1].split()[1:]
    if code != "0":
        raise RuntimeError(f"validate {schedule} exited {code}:\n{out}")
    return float(took), int(peak) // 1024


def figures(runs: int) -> list[dict[str, Any]]:
    with tempfile.TemporaryDirectory() as tmp:
        real = validate(real_shaped(Path(tmp) / "real"), runs)
        folded = validate(folded_property(Path(tmp) / "folded"), runs)
        limits = validate(at_the_limits(Path(tmp) / "limits"), runs)
    hourly = MAX_RULE_OCCURRENCES // (24 * RULE_SPAN_DAYS)
    return [
        {
            "figure": f"validate a real-shaped ICS of {REAL_EVENTS} events (Google export, 8 years)",
            "ours": f"{real[0]:.3f} s, {real[1]} MB",
            "target": "<= 1 s",
            "pass": real[0] <= 1,
        },
        {
            "figure": f"validate an ICS with one {FOLDED_MB} MB folded property",
            "ours": f"{folded[0]:.3f} s, {folded[1]} MB",
            "target": "<= 1 s",
            "pass": folded[0] <= 1,
        },
        {
            "figure": f"validate an ICS at the limits ({MAX_EVENTS} events, {hourly} of them hourly rules)",
            "ours": f"{limits[0]:.3f} s, {limits[1]} MB",
            "target": "<= 2 s, <= 200 MB",
            "pass": limits[0] <= 2 and limits[1] <= 200,
        },
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--json", action="store_true", help="print the figures as JSON (for make bench)")
    args = parser.parse_args()
    rows = figures(args.runs)
    if args.json:
        print(json.dumps(rows))
        return 0
    for row in rows:
        print(f"{row['figure']}: {row['ours']} (target {row['target']})")
    return 0 if all(row["pass"] for row in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
