"""Cron expressions evaluated on the wall clock of a zone, with exact DST rules.

croniter supplies the field grammar (names, ranges, steps, ``L``, ``#``) and iterates naive wall
times; this module decides what each wall time means as an instant, because croniter's own
aware iteration starts a daily 02:30 job twice on a fall-back day. The rules (the schedule
contract): a wall time skipped by a spring-forward fires at the first instant after the gap
(several skipped times become that one start); a wall time repeated by a fall-back matches only
its first pass when the hour field is fixed, and both passes when the hour field is ``*`` (or a
``*/n`` step), so hourly expressions fire every real hour.

croniter (with dateutil) is imported by the first expression parsed or scanned, so that reading a
schedule without cron windows (the intake's, often) does not load it.
"""

from __future__ import annotations

import heapq
import itertools
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

from esa_scheduler.timeutil import UTC

WallKind = Literal["normal", "ambiguous", "gap"]
_DST_MARGIN = timedelta(hours=3)
_ONE_SECOND = timedelta(seconds=1)
_MONTH_NAMES = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_MONTHS = {name: number for number, name in enumerate(_MONTH_NAMES, 1)}
_WEEKDAYS = {name: number for number, name in enumerate(("sun", "mon", "tue", "wed", "thu", "fri", "sat"))}
_FIELD_NAMES: tuple[Mapping[str, int], ...] = ({}, {}, {}, _MONTHS, _WEEKDAYS)
_RANGE = re.compile(r"([0-9]+|[a-z]+)-([0-9]+|[a-z]+)(/[1-9][0-9]*)?", re.IGNORECASE)


def _single_value_ranges(field: str, names: Mapping[str, int]) -> str:
    """``5-5``, ``jun-jun`` or ``5-5/2`` as the one value it means, as cron reads it.

    croniter 7.0.0 expands a range whose ends are equal to the whole field, so ``0 5-5 * * *``
    (as a templating tool may write it) would fire every hour; each list item is rewritten alone.
    """

    def value(end: str) -> int | None:
        return int(end) if end.isdigit() else names.get(end.lower())

    def single(item: str) -> str:
        match = _RANGE.fullmatch(item)
        if match is None:
            return item
        low = value(match[1])
        return match[1] if low is not None and low == value(match[2]) else item

    return ",".join(single(item) for item in field.split(","))


def _passes(wall: datetime, tz: ZoneInfo) -> tuple[datetime, datetime, WallKind]:
    """Both readings of a naive wall time: (fold=0 instant, fold=1 instant, kind)."""
    first = wall.replace(tzinfo=tz, fold=0).astimezone(UTC)
    second = wall.replace(tzinfo=tz, fold=1).astimezone(UTC)
    if first == second:
        return first, second, "normal"
    if first < second:
        return first, second, "ambiguous"
    return first, second, "gap"


def _gap_end(before: datetime, after: datetime, tz: ZoneInfo) -> datetime:
    """The first instant whose offset is the post-transition one, between two instants (to the second)."""
    target = after.astimezone(tz).utcoffset()
    lo, hi = before, after
    while hi - lo > _ONE_SECOND:
        mid = lo + (hi - lo) / 2
        mid = mid.replace(microsecond=0)
        if mid.astimezone(tz).utcoffset() == target:
            hi = mid
        else:
            lo = mid
    return hi


def wall_to_instant(wall: datetime, tz: ZoneInfo) -> tuple[datetime, WallKind]:
    """Map a naive wall time to one instant: the first pass if repeated, the gap's end if skipped."""
    first, second, kind = _passes(wall, tz)
    if kind == "gap":
        return _gap_end(second, first, tz), kind
    return first, kind


def _local(instant: datetime, tz: ZoneInfo) -> datetime:
    return instant.astimezone(tz).replace(tzinfo=None)


def _margin(instant: datetime, tz: ZoneInfo) -> timedelta:
    """How far from the instant the wall-clock scan must start to see every DST reading near it."""
    before = (instant - _DST_MARGIN).astimezone(tz).utcoffset()
    after = (instant + _DST_MARGIN).astimezone(tz).utcoffset()
    return timedelta(0) if before == after else _DST_MARGIN


@dataclass(frozen=True)
class CronExpr:
    """A validated 5-field expression; ``wall_clock`` is true when the hour field is fixed.

    ``text`` is the normalized expression given to croniter (single-value ranges collapsed).
    """

    text: str
    wall_clock: bool

    @classmethod
    def parse(cls, text: str) -> CronExpr:
        """Validate a 5-field expression, raising ``ValueError`` that quotes it."""
        if not isinstance(text, str):
            raise ValueError(f"invalid cron {text!r}: expected a string with 5 fields")
        fields = text.split()
        if len(fields) != 5:
            raise ValueError(f"invalid cron {text!r}: expected 5 fields (minute hour day month weekday)")
        fields = [_single_value_ranges(field, names) for field, names in zip(fields, _FIELD_NAMES, strict=True)]
        normalized = " ".join(fields)
        from croniter import CroniterError, croniter

        try:
            croniter(normalized, datetime(2000, 1, 1))
        except (CroniterError, ValueError, TypeError, KeyError) as exc:
            raise ValueError(f"invalid cron {text!r}: {exc}") from exc
        return cls(normalized, wall_clock=not fields[1].startswith("*"))

    def after(self, instant: datetime, tz: ZoneInfo) -> Iterator[datetime]:
        """Start instants strictly after ``instant``, ascending, in UTC."""
        from croniter import croniter

        scan = croniter(self.text, _local(instant - _margin(instant, tz), tz))
        starts = self._merge(_walls(scan.get_next), tz, forward=True)
        return itertools.dropwhile(lambda start: start <= instant, starts)

    def at_or_before(self, instant: datetime, tz: ZoneInfo) -> Iterator[datetime]:
        """Start instants at or before ``instant``, descending, in UTC."""
        from croniter import croniter

        scan = croniter(self.text, _local(instant + _margin(instant, tz), tz) + _ONE_SECOND)
        starts = self._merge(_walls(scan.get_prev), tz, forward=False)
        return itertools.dropwhile(lambda start: start > instant, starts)

    def _readings(self, wall: datetime, tz: ZoneInfo) -> list[datetime]:
        """The start instants one matching wall time stands for, earliest first."""
        first, second, kind = _passes(wall, tz)
        if kind == "gap":
            return [_gap_end(second, first, tz)]
        if kind == "ambiguous" and not self.wall_clock:
            return [first, second]
        return [first]

    def _merge(self, walls: Iterator[datetime], tz: ZoneInfo, forward: bool) -> Iterator[datetime]:
        """Readings of successive wall times as one strictly monotonic stream.

        The other pass of a repeated wall time can fall after the next wall times' readings, so it
        waits in a heap until its turn; several gap times that become one instant yield it once.
        """
        sign = 1 if forward else -1
        pending: list[tuple[float, datetime]] = []
        last: datetime | None = None
        for wall in walls:
            head, *others = self._readings(wall, tz)[::sign]
            for other in others:
                heapq.heappush(pending, (sign * other.timestamp(), other))
            ready = []
            while pending and pending[0][0] < sign * head.timestamp():
                ready.append(heapq.heappop(pending)[1])
            for value in [*ready, head]:
                if last is None or (value > last if forward else value < last):
                    last = value
                    yield value


def _walls(step: Callable[[type[datetime]], datetime]) -> Iterator[datetime]:
    """Matching naive wall times from croniter, until it finds no more."""
    from croniter import CroniterBadDateError

    while True:
        try:
            yield step(datetime)
        except CroniterBadDateError:
            return
