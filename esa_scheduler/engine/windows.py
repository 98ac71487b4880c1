"""The window engine: when is a window active, and where are the edges of its activity.

A window's occurrences form one stream: it is active at T when its latest start at or before T
has not ended yet (a ``calendar:`` window's events instead simply unite: a short event inside a long
one does not cut it short). Occurrences are kept or dropped by the local date they start on
(``skip_dates``, ``active_from``/``active_until``, ``skip``/``only_on`` calendars); a rejected date
moves the cron scan on to the next local day, so that ``only_on`` a sparse calendar stays cheap.
A ``Timeline`` turns that stream into sorted, disjoint active intervals,
computed lazily from the evaluation instant and cached, so that every task selected by the same
window shares one computation (the planner depends on this for speed).
"""

from __future__ import annotations

import bisect
from collections.abc import Iterator
from datetime import date, datetime, time, timedelta
from typing import TYPE_CHECKING

from esa_scheduler.engine.cron import wall_to_instant
from esa_scheduler.engine.schedule.model import Window
from esa_scheduler.timeutil import UTC

if TYPE_CHECKING:  # ICS events exist only for a schedule with an ICS calendar
    from esa_scheduler.engine.calendars.ics import IcsEvent

FAR_FUTURE = datetime(9999, 1, 1, tzinfo=UTC)
EVENT_CHUNK = timedelta(days=31)
Interval = tuple[datetime, datetime]


