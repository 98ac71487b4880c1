"""A country's public holidays or workdays, from the ``holidays`` package, with the operator's patches."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, timedelta
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from esa_scheduler.engine.calendars.dates import Calendar, parse_dates
from esa_scheduler.engine.calendars.spec import CalendarKind, CalendarSpec
from esa_scheduler.errors import close_hint, close_matches

if TYPE_CHECKING:
    from holidays import HolidayBase


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
        from importlib import metadata  # only a year's warning asks: loading a calendar does not pay for it

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


def country_calendar(name: str, spec: CalendarSpec, file: str, where: str, problems: list[str]) -> Calendar | None:
    """The library's calendar for a code it knows (case aside), or a problem naming close codes and
    country names: operators often write ``Germany`` or ``de``."""
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
    import difflib  # only a mistake needs it, as in errors.close_matches

    from holidays.registry import COUNTRIES

    names = {key.replace("_", " "): entry[1] for key, entry in COUNTRIES.items()}
    close = difflib.get_close_matches(" ".join(value.lower().replace("_", " ").split()), list(names), n=3, cutoff=0.75)
    return [f"{names[n]} ({n.title()})" for n in close]
