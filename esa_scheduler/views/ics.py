"""``plan --ics``: the coming maintenance as an RFC 5545 calendar that people can subscribe to.

One VEVENT per interval in which tasks are away from their default state, tasks that share the
interval in one event. Each event is the whole occurrence: DTSTART is its real start (an interval
already under way at ``--at`` is looked up back to where it began) and DTEND its real end, so the
UID can hash what identifies the occurrence (fleet target, desired state, real start and sources;
never the tasks or the export instant), and re-exporting updates events in calendar apps instead
of duplicating them. The events are written by hand (the format is small; the tests parse them back
with ``icalendar``); the VTIMEZONE of the schedule's zone is ``icalendar``'s, from the zone's rules.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import icalendar

from esa_scheduler.engine.holds import Hold
from esa_scheduler.engine.planner import SEARCH_HORIZON, ManagedTask, Planner, Segment
from esa_scheduler.engine.schedule.model import Schedule
from esa_scheduler.timeutil import UTC, local_text
from esa_scheduler.views.rows import row_label, source_words, view_tasks

PRODID = "-//esa-scheduler//plan --ics//EN"
NAMES_IN_SUMMARY = 3
NAMES_IN_DESCRIPTION = 50
NAME_CHARS = 200
"""A name longer than this is cut (with an ellipsis) in the feed: a calendar app shows a few words."""
MAX_EVENTS = 2000
FEED_BUDGET = 5_000_000
"""Bytes: the feed stays under 5 MB whatever the input, like the HTML page, by leaving out the
latest events when it must (a 300 KB schedule of long names made a 105 MB feed)."""
FOLD_AT = 75
_BREAKS = re.compile("\r\n|[\n\r\x0b\x0c\x1c-\x1e\x85\u2028\u2029]")
"""Everything a reader may take for the end of a line (Python's ``splitlines`` takes all of them)."""
_CONTROLS = re.compile("[\x00-\x08\x0e-\x1b\x1f\x7f-\x84\x86-\x9f]")


def _stamp(instant: datetime) -> str:
    return instant.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def _text(value: str) -> str:
    """RFC 5545 TEXT escaping (section 3.3.11), and no control character left raw: a line break of any
    kind becomes ``\\n`` (a bare CR in a task name would otherwise start a new property, such as
    ``ATTENDEE``, for a reader that splits on it), any other control character U+FFFD (TEXT allows
    none of them, and RFC 5545 has no escape for them)."""
    escaped = value.replace("\\", "\\\\").replace(";", "\\;").replace(",", "\\,")
    return _CONTROLS.sub("\ufffd", _BREAKS.sub(lambda _: "\\n", escaped))


def _cut(name: str) -> str:
    """A name as the feed shows it: at most ``NAME_CHARS`` characters."""
    return name if len(name) <= NAME_CHARS else name[: NAME_CHARS - 1] + "\u2026"


def _listed(labels: Sequence[str], most: int) -> str:
    """The first ``most`` names, cut, and how many more there are."""
    shown = ", ".join(_cut(label) for label in labels[:most])
    return shown + (f" and {len(labels) - most} more" if len(labels) > most else "")


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
    return f"{local_text(start, tz)} - {local_text(end, tz)} ({tz.key})"


LOOK_BACK = timedelta(days=1)
"""The first look back from ``--at`` for the start of the intervals in force; it grows fourfold,
up to the planner's search horizon, while one of them is still under way at its origin."""


@dataclass(frozen=True)
class Away:
    """A stretch in which tasks are away from their default state, and the sources that keep them
    there; ``known_start`` is False for one already under way a whole search horizon before ``--at``."""

    start: datetime
    end: datetime | None
    desired: str
    sources: tuple[str, ...]
    known_start: bool = True


def _segments(planner: Planner, task: ManagedTask, until: datetime) -> list[Segment]:
    """The task's segments up to ``until``, and on while an away stretch crossing it goes on (its
    sources may change, say a nightly window inside a weekend freeze), so the event keeps its real end.
    The span doubles each time: the planner replans from its instant, and its horizon bounds it."""
    span = until - planner.at
    while True:
        segments = planner.segments(task, until)
        last = segments[-1]
        if last.end is None or last.state.desired == task.default_status:
            return segments
        span *= 2
        until = planner.at + span


def away_intervals(task: ManagedTask, segments: Sequence[Segment], at: datetime, until: datetime) -> list[Away]:
    """Consecutive segments with the same non-default state merge: a weekend freeze that a nightly
    window interrupts is still one stretch offline, so it is one event. Stretches that ended by
    ``at`` or start from ``until`` on are not in the feed."""
    found: list[Away] = []
    for segment in segments:
        state = segment.state
        if state.desired == task.default_status:
            continue
        last = found[-1] if found else None
        if last is not None and last.end == segment.start and last.desired == state.desired:
            sources = last.sources if state.source in last.sources else (*last.sources, state.source)
            found[-1] = Away(last.start, segment.end, state.desired, sources)
        elif segment.start < until:
            found.append(Away(segment.start, segment.end, state.desired, (state.source,)))
    return [away for away in found if away.end is None or away.end > at]


def _occurrences(
    schedule: Schedule, at: datetime, until: datetime, names: Sequence[str], holds: Sequence[Hold]
) -> dict[Away, list[str]]:
    """Every away stretch of the period, with the labels of the rows it applies to.

    Planned from a look back before ``at``, pushed further back while a stretch in force at ``at``
    is still under way at the look back's origin, so that such a stretch starts where it really
    began, whatever the export instant; past the planner's search horizon its start is unknown.
    """
    back = LOOK_BACK
    while True:
        origin = at - back
        planner = Planner(schedule, origin, holds, horizon=back + SEARCH_HORIZON)
        groups: dict[Away, list[str]] = {}
        for task, pattern in view_tasks(schedule, names):
            for away in away_intervals(task, _segments(planner, task, until), at, until):
                groups.setdefault(away, []).append(row_label(task, pattern))
        cut = any(away.start <= origin for away in groups)
        if not cut:
            return groups
        if back >= SEARCH_HORIZON:
            return {
                (Away(a.start, a.end, a.desired, a.sources, known_start=False) if a.start <= origin else a): labels
                for a, labels in groups.items()
            }
        back = min(back * 4, SEARCH_HORIZON)


def _uid(away: Away, target: str | None, taken: set[str]) -> str:
    """The occurrence's identity: fleet target, desired state, real start and sources (not the tasks,
    whose list changes with --task or a new task entry, nor the end, which a schedule edit may move).
    Two stretches alike in all of that but their end (different tasks, cut short differently) are
    told apart by the end, the later one only, so the UID stays unique in the feed."""
    start = _stamp(away.start) if away.known_start else "under way before the search horizon"
    identity = "\n".join([target or "", away.desired, start, *away.sources])
    uid = hashlib.sha256(identity.encode("utf-8")).hexdigest()[:32]
    if uid in taken:
        end = _stamp(away.end) if away.end else "-"
        uid = hashlib.sha256(f"{identity}\n{end}".encode()).hexdigest()[:32]
    taken.add(uid)
    return uid


def _event(away: Away, labels: list[str], uid: str, until: datetime, tz: ZoneInfo, stamp: str) -> list[str]:
    end = away.end or until
    shown = _listed(labels, NAMES_IN_SUMMARY)
    why = ", ".join(_cut(source_words(source)) for source in away.sources)
    description = (
        f"{_local_span(away.start, end, tz)}\n{away.desired} because of: {_listed(away.sources, len(away.sources))}\n"
        f"tasks ({len(labels)}): {_listed(labels, NAMES_IN_DESCRIPTION)}"
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


def _timezone(tz: ZoneInfo, starts: list[datetime], ends: list[datetime]) -> list[str]:
    """The schedule's zone as a VTIMEZONE (built by ``icalendar`` from the zone's rules) over the days
    the feed spans: the zone of the local times in each DESCRIPTION, and the component that keeps a
    feed with no event in its period a valid calendar (RFC 5545 wants at least one)."""
    first, last = min(starts).astimezone(tz).date(), max(ends).astimezone(tz).date() + timedelta(days=1)
    component = icalendar.Timezone.from_tzinfo(tz, tzid=tz.key, first_date=first, last_date=last)
    text: bytes = component.to_ical()
    return text.decode("utf-8").splitlines()


def _text_property(name: str, value: str) -> str:
    return f"{name}:{_text(value)}"


def render_ics(
    schedule_path: str,
    schedule: Schedule,
    at: datetime,
    days: int,
    names: Sequence[str],
    holds: Sequence[Hold],
    target: str | None = None,
) -> str:
    """The calendar of the intervals in force or starting in the ``days`` days from ``at``, CRLF line
    endings, deterministic for one input: ``DTSTAMP`` is ``at``, so the same export is the same file.

    An interval keeps its real start and end; one that does not end within the planner's search
    horizon ends at the export's horizon. ``target`` (a fleet target's view) is part of every UID.
    """
    until = at + timedelta(days=days)
    groups = _occurrences(schedule, at, until, names, holds)
    stamp = _stamp(at)
    tz = schedule.timezone
    ordered = sorted(groups, key=lambda a: (a.start, a.sources, a.end or until))
    taken: set[str] = set()
    kept: list[Away] = []
    events: list[str] = []
    room = FEED_BUDGET - HEAD_ROOM
    for away in ordered[:MAX_EVENTS]:
        text = _folded(_event(away, sorted(groups[away]), _uid(away, target, taken), until, tz, stamp))
        room -= len(text.encode("utf-8"))
        if room < 0:
            break
        kept.append(away)
        events.append(text)
    head = [
        "BEGIN:VCALENDAR",
        "VERSION:2.0",
        f"PRODID:{PRODID}",
        "CALSCALE:GREGORIAN",
        "METHOD:PUBLISH",
        _text_property("X-WR-CALNAME", f"esa-scheduler: {_cut(schedule_path)}"),
    ]
    note = _cut_note(len(kept), len(ordered))
    if note is not None:
        head += [_text_property("X-WR-CALDESC", note), _text_property("DESCRIPTION", note)]
    head += _timezone(tz, [at, *(a.start for a in kept)], [until, *(a.end for a in kept if a.end)])
    return _folded(head) + "".join(events) + "END:VCALENDAR\r\n"


HEAD_ROOM = 100_000
"""Bytes kept for what comes before the events: the calendar's properties, its note and the VTIMEZONE."""


def _folded(lines: Sequence[str]) -> str:
    return "".join(folded + "\r\n" for line in lines for folded in _fold(line))


def _cut_note(kept: int, total: int) -> str | None:
    """Why events are missing, if any are: the event cap, or the feed's size budget."""
    if kept == total:
        return None
    why = (
        f"more than {MAX_EVENTS} events"
        if kept == MAX_EVENTS
        else f"its events would take the feed over its {FEED_BUDGET // 1_000_000} MB size limit"
    )
    return (
        f"This feed holds the first {kept} of {total} events: {why} (fewer --days or a --task leave room "
        "for the others)."
    )
