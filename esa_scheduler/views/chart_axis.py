"""The HTML timeline's geometry and its time axis: days, hours, DST changes and the ``--at`` line.

Everything is drawn in viewBox units on a chart ``WIDTH`` wide, which the page scales to the
window's width. The axis labels sit in bands above the rows, each band a ``Shelf``, so that none
of them overlaps another or the ``--at`` line: an hour label that would is left out (the grid line
stays), a day or DST label moves aside first.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from html import escape
from zoneinfo import ZoneInfo

from esa_scheduler.engine.cron import wall_to_instant
from esa_scheduler.timeutil import utc_iso
from esa_scheduler.views.textfit import Shelf, text_width

WIDTH = 1230
"""The chart's width in viewBox units: at 1280 px (less 32 px of margins, less a 17 px scrollbar)
one unit is still at least one pixel, so 12-unit text renders at 12 px or more."""
LABEL_W = 212
CHART_W = 1006
AT_Y, DST_Y, DAY_Y, HOUR_Y = 12, 28, 44, 58
"""Baselines of the axis bands, top to bottom: the --at label, DST changes, days, hours."""
AXIS_H = 66
GAP = 3
"""The least room between two labels, or a label and the --at line."""
STEP = timedelta(minutes=15)
"""Every zone's offset is a multiple of 15 minutes, so scanning in quarters finds every local hour."""


@dataclass(frozen=True)
class Axis:
    """The chart's time span and how instants map to x."""

    start: datetime
    end: datetime
    tz: ZoneInfo

    def x(self, instant: datetime) -> float:
        """The x of ``instant``, linear in elapsed time (DST days are 23 or 25 hours wide)."""
        elapsed = (instant - self.start) / (self.end - self.start)
        return LABEL_W + CHART_W * elapsed


def chart_axis(at: datetime, days: int, tz: ZoneInfo) -> Axis:
    """From local midnight of the day holding ``at`` to the first local midnight at or after ``at``
    plus ``days``: whole days show, and the chart covers at least the span the ICS feed exports."""
    start, _ = wall_to_instant(datetime.combine(at.astimezone(tz).date(), time()), tz)
    last = (at + timedelta(days=days)).astimezone(tz)
    end_day = last.date() if last.time() == time() else last.date() + timedelta(days=1)
    end, _ = wall_to_instant(datetime.combine(end_day, time()), tz)
    return Axis(start, end, tz)


def _offset(instant: datetime) -> str:
    text = instant.strftime("%z")
    return f"UTC{text[:3]}:{text[3:]}"


def _spacing(choices: tuple[int, ...], unit_px: float, min_px: float) -> int | None:
    """The smallest step (in hours or days) whose labels stay ``min_px`` apart, or None if none does."""
    return next((n for n in choices if n * unit_px >= min_px), None)


def _place(
    shelf: Shelf, candidates: Iterable[tuple[str, float, str]], y: int, cls: str, limit: float, bold: bool = False
) -> str:
    """The first of ``candidates`` (text, x, anchor) that is free on ``shelf`` and ends by ``limit``,
    as an SVG text, its span taken; or nothing."""
    for text, x, anchor in candidates:
        width = text_width(text, bold)
        lo = {"start": x, "middle": x - width / 2, "end": x - width}[anchor]
        if lo >= LABEL_W and lo + width <= limit and shelf.free(lo - GAP, lo + width + GAP):
            shelf.take(lo, lo + width)
            end = "" if anchor == "start" else f' text-anchor="{anchor}"'
            return f'<text class="{cls}" x="{x:.2f}" y="{y}"{end}>{escape(text)}</text>'
    return ""


@dataclass
class _Bands:
    """The axis's label bands, each already holding the --at line's span."""

    at_x: float
    dst: Shelf
    day: Shelf
    hour: Shelf

    @classmethod
    def around(cls, at_x: float) -> _Bands:
        bands = cls(at_x, Shelf(), Shelf(), Shelf())
        for shelf in (bands.dst, bands.day, bands.hour):
            shelf.take(at_x - 1, at_x + 1)
        return bands


