"""Bounded work on an ICS file, whatever it holds: what ``icalendar`` is given to read, how many events
a calendar may have, which zone definitions are expanded, and recurrences expanded from the planning
range rather than from the rule's start.

The file is written by an operator or exported by a calendar app, and a mistake there (a rule from
year 1, a zone that changes every minute since 1601, a 16 MB attachment, a hundred thousand events)
must cost ``validate`` at most a second or two, not minutes or all the memory.
"""

from __future__ import annotations

import calendar as gregorian
import re
from datetime import datetime, timedelta
from itertools import islice
from typing import TYPE_CHECKING, Any

from esa_scheduler.engine.calendars.ics_checks import OTHER_ONCE, SHAPING
from esa_scheduler.errors import ScheduleError

if TYPE_CHECKING:
    from icalendar import Calendar as ICalendar
    from recurring_ical_events import CalendarQuery

MAX_EVENTS = 1500
"""VEVENTs per ICS calendar: with this many real-shaped ones and rules making ``MAX_RULE_OCCURRENCES``,
``validate`` takes 1.4 s of CPU and 75 MB (``bench/ics_bench.py``; 2,000 took 1.7 s); a
maintenance calendar has dozens, a team's Google export of eight years 1,300."""
MAX_READ_CHARS = 64 * 1024
"""The longest content line of a property that is read (a few thousand RDATE or EXDATE values)."""
READ = SHAPING | {
    *("BEGIN", "END", "VERSION", "PRODID", "CALSCALE", "METHOD", "X-WR-TIMEZONE", "SEQUENCE"),
    *("TZID", "TZOFFSETFROM", "TZOFFSETTO", "TZNAME", "TZURL", "X-LIC-LOCATION"),
}
"""The properties ``icalendar`` is always given: those that make or name an interval (``SHAPING``),
and what a calendar or a zone needs to be one."""
NOTED = OTHER_ONCE - {"DESCRIPTION", "LOCATION", "ORGANIZER"}
OTHER_READ_CHARS = 1024
"""The bookkeeping properties that cannot change an interval (``NOTED``: CREATED, DTSTAMP, CLASS...)
are read when at most this long, so that a malformed or repeated one is a warning. Free text and
addresses (DESCRIPTION, LOCATION, ORGANIZER, ATTENDEE, COMMENT), attachments and X- properties are
never read: an 8 MB folded DESCRIPTION cost ``icalendar`` two seconds for nothing, and a Google
export's descriptions and attendees a third of its reading."""
SKIPPED = frozenset({"VALARM", "VTODO", "VJOURNAL", "VFREEBUSY", "VAVAILABILITY"})
"""Components that cannot make an interval of a VEVENT: skipped whole, whatever they hold."""
MAX_LINES = 30_000
"""Content lines read per calendar (after the skipped ones): 20 an event at ``MAX_EVENTS`` (a Google
export's event has 15); 40,000 EXDATE lines took ``validate`` 1.6 s."""
MAX_RULE_OCCURRENCES = 10_000
RULE_SPAN_DAYS = 400
"""The occurrences the rules of one calendar may make in one command or invocation: each costs
about 75 µs to expand, and ``validate`` looks ``RULE_SPAN_DAYS`` ahead (25 a day; an hourly rule
makes 24)."""
MAX_COUNT = 1000
"""A rule with COUNT is expanded from its own DTSTART (its occurrences count from there): Outlook,
Google and Apple offer at most 999."""
PERIODS_TO_OCCUR = 1000
"""A rule must make an occurrence within this many of its periods (see ``_FromTheSpan.problem``)."""
ZONE_RULE_HORIZON = 2200
ZONE_RULE_MAX = 1000
"""A zone rule may change the offset at most this many times from its DTSTART to ``ZONE_RULE_HORIZON``
(a yearly change since 1601 is 600): every offset lookup walks the changes up to its instant."""
_PROPERTY = re.compile(r"([A-Za-z0-9-]+)[;:]")


def readable(lines: list[tuple[int, str]]) -> tuple[list[tuple[int, str]], list[str]]:
    """The unfolded lines ``icalendar`` is given (``READ``, ``OTHER_READ_CHARS``, ``SKIPPED``), and
    the problems that stop the reading: a line of ``READ`` over ``MAX_READ_CHARS``, and more than
    ``MAX_LINES`` lines or ``MAX_EVENTS`` events."""
    kept: list[tuple[int, str]] = []
    problems: list[str] = []
    events = skipping = 0
    for number, line in lines:
        match = _PROPERTY.match(line)
        name = match.group(1).upper() if match else None
        if name in ("BEGIN", "END"):
            component = line.partition(":")[2].strip().upper()
            if skipping or component in SKIPPED:
                skipping = max(0, skipping + (1 if name == "BEGIN" else -1))
                continue
            events += name == "BEGIN" and component == "VEVENT"
        elif skipping or (
            name is not None and name not in READ and (name not in NOTED or len(line) > OTHER_READ_CHARS)
        ):
            continue  # a line that is no property at all is kept: icalendar says what is wrong with it
        elif len(line) > MAX_READ_CHARS:
            problems.append(
                f"line {number}: {name or 'a line'} is {len(line)} characters long (at most {MAX_READ_CHARS} are read)"
            )
            continue
        kept.append((number, line))
    if len(kept) > MAX_LINES:
        problems.append(f"{len(kept)} content lines, more than the {MAX_LINES} a calendar may have")
    if events > MAX_EVENTS:
        problems.append(
            f"{events} events, more than the {MAX_EVENTS} a calendar may have (split it, or export only the "
            "events of the coming year or two)"
        )
    return kept, problems


