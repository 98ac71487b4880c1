"""``plan --html``: the schedule as a week-long chart in one self-contained HTML file.

Inline CSS and one SVG, no script and nothing fetched, so it opens from ``file://`` offline, can be
attached to a change request, and renders the same in any browser. The SVG has a viewBox and takes
the window's width, so the whole span shows without scrolling sideways. Every bar carries its source
and UTC instants as ``data-`` attributes and an SVG ``<title>`` tooltip, so people hover and tools
(and the browser tests) read positions without guessing; every bar but a default one is also named
on the page (``chart_bars``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from html import escape

from esa_scheduler.engine.holds import Hold
from esa_scheduler.engine.planner import Planner
from esa_scheduler.engine.schedule.model import Schedule
from esa_scheduler.timeutil import local_text, utc_iso
from esa_scheduler.views.chart_axis import AXIS_H, WIDTH, Axis, at_mark, axis_svg, chart_axis
from esa_scheduler.views.chart_bars import rows_svg
from esa_scheduler.views.rows import build_rows, view_tasks

MAX_ROWS = 500
PAGE_BUDGET = 5_000_000
"""Bytes: the page stays under 5 MB whatever the input, by drawing fewer rows when it must."""
OFFLINE, ONLINE = "#c8372d", "#1f7d4b"
"""Bar colours: white names on either (and on the darker hold stripes) keep a contrast of 5:1 or more."""
HOLD_STRIPES = {"offline": "#8e2219", "online": "#145232"}

STYLE = f"""
body{{font:14px system-ui,-apple-system,"Segoe UI",sans-serif;margin:16px;color:#222;background:#fff}}
h1{{font-size:18px;margin:0 0 4px}}p{{margin:4px 0}}.note{{color:#8a4b00;font-weight:600}}
.legend{{display:flex;flex-wrap:wrap;gap:16px;list-style:none;padding:0;margin:8px 0}}
.legend li{{display:flex;align-items:center;gap:6px}}
svg.timeline{{display:block;width:100%;height:auto}}
svg text{{font:12px system-ui,"DejaVu Sans",sans-serif;fill:#222}}
.stripe{{fill:#000;fill-opacity:.045}}.label{{font-weight:600}}
.bar rect{{stroke:#fff;stroke-width:.5}}.bar .name{{fill:#fff}}
.offline rect{{fill:{OFFLINE}}}.online rect{{fill:{ONLINE}}}.default rect{{fill-opacity:.3}}
.tag,.listed,.axis text,.at-label{{paint-order:stroke;stroke:#fff;stroke-width:3px;stroke-linejoin:round}}
.leader{{stroke-width:1.5;fill:none}}.offline .leader{{stroke:{OFFLINE}}}.online .leader{{stroke:{ONLINE}}}
.hold rect{{stroke:#111;stroke-width:1.5;stroke-dasharray:4 2}}
.hold.offline rect{{fill:url(#hold-offline)}}.hold.online rect{{fill:url(#hold-online)}}
.day{{stroke:#aaa;stroke-width:1}}.hour{{stroke:#999;stroke-width:.5}}.grid{{stroke:#ddd;stroke-width:.5}}
.dst{{stroke:#7b2cbf;stroke-width:1.5;stroke-dasharray:6 3}}.dst-label{{fill:#7b2cbf;font-weight:600}}
.at{{stroke:#1565c0;stroke-width:2}}.at-label{{fill:#1565c0;font-weight:600}}
"""

PATTERNS = "".join(
    f'<pattern id="hold-{state}" width="8" height="8" patternUnits="userSpaceOnUse" patternTransform="rotate(45)">'
    f'<rect width="8" height="8" fill="{colour}"/><rect width="3" height="8" fill="{HOLD_STRIPES[state]}"/></pattern>'
    for state, colour in (("offline", OFFLINE), ("online", ONLINE))
)

LEGEND = (
    ("offline (window)", f'<rect width="22" height="12" fill="{OFFLINE}"/>'),
    ("online (window)", f'<rect width="22" height="12" fill="{ONLINE}"/>'),
    ("hold", '<rect width="22" height="12" fill="url(#hold-offline)" stroke="#111" stroke-dasharray="4 2"/>'),
    ("online by default (faded)", f'<rect width="22" height="12" fill="{ONLINE}" fill-opacity=".3"/>'),
    ("offline by default (faded)", f'<rect width="22" height="12" fill="{OFFLINE}" fill-opacity=".3"/>'),
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

    def render(self, rows: Sequence[tuple[str, int]], by_size: bool = False) -> str:
        """The page around ``rows`` (each drawn row and its height)."""
        axis, at, tz = self.axis, self.at, self.axis.tz
        height = AXIS_H + sum(h for _, h in rows) + 8
        title = f"esa-scheduler plan: {self.schedule_path}"
        legend = "".join(
            f'<li><svg width="22" height="12" aria-hidden="true">{swatch}</svg>{escape(text)}</li>'
            for text, swatch in LEGEND
        )
        parts = [
            '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">',
            '<meta name="viewport" content="width=device-width, initial-scale=1">',
            f"<title>{escape(title)} at {utc_iso(at)}</title><style>{STYLE}</style></head><body>",
            f"<h1>{escape(title)}</h1>",
            f'<p class="sub">at <time datetime="{utc_iso(at)}">{utc_iso(at)}</time> ({local_text(at, tz)}); '
            f"{axis.start.astimezone(tz):%Y-%m-%d} to {axis.end.astimezone(tz):%Y-%m-%d} in {tz.key} "
            f"(at least {self.days} day(s) after --at); {len(rows)} row(s)</p>",
            *(f'<p class="note">{escape(note)}</p>' for note in _notes(self.total, len(rows), by_size)),
            f'<svg width="0" height="0" style="position:absolute"><defs>{PATTERNS}</defs></svg>',
            f'<ul class="legend">{legend}</ul>',
            f'<svg xmlns="http://www.w3.org/2000/svg" class="timeline" viewBox="0 0 {WIDTH} {height}" '
            f'data-start="{utc_iso(axis.start)}" data-end="{utc_iso(axis.end)}" '
            f'data-x0="{axis.x(axis.start):g}" data-x1="{axis.x(axis.end):g}">',
            axis_svg(axis, at, height),
            *(row for row, _ in rows),
            at_mark(axis, at, height),
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
    kept: list[tuple[str, int]] = []
    by_id = {hold.id: hold for hold in holds}
    for row in rows_svg(rows, axis, axis.x(at), by_id):  # row by row: a row that does not fit is the last one built
        room -= _size(row[0])
        if room <= 0:
            break
        kept.append(row)
    by_size = len(kept) < len(rows)
    text = page.render(kept, by_size)
    while kept and _size(text) >= PAGE_BUDGET:  # the height's digits grow with the rows drawn
        kept.pop()
        text = page.render(kept, by_size=True)
    return text