class Timeline:
    """Active intervals of one window from (and including the one covering) ``origin``."""

    def __init__(self, window: Window, origin: datetime, horizon: datetime) -> None:
        self.window = window
        self.origin = origin
        self.horizon = horizon
        self._starts: list[datetime] = []
        self._ends: list[datetime] = []
        self._source = self._intervals()
        self._done = False
        self._events: list[tuple[datetime, datetime, IcsEvent]] = []
        self._slices: list[tuple[int, int]] = []

    def _happens(self, start: datetime) -> bool:
        local_day = start.astimezone(self.window.tz).date()
        w = self.window
        if w.active_from is not None and local_day < w.active_from:
            return False
        if w.active_until is not None and local_day > w.active_until:
            return False
        if local_day in w.skip_dates or (w.skip and any(c.contains(local_day, w.tz) for c in w.skip)):
            return False
        return not w.only_on or all(c.contains(local_day, w.tz) for c in w.only_on)

    def _next_allowed_day(self, start: datetime) -> datetime | None:
        """The first instant of the next local day after ``start``'s that ``only_on`` may allow
        (a sparse date calendar skips its gaps), or ``None`` when it allows no later day."""
        tz = self.window.tz
        following: date | None = start.astimezone(tz).date() + timedelta(days=1)
        for calendar in self.window.only_on:
            following = calendar.next_on_or_after(following, tz) if following is not None else None
        if following is None:
            return None
        return wall_to_instant(datetime.combine(following, time()), tz)[0]

    def _floor(self) -> datetime | None:
        """Starts before this instant ended before ``origin``: the backward scan can stop there."""
        w = self.window
        if w.duration is not None:
            return self.origin - w.duration
        assert w.end_cron is not None
        return next(w.end_cron.at_or_before(self.origin, w.tz), None)

    def _end_of(self, start: datetime) -> datetime:
        w = self.window
        if w.duration is not None:
            return start + w.duration
        assert w.end_cron is not None
        return next(w.end_cron.after(start, w.tz), FAR_FUTURE)

    def _latest_start(self) -> datetime | None:
        w = self.window
        assert w.cron is not None
        probe = self.origin
        if w.active_until is not None:
            day_after = datetime.combine(w.active_until + timedelta(days=2), time(), tzinfo=w.tz)
            probe = min(probe, day_after.astimezone(UTC))
        floor = self._floor()
        for start in w.cron.at_or_before(probe, w.tz):
            local_day = start.astimezone(w.tz).date()
            if (w.active_from is not None and local_day < w.active_from) or (floor is not None and start < floor):
                return None
            if self._happens(start):
                return start
        return None

    def _starts_from(self) -> Iterator[datetime]:
        w = self.window
        assert w.cron is not None
        first = self._latest_start()
        if first is not None:
            yield first
        origin = first or self.origin
        if w.active_from is not None:
            opening = datetime.combine(w.active_from, time(), tzinfo=w.tz).astimezone(UTC)
            origin = max(origin, opening - timedelta(seconds=1))
        starts = w.cron.after(origin, w.tz)
        start = next(starts, None)
        while start is not None:
            if start > self.horizon or (w.active_until is not None and start.astimezone(w.tz).date() > w.active_until):
                return
            if self._happens(start):
                yield start
                start = next(starts, None)
                continue
            following = next(starts, None)
            day_end = self._next_allowed_day(start)
            if day_end is None:  # an only_on calendar holds no later date: no start ever happens again
                return
            if following is not None and following < day_end:  # more starts before that day: jump past them
                starts = w.cron.after(day_end - timedelta(microseconds=1), w.tz)
                following = next(starts, None)
            start = following

    def _events_from(self) -> Iterator[tuple[datetime, datetime, IcsEvent]]:
        """A ``calendar:`` window's events that end after ``origin``, in start order, expanded a month
        first (the planner rarely needs more to find the next edge), then in spans that double: every
        expansion walks every event of the calendar, so 400 days take five instead of thirteen."""
        from esa_scheduler.engine.calendars.ics import summary_matches

        w = self.window
        assert w.events is not None
        done: datetime | None = None
        chunk = EVENT_CHUNK
        while done is None or done < self.horizon:
            begin = done or self.origin
            end = min(begin + chunk, self.horizon)
            chunk *= 2
            found = []
            for event in w.events.events(begin, end):
                start, finish = event.interval(w.tz)
                ours = start <= end and (done is None or start > done) and self.origin < finish and start < finish
                if ours and summary_matches(w.summary, event) and self._happens(start):
                    found.append((start, finish, event))
            yield from sorted(found, key=lambda item: (item[0], item[1]))
            done = end

    def _event_intervals(self) -> Iterator[Interval]:
        """The union of the events' [start, end): an event inside a longer one does not cut it short."""
        current: Interval | None = None
        first = 0
        for start, end, event in self._events_from():
            self._events.append((start, end, event))
            if current is not None and start <= current[1]:
                current = (current[0], max(current[1], end))
                continue
            if current is not None:
                self._slices.append((first, len(self._events) - 1))
                yield current
            first = len(self._events) - 1
            current = (start, end)
        if current is not None:
            self._slices.append((first, len(self._events)))
            yield current

    def _intervals(self) -> Iterator[Interval]:
        w = self.window
        if w.start is not None and w.end is not None:
            yield (w.start, w.end)
            return
        if w.events is not None:
            yield from self._event_intervals()
            return
        current: Interval | None = None
        for start in self._starts_from():
            end = self._end_of(start)
            if current is None:
                current = (start, end)
            elif start <= current[1]:
                current = (current[0], end)
            else:
                yield current
                current = (start, end)
        if current is not None:
            yield current

    def _extend(self, until: datetime) -> None:
        while not self._done and (not self._starts or self._starts[-1] <= until):
            interval = next(self._source, None)
            if interval is None:
                self._done = True
                return
            self._starts.append(interval[0])
            self._ends.append(interval[1])

    def active_at(self, instant: datetime) -> bool:
        """Whether the window is active at ``instant`` (half-open intervals)."""
        self._extend(instant)
        i = bisect.bisect_right(self._starts, instant) - 1
        return i >= 0 and instant < self._ends[i]

    def label(self, instant: datetime) -> str:
        """How ``plan`` names this window among the matches at ``instant`` (while it is active there):
        ``window:<name>``, and for a ``calendar:`` window the SUMMARY and UID of the events in force
        (only the events of the active interval are looked at: ``_slices`` lines them up)."""
        name = f"window:{self.window.name}"
        if not self._slices:
            return name
        i = bisect.bisect_right(self._starts, instant) - 1
        first, last = self._slices[i] if 0 <= i < len(self._slices) else (0, 0)
        events = [event.label() for start, end, event in self._events[first:last] if start <= instant < end]
        return name + (f": {'; '.join(events)}" if events else "")

    def next_edge(self, instant: datetime) -> datetime | None:
        """The first instant after ``instant`` at which this window starts or stops being active."""
        self._extend(instant)
        i = bisect.bisect_right(self._starts, instant) - 1
        if i >= 0 and instant < self._ends[i]:
            end = self._ends[i]
            return end if end < FAR_FUTURE else None
        self._extend(instant + timedelta(microseconds=1))
        i += 1
        return self._starts[i] if i < len(self._starts) else None

    def intervals_between(self, begin: datetime, finish: datetime) -> list[Interval]:
        """Active intervals that overlap [begin, finish), clipped to it."""
        self._extend(finish)
        return [
            (max(a, begin), min(b, finish))
            for a, b in zip(self._starts, self._ends, strict=True)
            if a < finish and b > begin
        ]