def zone_problems(parsed: ICalendar) -> list[str]:
    """A VTIMEZONE rule that changes the offset too often to expand cheaply, one line per zone.

    Checked before any time is converted: ``dateutil`` expands a zone's rules from their DTSTART at
    the first lookup, and ``FREQ=MINUTELY`` from 1601 never finishes (it ends in ``MemoryError``)."""
    from dateutil.rrule import rrulestr

    problems = []
    for zone in parsed.walk("VTIMEZONE"):
        for part in zone.subcomponents:
            rules = part.get("RRULE", [])
            start = part.get("DTSTART")
            if start is None or isinstance(start, list) or not isinstance(start.dt, datetime):
                continue  # no onset to expand from: dateutil refuses the zone itself
            for rule in rules if isinstance(rules, list) else [rules]:
                text = rule.to_ical().decode()
                try:
                    expanded = rrulestr(text, dtstart=start.dt.replace(tzinfo=None), cache=False)
                    changes = sum(1 for _ in islice(_until(expanded, ZONE_RULE_HORIZON), ZONE_RULE_MAX + 1))
                except (ValueError, TypeError, AttributeError) as exc:
                    problems.append(f"VTIMEZONE {str(zone.get('TZID', '?'))!r}: {part.name} RRULE refused: {exc}")
                    break
                if changes > ZONE_RULE_MAX:
                    problems.append(
                        f"VTIMEZONE {str(zone.get('TZID', '?'))!r}: {part.name} RRULE {text} changes the offset more "
                        f"than {ZONE_RULE_MAX} times by {ZONE_RULE_HORIZON} (a zone changes it once or twice a year: "
                        "FREQ=YEARLY)"
                    )
    return problems


def _until(rule: Any, year: int) -> Any:
    for instant in rule:
        if instant.year > year:
            return
        yield instant


def calendar_query(parsed: ICalendar, where: str) -> CalendarQuery:
    """The calendar ready to expand, each rule from the span asked for (``_FromTheSpan``) and all of
    them within one ``Budget`` (``where`` names the calendar when it is spent)."""
    import recurring_ical_events

    series = _series(Budget(where))
    return recurring_ical_events.of(
        parsed, components=[recurring_ical_events.ComponentsWithName("VEVENT", series=series)]
    )


def rule_problems(query: CalendarQuery) -> list[str]:
    """The first recurrence rule that expansion cannot bound, by the UID of its event (one is enough:
    finding the others could cost what the limits are for)."""
    for series in query.series:
        for rule in getattr(series.recurrence, "rrules", [])[1:]:
            problem = rule.problem()
            if problem is not None:
                return [f"event UID {str(series.uid)!r}: RRULE refused: {problem}"]
    return []


class Budget:
    """How many more occurrences the rules of one calendar may make in this command or invocation.

    Each expansion walks every rule, so what a calendar costs grows with what its rules make, not
    with its events: ``MAX_RULE_OCCURRENCES`` keeps ``validate`` (400 days ahead) under 2 s."""

    def __init__(self, where: str) -> None:
        self.where = where
        self.left = MAX_RULE_OCCURRENCES

    def spend(self, count: int) -> None:
        self.left -= count
        if self.left < 0:
            raise ScheduleError(
                f"{self.where}: its recurring events make more than {MAX_RULE_OCCURRENCES} occurrences (the most "
                f"one command expands: about {MAX_RULE_OCCURRENCES // RULE_SPAN_DAYS} a day over the {RULE_SPAN_DAYS} "
                "days validate looks at)"
            )


def _series(budget: Budget) -> type[Any]:
    """``recurring-ical-events``' series whose rules start near the span each query asks for and spend
    ``budget`` (the library's extension point: a ``Series`` subclass with its own ``RecurrenceRules``)."""
    from recurring_ical_events import Series

    class RecurrenceRules(Series.RecurrenceRules):  # type: ignore[misc]
        def rrulestr(self, rule_string: str) -> Any:
            return _FromTheSpan(super().rrulestr(rule_string), budget)

    class FromTheSpan(Series):  # type: ignore[misc]
        pass

    FromTheSpan.RecurrenceRules = RecurrenceRules
    return FromTheSpan


