"""Calendars: named sets of local dates (public holidays, workdays, listed dates) and ICS event files.

Windows refer to calendars by name: ``skip``/``only_on`` keep or drop an occurrence by the local date
it starts on, and ``calendar:`` makes every event of an ICS file an occurrence. Country data comes
from the ``holidays`` package (China's substituted days off and weekend make-up workdays included)
and ICS expansion from ``icalendar`` + ``recurring-ical-events``: calendars change every year, and
hand-kept tables or a home-grown RRULE expansion would be wrong sooner or later. Those libraries are
imported only when a schedule defines such a calendar, so a schedule without one pays nothing.
"""

from __future__ import annotations

import bisect
import difflib
import fnmatch
import functools
import re
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal
from zoneinfo import ZoneInfo

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from esa_scheduler.engine.cron import wall_to_instant
from esa_scheduler.errors import close_hint, close_matches
from esa_scheduler.timeutil import MAX_YEAR, MIN_YEAR, UTC

if TYPE_CHECKING:
    from holidays import HolidayBase
    from icalendar import Calendar as ICalendar
    from icalendar import Component
    from recurring_ical_events import CalendarQuery

CalendarKind = Literal["holidays", "workdays"]
MAX_RANGE_DAYS = 3660
MAX_ICS_BYTES = 16 * 1024 * 1024
MAX_OCCURRENCES_PER_DAY = 24
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_RANGE = ".."
_QUERY_MARGIN = timedelta(days=2)
_TOO_FREQUENT = frozenset({"SECONDLY", "MINUTELY"})
# each event's DURATION as written, copied with the event to every occurrence: the library keeps only
# a timedelta, in which PT24H and P1D are the same, though DST makes them differ
_DURATION_AS_WRITTEN = "X-ESA-SCHEDULER-DURATION"
_WRITTEN = frozenset({"DTSTART", "DTEND", "DURATION"})


def reject_date_times(value: object) -> object:
    """A pydantic ``before`` check for date fields: YAML reads ``2026-12-25 10:00`` as a date-time,
    which pydantic would quietly truncate to its date; refuse it instead."""
    values = value if isinstance(value, list) else [value]
    if any(isinstance(v, datetime) for v in values):
        raise ValueError("expected a date like 2026-12-25, not a date-time")
    return value


def _date_item(value: object) -> object:
    """One item of ``dates`` and the patch lists: a date (YAML reads 2026-12-24 as one) or a string
    that ``parse_dates`` reads. Anything else is one problem here: pydantic would report it once per
    type of ``date | str``, and would read an integer as seconds since 1970."""
    reject_date_times(value)
    if not isinstance(value, date | str):
        raise ValueError("expected a date like 2026-12-24 or a range like 2026-12-28..2027-01-03")
    return value


DateItem = Annotated[date | str, BeforeValidator(_date_item)]


