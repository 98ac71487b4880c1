"""Reading an ICS file once, when the schedule loads, so that ``validate`` (not a later run) reports
what is wrong with it, by line and UID."""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

from esa_scheduler.engine.calendars.dates import Calendar
from esa_scheduler.engine.calendars.ics import DURATION_AS_WRITTEN, IcsCalendar
from esa_scheduler.engine.calendars.ics_bounds import calendar_query, readable, rule_problems, zone_problems
from esa_scheduler.engine.calendars.ics_checks import Written, event_problem, set_aside
from esa_scheduler.engine.calendars.ics_quirks import (
    calendar_zone_problem,
    orphans_as_series,
    overrides_over_exdates,
    timezone_problems,
    until_in_start_zone,
    zoned_dates,
)
from esa_scheduler.files import FileRefused, read_bounded

if TYPE_CHECKING:
    from icalendar import Calendar as ICalendar
    from icalendar import Component
    from recurring_ical_events import CalendarQuery

MAX_ICS_BYTES = 16 * 1024 * 1024
_WRITTEN = frozenset({"DTSTART", "DTEND", "DURATION"})


def ics_calendar(name: str, ics: str, file: str, where: str, problems: list[str]) -> Calendar | None:
    """Read and check an ICS file now, so that ``validate`` (not a later run) reports what is wrong."""
    path = Path(file).parent / ics
    try:
        data = read_bounded(path, MAX_ICS_BYTES, "ICS file")
        text = data.decode("utf-8-sig")  # a byte order mark is not part of the first line
    except FileRefused as exc:
        problems.append(f"{where}.ics: {exc}")
        return None
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        problems.append(f"{where}.ics: cannot read {path}: {reason}")
        return None
    ignored: list[str] = []
    parsed = _parse_ics(text, ignored, f"{where}.ics: {path}")
    if isinstance(parsed, list):
        problems.extend(f"{where}.ics: {path}: {problem}" for problem in parsed)
        return None
    warnings = tuple(f"{where}.ics: {path}: warning: {text}" for text in ignored)
    return IcsCalendar(name, file, path, parsed, warnings)


def _parse_ics(text: str, ignored: list[str], where: str) -> CalendarQuery | list[str]:
    """The calendar ready to expand, or its problems: a syntax error by line, else one per bad event
    by the line it begins on and its UID (every event is checked, so one pass fixes the file).
    What cannot change an interval but is malformed goes to ``ignored``, one line per property. The
    limits of ``ics_bounds`` come first, so that no check costs what they bound."""
    from icalendar.parser import Contentline

    read = _read_calendar(_logical_lines(text))
    if isinstance(read, list):
        return read
    parsed, kept = read
    problems: list[str] = []
    masters: dict[str, int] = {}
    set_apart: dict[str, tuple[int, str, str, int]] = {}  # property: first line, UID, message, events
    events = parsed.walk("VEVENT")
    for event, written in zip(events, _written_events(kept), strict=True):
        uid = _uid(event)
        for prop, message in set_aside(event):
            line, first_uid, first_message, count = set_apart.get(prop, (written.line, uid, message, 0))
            set_apart[prop] = (line, first_uid, first_message, count + 1)
        problem = event_problem(event, written)
        if problem is None and "UID" in event and "RECURRENCE-ID" not in event:
            first = masters.setdefault(uid, written.line)
            if first != written.line:
                # the library keeps one of them and drops the other without a word
                problem = (
                    f"another event with this UID and no RECURRENCE-ID begins at line {first} "
                    "(only one of them would be used; give each event its own UID)"
                )
        if problem is not None:
            problems.append(f"line {written.line}: event UID {uid!r}: {problem}")
        event.pop(DURATION_AS_WRITTEN, None)
        if "DURATION" in written.props:
            event[DURATION_AS_WRITTEN] = Contentline(written.props["DURATION"]).parts()[2]  # type: ignore[no-untyped-call]
    if problems:
        return problems
    ignored.extend(_ignored(prop, *seen) for prop, seen in set_apart.items())
    orphans_as_series(events)
    overrides_over_exdates(events)
    for event in events:
        until_in_start_zone(event)
    try:
        query = calendar_query(parsed, where)
    except ValueError as exc:
        return [_refused(parsed) or f"cannot expand the events: {_first_line(exc)}"]
    return rule_problems(query) or query


