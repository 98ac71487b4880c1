"""``plan --ics``: the coming maintenance as an RFC 5545 calendar that people can subscribe to.

One VEVENT per interval in which tasks are away from their default state, tasks that share the
interval in one event. The UID hashes what identifies the occurrence (desired state, tasks, and
the interval's end, which no later export moves, unlike a start cut at the export instant), so
re-exporting updates events in calendar apps instead of duplicating them. Written by hand: the format is small, and this
keeps the runtime free of a calendar library; the tests parse it back with ``icalendar``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from esa_scheduler.engine.planner import Planner
from esa_scheduler.engine.schedule import Schedule
from esa_scheduler.invocation.holds import Hold
from esa_scheduler.timeutil import UTC
from esa_scheduler.views.rows import Row, build_rows, source_words, view_tasks

PRODID = "-//esa-scheduler//plan --ics//EN"
NAMES_IN_SUMMARY = 3
FOLD_AT = 75


def _stamp(instant: datetime) -> str:
    return instant.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def _text(value: str) -> str:
    """RFC 5545 TEXT escaping (section 3.3.11)."""
    return value.replace("\\", "\\\\").replace(";", "\\;").replace(",", "\\,").replace("\n", "\\n")


def _fold(line: str) -> Iterator[str]:
    """Content lines of at most 75 octets, continued with a leading space, never splitting a character."""
    chunk, size = "", 0
    for char in line:
        width = len(char.encode("utf-8"))
        if size + width > FOLD_AT:
            yield chunk
            chunk, size = " ", 1
        chunk += char
        size += width
    yield chunk


def _local_span(start: datetime, end: datetime, tz: ZoneInfo) -> str:
    return f"{start.astimezone(tz):%Y-%m-%d %H:%M %Z} - {end.astimezone(tz):%Y-%m-%d %H:%M %Z} ({tz.key})"


@dataclass(frozen=True)
class Away:
    """A stretch in which tasks are away from their default state, and the sources that keep them there."""

    start: datetime
    end: datetime | None
    desired: str
    sources: tuple[str, ...]


def away_intervals(row: Row, until: datetime) -> list[Away]:
    """Consecutive segments with the same non-default state merge: a weekend freeze that a nightly
    window interrupts is still one stretch offline, so it is one event."""
    found: list[Away] = []
    for segment in row.segments:
        state = segment.state
        if state.desired == row.task.default_status or segment.start >= until:
            continue
        last = found[-1] if found else None
        if last is not None and last.end == segment.start and last.desired == state.desired:
            sources = last.sources if state.source in last.sources else (*last.sources, state.source)
            found[-1] = Away(last.start, segment.end, state.desired, sources)
        else:
            found.append(Away(segment.start, segment.end, state.desired, (state.source,)))
    return found


def _event(away: Away, labels: list[str], until: datetime, tz: ZoneInfo, stamp: str) -> list[str]:
    end = away.end or until
    identity = "\n".join([away.desired, _stamp(away.end or away.start), *labels])
    uid = hashlib.sha256(identity.encode("utf-8")).hexdigest()[:32]
    shown = ", ".join(labels[:NAMES_IN_SUMMARY])
    if len(labels) > NAMES_IN_SUMMARY:
        shown += f" and {len(labels) - NAMES_IN_SUMMARY} more"
    why = ", ".join(source_words(source) for source in away.sources)
    description = (
        f"{_local_span(away.start, end, tz)}\n{away.desired} because of: {', '.join(away.sources)}\n"
        f"tasks ({len(labels)}): {', '.join(labels)}"
    )
    return [
        "BEGIN:VEVENT",
        f"UID:{uid}@esa-scheduler",
        f"DTSTAMP:{stamp}",
        f"DTSTART:{_stamp(away.start)}",
        f"DTEND:{_stamp(end)}",
        _text_property("SUMMARY", f"{away.desired}: {shown} ({why})"),
        _text_property("DESCRIPTION", description),
        f"CATEGORIES:{away.desired.upper()}",
        "TRANSP:TRANSPARENT",
        "END:VEVENT",
    ]


def _text_property(name: str, value: str) -> str:
    return f"{name}:{_text(value)}"


def render_ics(
    schedule_path: str, schedule: Schedule, at: datetime, days: int, names: Sequence[str], holds: Sequence[Hold]
) -> str:
    """The calendar of the next ``days`` days from ``at``, CRLF line endings, deterministic for one input.

    An interval already under way at ``at`` starts at ``at``; one that runs past the horizon keeps
    its real end. ``DTSTAMP`` is ``at``, so the same export is byte for byte the same file.
    """
    until = at + timedelta(days=days)
    planner = Planner(schedule, at, holds)
    rows = build_rows(planner, view_tasks(schedule, names), until)
    groups: dict[Away, list[str]] = {}
    for row in rows:
        for away in away_intervals(row, until):
            groups.setdefault(away, []).append(row.label)
    stamp = _stamp(at)
    tz = schedule.timezone
    lines = [
        "BEGIN:VCALENDAR",
        "VERSION:2.0",
        f"PRODID:{PRODID}",
        "CALSCALE:GREGORIAN",
        "METHOD:PUBLISH",
        _text_property("X-WR-CALNAME", f"esa-scheduler: {schedule_path}"),
    ]
    for away in sorted(groups, key=lambda a: (a.start, a.sources)):
        lines += _event(away, sorted(groups[away]), until, tz, stamp)
    lines.append("END:VCALENDAR")
    return "".join(folded + "\r\n" for line in lines for folded in _fold(line))