class _FromTheSpan:
    """A ``dateutil`` rule that, asked for the occurrences of a span, starts a whole number of periods
    before it: ``DTSTART:00010101T020000Z`` with ``FREQ=HOURLY`` would otherwise walk 17 million hours
    (three minutes, a gigabyte) to reach this year.

    A rule with COUNT starts where it starts (its occurrences are counted from there; ``MAX_COUNT``
    bounds them). The moved start keeps every field the rule takes its defaults from (minute and
    second, time of day, weekday, day of month, month), and the number of periods moved is a multiple
    of INTERVAL, so the occurrences from the span on are exactly the rule's. The series' own DTSTART
    stays an occurrence: the library adds it apart from the rule."""

    def __init__(self, rule: Any, budget: Budget) -> None:
        self.rule = rule
        self.until = rule.until
        self.budget = budget

    def between(self, after: datetime, before: datetime, inc: bool = False) -> Any:
        """The rule's occurrences in [after, before] (``inc``) or (after, before)."""
        found = self._near(after).between(after, before, inc=inc)
        self.budget.spend(len(found))
        return found

    def problem(self) -> str | None:
        """Why the rule cannot be expanded in bounded time, or ``None``.

        ``dateutil`` walks a rule period by period until an occurrence ends the span, up to year
        9999: a rule whose days never come (``FREQ=HOURLY;BYMONTH=2;BYMONTHDAY=30``) walks 70 million
        hours at every expansion. So a rule must make an occurrence within ``PERIODS_TO_OCCUR`` of its
        periods, tried where year 9999 ends the walk whatever the answer."""
        rule = self.rule
        if rule._count is not None and rule._count > MAX_COUNT:
            return f"COUNT={rule._count} is more than {MAX_COUNT} ({rule.string})"
        start: datetime = rule._dtstart.replace(tzinfo=None)
        late = moved_start(start, rule._freq, rule._interval, _probe_from(rule._freq, rule._interval)) or start
        probe = rule.replace(dtstart=late, until=None, count=None, cache=False)
        if next(iter(probe), None) is None:
            return f"no occurrence in {PERIODS_TO_OCCUR} of its periods ({rule.string})"
        return None

    def _near(self, after: datetime) -> Any:
        rule = self.rule
        start: datetime = rule._dtstart  # dateutil keeps the rule's parsed fields private
        if rule._count is not None or (start.tzinfo is None) != (after.tzinfo is None):
            return rule
        goal = after.astimezone(start.tzinfo).replace(tzinfo=None) if start.tzinfo is not None else after
        moved = moved_start(start.replace(tzinfo=None), rule._freq, rule._interval, goal)
        return rule if moved is None else rule.replace(dtstart=moved.replace(tzinfo=start.tzinfo), cache=False)


_YEARLY, _MONTHLY, _WEEKLY, _DAILY, _HOURLY, _MINUTELY, _SECONDLY = range(7)
"""``dateutil.rrule``'s frequency numbers."""
_STEP = {
    _WEEKLY: timedelta(weeks=1),
    _DAILY: timedelta(days=1),
    _HOURLY: timedelta(hours=1),
    _MINUTELY: timedelta(minutes=1),
    _SECONDLY: timedelta(seconds=1),
}
_LAST = datetime(9999, 12, 31)
_TRIES = 48
"""Moves tried back towards the start when the day does not exist (31 in a 30-day month, 29 February)."""


def _probe_from(freq: int, interval: int) -> datetime:
    """Where a walk of ``PERIODS_TO_OCCUR`` periods of a rule ends at ``dateutil``'s last year."""
    try:
        if freq in _STEP:
            return _LAST - _STEP[freq] * interval * PERIODS_TO_OCCUR
        months = interval * PERIODS_TO_OCCUR * (12 if freq == _YEARLY else 1)
        return datetime(_LAST.year - months // 12, 1, 1)
    except (OverflowError, ValueError):  # a period so long that the walk starts before year 1
        return datetime(1, 1, 1)


def moved_start(start: datetime, freq: int, interval: int, goal: datetime) -> datetime | None:
    """The latest wall-clock start a multiple of ``interval`` periods after ``start`` and at least one
    period before ``goal``, with the same fields; ``None`` when ``start`` is already that close."""
    if freq in _STEP:
        periods = (goal - start) // (_STEP[freq] * interval) - 1
        return start + _STEP[freq] * interval * periods if periods > 0 else None
    months = 12 if freq == _YEARLY else 1
    whole = ((goal.year - start.year) * 12 + goal.month - start.month) // (months * interval) - 1
    for periods in range(whole, max(whole - _TRIES, 0), -1):
        index = start.month - 1 + periods * interval * months
        year, month = start.year + index // 12, index % 12 + 1
        if start.day <= gregorian.monthrange(year, month)[1]:
            return start.replace(year=year, month=month)
    return None
