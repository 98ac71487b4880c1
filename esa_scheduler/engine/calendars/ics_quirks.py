"""How real producers bend RFC 5545, and how the reader takes each bend: read the way other iCalendar
libraries read it where the intent is plain, refused in one line where it is not (docs/schedule.md).

Outlook, Google, Lotus Notes and school-calendar exporters write files that ``icalendar`` and
``recurring-ical-events`` would misread without a word (a holiday moved by the zone it should not
have, a last occurrence lost, RDATE periods dropped) or trip over with a traceback. Each function
here handles one such bend, either on the file's content lines before ``icalendar`` reads them or
on the parsed components before they are expanded.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import datetime
from typing import TYPE_CHECKING

from esa_scheduler.engine.calendars.ics import aware
from esa_scheduler.timeutil import UTC, zone

if TYPE_CHECKING:
    from icalendar import Component

# properties whose value may be a DATE: Google writes ``DTSTART;TZID=America/Los_Angeles:20041225``
_DATED = frozenset({"DTSTART", "DTEND", "RECURRENCE-ID", "EXDATE", "RDATE"})
_DATES = re.compile(r"\d{8}(?:,\d{8})*")
_TZID_PARAM = re.compile(r';TZID=(?:"[^"]*"|[^;:]*)', re.IGNORECASE)
_NAME = re.compile(r"[^;:]*")


def zoned_dates(lines: list[tuple[int, str]]) -> list[tuple[int, str]] | None:
    """Date values that carry a TZID (RFC 5545 3.2.19 forbids it) rewritten as ``VALUE=DATE``, so that
    an all-day holiday stays the date it is, in the window's zone like every all-day event (read
    as written, a zone would make it midnight to midnight in Los Angeles); ``None`` when none do."""
    changed = False
    rewritten: list[tuple[int, str]] = []
    for number, line in lines:
        head, _, value = line.rpartition(":")
        name = _NAME.match(head)
        if (
            _DATES.fullmatch(value.strip())
            and name is not None
            and name.group().upper() in _DATED
            and _TZID_PARAM.search(head)
            and ";VALUE=" not in head.upper()
        ):
            changed = True
            rewritten.append(
                (number, f"{name.group()};VALUE=DATE{_TZID_PARAM.sub('', head[name.end() :])}:{value.strip()}")
            )
        else:
            rewritten.append((number, line))
    return rewritten if changed else None


def timezone_problems(lines: Iterable[tuple[int, str]]) -> list[str]:
    """A VTIMEZONE with several TZID lines (a school calendar export has one): which zone the events
    that name either mean cannot be guessed, and ``icalendar`` fails on it with a traceback."""
    problems: list[str] = []
    begun: int | None = None
    tzids: list[tuple[int, str]] = []
    for number, line in lines:
        upper = line[:15].upper()
        if upper.startswith("BEGIN:VTIMEZONE"):
            begun, tzids = number, []
        elif upper.startswith("END:VTIMEZONE") and begun is not None:
            if len(tzids) > 1:
                named = ", ".join(f"{tzid!r} (line {n})" for n, tzid in tzids)
                problems.append(f"line {begun}: VTIMEZONE has {len(tzids)} TZID lines: {named}; give it one")
            begun = None
        elif begun is not None and re.match("TZID[;:]", upper):
            tzids.append((number, line.partition(":")[2].strip()))
    return problems


def until_in_start_zone(event: Component) -> None:
    """A floating UNTIL beside a zoned DTSTART (RFC 5545 3.3.10 wants UTC there) read in DTSTART's zone,
    as other libraries read it: ``recurring-ical-events`` takes it as UTC, and west of Greenwich the
    last occurrence is lost."""
    start = event.decoded("DTSTART")
    if not aware(start):
        return
    rules = event.get("RRULE", [])
    for rule in rules if isinstance(rules, list) else [rules]:
        if "UNTIL" in rule:
            rule["UNTIL"] = [
                u.replace(tzinfo=start.tzinfo, fold=0).astimezone(UTC)
                if isinstance(u, datetime) and u.tzinfo is None
                else u
                for u in rule["UNTIL"]
            ]


def orphans_as_series(events: Iterable[Component]) -> None:
    """An override (RECURRENCE-ID) whose UID has no master in the file stands for the series itself:
    Lotus Notes writes a meeting's instances as RDATE periods on one ``RANGE=THISANDFUTURE`` override,
    and ``recurring-ical-events`` would keep only its first occurrence. When a UID has one such
    override it becomes the master, so that every RDATE period is an occurrence; several overrides
    of one UID without a master (single instances one was invited to) stay what they are."""
    masters: set[str] = set()
    orphans: dict[str, list[Component]] = {}
    for event in events:
        uid = str(event.get("UID", ""))
        if "RECURRENCE-ID" in event:
            orphans.setdefault(uid, []).append(event)
        else:
            masters.add(uid)
    for uid, overrides in orphans.items():
        if uid not in masters and len(overrides) == 1:
            overrides[0].pop("RECURRENCE-ID")


def overrides_over_exdates(events: Iterable[Component]) -> None:
    """An override keeps its occurrence when its master also lists that occurrence in EXDATE: Apple
    iCal writes both for an instance that was edited (moved, or given another summary), and
    ``recurring-ical-events`` would drop the edited instance with the excluded one. An instance meant
    to go away has no override, or one with ``STATUS:CANCELLED``."""
    named: dict[str, set[object]] = {}
    masters: list[Component] = []
    for event in events:
        if "RECURRENCE-ID" in event:
            named.setdefault(str(event.get("UID", "")), set()).add(event.decoded("RECURRENCE-ID"))
        else:
            masters.append(event)
    for master in masters:
        edited = named.get(str(master.get("UID", "")), set())
        exdates = master.get("EXDATE", []) if edited else []
        for exdate in exdates if isinstance(exdates, list) else [exdates]:
            exdate.dts = [value for value in exdate.dts if value.dt not in edited]


def calendar_zone_problem(calendar: Component, lines: Iterable[tuple[int, str]]) -> str | None:
    """An X-WR-TIMEZONE that cannot be the calendar's zone: Google and Apple write it, and the expansion
    reads the file's floating and UTC times in it, so an unknown zone, or two of them, cannot be
    guessed around (and ended in a traceback)."""
    value = calendar.get("X-WR-TIMEZONE")
    if value is None:
        return None
    number = next((n for n, line in lines if line[:14].upper() == "X-WR-TIMEZONE:"), 0)
    if isinstance(value, list):
        return f"line {number}: X-WR-TIMEZONE is given {len(value)} times (give the calendar one zone)"
    try:
        zone(str(value))
    except ValueError:
        return f"line {number}: X-WR-TIMEZONE: unknown zone {str(value)!r} (use an IANA name like Europe/Berlin)"
    return None
