"""The HTML timeline's rows: one bar per segment, and a name for every bar that is not the default.

A bar's name goes inside it when it fits (clear of the ``--at`` line); otherwise into a lane under
the row's bars, joined to its bar by a leader line, so that it never sits on another bar (a name
beside a narrow bar read as the name of the faded default after it). Lanes are packed from the
right, at most ``MAX_LANES`` of them; the bars of a row too crowded even for that (names longer than
the gaps between their bars, over many bars) are listed by name on one more line, and every bar
keeps its tooltip. Default bars carry no name: their fading says it.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from html import escape

from esa_scheduler.engine.holds import Hold
from esa_scheduler.engine.planner import Segment
from esa_scheduler.timeutil import local_text, utc_iso
from esa_scheduler.views.chart_axis import AXIS_H, GAP, LABEL_W, WIDTH, Axis
from esa_scheduler.views.rows import Row, source_words
from esa_scheduler.views.textfit import Shelf, fit, text_width

BAR_Y, BAR_H = 3, 18
LANE_TOP = BAR_Y + BAR_H + 4
"""Top of the first lane of names under a row's bars; each lane is ``LANE_H`` high."""
LANE_H = 16
ASCENT = 11
MAX_LANES = 6
TAG_W = 300.0
"""The widest a name in a lane gets (longer ones are cut, in full in the bar's tooltip)."""
NAME_KEEP = 30
"""Window names up to this long are never cut (a cut name could read as another window's)."""
REASON_KEEP = 8
"""A hold's name shows at least this much of its reason, or goes to a lane where more fits."""


@dataclass(frozen=True)
class _Bar:
    """One segment as drawn: its x span, kind, and the name it is known by (empty for defaults)."""

    segment: Segment
    left: float
    right: float
    kind: str
    name: str
    keep: int


def _naming(segment: Segment, holds: Mapping[str, Hold]) -> tuple[str, str, int]:
    """The kind of a segment's source, its name on the chart, and how much of the name must show."""
    kind, _, name = segment.state.source.partition(":")
    if kind == "window":
        return kind, name, min(len(name), NAME_KEEP)
    if kind == "hold":
        head = source_words(segment.state.source)
        reason = holds[name].reason if name in holds else ""
        if not reason:
            return kind, head, len(head)
        return kind, f"{head}: {reason}", len(head) + 2 + min(len(reason), REASON_KEEP)
    return kind, "", 0


def _tip(bar: _Bar, axis: Axis, holds: Mapping[str, Hold]) -> str:
    """The tooltip: the source and state, a hold's full reason, and the span in local time and UTC."""
    segment, state = bar.segment, bar.segment.state
    until = local_text(segment.end, axis.tz) if segment.end else "beyond the search horizon"
    until_utc = utc_iso(segment.end) if segment.end else "-"
    hold = holds.get(state.source.partition(":")[2]) if bar.kind == "hold" else None
    why = f"\nreason: {hold.reason}" if hold is not None and hold.reason else ""
    return (
        f"{state.source}: {state.desired}{why}\n{local_text(segment.start, axis.tz)} – {until}\n"
        f"{utc_iso(segment.start)} – {until_utc}"
    )


def _inside(bar: _Bar, at_x: float) -> tuple[str, float] | None:
    """The name and its x inside the bar, clear of the --at line: whole if any part of the bar holds
    it, else cut as far as ``keep`` allows; None if it does not fit."""
    spans = [(bar.left + 3, bar.right - 3)]
    if bar.left - GAP < at_x < bar.right + GAP:
        spans = [(bar.left + 3, at_x - 1 - GAP), (at_x + 1 + GAP, bar.right - 3)]
    for keep in (len(bar.name), bar.keep):
        for lo, hi in spans:
            text = fit(bar.name, hi - lo, keep)
            if text is not None:
                return text, lo
    return None


