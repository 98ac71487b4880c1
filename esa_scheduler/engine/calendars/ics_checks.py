"""What an ICS event must satisfy before its occurrences are used: a bounded rule, a known zone, an end
the library would not silently move."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from esa_scheduler.engine.calendars.ics import aware

if TYPE_CHECKING:
    from icalendar import Component

MAX_OCCURRENCES_PER_DAY = 24
_TOO_FREQUENT = frozenset({"SECONDLY", "MINUTELY"})
# what decides when an event happens (SUMMARY: whether a window's glob takes it); a problem with any
# other property cannot move an interval, so it is a warning and the property is set aside
SHAPING = frozenset(
    {"DTSTART", "DTEND", "DURATION", "RRULE", "RDATE", "EXDATE", "EXRULE", "RECURRENCE-ID", "STATUS", "UID", "SUMMARY"}
)
# of those, the ones RFC 5545 allows once per VEVENT: a second one is not a choice to guess at
_SHAPING_ONCE = ("UID", "DTSTART", "DTEND", "DURATION", "RECURRENCE-ID", "STATUS", "SUMMARY")
OTHER_ONCE = frozenset(
    {"DTSTAMP", "SEQUENCE", "CLASS", "CREATED", "DESCRIPTION", "GEO", "LAST-MODIFIED", "LOCATION", "ORGANIZER"}
    | {"PRIORITY", "TRANSP", "URL"}
)


@dataclass(frozen=True)
class Written:
    """A VEVENT as the file writes it: the line it begins on, and its own DTSTART, DTEND and DURATION
    lines (messages quote them as written; icalendar keeps only their values)."""

    line: int
    props: dict[str, str]


def set_aside(event: Component) -> list[tuple[str, str]]:
    """The event's malformed or repeated properties that cannot change when it happens (a Google export
    writes ``CREATED:00001231T000000Z``), as (property, what is wrong): each is dropped, or kept once,
    so that no library trips on it later, and is worth a warning, not a refused file."""
    found: list[tuple[str, str]] = []
    for prop, message in getattr(event, "errors", []):
        if prop is not None and prop.upper() not in SHAPING:
            found.append((prop.upper(), message))
            event.pop(prop, None)
    for prop in sorted(OTHER_ONCE):
        value = event.get(prop)
        if isinstance(value, list):
            found.append((prop, f"given {len(value)} times (RFC 5545 allows it once; the first is kept)"))
            event[prop] = value[0]
    return found


def event_problem(event: Component, written: Written) -> str | None:
    """The first thing wrong with one event as written, or ``None``: a property that decides its
    interval given twice, the library's own parse errors, rules too frequent to expand, unknown zones,
    then the event's bounds. Properties that cannot change the interval are ``set_aside`` first."""
    for prop in _SHAPING_ONCE:
        value = event.get(prop)
        if isinstance(value, list):
            return f"{prop} is given {len(value)} times (RFC 5545 allows it once; keep the right one)"
    errors = [(p, m) for p, m in getattr(event, "errors", []) if p is None or p.upper() in SHAPING]
    if errors:
        prop, message = errors[0]
        return f"RRULE refused: {message}" if prop == "RRULE" else f"{prop}: {message}"
    if "DTSTART" not in event:
        return "DTSTART is missing"
    rules = event.get("RRULE", [])
    for rule in rules if isinstance(rules, list) else [rules]:
        text = rule.to_ical().decode()
        # RFC 5545 wants a positive INTERVAL (the expansion loops forever on 0), and a maintenance
        # calendar has no use for a rule that makes hundreds of thousands of occurrences a year
        intervals = rule.get("INTERVAL", [1])
        if any(not isinstance(n, int) or n < 1 for n in intervals):
            return f"RRULE refused: INTERVAL must be a positive integer ({text})"
        frequency = {str(f).upper() for f in rule.get("FREQ", [])}
        if frequency & _TOO_FREQUENT:
            return f"RRULE refused: FREQ=SECONDLY and FREQ=MINUTELY are not supported ({text})"
        per_day = _occurrences_per_day("HOURLY" in frequency, intervals[0], rule)
        if per_day > MAX_OCCURRENCES_PER_DAY:
            return f"RRULE refused: up to {per_day} occurrences a day, more than {MAX_OCCURRENCES_PER_DAY} ({text})"
    for prop in ("DTSTART", "DTEND"):
        value = event.get(prop)
        tzid = value.params.get("TZID") if value is not None else None
        if tzid and getattr(event.decoded(prop), "tzinfo", None) is None:
            return f"{prop}: unknown TZID {tzid!r}"
    return _bounds_problem(event, written.props)


def _occurrences_per_day(hourly: bool, interval: int, rule: Mapping[str, list[Any]]) -> int:
    """At most how many occurrences a rule makes on one day: it is what expanding a year costs (the
    planner and ``validate`` look 400 days ahead), and FREQ alone does not bound it.

    An HOURLY rule steps through at most one hour in INTERVAL (and only those BYHOUR names); a DAILY or
    coarser one picks at most one day a day, on the hours BYHOUR names (the start's without it).
    BYMINUTE and BYSECOND multiply each hour. MINUTELY and SECONDLY rules are refused before this."""
    named = len(set(rule.get("BYHOUR", [])))
    stepped = -(-24 // interval)
    hours = (min(named, stepped) if named else stepped) if hourly else max(named, 1)
    return hours * max(len(set(rule.get("BYMINUTE", []))), 1) * max(len(set(rule.get("BYSECOND", []))), 1)


def _bounds_problem(event: Component, shown: Mapping[str, str]) -> str | None:
    """An end the library would silently move, drop or reinterpret (RFC 5545 3.6.1, 3.8.2.2, 3.8.2.5).

    Each is an error, not a warning: the event as the file writes it cannot be used as it stands
    (a negative DURATION starts earlier, an end before the start vanishes, a date-time end of an
    all-day event or a floating start with a UTC end changes its length or its zone)."""
    start = event.decoded("DTSTART")
    if not isinstance(start, date):
        return f"{shown['DTSTART']} is not a date or a date-time"
    kind = "date-time" if isinstance(start, datetime) else "date"
    if "DTEND" in event and "DURATION" in event:
        return "give DTEND or DURATION, not both"
    if "DURATION" in event:
        duration = event.decoded("DURATION")
        if not isinstance(duration, timedelta):
            return f"{shown['DURATION']} is not a duration (like PT2H or P1D)"
        if duration < timedelta(0):
            return f"{shown['DURATION']} is negative"
        if kind == "date" and duration % timedelta(days=1):
            return f"{shown['DTSTART']} is a date, so DURATION must be whole days or weeks ({shown['DURATION']})"
    if "DTEND" in event:
        end = event.decoded("DTEND")
        if not isinstance(end, date):
            return f"{shown['DTEND']} is not a date or a date-time"
        if isinstance(end, datetime) != isinstance(start, datetime):
            return f"{shown['DTSTART']} is a {kind}, so DTEND must be a {kind} too ({shown['DTEND']})"
        if aware(start) != aware(end):
            if aware(start):
                return f"{shown['DTSTART']} has a zone (TZID or Z), so DTEND must have one too ({shown['DTEND']})"
            return f"{shown['DTSTART']} is floating (no TZID, no Z), so DTEND must be floating too ({shown['DTEND']})"
        if end < start:
            return f"{shown['DTEND']} is before {shown['DTSTART']}"
    return None
