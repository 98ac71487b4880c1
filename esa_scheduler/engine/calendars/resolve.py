"""Every file's ``calendars:`` entries checked and merged into calendars that windows name."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

from esa_scheduler.engine.calendars.spec import CalendarSpec

if TYPE_CHECKING:
    from esa_scheduler.engine.calendars.dates import Calendar


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
    """Each kind's module is imported here, for a schedule that defines one: a schedule without
    calendars (most timer events) loads none of them."""
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
        from esa_scheduler.engine.calendars.dates import DateCalendar, parse_dates

        dates = parse_dates(spec.dates, f"{where}.dates", problems)
        return DateCalendar(name, file, dates) if dates is not None else None
    if spec.ics is not None:
        from esa_scheduler.engine.calendars.ics_read import ics_calendar

        return ics_calendar(name, spec.ics, file, where, problems)
    from esa_scheduler.engine.calendars.country import country_calendar

    return country_calendar(name, spec, file, where, problems)
