"""Resolving one window: recurring (cron), one-off (start and end) or ICS events, with its calendars."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from esa_scheduler.engine.cron import CronExpr, wall_to_instant
from esa_scheduler.engine.schedule.model import Window
from esa_scheduler.engine.schedule.spec import WindowSpec
from esa_scheduler.timeutil import UTC, in_range, parse_duration, zone

if TYPE_CHECKING:  # the calendar modules load only for a schedule that defines calendars
    from esa_scheduler.engine.calendars.dates import Calendar


def read_duration(text: str, where: str, problems: list[str]) -> timedelta | None:
    """A duration, or ``None`` and a problem: the caller carries on, so later checks still run."""
    try:
        return parse_duration(text)
    except ValueError as exc:
        problems.append(f"{where}: {exc}")
        return None


def _cron(text: str, where: str, problems: list[str]) -> CronExpr | None:
    try:
        return CronExpr.parse(text)
    except ValueError as exc:
        problems.append(f"{where}: {exc}")
        return None


def zone_or_utc(name: str, where: str, problems: list[str]) -> ZoneInfo:
    """Resolve a zone, recording a problem and carrying on in UTC so later checks still run."""
    try:
        return zone(name)
    except ValueError as exc:
        problems.append(f"{where}: {exc}")
        return zone("UTC")


def resolve_window(
    window: WindowSpec,
    file_tz: ZoneInfo,
    file: str,
    calendars: dict[str, Calendar | None],
    where: str,
    problems: list[str],
) -> Window | None:
    """One window of any kind, or ``None`` when it has a problem (each one recorded)."""
    before = len(problems)
    tz = zone_or_utc(window.timezone, f"{where}.timezone", problems) if window.timezone else file_tz
    base = Window(
        window.name,
        tuple(window.tasks),
        window.status,
        window.priority,
        tz,
        file,
        skip=_calendar_refs(window.skip, calendars, f"{where}.skip", problems),
        only_on=_calendar_refs(window.only_on, calendars, f"{where}.only_on", problems),
    )
    kinds = {
        "'cron' (recurring)": window.cron is not None,
        "'start'/'end' (one-off)": window.start is not None or window.end is not None,
        "'calendar' (ICS events)": window.calendar is not None,
    }
    chosen = [kind for kind, present in kinds.items() if present]
    if len(chosen) > 1:
        problems.append(f"{where}: give only one of {', '.join(chosen)}")
        return None
    if not chosen:
        problems.append(f"{where}: needs 'cron' with 'duration' or 'end_cron', 'start' and 'end', or 'calendar'")
        return None
    if window.summary is not None and window.calendar is None:
        problems.append(f"{where}.summary: only applies to 'calendar' (ICS) windows")
    if window.cron is not None:
        resolved = _resolve_recurring(window, base, where, problems)
    elif window.calendar is not None:
        resolved = _resolve_events(window, base, calendars, where, problems)
    else:
        resolved = _resolve_one_off(window, base, where, problems)
    return resolved if len(problems) == before else None


def _calendar_refs(
    names: list[str], calendars: dict[str, Calendar | None], where: str, problems: list[str]
) -> tuple[Calendar, ...]:
    found = [_calendar_ref(name, calendars, f"{where}[{i}]", problems) for i, name in enumerate(names)]
    return tuple(c for c in found if c is not None)


def _calendar_ref(name: str, calendars: dict[str, Calendar | None], where: str, problems: list[str]) -> Calendar | None:
    """The calendar a window names; ``None`` for an unknown name (a problem) or for a calendar whose own
    problems were reported where it is defined (nothing more to say here)."""
    if name in calendars:
        return calendars[name]
    import difflib  # a close name for a mistake only

    hint = difflib.get_close_matches(name, list(calendars), n=1)
    suggestion = f" (did you mean {hint[0]!r}?)" if hint else " (define it under 'calendars:')"
    problems.append(f"{where}: unknown calendar {name!r}{suggestion}")
    return None


def _resolve_events(
    window: WindowSpec, base: Window, calendars: dict[str, Calendar | None], where: str, problems: list[str]
) -> Window | None:
    assert window.calendar is not None
    extras = [k for k in ("duration", "end_cron") if getattr(window, k)]
    if extras:
        problems.append(f"{where}: {', '.join(extras)} do not apply to 'calendar' windows (events have their own ends)")
    _check_active_bounds(window, where, problems)
    from esa_scheduler.engine.calendars.ics import IcsCalendar

    calendar = _calendar_ref(window.calendar, calendars, f"{where}.calendar", problems)
    if calendar is not None and not isinstance(calendar, IcsCalendar):
        problems.append(f"{where}.calendar: {window.calendar!r} is not an ICS calendar (only 'ics:' ones have events)")
        return None
    return replace(
        base,
        events=calendar,
        summary=window.summary,
        skip_dates=frozenset(window.skip_dates),
        active_from=window.active_from,
        active_until=window.active_until,
    )


def _check_active_bounds(window: WindowSpec, where: str, problems: list[str]) -> None:
    if window.active_from and window.active_until and window.active_until < window.active_from:
        problems.append(f"{where}.active_until: {window.active_until} is before active_from {window.active_from}")


def _resolve_recurring(window: WindowSpec, base: Window, where: str, problems: list[str]) -> Window | None:
    assert window.cron is not None
    if (window.duration is None) == (window.end_cron is None):
        problems.append(f"{where}: give exactly one of 'duration' or 'end_cron' with 'cron'")
    cron = _cron(window.cron, f"{where}.cron", problems)
    duration = read_duration(window.duration, f"{where}.duration", problems) if window.duration else None
    end_cron = _cron(window.end_cron, f"{where}.end_cron", problems) if window.end_cron else None
    _check_active_bounds(window, where, problems)
    return replace(
        base,
        cron=cron,
        duration=duration,
        end_cron=end_cron,
        skip_dates=frozenset(window.skip_dates),
        active_from=window.active_from,
        active_until=window.active_until,
    )


def _resolve_one_off(window: WindowSpec, base: Window, where: str, problems: list[str]) -> Window | None:
    extras = [
        k
        for k in ("duration", "end_cron", "skip_dates", "active_from", "active_until", "skip", "only_on")
        if getattr(window, k)
    ]
    if extras:
        problems.append(f"{where}: {', '.join(extras)} only apply to recurring (cron or calendar) windows")
    if window.start is None or window.end is None:
        missing = "start" if window.start is None else "end"
        problems.append(f"{where}.{missing}: a one-off window needs both 'start' and 'end'")
        return None
    start = _instant(window.start, base.tz, f"{where}.start", problems)
    end = _instant(window.end, base.tz, f"{where}.end", problems)
    if start is None or end is None or extras:
        return None
    if end <= start:
        problems.append(f"{where}.end: {window.end.isoformat()} is not after start {window.start.isoformat()}")
        return None
    return replace(base, start=start, end=end)


def _instant(value: datetime, tz: ZoneInfo, where: str, problems: list[str]) -> datetime | None:
    """Aware values are taken as written; naive ones are wall clock in the window's zone."""
    try:
        in_range(value, value.isoformat())
    except ValueError as exc:
        problems.append(f"{where}: {exc}")
        return None
    if value.tzinfo is not None:
        return value.astimezone(UTC)
    instant, kind = wall_to_instant(value, tz)
    if kind == "gap":
        problems.append(f"{where}: {value.isoformat()} does not exist in {tz.key} (skipped by a DST change)")
        return None
    if kind == "ambiguous":
        problems.append(f"{where}: {value.isoformat()} happens twice in {tz.key} (DST change); add an offset to choose")
        return None
    return instant
