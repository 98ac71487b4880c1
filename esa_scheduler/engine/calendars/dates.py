"""A calendar as windows ask it (which local dates it holds), and listed dates and ranges (``dates:``)."""

from __future__ import annotations

import bisect
import re
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator
from datetime import date, timedelta
from zoneinfo import ZoneInfo

from esa_scheduler.engine.calendars.spec import DateItem
from esa_scheduler.timeutil import MAX_YEAR, MIN_YEAR

MAX_RANGE_DAYS = 3660
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_RANGE = ".."


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