class CalendarSpec(BaseModel):
    """One entry of the top-level ``calendars:`` map: a country, a list of dates, or an ICS file."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    country: str | None = Field(default=None, min_length=1, description="ISO 3166-1 country code, e.g. CN or DE")
    subdiv: str | None = Field(default=None, min_length=1, description="subdivision code of the country, e.g. BE")
    kind: CalendarKind | None = Field(
        default=None,
        description="holidays (default): the country's public holidays, substituted days off included; "
        "workdays: Monday to Friday minus those holidays, plus official make-up workdays",
    )
    dates: list[DateItem] | None = Field(default=None, description="dates and inclusive ranges: 2026-12-28..2027-01-03")
    ics: str | None = Field(default=None, min_length=1, description="RFC 5545 file, relative to the schedule file")
    add_holidays: list[DateItem] = Field(default_factory=list, description="dates to treat as days off")
    add_workdays: list[DateItem] = Field(default_factory=list, description="dates to treat as working days")
    remove: list[DateItem] = Field(default_factory=list, description="dates taken out of the library's own set")


class Calendar(ABC):
    """A named calendar as windows use it: which local dates it holds."""

    def __init__(self, name: str, origin: str) -> None:
        self.name = name
        self.origin = origin

    @abstractmethod
    def contains(self, day: date, tz: ZoneInfo) -> bool:
        """Whether ``day`` (a local date in ``tz``, the window's zone) is in this calendar."""

    def next_on_or_after(self, day: date, tz: ZoneInfo) -> date | None:
        """The first date from ``day`` on that may be in this calendar (``None``: none ever again).

        Lets an ``only_on`` window skip straight over the gaps of a sparse calendar; the default
        promises nothing, so the window engine still asks ``contains`` day by day."""
        return day


class DateCalendar(Calendar):
    """Listed dates and inclusive ranges (``dates:``)."""

    def __init__(self, name: str, origin: str, dates: frozenset[date]) -> None:
        super().__init__(name, origin)
        self.dates = dates
        self._sorted = sorted(dates)

    def contains(self, day: date, tz: ZoneInfo) -> bool:
        """Listed dates are local dates in whatever zone the window has."""
        return day in self.dates

    def next_on_or_after(self, day: date, tz: ZoneInfo) -> date | None:
        """The next listed date: a freeze listed for December costs nothing to reach from March."""
        i = bisect.bisect_left(self._sorted, day)
        return self._sorted[i] if i < len(self._sorted) else None


class CountryCalendar(Calendar):
    """A country's public holidays or workdays, from the ``holidays`` package, with operator patches."""

    def __init__(
        self,
        name: str,
        origin: str,
        library: HolidayBase,
        kind: CalendarKind,
        patches: tuple[frozenset[date], frozenset[date], frozenset[date]],
    ) -> None:
        super().__init__(name, origin)
        self.library = library
        self.kind = kind
        self.add_holidays, self.add_workdays, self.remove = patches
        self._years: dict[int, frozenset[date]] = {}

    @property
    def country(self) -> str:
        """The ISO code the library resolved."""
        return str(self.library.country)

    @property
    def library_version(self) -> str:
        """Which ``holidays`` release the dates come from (a newer one may know more years)."""
        return metadata.version("holidays")

    def contains(self, day: date, tz: ZoneInfo) -> bool:
        """Country dates are local dates in whatever zone the window has."""
        members = self._years.get(day.year)
        if members is None:
            members = self._years[day.year] = self._year(day.year)
        return day in members

    def _year(self, year: int) -> frozenset[date]:
        first = date(year, 1, 1)
        days = [first + timedelta(days=n) for n in range((date(year + 1, 1, 1) - first).days)]
        if self.kind == "workdays":
            own = {d for d in days if self.library.is_working_day(d)}
            added, taken = self.add_workdays, self.add_holidays
        else:
            own = {d for d in days if d in self.library}
            added, taken = self.add_holidays, self.add_workdays
        return frozenset(((own - self.remove) | {d for d in added if d.year == year}) - taken)

    def year_warnings(self, years: Iterable[int]) -> list[str]:
        """What the library does not know, or only guesses, about the years a window uses this
        calendar in (a year the operator patched counts as known).

        Outside the library's years (``start_year`` to ``end_year``) it has no dates at all: the
        calendar would hold no holidays and every Monday to Friday would be a workday. Within them, a
        country with official make-up workdays (China's: the library's ``weekend_workdays``) announces
        each year's days off late in the year before; until a release has them, the library knows
        the statutory holidays only, and no make-up workdays."""
        wanted = sorted(set(years))
        for year in wanted:
            self.contains(date(year, 1, 1), ZoneInfo("UTC"))  # the library fills in the years it is asked about
        patched = {d.year for d in self.add_holidays | self.add_workdays}
        first, last = self.library.start_year, self.library.end_year
        makeup = self.library.weekend_workdays if getattr(self.library, "has_substituted_holidays", False) else ()
        latest = max((d.year for d in makeup), default=None)
        library = f"the holidays library ({self.library_version})"
        found = []
        for year in (y for y in wanted if y not in patched):
            if not first <= year <= last:
                result = (
                    "every Monday to Friday is a workday that year"
                    if self.kind == "workdays"
                    else "the calendar holds no dates that year"
                )
                found.append(
                    f"{library} has no {self.country} dates for {year} (it covers {first}-{last}), so {result}; "
                    "patch the year with add_holidays and add_workdays"
                )
            elif latest is not None and year > latest and self.kind == "workdays":
                found.append(
                    f"{library} does not know {self.country}'s official make-up workdays for {year} yet; once they "
                    "are announced, add them with add_workdays (and the days off with add_holidays)"
                )
            elif latest is not None and year > latest:
                found.append(
                    f"{library} does not know {self.country}'s official days off for {year} yet, only the statutory "
                    "holidays; once they are announced, add the other days off with add_holidays"
                )
        return found


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


def _aware(value: date) -> bool:
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

    def __init__(self, name: str, origin: str, path: Path, query: CalendarQuery) -> None:
        super().__init__(name, origin)
        self.path = path
        self.query = query
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
    written = component.get(_DURATION_AS_WRITTEN)
    if written is not None:
        nominal, elapsed = _duration_parts(str(written))
        if end == start + nominal + elapsed:
            end, exact = start + nominal, elapsed
    fixed = (start.astimezone(UTC), end.astimezone(UTC) + exact) if _aware(start) and _aware(end) else None
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
    return pattern is None or fnmatch.fnmatchcase(event.summary, pattern)


def resolve_calendars(
    entries: Iterable[tuple[str, Mapping[str, CalendarSpec | None]]], problems: list[str]
) -> dict[str, Calendar | None]:
    """Every file's ``calendars:`` map, checked and merged; names are unique across files.

    A calendar that is defined but has problems maps to ``None``: its problems are reported once,
    here or (``None`` specs, fields of the wrong type) by the loader, and a window that names it is
    not told that the name is unknown."""
    calendars: dict[str, Calendar | None] = {}
    seen: dict[str, str] = {}
    for file, specs in entries:
        for name, spec in specs.items():
            where = f"{file}: calendars.{name}"
            if name in seen:
                problems.append(f"{where}: duplicate calendar name {name!r} (also in {seen[name]})")
                continue
            seen[name] = file
            calendars[name] = _resolve(name, spec, file, where, problems) if spec is not None else None
    return calendars


def _resolve(name: str, spec: CalendarSpec, file: str, where: str, problems: list[str]) -> Calendar | None:
    sources = [key for key in ("country", "dates", "ics") if getattr(spec, key) is not None]
    if len(sources) != 1:
        problems.append(f"{where}: give exactly one of 'country', 'dates' or 'ics'")
        return None
    if spec.country is None:
        extras = [k for k in ("subdiv", "kind", "add_holidays", "add_workdays", "remove") if getattr(spec, k)]
        if extras:
            problems.append(f"{where}: {', '.join(extras)} only apply to country calendars")
            return None
    if spec.dates is not None:
        dates = parse_dates(spec.dates, f"{where}.dates", problems)
        return DateCalendar(name, file, dates) if dates is not None else None
    if spec.ics is not None:
        return _ics_calendar(name, spec.ics, file, where, problems)
    return _country_calendar(name, spec, file, where, problems)


def parse_dates(items: Iterable[DateItem], where: str, problems: list[str]) -> frozenset[date] | None:
    """Dates and inclusive ``A..B`` ranges as one set; ``None`` (and a problem per bad item) on errors."""
    found: set[date] = set()
    ok = True
    for index, item in enumerate(items):
        try:
            found.update(_expand(item))
        except ValueError as exc:
            problems.append(f"{where}[{index}]: {exc}")
            ok = False
    return frozenset(found) if ok else None


def _expand(item: DateItem) -> Iterator[date]:
    if isinstance(item, date):
        yield _in_years(item)
        return
    first, separator, last = item.partition(_RANGE)
    begin = _date(first, item)
    end = _date(last, item) if separator else begin
    if end < begin:
        raise ValueError(f"range {item!r} ends before it starts")
    if (end - begin).days > MAX_RANGE_DAYS:
        raise ValueError(f"range {item!r} is longer than {MAX_RANGE_DAYS} days")
    for n in range((end - begin).days + 1):
        yield begin + timedelta(days=n)


def _date(text: str, item: str) -> date:
    cleaned = text.strip()
    try:
        parsed = date.fromisoformat(cleaned) if _ISO_DATE.fullmatch(cleaned) else None
    except ValueError:
        parsed = None
    if parsed is None:
        raise ValueError(f"invalid date or range {item!r} (use 2026-12-24 or 2026-12-28..2027-01-03)")
    return _in_years(parsed)


def _in_years(day: date) -> date:
    """The date, if the engine supports its year (the message names the date itself, even in a range)."""
    if not MIN_YEAR <= day.year <= MAX_YEAR:
        raise ValueError(f"date {day.isoformat()} is outside the supported years {MIN_YEAR}-{MAX_YEAR}")
    return day


def _country_calendar(name: str, spec: CalendarSpec, file: str, where: str, problems: list[str]) -> Calendar | None:
    import holidays

    assert spec.country is not None
    supported: dict[str, list[str]] = holidays.list_supported_countries()
    country = _pick(spec.country, supported)
    if country is None:
        hint = close_hint(close_matches(spec.country, supported) + _close_names(spec.country))
        problems.append(f"{where}.country: unknown country {spec.country!r}{hint}")
        return None
    subdiv = None
    if spec.subdiv is not None:
        codes = supported[country]
        if not codes:
            problems.append(
                f"{where}.subdiv: the holidays library knows no subdivisions of {country} (leave subdiv out)"
            )
            return None
        aliases = getattr(holidays, country).get_subdivision_aliases()
        known = [*codes, *(alias for names in aliases.values() for alias in names)]
        subdiv = _pick(spec.subdiv, known)
        if subdiv is None:
            close = close_matches(spec.subdiv, known)
            hint = close_hint(close) if close else f" ({country} subdivisions: {', '.join(codes)})"
            problems.append(f"{where}.subdiv: unknown {country} subdivision {spec.subdiv!r}{hint}")
            return None
    keys = ("add_holidays", "add_workdays", "remove")
    patches = [parse_dates(getattr(spec, key), f"{where}.{key}", problems) for key in keys]
    add_holidays, add_workdays, remove = (p if p is not None else frozenset() for p in patches)
    both = sorted(add_holidays & add_workdays)
    if both:
        problems.append(f"{where}.add_workdays: {both[0].isoformat()} is also in add_holidays")
    if any(p is None for p in patches) or both:
        return None
    library = holidays.country_holidays(country, subdiv=subdiv)
    return CountryCalendar(name, file, library, spec.kind or "holidays", (add_holidays, add_workdays, remove))


def _pick(value: str, known: Iterable[str]) -> str | None:
    """An exact code, else the one that differs only in case; else ``None``."""
    by_case = {k.upper(): k for k in known}
    if value in by_case.values():
        return value
    return by_case.get(value.upper())


def _close_names(value: str) -> list[str]:
    """Countries whose English name looks like ``value`` (``Germany``, ``united states``), as
    ``DE (Germany)``: operators often write the name where the library wants the ISO code."""
    from holidays.registry import COUNTRIES

    names = {key.replace("_", " "): entry[1] for key, entry in COUNTRIES.items()}
    close = difflib.get_close_matches(" ".join(value.lower().replace("_", " ").split()), list(names), n=3, cutoff=0.75)
    return [f"{names[n]} ({n.title()})" for n in close]


def _ics_calendar(name: str, ics: str, file: str, where: str, problems: list[str]) -> Calendar | None:
    """Read and check an ICS file now, so that ``validate`` (not a later run) reports what is wrong."""
    path = Path(file).parent / ics
    try:
        size = path.stat().st_size
        if size > MAX_ICS_BYTES:
            problems.append(f"{where}.ics: {path}: file too large ({size} bytes; the limit is {MAX_ICS_BYTES})")
            return None
        text = path.read_bytes().decode("utf-8-sig")  # a byte order mark is not part of the first line
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        problems.append(f"{where}.ics: cannot read {path}: {reason}")
        return None
    parsed = _parse_ics(text)
    if isinstance(parsed, list):
        problems.extend(f"{where}.ics: {path}: {problem}" for problem in parsed)
        return None
    return IcsCalendar(name, file, path, parsed)


def _parse_ics(text: str) -> CalendarQuery | list[str]:
    """The calendar ready to expand, or its problems: a syntax error by line, else one per bad event
    by the line it begins on and its UID (every event is checked, so one pass fixes the file)."""
    import icalendar
    from icalendar.parser import Contentline

    lines = _logical_lines(text)
    try:
        parsed = icalendar.Calendar.from_ical(text)
    except ValueError as exc:
        return [_locate_syntax_error(lines) or f"malformed calendar: {_first_line(exc)}"]
    if not isinstance(parsed, icalendar.Calendar) or parsed.name != "VCALENDAR":
        return ["not an iCalendar file (expected BEGIN:VCALENDAR at the top)"]
    problems: list[str] = []
    masters: dict[str, int] = {}
    for event, written in zip(parsed.walk("VEVENT"), _written_events(lines), strict=True):
        uid = str(event.get("UID", "?"))
        problem = _event_problem(event, written)
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
        event.pop(_DURATION_AS_WRITTEN, None)
        if "DURATION" in written.props:
            event[_DURATION_AS_WRITTEN] = Contentline(written.props["DURATION"]).parts()[2]  # type: ignore[no-untyped-call]
    if problems:
        return problems
    import recurring_ical_events

    try:
        return recurring_ical_events.of(parsed)
    except ValueError as exc:
        return [_refused(parsed) or f"cannot expand the events: {_first_line(exc)}"]


def _event_problem(event: Component, written: _Written) -> str | None:
    errors: list[tuple[str | None, str]] = list(getattr(event, "errors", []))
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
        if _aware(start) != _aware(end):
            if _aware(start):
                return f"{shown['DTSTART']} has a zone (TZID or Z), so DTEND must have one too ({shown['DTEND']})"
            return f"{shown['DTSTART']} is floating (no TZID, no Z), so DTEND must be floating too ({shown['DTEND']})"
        if end < start:
            return f"{shown['DTEND']} is before {shown['DTSTART']}"
    return None


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
    """Unfolded content lines with the number of the line each starts on (for messages)."""
    logical: list[tuple[int, str]] = []
    for number, line in enumerate(text.splitlines(), 1):
        if line[:1] in (" ", "\t") and logical:
            logical[-1] = (logical[-1][0], logical[-1][1] + line[1:])
        elif line.strip():
            logical.append((number, line))
    return logical


@dataclass(frozen=True)
class _Written:
    """A VEVENT as the file writes it: the line it begins on, and its own DTSTART, DTEND and DURATION
    lines (messages quote them as written; icalendar keeps only their values)."""

    line: int
    props: dict[str, str]


def _written_events(lines: list[tuple[int, str]]) -> list[_Written]:
    """Every VEVENT in file order, the order in which ``walk`` lists them (icalendar read the file whole
    first, so only the property names are looked at here)."""
    found: list[_Written] = []
    stack: list[_Written | None] = []  # the open components; None for those that are not a VEVENT
    for number, line in lines:
        name = re.split("[;:]", line, maxsplit=1)[0].upper()
        if name == "BEGIN":
            event = _Written(number, {}) if line.partition(":")[2].strip().upper() == "VEVENT" else None
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
