"""``plan --html``: the schedule as a week-long chart in one self-contained HTML file.

Inline CSS and one SVG, no script and nothing fetched, so it opens from ``file://`` offline, can be
attached to a change request, and renders the same in any browser. Every bar carries its source
and UTC instants as ``data-`` attributes and an SVG ``<title>`` tooltip, so people hover and
tools (and the browser tests) read positions without guessing.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from html import escape
from zoneinfo import ZoneInfo

from esa_scheduler.engine.cron import wall_to_instant
from esa_scheduler.engine.holds import Hold
from esa_scheduler.engine.planner import Planner, Segment
from esa_scheduler.engine.schedule.model import Schedule
from esa_scheduler.timeutil import utc_iso
from esa_scheduler.views.rows import Row, build_rows, source_words, view_tasks

MAX_ROWS = 500
PAGE_BUDGET = 5_000_000
"""Bytes: the page stays under 5 MB whatever the input, by drawing fewer rows when it must."""
LABEL_W = 240
CHART_W = 1344
AXIS_H = 58
ROW_H = 22
BAR_Y, BAR_H = 3, 16
CHAR_W = 6.6
"""Roughly one character of the 11px bar labels: a label is drawn only where it fits."""
STEP = timedelta(minutes=15)
"""Every zone's offset is a multiple of 15 minutes, so scanning in quarters finds every local hour."""

STYLE = """
body{font:14px system-ui,-apple-system,"Segoe UI",sans-serif;margin:16px;color:#222;background:#fff}
h1{font-size:18px;margin:0 0 4px}p{margin:4px 0}.note{color:#8a4b00;font-weight:600}
.legend{display:flex;flex-wrap:wrap;gap:16px;list-style:none;padding:0;margin:8px 0}
.legend li{display:flex;align-items:center;gap:6px}
svg text{font:11px system-ui,sans-serif;fill:#222}
.stripe{fill:#f4f5f7}.label{font-weight:600}
.bar rect{stroke:#fff;stroke-width:.5}.bar text{fill:#fff;pointer-events:none}
.offline rect{fill:#c8372d}.online rect{fill:#2e8b57}
.default rect{fill-opacity:.3}.bar .beside{fill:#222}
.hold rect{stroke:#111;stroke-width:1.5;stroke-dasharray:4 2}
.hold.offline rect{fill:url(#hold-offline)}.hold.online rect{fill:url(#hold-online)}
.day{stroke:#666;stroke-width:1}.hour{stroke:#999;stroke-width:.5}.grid{stroke:#ddd;stroke-width:.5}
.dst{stroke:#7b2cbf;stroke-width:1.5;stroke-dasharray:6 3}.dst-label{fill:#7b2cbf;font-weight:600}
.at{stroke:#1565c0;stroke-width:2}.at-label{fill:#1565c0;font-weight:600}
"""

PATTERNS = "".join(
    f'<pattern id="hold-{state}" width="6" height="6" patternUnits="userSpaceOnUse" patternTransform="rotate(45)">'
    f'<rect width="6" height="6" fill="{colour}"/><rect width="3" height="6" fill="#fff" fill-opacity=".45"/></pattern>'
    for state, colour in (("offline", "#c8372d"), ("online", "#2e8b57"))
)


@dataclass(frozen=True)
class Axis:
    """The chart's time span and how instants map to x (pixels)."""

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


def _local(instant: datetime, tz: ZoneInfo) -> str:
    return instant.astimezone(tz).strftime("%Y-%m-%d %H:%M %Z")


def _offset(instant: datetime) -> str:
    text = instant.strftime("%z")
    return f"UTC{text[:3]}:{text[3:]}"


def _spacing(choices: tuple[int, ...], unit_px: float, min_px: float) -> int | None:
    """The smallest step (in hours or days) whose labels stay ``min_px`` apart, or None if none does."""
    return next((n for n in choices if n * unit_px >= min_px), None)