def _dst_mark(instant: datetime, axis: Axis, height: float, bands: _Bands) -> str:
    """The dashed line of a change of UTC offset, named right of it, else left, else in short."""
    before, local = (instant - STEP).astimezone(axis.tz), instant.astimezone(axis.tz)
    short = f"DST {before.tzname()} → {local.tzname()}"
    full = f"{short} ({_offset(before)} → {_offset(local)})"
    x = axis.x(instant)
    sides = ((x + 4, "start"), (x - 4, "end"))
    spots = [(text, at, side) for text in (full, short) for at, side in sides]
    label = _place(bands.dst, spots, DST_Y, "dst-label", WIDTH, bold=True)
    line = f'<line class="dst" x1="{x:.2f}" x2="{x:.2f}" y1="{DST_Y - 12}" y2="{height}" data-at="{utc_iso(instant)}"/>'
    return line + label


def axis_svg(axis: Axis, at: datetime, height: float) -> str:
    """Day boundaries (full height), hour ticks and grid, and DST changes found by scanning the span
    in quarters; drawn before the rows, so that bars cover the lines and labels stay readable.

    Labels thin out as the span grows (every 6 hours for a week, every 7 days for a quarter), so a
    long span stays legible instead of printing text over text.
    """
    hours_px = CHART_W / ((axis.end - axis.start) / timedelta(hours=1))
    hour_labels = _spacing((1, 2, 3, 6, 12), hours_px, text_width("00") + 12)
    day_labels = _spacing((1, 2, 7, 14, 28), hours_px * 24, text_width("Wed 30 Sep") + 10) or 56
    day_room = hours_px * (24 * day_labels - 1) - GAP
    bands = _Bands.around(axis.x(at))
    out = ['<g class="axis">']
    offset = axis.start.astimezone(axis.tz).utcoffset()
    day, days, instant = None, 0, axis.start
    while instant < axis.end:
        local = instant.astimezone(axis.tz)
        x = axis.x(instant)
        if local.utcoffset() != offset:
            out.append(_dst_mark(instant, axis, height, bands))
            offset = local.utcoffset()
        if local.minute == 0 and local.date() != day:
            labelled = days % day_labels == 0
            top = DAY_Y - 13 if labelled else AXIS_H - 8
            stamp = utc_iso(instant)
            out.append(f'<line class="day" x1="{x:.2f}" x2="{x:.2f}" y1="{top}" y2="{height}" data-at="{stamp}"/>')
            if labelled:
                # after the --at line when it is in the way, and in short when the day has no room for all
                starts = (x + 3, bands.at_x + 1 + GAP) if bands.at_x > x else (x + 3,)
                spots = [(text, start, "start") for text in (f"{local:%a %d %b}", f"{local:%a %d}") for start in starts]
                out.append(_place(bands.day, spots, DAY_Y, "day-label", min(x + day_room, WIDTH)))
            day, days = local.date(), days + 1
        elif local.minute == 0 and hours_px >= 3:
            out.append(f'<line class="hour" x1="{x:.2f}" x2="{x:.2f}" y1="{AXIS_H - 5}" y2="{AXIS_H}"/>')
        if local.minute == 0 and hour_labels and local.hour % hour_labels == 0 and local.hour:
            out.append(f'<line class="grid" x1="{x:.2f}" x2="{x:.2f}" y1="{AXIS_H}" y2="{height}"/>')
            out.append(_place(bands.hour, [(f"{local.hour:02d}", x, "middle")], HOUR_Y, "hour-label", WIDTH))
        instant += STEP
    out.append("</g>")
    return "".join(out)


def at_mark(axis: Axis, at: datetime, height: float) -> str:
    """The --at line over the whole chart, drawn last, and its label at the top, right of it unless
    that would run off the chart."""
    x = axis.x(at)
    text = f"at {at.astimezone(axis.tz):%a %H:%M}"
    right = x + 4 + text_width(text, bold=True) <= WIDTH
    label_x, anchor = (x + 4, "") if right else (x - 4, ' text-anchor="end"')
    return (
        f'<line class="at" x1="{x:.2f}" x2="{x:.2f}" y1="0" y2="{height}" data-at="{utc_iso(at)}"/>'
        f'<text class="at-label" x="{label_x:.2f}" y="{AT_Y}"{anchor}>{escape(text)}</text>'
    )
