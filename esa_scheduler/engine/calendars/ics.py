"""The events of an ICS file as windows use them: occurrences expanded by ``recurring-ical-events``, with
exact durations across DST changes."""

from __future__ import annotations

import functools
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from esa_scheduler.engine.calendars.dates import Calendar
from esa_scheduler.engine.cron import wall_to_instant
from esa_scheduler.engine.selectors import selector_matches
from esa_scheduler.timeutil import UTC

if TYPE_CHECKING:
    from icalendar import Component
    from recurring_ical_events import CalendarQuery

_QUERY_MARGIN = timedelta(days=2)
# each event's DURATION as written, copied with the event to every occurrence: the library keeps only
# a timedelta, in which PT24H and P1D are the same, though DST makes them differ
DURATION_AS_WRITTEN = "X-ESA-SCHEDULER-DURATION"


@dataclass(frozen=True)
class IcsEvent:
    """One occurrence of an ICS event as the library expands it: date, floating or aware bounds.

    ``end`` is a local value like ``start`` and ``exact`` elapsed time added to it as an instant: a
    DURATION's hours, minutes and seconds are exact time (RFC 5545 3.3.6), so they cannot be added on
    a wall clock that a DST change moves. ``fixed`` is the UTC interval when both bounds are aware
    (the same in every window's zone)."""

    start: date
    end: date
    summary: str
    uid: str
    fixed: tuple[datetime, datetime] | None = None
    exact: timedelta = timedelta(0)

    def interval(self, tz: ZoneInfo) -> tuple[datetime, datetime]:
        """[start, end) in UTC; floating and all-day values are wall clock in ``tz`` (the window's zone)."""
        return self.fixed or (_instant(self.start, tz), _instant(self.end, tz) + self.exact)

    def local_dates(self, tz: ZoneInfo) -> Iterator[date]:
        """The local dates the event touches; an all-day event's end date is exclusive (RFC 5545)."""
        begin, finish = self.interval(tz)
        first = begin.astimezone(tz).date()
        last = (finish - timedelta(microseconds=1)).astimezone(tz).date() if finish > begin else first
        for n in range((last - first).days + 1):
            yield first + timedelta(days=n)

    def label(self) -> str:
        """How ``plan`` names the event that makes a window active."""
        return f'"{self.summary}" (uid {self.uid})'


def aware(value: date) -> bool:
    """Whether an ICS value is an instant (TZID or Z) rather than a date or a floating wall time."""
    return isinstance(value, datetime) and value.tzinfo is not None


def _instant(value: date, tz: ZoneInfo) -> datetime:
    """An ICS value as an instant; floating and all-day values are wall clock in ``tz``.

    A floating time reads like a TZID one (RFC 5545 3.3.5): in a DST gap with the offset before the
    gap, when repeated its first pass (``fold=0`` is both). An all-day date begins when the clock
    first shows it, the start of the local day."""
    if not isinstance(value, datetime):
        return wall_to_instant(datetime.combine(value, time()), tz)[0]
    if value.tzinfo is None:
        value = value.replace(tzinfo=tz, fold=0)
    return value.astimezone(UTC)


class IcsCalendar(Calendar):
    """An RFC 5545 file: its events drive ``calendar:`` windows, its dates filter ``skip``/``only_on``."""

    def __init__(
        self, name: str, origin: str, path: Path, query: CalendarQuery, warnings: tuple[str, ...] = ()
    ) -> None:
        super().__init__(name, origin)
        self.path = path
        self.query = query
        self.warnings = warnings
        """What ``validate`` and ``plan`` warn about the file: malformed properties set aside, one line
        each, naming the file."""
        self._spans: dict[tuple[datetime, datetime], list[IcsEvent]] = {}
        self._dates: dict[tuple[str, int], frozenset[date]] = {}

    def events(self, begin: datetime, end: datetime) -> list[IcsEvent]:
        """Occurrences that may overlap [begin, end] in any zone (cached: windows share one expansion).

        ``STATUS:CANCELLED`` occurrences are left out; EXDATE, RDATE and RECURRENCE-ID overrides are
        the library's work."""
        key = (begin, end)
        found = self._spans.get(key)
        if found is None:
            components = self.query.between(begin - _QUERY_MARGIN, end + _QUERY_MARGIN)
            kept = [c for c in components if str(c.get("STATUS", "")).upper() != "CANCELLED"]
            found = self._spans[key] = [_event(c) for c in kept]
        return found

    def contains(self, day: date, tz: ZoneInfo) -> bool:
        """Whether an event touches local date ``day`` in ``tz``."""
        key = (tz.key, day.year)
        members = self._dates.get(key)
        if members is None:
            begin = datetime(day.year, 1, 1, tzinfo=UTC)
            events = self.events(begin, begin.replace(year=day.year + 1))
            members = frozenset(d for e in events for d in e.local_dates(tz) if d.year == day.year)
            self._dates[key] = members
        return day in members


def _event(component: Component) -> IcsEvent:
    """An expanded occurrence; for an event with DURATION, the end the library computed on the wall
    clock is redone with the duration as written: days and weeks on the wall clock, the rest elapsed.

    The library's end is kept when it is not start + DURATION: an RDATE period has its own end."""
    start = component.decoded("DTSTART")
    end = component.decoded("DTEND") if "DTEND" in component else start
    exact = timedelta(0)
    written = component.get(DURATION_AS_WRITTEN)
    if written is not None:
        nominal, elapsed = _duration_parts(str(written))
        if end == start + nominal + elapsed:
            end, exact = start + nominal, elapsed
    fixed = (start.astimezone(UTC), end.astimezone(UTC) + exact) if aware(start) and aware(end) else None
    return IcsEvent(start, end, str(component.get("SUMMARY", "")), str(component.get("UID", "")), fixed, exact)


@functools.lru_cache(maxsize=1024)
def _duration_parts(written: str) -> tuple[timedelta, timedelta]:
    """A DURATION value split into its nominal part (weeks and days) and its exact part (after ``T``);
    cached, as every occurrence of an event asks again."""
    from icalendar import vDuration

    days, _, time_part = written.partition("T")
    nominal: timedelta = vDuration.from_ical(days)  # type: ignore[no-untyped-call]
    exact: timedelta = vDuration.from_ical(f"PT{time_part}") if time_part else timedelta(0)  # type: ignore[no-untyped-call]
    return nominal, exact


def summary_matches(pattern: str | None, event: IcsEvent) -> bool:
    """A window's ``summary`` glob (case-sensitive, like task selectors); no glob keeps every event."""
    return pattern is None or selector_matches(pattern, event.summary)