def _axis_svg(axis: Axis, height: int) -> list[str]:
    """Day boundaries (full height), hour ticks, and DST changes found by scanning the span in quarters.

    Labels thin out as the span grows (every 6 hours for a week, every 7 days for a quarter), so a
    long span stays legible instead of printing text over text.
    """
    hours_px = CHART_W / ((axis.end - axis.start) / timedelta(hours=1))
    hour_labels = _spacing((1, 2, 3, 6, 12), hours_px, 28)
    day_labels = _spacing((1, 2, 7, 14, 28), hours_px * 24, 70) or 56
    out = ['<g class="axis">']
    marks = []
    offset = axis.start.astimezone(axis.tz).utcoffset()
    day = None
    days = 0
    instant = axis.start
    while instant < axis.end:
        local = instant.astimezone(axis.tz)
        x = f"{axis.x(instant):.2f}"
        if local.utcoffset() != offset:
            before = (instant - STEP).astimezone(axis.tz)
            change = f"{before.tzname()} → {local.tzname()} ({_offset(before)} → {_offset(local)})"
            marks.append(
                f'<line class="dst" x1="{x}" x2="{x}" y1="14" y2="{height}" data-at="{utc_iso(instant)}"/>'
                f'<text class="dst-label" x="{float(x) + 4:.2f}" y="24">DST {escape(change)}</text>'
            )
            offset = local.utcoffset()
        if local.minute == 0:
            if local.date() != day:
                labelled = days % day_labels == 0
                top = 30 if labelled else AXIS_H - 10
                at = utc_iso(instant)
                out.append(f'<line class="day" x1="{x}" x2="{x}" y1="{top}" y2="{height}" data-at="{at}"/>')
                if labelled:
                    out.append(f'<text x="{float(x) + 3:.2f}" y="40">{local.strftime("%a %d %b")}</text>')
                day, days = local.date(), days + 1
            elif hours_px >= 3:
                out.append(f'<line class="hour" x1="{x}" x2="{x}" y1="{AXIS_H - 6}" y2="{AXIS_H}"/>')
            if hour_labels and local.hour % hour_labels == 0 and local.hour:
                out.append(f'<line class="grid" x1="{x}" x2="{x}" y1="{AXIS_H}" y2="{height}"/>')
                out.append(f'<text x="{x}" y="{AXIS_H - 8}" text-anchor="middle">{local.hour:02d}</text>')
        instant += STEP
    out.append("</g>")
    return out + marks


def _bar(segment: Segment, axis: Axis, room: float) -> str:
    """One bar, labelled inside when its name fits, else beside it when ``room`` (the free x after it)
    does, else only in its tooltip. Default bars carry no text: their fading says it, and it leaves
    their space to the names of the narrow windows before them (a 1 h window in a week is 8 px)."""
    end = segment.end or axis.end
    left, right = axis.x(max(segment.start, axis.start)), axis.x(min(end, axis.end))
    state = segment.state
    kind = state.source.partition(":")[0]
    name = state.source.partition(":")[2] if kind == "window" else source_words(state.source)
    until = _local(segment.end, axis.tz) if segment.end else "beyond the search horizon"
    until_utc = utc_iso(segment.end) if segment.end else "-"
    tip = (
        f"{state.source}: {state.desired}\n{_local(segment.start, axis.tz)} – {until}\n"
        f"{utc_iso(segment.start)} – {until_utc}"
    )
    width = right - left
    needed = CHAR_W * len(name) + 6
    label = ""
    if kind != "default" and width >= needed:
        label = f'<text x="{left + 3:.2f}" y="{BAR_Y + 12}">{escape(name)}</text>'
    elif kind != "default" and room - right >= needed:
        label = f'<text class="beside" x="{right + 3:.2f}" y="{BAR_Y + 12}">{escape(name)}</text>'
    end_attr = f' data-end="{utc_iso(segment.end)}"' if segment.end else ""
    return (
        f'<g class="bar {state.desired} {kind}" data-source="{escape(state.source)}" '
        f'data-start="{utc_iso(segment.start)}"{end_attr}>'
        f'<rect x="{left:.2f}" y="{BAR_Y}" width="{width:.2f}" height="{BAR_H}"/>{label}'
        f"<title>{escape(tip)}</title></g>"
    )


def _rooms(segments: Sequence[Segment], axis: Axis) -> list[float]:
    """For each bar, the x up to which a label beside it stays clear: the next bar that is not a
    default one (default bars carry no text), or the chart's right edge."""
    limit = axis.x(axis.end)
    rooms = []
    for segment in reversed(segments):
        rooms.append(limit)
        if segment.state.source != "default":
            limit = axis.x(max(segment.start, axis.start))
    return rooms[::-1]


def _rows_svg(rows: Sequence[Row], axis: Axis) -> Iterator[str]:
    """One group per row; rows sharing their segments share the rendered bars (most tasks do)."""
    bars: dict[tuple[Segment, ...], str] = {}
    for i, row in enumerate(rows):
        drawn = bars.get(row.segments)
        if drawn is None:
            visible = [s for s in row.segments if s.start < axis.end and (s.end is None or s.end > axis.start)]
            drawn = "".join(_bar(s, axis, room) for s, room in zip(visible, _rooms(visible, axis), strict=True))
            bars[row.segments] = drawn
        stripe = f'<rect class="stripe" width="{LABEL_W + CHART_W}" height="{ROW_H}"/>' if i % 2 else ""
        label = escape(row.label)
        yield (
            f'<g class="row" data-task="{escape(row.task.ref.name)}" transform="translate(0,{AXIS_H + i * ROW_H})">'
            f'{stripe}<text class="label" x="6" y="15" clip-path="url(#labels)">{label}<title>{label}</title></text>'
            f"{drawn}</g>"
        )


