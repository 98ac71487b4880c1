"""Planning with calendars: the plan benchmark's 10,000 tasks and 500 windows, of which 100 run
``only_on: [cn-workdays]`` (China's holidays and make-up workdays from the ``holidays`` package) and
10 are the events of one ICS calendar of 1,000 events (weekly series with EXDATEs and one-off events).

Side by side in one run: the same schedule without the calendars (the 110 windows keep their cron
and lose ``only_on``/``calendar``), so the figure shows what calendars add. Loading (reading and
checking the ICS file) is timed apart from planning. Prints medians.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

from plan_bench import inventory, shared, window_lines, write_schedule

from esa_scheduler.engine.schedule.load import load_schedule
from esa_scheduler.engine.schedule.model import Schedule

WORKDAY_WINDOWS = 100
ICS_WINDOWS = 10
ICS_EVENTS = 1000
HEAD = ["calendars:", "  cn-workdays: {country: CN, kind: workdays}", "  ops: {ics: ops.ics}"]


def calendar_window_lines(i: int) -> list[str]:
    """Windows 0-99 only on CN workdays, 100-109 the ICS calendar's events, the rest as in plan_bench."""
    lines = window_lines(i)
    if i < WORKDAY_WINDOWS:
        return [*lines, "    only_on: [cn-workdays]"]
    if i < WORKDAY_WINDOWS + ICS_WINDOWS:
        kept = [line for line in lines if not line.startswith(("    cron:", "    duration:"))]
        return [*kept, "    calendar: ops", f'    summary: "ops-{i % 2}*"']
    return lines


def write_ics(path: Path) -> None:
    """1,000 events: 100 weekly series (a few EXDATEs each) and 900 one-off events over 2027."""
    lines = ["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//esa-scheduler bench//EN"]
    first = date(2027, 1, 4)
    for n in range(ICS_EVENTS):
        day = first + timedelta(days=(n * 7) % 360)
        start = f"{day:%Y%m%d}T{n % 24:02d}{(n * 5) % 60:02d}00"
        lines += ["BEGIN:VEVENT", f"UID:ev-{n}@bench", f"SUMMARY:ops-{n % 2} event {n}"]
        lines += [f"DTSTART;TZID=Europe/Berlin:{start}", f"DURATION:PT{1 + n % 4}H"]
        if n % 10 == 0:
            skipped = day + timedelta(weeks=3)
            lines += ["RRULE:FREQ=WEEKLY", f"EXDATE;TZID=Europe/Berlin:{skipped:%Y%m%d}T{start[9:]}"]
        lines.append("END:VEVENT")
    lines.append("END:VCALENDAR")
    path.write_text("\r\n".join(lines) + "\r\n")


def build(folder: Path, calendars: bool) -> tuple[Schedule, float]:
    """The schedule and how long loading it took."""
    if calendars:
        write_ics(folder / "ops.ics")
        write_schedule(folder, calendar_window_lines, HEAD)
    else:
        write_schedule(folder)
    start = time.perf_counter()
    schedule = load_schedule(folder / "bench.yaml")
    return schedule, time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--json", action="store_true", help="print the figures as JSON (for make bench)")
    args = parser.parse_args()
    refs = inventory()
    plans: dict[bool, list[float]] = {True: [], False: []}
    loads: list[float] = []
    for _ in range(args.runs):
        for calendars in (True, False):
            with tempfile.TemporaryDirectory() as tmp:
                schedule, loaded = build(Path(tmp), calendars)
            if calendars:
                loads.append(loaded)
            start = time.perf_counter()
            shared(schedule, refs)
            plans[calendars].append(time.perf_counter() - start)
    ours, base, load = statistics.median(plans[True]), statistics.median(plans[False]), statistics.median(loads)
    figure = (
        f"plan {len(refs)} tasks x 500 windows, {WORKDAY_WINDOWS} only_on cn-workdays, "
        f"{ICS_WINDOWS} on an ICS of {ICS_EVENTS} events"
    )
    if args.json:
        print(
            json.dumps(
                [
                    {
                        "figure": figure,
                        "ours": f"{ours:.3f} s",
                        "baseline": f"{base:.3f} s (same windows, no calendars)",
                        "ratio": f"{ours / base:.2f}x",
                        "target": "<= 1.5 s",
                        "pass": ours <= 1.5,
                    },
                    {
                        "figure": f"load that schedule (read and check the {ICS_EVENTS}-event ICS)",
                        "ours": f"{load:.3f} s",
                        "target": "<= 1 s",
                        "pass": load <= 1,
                    },
                ]
            )
        )
        return 0
    print(f"{figure}: median of {args.runs} runs")
    print(f"with calendars     {ours:8.3f} s   (target <= 1.5 s)")
    print(f"without calendars  {base:8.3f} s")
    print(f"load (ICS checked) {load:8.3f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