def _read_calendar(lines: list[tuple[int, str]]) -> tuple[ICalendar, list[tuple[int, str]]] | list[str]:
    """The lines ``icalendar`` reads (``ics_bounds.readable``), read, with those lines as written (the
    events' written properties must come from them, not from a VALARM ``readable`` skips); or the
    problems that stop it, the zones' own first (``zone_problems``: a zone that cannot be expanded
    cheaply must not be)."""
    import icalendar

    read, problems = readable(lines)
    refused = problems or timezone_problems(read)
    if refused:
        return refused
    dated = zoned_dates(read) or read
    try:
        parsed = icalendar.Calendar.from_ical("".join(f"{line}\r\n" for _, line in dated))
    except ValueError as exc:
        return [_locate_syntax_error(read) or f"malformed calendar: {_first_line(exc)}"]
    if not isinstance(parsed, icalendar.Calendar) or parsed.name != "VCALENDAR":
        return ["not an iCalendar file (expected BEGIN:VCALENDAR at the top)"]
    zone_problem = calendar_zone_problem(parsed, read)
    return zone_problems(parsed) or ([zone_problem] if zone_problem else (parsed, read))


def _uid(event: Component) -> str:
    """The UID that messages name: the first, when the event wrongly gives several."""
    uid = event.get("UID", "?")
    return str(uid[0] if isinstance(uid, list) else uid)


def _ignored(prop: str, line: int, uid: str, message: str, count: int) -> str:
    """One warning for a property set aside in ``count`` events, naming the first (a 1.6 MB export
    can have the same malformed CREATED in thousands of them)."""
    where = f"line {line}: event UID {uid!r}: {prop}: {message}"
    others = f" (and in {count - 1} more event(s))" if count > 1 else ""
    return f"{where}{others}; ignored, as {prop} cannot change when an event happens"


def _refused(parsed: ICalendar) -> str | None:
    """Which event ``recurring-ical-events`` refuses to prepare for expansion, by UID."""
    import icalendar
    import recurring_ical_events

    for event in parsed.walk("VEVENT"):
        single = icalendar.Calendar()
        single.add_component(event)
        try:
            recurring_ical_events.of(single)
        except ValueError as exc:
            return f"event UID {str(event.get('UID', '?'))!r}: RRULE refused: {_first_line(exc)}"
    return None


def _logical_lines(text: str) -> list[tuple[int, str]]:
    """Unfolded content lines with the number of the line each starts on (for messages).

    A line's pieces are joined once it is complete: adding each continuation to the line so far
    copies it every time, which made one folded 8 MB property take 17 s."""
    logical: list[tuple[int, str]] = []
    pieces: list[str] = []
    start = 0
    for number, line in enumerate(text.splitlines(), 1):
        if line[:1] in (" ", "\t") and pieces:
            pieces.append(line[1:])
        elif line.strip():
            if pieces:
                logical.append((start, "".join(pieces)))
            start, pieces = number, [line]
    if pieces:
        logical.append((start, "".join(pieces)))
    return logical


def _written_events(lines: list[tuple[int, str]]) -> list[Written]:
    """Every VEVENT of the lines icalendar read, in their order, the order in which ``walk`` lists them
    (icalendar read them whole first, so only the property names are looked at here)."""
    found: list[Written] = []
    stack: list[Written | None] = []  # the open components; None for those that are not a VEVENT
    for number, line in lines:
        name = re.split("[;:]", line, maxsplit=1)[0].upper()
        if name == "BEGIN":
            event = Written(number, {}) if line.partition(":")[2].strip().upper() == "VEVENT" else None
            stack.append(event)
            if event is not None:
                found.append(event)
        elif name == "END" and stack:
            stack.pop()
        elif name in _WRITTEN and stack and stack[-1] is not None:
            stack[-1].props[name] = line.strip()
    return found


def _locate_syntax_error(logical: list[tuple[int, str]]) -> str | None:
    """The first line icalendar cannot read, or an unbalanced BEGIN/END, as ``line N: ...``."""
    from icalendar.parser import Contentline

    open_blocks: list[tuple[str, int]] = []
    for number, line in logical:
        try:
            key, _, value = Contentline(line).parts()  # type: ignore[no-untyped-call]
        except ValueError as exc:
            return f"line {number}: {_first_line(exc)}"
        if key.upper() == "BEGIN":
            open_blocks.append((value.upper(), number))
        elif key.upper() == "END":
            if not open_blocks or open_blocks[-1][0] != value.upper():
                return f"line {number}: END:{value} has no matching BEGIN"
            open_blocks.pop()
    if open_blocks:
        block, number = open_blocks[-1]
        return f"line {number}: BEGIN:{block} is never closed"
    return None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:200]