@dataclass
class _Lanes:
    """The lanes of names under one row's bars, and the --at line they keep clear of.

    Names are placed from the row's right end leftwards, each in the shallowest lane where it has
    room, right of its leader: what is placed before lies to the right, so it seldom stands in the
    way of a new leader going down, and where it does the leader leaves the bar elsewhere.
    """

    at_x: float
    shelves: tuple[Shelf, ...]
    used: int = 0

    def _anchors(self, bar: _Bar) -> list[float]:
        """Where the leader may leave the bar, best first: near its start, near its end, its middle,
        its quarters; only those clear of the --at line (a bar too narrow for that uses its middle,
        and its name turns across the line)."""
        width = bar.right - bar.left
        inset = min(3.0, width / 2)
        spots = (inset, width - inset, width / 2, width / 4, width * 3 / 4)
        clear = [bar.left + x for x in spots if abs(bar.left + x - self.at_x) >= GAP + 1]
        return clear or [bar.left + width / 2]

    def _clear_of_at(self, lo: float, width: float) -> tuple[float, float]:
        """A text span moved past the --at line if it would touch it: right of it, or else left."""
        if lo - GAP < self.at_x + 1 and lo + width + GAP > self.at_x - 1:
            lo = self.at_x + 2 + GAP
            if lo + width > WIDTH - 2:
                lo = self.at_x - 2 - GAP - width
        return lo, lo + width

    def _span(self, anchor: float, width: float, right: bool) -> tuple[float, float]:
        """The text's (lo, hi) right of the leader (pulled left at the chart's right end, where the
        leader then meets it from above), or left of it."""
        lo = min(anchor + 2, WIDTH - 2 - width) if right else anchor - 2 - width
        return self._clear_of_at(lo, width)

    def best_start(self, bar: _Bar, text: str) -> float:
        """Where the name would begin in the best case: names are placed from the right by this, so
        a name pulled left (at the chart's end, or off the --at line) comes after the bars under it."""
        return self._span(self._anchors(bar)[0], text_width(text), right=True)[0]

    def place(self, bar: _Bar, text: str) -> str | None:
        """The leader and ``text`` in the shallowest lane with room right of the leader, else left of
        it (a name left of its leader may stand in the way of leaders placed after it), or None if
        no lane has room."""
        width, anchors = text_width(text), self._anchors(bar)
        for right in (True, False):
            for k, shelf in enumerate(self.shelves):
                for a in anchors:
                    if not all(upper.free(a - 1, a + 1) for upper in self.shelves[:k]):
                        continue  # the leader cannot pass a name above to reach this lane
                    lo, hi = self._span(a, width, right)
                    left, end = min(lo, a) - 1, max(hi, a) + 1
                    if lo >= LABEL_W and hi <= WIDTH - 2 and shelf.free(left - GAP, end + GAP):
                        shelf.take(left, end)
                        for upper in self.shelves[:k]:
                            upper.take(a - 1, a + 1)
                        self.used = max(self.used, k + 1)
                        return _tag(text, a, lo, hi, k)
        return None


def _tag(text: str, anchor: float, lo: float, hi: float, lane: int) -> str:
    """A name in a lane and its leader from the bar's foot: down to the name's middle and across to
    it, or down to its top when the name lies under the leader."""
    baseline = LANE_TOP + ASCENT + lane * LANE_H
    foot = BAR_Y + BAR_H
    if lo <= anchor <= hi:
        path = f"M{anchor:.2f} {foot}V{LANE_TOP + lane * LANE_H}H{anchor:.2f}"
    else:
        end = lo - 1 if anchor < lo else hi + 1
        path = f"M{anchor:.2f} {foot}V{baseline - 4}H{end:.2f}"
    return f'<path class="leader" d="{path}"/><text class="tag" x="{lo:.2f}" y="{baseline}">{escape(text)}</text>'


def _bars(segments: Sequence[Segment], axis: Axis, holds: Mapping[str, Hold]) -> list[_Bar]:
    """The segments that show on the chart, clipped to it, in time order."""
    found = []
    for segment in segments:
        if segment.start >= axis.end or (segment.end is not None and segment.end <= axis.start):
            continue
        end = segment.end or axis.end
        left, right = axis.x(max(segment.start, axis.start)), axis.x(min(end, axis.end))
        found.append(_Bar(segment, left, right, *_naming(segment, holds)))
    return found