LEGEND = (
    ("offline (window)", '<rect width="22" height="12" fill="#c8372d"/>'),
    ("online (window)", '<rect width="22" height="12" fill="#2e8b57"/>'),
    ("hold", '<rect width="22" height="12" fill="url(#hold-offline)" stroke="#111" stroke-dasharray="4 2"/>'),
    ("online by default (faded)", '<rect width="22" height="12" fill="#2e8b57" fill-opacity=".3"/>'),
    ("offline by default (faded)", '<rect width="22" height="12" fill="#c8372d" fill-opacity=".3"/>'),
    ("DST change", '<line x1="11" x2="11" y1="0" y2="12" stroke="#7b2cbf" stroke-width="2" stroke-dasharray="4 2"/>'),
    ("--at instant", '<line x1="11" x2="11" y1="0" y2="12" stroke="#1565c0" stroke-width="2"/>'),
)


def _notes(total: int, kept: int, by_size: bool) -> list[str]:
    """Why rows are missing, if any are: the row cap, or the page's size budget (``by_size``)."""
    if not total:
        return ["No managed tasks: the schedule names none and has no patterns."]
    if kept == total:
        return []
    why = (
        f": their bars would take the page over its {PAGE_BUDGET // 1_000_000} MB size limit "
        "(fewer --days leave room for more rows)"
        if by_size
        else ""
    )
    return [
        f"Showing the first {kept} of {total} rows (sorted by site and name); the other {total - kept} "
        f"are not drawn{why}."
    ]


@dataclass(frozen=True)
class _Page:
    """Everything on the page but its rows, which ``render`` is given (all, or the first that fit)."""

    schedule_path: str
    at: datetime
    days: int
    axis: Axis
    total: int

    def render(self, rows: Sequence[str], by_size: bool = False) -> str:
        axis, at, tz = self.axis, self.at, self.axis.tz
        height = AXIS_H + ROW_H * len(rows) + 8
        width = LABEL_W + CHART_W + 16
        title = f"esa-scheduler plan: {self.schedule_path}"
        at_x = axis.x(at)
        legend = "".join(
            f'<li><svg width="22" height="12" aria-hidden="true">{swatch}</svg>{escape(text)}</li>'
            for text, swatch in LEGEND
        )
        parts = [
            '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">',
            f"<title>{escape(title)} at {utc_iso(at)}</title><style>{STYLE}</style></head><body>",
            f"<h1>{escape(title)}</h1>",
            f'<p class="sub">at <time datetime="{utc_iso(at)}">{utc_iso(at)}</time> ({_local(at, tz)}); '
            f"{axis.start.astimezone(tz):%Y-%m-%d} to {axis.end.astimezone(tz):%Y-%m-%d} in {tz.key} "
            f"(at least {self.days} day(s) after --at); {len(rows)} row(s)</p>",
            *(f'<p class="note">{escape(note)}</p>' for note in _notes(self.total, len(rows), by_size)),
            f'<svg width="0" height="0" style="position:absolute"><defs>{PATTERNS}</defs></svg>',
            f'<ul class="legend">{legend}</ul>',
            f'<svg xmlns="http://www.w3.org/2000/svg" class="timeline" width="{width}" height="{height}" '
            f'viewBox="0 0 {width} {height}" data-start="{utc_iso(axis.start)}" data-end="{utc_iso(axis.end)}" '
            f'data-x0="{LABEL_W}" data-x1="{LABEL_W + CHART_W}">',
            f'<defs><clipPath id="labels"><rect width="{LABEL_W - 10}" height="{ROW_H}"/></clipPath></defs>',
            *rows,
            *_axis_svg(axis, height),
            f'<line class="at" x1="{at_x:.2f}" x2="{at_x:.2f}" y1="0" y2="{height}" data-at="{utc_iso(at)}"/>',
            f'<text class="at-label" x="{at_x + 4:.2f}" y="10">at {at.astimezone(tz):%a %H:%M}</text>',
            "</svg></body></html>\n",
        ]
        return "".join(parts)


def _size(text: str) -> int:
    return len(text.encode("utf-8"))


def render_html(
    schedule_path: str, schedule: Schedule, at: datetime, days: int, names: Sequence[str], holds: Sequence[Hold]
) -> str:
    """The whole page: title, legend, notes, and the chart from ``at``'s local day to ``days`` past ``at``.

    At most ``MAX_ROWS`` rows, and only as many as keep the page under ``PAGE_BUDGET``: a dense window
    (every 3 hours on a thousand tasks) would otherwise make a page no browser opens comfortably.
    """
    axis = chart_axis(at, days, schedule.timezone)
    tasks = view_tasks(schedule, names)
    rows = build_rows(Planner(schedule, axis.start, holds), tasks, axis.end, MAX_ROWS)
    page = _Page(schedule_path, at, days, axis, len(tasks))
    room = PAGE_BUDGET - _size(page.render([], by_size=True))
    kept: list[str] = []
    for row in _rows_svg(rows, axis):  # row by row: a row that does not fit is the last one built
        room -= _size(row)
        if room <= 0:
            break
        kept.append(row)
    by_size = len(kept) < len(rows)
    text = page.render(kept, by_size)
    while kept and _size(text) >= PAGE_BUDGET:  # the height's digits grow with the rows drawn
        kept.pop()
        text = page.render(kept, by_size=True)
    return text
