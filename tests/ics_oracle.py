"""An independent expansion of an ICS file, for the corpus tests (tests/test_ics_corpus.py).

allenporter's ``ical`` (a dev-only dependency, neither ``icalendar`` nor ``recurring-ical-events``)
parses the file, its VTIMEZONEs and its rules and expands each event; this module then applies the
project's documented rules (docs/schedule.md) to what it expands, so that the two can be compared
interval for interval:

- all-day and floating values are wall time in the window's zone (all-day: local midnight to
  midnight), aware ones are instants;
- ``STATUS:CANCELLED`` events and occurrences are left out, and events of no length are not intervals;
- overlapping or touching events unite, and the result is clipped to the range asked for.

Two RFC 5545 rules ``ical`` 8.3 does not apply are applied here, as every reader must:

- an override (RECURRENCE-ID) replaces the occurrence of its master that it names (``ical`` lists
  both), matched as RFC 5545 3.8.4.4 says: a date with a date, a UTC time as an instant, a time with
  a TZID by its wall clock in the master's zone;
- DTSTART is the first occurrence of an event with RDATE and no RRULE (3.8.5.2; ``ical`` expands
  only the RDATE list).

Everything else is ``ical``'s own reading: where it differs, the corpus test names the difference.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime, timezone
from zoneinfo import ZoneInfo

from ical.calendar_stream import IcsCalendarStream
from ical.event import Event
from ical.timespan import Timespan
from ical.types.recur import RecurrenceId

Interval = tuple[datetime, datetime]
UTC = timezone.utc
Instance = date | datetime


def oracle_intervals(text: str, tz: ZoneInfo, begin: datetime, end: datetime) -> list[Interval]:
    """The window's intervals in [begin, end) as ``ical`` expands the file, after the rules above."""
    calendar = IcsCalendarStream.calendar_from_ics(text)
    masters = {event.uid for event in calendar.events if event.recurrence_id is None}
    replaced: dict[str | None, list[Instance]] = {}
    for event in calendar.events:
        if event.recurrence_id is not None and event.uid in masters:
            replaced.setdefault(event.uid, []).append(RecurrenceId.to_value(event.recurrence_id))
    spans: list[Interval] = []
    for event in calendar.events:
        if str(event.status or "").upper().endswith("CANCELLED"):
            continue
        for start in _starts(event):
            span = Timespan.of(start, start + event.computed_duration, tz)
            # in UTC at once: every offset the oracle computes from a VTIMEZONE walks its rules from 1601
            first, last = span.start.astimezone(UTC), span.end.astimezone(UTC)
            if event.rrule and first >= end:
                break
            if event.recurrence_id is None and any(_names(rid, start) for rid in replaced.get(event.uid, [])):
                continue
            spans.append((first, last))
    return _united(spans, begin, end)


def _starts(event: Event) -> Iterator[Instance]:
    """The event's occurrence starts, in order when it has an RRULE (else a finite list)."""
    rule = event.as_rrule()
    if rule is None:
        yield event.dtstart
        return
    if not event.rrule and event.dtstart not in event.exdate and event.dtstart not in event.rdate:
        yield event.dtstart
    yield from rule


def _names(rid: Instance, start: Instance) -> bool:
    """Whether an override's RECURRENCE-ID names the master's occurrence starting at ``start``."""
    if not isinstance(rid, datetime):
        return not isinstance(start, datetime) and start == rid
    if not isinstance(start, datetime):
        return False
    if rid.tzinfo is not None:
        return start.tzinfo is not None and start == rid
    return start.replace(tzinfo=None) == rid


def _united(spans: list[Interval], begin: datetime, end: datetime) -> list[Interval]:
    """Overlapping or touching spans as one, those of no length dropped, clipped to [begin, end)."""
    united: list[Interval] = []
    for start, finish in sorted(s for s in spans if s[0] < s[1]):
        if united and start <= united[-1][1]:
            united[-1] = (united[-1][0], max(united[-1][1], finish))
        else:
            united.append((start, finish))
    return [(max(a, begin), min(b, end)) for a, b in united if a < end and b > begin]
