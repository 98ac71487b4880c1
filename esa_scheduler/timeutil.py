"""Instants, durations and time zones, parsed strictly.

Everything the scheduler stores or logs is an aware UTC instant written with a ``Z``; naive
datetimes only ever exist as wall-clock readings in a named zone.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

UTC = timezone.utc
MAX_DURATION = timedelta(days=3650)
MIN_YEAR, MAX_YEAR = 1970, 9000

_DURATION_UNITS = {"d": 86400, "h": 3600, "m": 60, "s": 1}
_SHORT_DURATION = re.compile(r"(?:(\d+(?:\.\d+)?)([dhms]))", re.IGNORECASE)
_ISO_DURATION = re.compile(
    r"P(?:(?P<d>\d+(?:\.\d+)?)D)?(?:T(?:(?P<h>\d+(?:\.\d+)?)H)?(?:(?P<m>\d+(?:\.\d+)?)M)?"
    r"(?:(?P<s>\d+(?:\.\d+)?)S)?)?",
    re.IGNORECASE,
)


def utc_iso(instant: datetime) -> str:
    """Format an aware instant as UTC ISO 8601 with ``Z`` (seconds precision unless sub-second)."""
    if instant.tzinfo is None:
        raise ValueError("naive datetime cannot be written as an instant")
    text = instant.astimezone(UTC).isoformat()
    return text.replace("+00:00", "Z")


def local_text(instant: datetime, tz: ZoneInfo) -> str:
    """An instant as the schedule's people read it, in the views: local wall time and zone abbreviation."""
    return instant.astimezone(tz).strftime("%Y-%m-%d %H:%M %Z")


def now_utc() -> datetime:
    """The current instant, aware, in UTC."""
    return datetime.now(UTC)


def now_to_the_second() -> datetime:
    """The current instant without its fraction of a second: what an invocation decides at when no
    instant is given, so the instant printed (``2026-12-07T07:54:23Z``) is exactly the one used.
    Log lines keep their own, finer timestamps."""
    return now_utc().replace(microsecond=0)


@lru_cache(maxsize=256)
def zone(name: str) -> ZoneInfo:
    """Resolve an IANA zone name, raising ``ValueError`` with the name when it is unknown."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, TypeError) as exc:
        raise ValueError(f"unknown time zone {name!r}") from exc


def parse_datetime(text: str) -> datetime:
    """Parse ISO 8601 (``Z`` accepted on every Python >= 3.10); may return a naive datetime."""
    cleaned = text.strip()
    if cleaned.endswith(("Z", "z")):
        cleaned = cleaned[:-1] + "+00:00"
    try:
        return datetime.fromisoformat(cleaned)
    except ValueError as exc:
        raise ValueError(f"invalid ISO 8601 date-time {text!r}") from exc


def in_range(instant: datetime, shown: object) -> datetime:
    """Instants far outside any schedule's life would overflow date arithmetic; refuse them early."""
    if not MIN_YEAR <= instant.year <= MAX_YEAR:
        raise ValueError(f"date-time {shown!r} is outside the supported years {MIN_YEAR}-{MAX_YEAR}")
    return instant


def parse_instant(text: str) -> datetime:
    """Parse an ISO 8601 instant that must carry an offset or ``Z``; return it in UTC."""
    value = parse_datetime(text)
    if value.tzinfo is None:
        raise ValueError(f"date-time {text!r} needs an offset or Z")
    in_range(value, text)
    return value.astimezone(UTC)


def parse_duration(text: str) -> timedelta:
    """Parse ``1h30m`` / ``90s`` / ``2d`` or ISO 8601 ``PT1H30M`` into elapsed time (> 0)."""
    raw = str(text).strip()
    seconds: float | None = None
    if raw[:1] in ("P", "p"):
        match = _ISO_DURATION.fullmatch(raw)
        if match and any(match.groupdict().values()) and not raw.upper().endswith("T"):
            seconds = sum(float(v) * _DURATION_UNITS[k] for k, v in match.groupdict().items() if v)
    elif raw and _SHORT_DURATION.sub("", raw) == "":
        seconds = sum(float(n) * _DURATION_UNITS[u.lower()] for n, u in _SHORT_DURATION.findall(raw))
    if seconds is None:
        raise ValueError(f"invalid duration {raw!r} (use s m h d units like 1h30m, or ISO 8601 like PT1H30M)")
    if seconds <= 0:
        raise ValueError(f"duration {raw!r} must be greater than zero")
    if seconds > MAX_DURATION.total_seconds():
        raise ValueError(f"duration {raw!r} is longer than {MAX_DURATION.days} days")
    return timedelta(seconds=seconds)