def _labels(bars: Sequence[_Bar], at_x: float) -> tuple[list[str], int, dict[str, int]]:
    """Each bar's name as drawn (inside it, in a lane, or nothing), the lanes used, and the names of
    the bars no lane had room for, with how many bars each."""
    labels = [""] * len(bars)
    lanes = _Lanes(at_x, tuple(Shelf() for _ in range(MAX_LANES)))
    outside: list[tuple[float, int, str]] = []
    listed: dict[str, int] = {}
    for i, bar in enumerate(bars):
        if not bar.name:
            continue
        inside = _inside(bar, at_x)
        text = fit(bar.name, TAG_W, bar.keep) if inside is None else None
        if inside is not None:
            labels[i] = f'<text class="name" x="{inside[1]:.2f}" y="{BAR_Y + 13}">{escape(inside[0])}</text>'
        elif text is not None:
            outside.append((lanes.best_start(bar, text), i, text))
        else:  # what must show of the name is wider than a lane (a very long hold id)
            listed[bar.name] = listed.get(bar.name, 0) + 1
    for _, i, text in sorted(outside, reverse=True):
        labels[i] = lanes.place(bars[i], text) or ""
        if not labels[i]:
            listed[bars[i].name] = listed.get(bars[i].name, 0) + 1
    return labels, lanes.used, listed


def bars_svg(segments: Sequence[Segment], axis: Axis, at_x: float, holds: Mapping[str, Hold]) -> tuple[str, int]:
    """A row's bars with their names, and the row's height (taller by each lane of names it needs)."""
    bars = _bars(segments, axis, holds)
    labels, used, listed = _labels(bars, at_x)
    out = []
    for bar, label in zip(bars, labels, strict=True):
        segment = bar.segment
        end = f' data-end="{utc_iso(segment.end)}"' if segment.end else ""
        out.append(
            f'<g class="bar {segment.state.desired} {bar.kind}" data-source="{escape(segment.state.source)}" '
            f'data-start="{utc_iso(segment.start)}"{end}>'
            f'<rect x="{bar.left:.2f}" y="{BAR_Y}" width="{bar.right - bar.left:.2f}" height="{BAR_H}"/>'
            f"{label}<title>{escape(_tip(bar, axis, holds))}</title></g>"
        )
    if listed:
        out.append(_listed(listed, LANE_TOP + ASCENT + used * LANE_H, at_x))
    lines = used + bool(listed)
    return "".join(out), (LANE_TOP + lines * LANE_H if lines else BAR_Y + BAR_H + BAR_Y)


def _listed(listed: Mapping[str, int], baseline: int, at_x: float) -> str:
    """The names of the bars no lane had room for, with how many bars each (hover a bar for which),
    on the wider side of the --at line."""
    names = ", ".join(f"{name} ×{count}" if count > 1 else name for name, count in listed.items())
    full = f"Too crowded to name each bar: {names}"
    before, after = (LABEL_W, at_x - 1 - GAP), (at_x + 1 + GAP, WIDTH - 2)
    lo, hi = max(before, after, key=lambda span: span[1] - span[0])
    text = fit(full, hi - lo, keep=1) or ""
    return f'<text class="listed" x="{lo:.2f}" y="{baseline}">{escape(text)}<title>{escape(full)}</title></text>'


def rows_svg(rows: Sequence[Row], axis: Axis, at_x: float, holds: Mapping[str, Hold]) -> Iterator[tuple[str, int]]:
    """One group per row and its height; rows sharing their segments share the drawn bars (most do)."""
    drawn: dict[tuple[Segment, ...], tuple[str, int]] = {}
    y = AXIS_H
    for i, row in enumerate(rows):
        bars = drawn.get(row.segments)
        if bars is None:
            bars = drawn[row.segments] = bars_svg(row.segments, axis, at_x, holds)
        body, height = bars
        stripe = f'<rect class="stripe" width="{WIDTH}" height="{height}"/>' if i % 2 else ""
        label = escape(fit(row.label, LABEL_W - 12, keep=1, bold=True) or "")
        yield (
            (
                f'<g class="row" data-task="{escape(row.task.ref.name)}" transform="translate(0,{y})">{stripe}'
                f'<text class="label" x="6" y="{BAR_Y + 13}">{label}<title>{escape(row.label)}</title></text>{body}</g>'
            ),
            height,
        )
        y += height
