"""Warnings about a valid schedule that probably does not do what its author meant.

They never fail validation: a window that will not occur for a year may be deliberate, but an
operator should hear about it before relying on it.
"""

from __future__ import annotations

from datetime import datetime
from itertools import combinations

from esa_scheduler.engine.planner import SEARCH_HORIZON
from esa_scheduler.engine.schedule.model import Schedule, Window
from esa_scheduler.engine.selectors import selectors_overlap
from esa_scheduler.engine.targets import applies_to
from esa_scheduler.engine.windows import Interval, Timeline
from esa_scheduler.timeutil import utc_iso


def _may_share_tasks(a: Window, b: Window) -> bool:
    return any(selectors_overlap(x, y) for x in a.selectors for y in b.selectors)


def _share_a_target(schedule: Schedule, a: Window, b: Window) -> bool:
    """Windows whose ``targets:`` select no common target never meet in one target's plan."""
    return not schedule.targets or any(applies_to(a, t.name) and applies_to(b, t.name) for t in schedule.targets)


def _overlap(left: list[Interval], right: list[Interval]) -> Interval | None:
    i = j = 0
    while i < len(left) and j < len(right):
        start = max(left[i][0], right[j][0])
        end = min(left[i][1], right[j][1])
        if start < end:
            return (start, end)
        if left[i][1] <= right[j][1]:
            i += 1
        else:
            j += 1
    return None


def schedule_warnings(schedule: Schedule, now: datetime) -> list[str]:
    """One line per suspicious window, naming its file and name."""
    limit = now + SEARCH_HORIZON
    spans = {w.name: Timeline(w, now, limit).intervals_between(now, limit) for w in schedule.windows}
    lines = [
        f"{w.origin}: window {w.name!r}: warning: never active in the next {SEARCH_HORIZON.days} days"
        for w in schedule.windows
        if not spans[w.name]
    ]
    lines.extend(calendar_warnings(schedule, now, limit))
    for a, b in combinations(schedule.windows, 2):
        if a.status == b.status or a.priority != b.priority or not _may_share_tasks(a, b):
            continue
        if not _share_a_target(schedule, a, b):
            continue
        both = _overlap(spans[a.name], spans[b.name])
        if both is not None:
            lines.append(
                f"{a.origin}: window {a.name!r}: warning: overlaps window {b.name!r} ({b.origin}) "
                f"at equal priority {a.priority} with a different status (from {utc_iso(both[0])}); "
                "offline wins the tie"
            )
    return lines


def calendar_warnings(schedule: Schedule, begin: datetime, end: datetime) -> list[str]:
    """Calendars in use that windows should not be trusted with blindly: country calendars for each
    year from ``begin`` to ``end`` whose dates their library does not know or only guesses, and ICS
    files with malformed properties that were set aside. ``validate`` warns about the coming 400 days,
    ``plan`` about the ones it looks at; a timed run says nothing, and plans with what it has."""
    used = {id(c): c for w in schedule.windows for c in (*w.skip, *w.only_on, *([w.events] if w.events else []))}
    if not used:
        return []  # the calendar modules load only for a schedule that uses calendars
    from esa_scheduler.engine.calendars.country import CountryCalendar
    from esa_scheduler.engine.calendars.ics import IcsCalendar

    years = range(begin.year, end.year + 1)
    lines = [
        f"{c.origin}: calendars.{c.name}: warning: {text}"
        for c in used.values()
        if isinstance(c, CountryCalendar)
        for text in c.year_warnings(years)
    ]
    lines.extend(line for c in used.values() if isinstance(c, IcsCalendar) for line in c.warnings)
    return lines
