"""``plan --html``, rendered by headless Chromium: one row per task, one bar per interval, bars of a
known window at the x the axis gives their instants, DST and ``--at`` marks, and a non-blank screenshot.

Without Chromium these tests skip locally and fail under CI (``CI`` set), which installs it.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from html.parser import HTMLParser
from itertools import pairwise
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from browser import chromium, dump_dom, png_pixels, screenshot
from helpers import UTC, add_hold, iso, parse_instant, run_cli, utc, write_schedule

from esa_scheduler.engine.planner import TaskRef, plan
from esa_scheduler.engine.schedule import load_schedule

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "schedule" / "sample.yaml"
BERLIN = ZoneInfo("Europe/Berlin")
SPRING_WEEK = "2027-03-26T10:00:00Z"
VOID = {"meta", "br", "img", "input", "link", "hr"}


@pytest.fixture(scope="module")
def browser() -> str:
    """Chromium's path; a skip with the reason when it is missing locally, a failure under CI."""
    found = chromium()
    if found is None:
        reason = "chromium is not installed (apt-get install -y chromium); .ci/run installs it"
        if os.environ.get("CI"):
            pytest.fail(f"CI must run the browser tests: {reason}")
        pytest.skip(reason)
    return found


@dataclass
class Node:
    tag: str
    attrs: dict[str, str]
    children: list[Node] = field(default_factory=list)
    text: str = ""

    def walk(self) -> Iterator[Node]:
        yield self
        for child in self.children:
            yield from child.walk()

    def find(self, tag: str, cls: str | None = None) -> list[Node]:
        return [n for n in self.walk() if n.tag == tag and (cls is None or cls in n.attrs.get("class", "").split())]

    def child(self, tag: str) -> Node:
        return next(c for c in self.children if c.tag == tag)


class _Tree(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = Node("#document", {})
        self.stack = [self.root]

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        node = Node(tag, {k: v or "" for k, v in attrs})
        self.stack[-1].children.append(node)
        if tag not in VOID:
            self.stack.append(node)

    def handle_endtag(self, tag: str) -> None:
        while len(self.stack) > 1:
            if self.stack.pop().tag == tag:
                return

    def handle_data(self, data: str) -> None:
        self.stack[-1].text += data


def _dom(page: Path) -> Node:
    parser = _Tree()
    parser.feed(dump_dom(page))
    return parser.root


def _render(capsys: pytest.CaptureFixture[str], tmp_path: Path, at: str, *extra: str) -> Path:
    page = tmp_path / "timeline.html"
    args = ["plan", "--schedule", str(SAMPLE), "--at", at, "--html", str(page), "--state-dir", str(tmp_path / "state")]
    code, _, err = run_cli(capsys, *args, *extra)
    assert code == 0, err
    return page


def _local_midnights(first: date, days: int) -> list[datetime]:
    return [datetime.combine(first + timedelta(days=i), time(), tzinfo=BERLIN).astimezone(UTC) for i in range(days + 1)]


def _nightly_starts(first: date, days: int) -> list[datetime]:
    """02:30 Berlin each day; on the spring-forward day 02:30 does not exist and the start is 03:00 CEST."""
    starts = []
    for i in range(days):
        wall = datetime.combine(first + timedelta(days=i), time(2, 30), tzinfo=BERLIN)
        exists = wall.astimezone(UTC).astimezone(BERLIN).replace(tzinfo=None) == wall.replace(tzinfo=None)
        starts.append(wall if exists else wall.replace(hour=3, minute=0))
    return [s.astimezone(UTC) for s in starts]


def _intervals(task: str, start: datetime, end: datetime) -> int:
    """How many (desired, source) intervals ``plan`` gives the task in [start, end), sampled every
    15 minutes: every edge of the sample schedule falls on a quarter hour."""
    schedule = load_schedule(SAMPLE)
    count, previous, at = 0, None, start
    while at < end:
        (decision,) = [d for d in plan(schedule, at, [TaskRef(task)]).decisions if d.task.ref.name == task]
        count += (decision.desired, decision.source) != previous
        previous, at = (decision.desired, decision.source), at + timedelta(minutes=15)
    return count


def test_page_is_self_contained(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    text = _render(capsys, tmp_path, SPRING_WEEK).read_text(encoding="utf-8")
    assert "<script" not in text.lower()
    assert not re.search(r"\b(src|href)=", text)
    assert "@import" not in text and "url(http" not in text
    assert set(re.findall(r"https?://[^\s\"')]+", text)) == {"http://www.w3.org/2000/svg"}  # a namespace, never fetched


def test_rows_bars_and_positions_in_chromium(browser: str, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    page = _render(capsys, tmp_path, SPRING_WEEK, "--task", "waf-edge")
    dom = _dom(page)
    title = dom.find("title")[0].text
    assert str(SAMPLE) in title and SPRING_WEEK in title
    rows = dom.find("g", "row")
    assert [r.attrs["data-task"] for r in rows] == ["access-logs-prod", "waf-edge", "site-logs"]

    # the axis: day lines at local midnights, from the day holding --at to the midnight after --at + 7 days
    first = date(2027, 3, 26)
    midnights = _local_midnights(first, 8)
    days = dom.find("line", "day")
    assert [parse_instant(d.attrs["data-at"]) for d in days] == midnights[:-1]
    x0, t0 = float(days[0].attrs["x1"]), midnights[0]
    px_per_s = (float(days[-1].attrs["x1"]) - x0) / (midnights[-2] - t0).total_seconds()
    svg = dom.find("svg", "timeline")[0]
    assert float(svg.attrs["data-x1"]) == pytest.approx(x0 + px_per_s * (midnights[-1] - t0).total_seconds(), abs=0.05)

    def x_of(instant: datetime) -> float:
        return x0 + px_per_s * (instant - t0).total_seconds()

    # one bar per interval of each row, as plan sees them
    for row in rows:
        assert len(row.find("g", "bar")) == _intervals(row.attrs["data-task"], midnights[0], midnights[-1])
    bars = rows[0].find("g", "bar")
    nightly = [b for b in bars if b.attrs["data-source"] == "window:nightly"]
    starts = _nightly_starts(first, 8)
    assert [parse_instant(b.attrs["data-start"]) for b in nightly] == starts
    for bar, start in zip(nightly, starts, strict=True):
        rect = bar.child("rect")
        assert float(rect.attrs["x"]) == pytest.approx(x_of(start), abs=0.05)
        assert float(rect.attrs["width"]) == pytest.approx(px_per_s * 3600, abs=0.05)  # 1h elapsed, DST or not
        assert "offline" in bar.attrs["class"].split() and "window" in bar.attrs["class"].split()
        tip = bar.child("title").text
        local = start.astimezone(BERLIN)
        assert f"{local:%Y-%m-%d %H:%M %Z} – {local + timedelta(hours=1):%Y-%m-%d %H:%M %Z}" in tip
        assert f"{iso(start)} – {iso(start + timedelta(hours=1))}" in tip
    spring = nightly[2].child("title").text
    assert "2027-03-28 03:00 CEST – 2027-03-28 04:00 CEST" in spring

    # DST change as a labelled mark, and the --at line
    (dst,) = dom.find("line", "dst")
    assert parse_instant(dst.attrs["data-at"]) == utc("2027-03-28T01:00:00")
    assert float(dst.attrs["x1"]) == pytest.approx(x_of(utc("2027-03-28T01:00:00")), abs=0.05)
    assert "CET → CEST (UTC+01:00 → UTC+02:00)" in dom.find("text", "dst-label")[0].text
    (at_line,) = dom.find("line", "at")
    assert float(at_line.attrs["x1"]) == pytest.approx(x_of(parse_instant(SPRING_WEEK)), abs=0.05)
    legend = [li.text.strip() for li in dom.find("li")]
    assert {"offline (window)", "online (window)", "hold", "DST change", "--at instant"} <= set(legend)


def test_holds_are_drawn_apart_from_windows(browser: str, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    now = utc("2027-01-08T09:15:00")
    add_hold(SAMPLE, tmp_path / "state", "access-logs-prod", now, now + timedelta(hours=30), "inc-9")
    dom = _dom(_render(capsys, tmp_path, iso(now), "--days", "3"))
    access = dom.find("g", "row")[0]
    held = [b for b in access.find("g", "bar") if b.attrs["data-source"] == "hold:inc-9"]
    assert len(held) == 1
    assert held[0].attrs["class"].split() == ["bar", "offline", "hold"]
    assert parse_instant(held[0].attrs["data-end"]) == now + timedelta(hours=30)


def test_rows_over_500_are_cut_with_a_note(browser: str, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    names = [f"waf-{i:04d}" for i in range(999)]
    dom = _dom(_render(capsys, tmp_path, SPRING_WEEK, "--days", "1", "--task", *names))
    assert len(dom.find("g", "row")) == 500
    notes = [p.text for p in dom.find("p", "note")]
    assert notes == ["Showing the first 500 of 1001 rows (sorted by site and name); the other 501 are not drawn."]


def test_screenshot_is_not_blank(browser: str, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    page = _render(capsys, tmp_path, SPRING_WEEK, "--task", "waf-edge")
    png = tmp_path / "shot.png"
    screenshot(page, png, 1000, 260)
    width, height, pixels = png_pixels(png)
    assert (width, height) == (1000, 260)
    colours = set(pixels)
    assert len(colours) > 50
    offline = sum(1 for r, g, b in pixels if r > 180 and g < 80 and b < 70)  # the offline red, #c8372d
    online = sum(1 for r, g, b in pixels if r < 70 and 120 < g < 160 and b < 110)  # the online green, #2e8b57
    assert offline > 500 and online > 500, (offline, online)


def _parse(page: Path) -> Node:
    parser = _Tree()
    parser.feed(page.read_text(encoding="utf-8"))
    return parser.root


def test_half_hour_dst_shift_is_one_mark(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """Lord Howe Island moves its clocks by 30 minutes (02:00 -> 02:30 on 2027-10-03, 15:30Z)."""
    schedule = write_schedule(
        tmp_path,
        """
        version: 1
        timezone: Australia/Lord_Howe
        tasks: [{name: logs}]
        windows: [{name: nightly, tasks: [logs], cron: "0 3 * * *", duration: 1h}]
        """,
    )
    page = tmp_path / "lhi.html"
    args = ["plan", "--schedule", str(schedule), "--at", "2027-10-02T00:00:00Z", "--html", str(page), "--days", "3"]
    code, _, err = run_cli(capsys, *args, "--state-dir", str(tmp_path / "state"))
    assert code == 0, err
    dom = _parse(page)
    (dst,) = dom.find("line", "dst")
    assert parse_instant(dst.attrs["data-at"]) == utc("2027-10-02T15:30:00")
    assert "(UTC+10:30 → UTC+11:00)" in dom.find("text", "dst-label")[0].text
    assert len(dom.find("line", "day")) == 4  # --at is 10:30 local: to the midnight after 3 days later


def test_long_spans_thin_their_labels(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    page = _render(capsys, tmp_path, SPRING_WEEK, "--days", "120")
    dom = _parse(page)
    assert len(dom.find("line", "day")) == 121
    assert len(dom.find("line", "dst")) == 1
    day_labels = [float(t.attrs["x"]) for t in dom.find("text") if re.fullmatch(r"\w{3} \d\d \w{3}", t.text)]
    assert len(day_labels) >= 4
    assert min(b - a for a, b in pairwise(day_labels)) >= 70


def _page(capsys: pytest.CaptureFixture[str], tmp_path: Path, schedule: Path, at: str, *extra: str) -> Node:
    page = tmp_path / "page.html"
    args = ["plan", "--schedule", str(schedule), "--at", at, "--html", str(page), "--state-dir", str(tmp_path / "s")]
    code, _, err = run_cli(capsys, *args, *extra)
    assert code == 0, err
    return _parse(page)


BERLIN_WITH_SHANGHAI_WINDOW = """
version: 1
timezone: Europe/Berlin
tasks: [{name: logs}]
windows:
  - {name: asia-backup, tasks: [logs], cron: "0 3 * * *", duration: 1h, timezone: Asia/Shanghai}
  - {name: nightly, tasks: [logs], cron: "30 2 * * *", duration: 1h}
"""


@pytest.mark.parametrize(
    "files",
    [
        {"ops.yaml": BERLIN_WITH_SHANGHAI_WINDOW},
        {"ops.yaml": "version: 1\ntimezone: Europe/Berlin\ntasks: [{name: logs}]\n"},  # no windows at all
        {  # a folder: the first file that sets timezone: (load order), not one without it, nor a later one
            "00-targets.yaml": "version: 1\ntasks: [{name: other}]\n",
            "10-ops.yaml": BERLIN_WITH_SHANGHAI_WINDOW,
            "20-asia.yaml": "version: 1\ntimezone: Asia/Shanghai\ntasks: [{name: asia}]\n",
        },
    ],
    ids=["first-window-elsewhere", "no-windows", "folder"],
)
def test_the_axis_is_in_the_schedules_zone(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, files: dict[str, str]
) -> None:
    folder = tmp_path / "schedule"
    for name, text in files.items():
        write_schedule(folder, text, name)
    dom = _page(capsys, tmp_path, folder, SPRING_WEEK, "--days", "3")
    svg = dom.find("svg", "timeline")[0]
    assert parse_instant(svg.attrs["data-start"]) == datetime(2027, 3, 26, tzinfo=BERLIN).astimezone(UTC)
    (dst,) = dom.find("line", "dst")
    assert parse_instant(dst.attrs["data-at"]) == utc("2027-03-28T01:00:00")
    assert "in Europe/Berlin" in dom.find("p", "sub")[0].text


def test_legend_shows_both_faded_defaults(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """site-logs is offline by default, the others online: both faded colours are on the page, so both
    belong in the legend, each as the bars draw it."""
    dom = _parse(_render(capsys, tmp_path, SPRING_WEEK))
    swatches = {li.text.strip(): li.find("rect")[0].attrs for li in dom.find("li") if li.find("rect")}
    for state, colour in (("online", "#2e8b57"), ("offline", "#c8372d")):
        assert swatches[f"{state} by default (faded)"] == {
            "width": "22",
            "height": "12",
            "fill": colour,
            "fill-opacity": ".3",
        }
        faded = [b for b in dom.find("g", "bar") if b.attrs["class"].split() == ["bar", state, "default"]]
        assert faded, f"the sample week has {state} default bars"
    style = dom.find("style")[0].text
    assert ".offline rect{fill:#c8372d}" in style and ".online rect{fill:#2e8b57}" in style
    assert ".default rect{fill-opacity:.3}" in style


@pytest.mark.parametrize(
    ("at", "days", "first", "end"),
    [
        # 23:00 local: the chart runs to the midnight after --at + 7 days, not 6 days and an hour ahead
        ("2027-03-25T22:00:00Z", 7, "2027-03-25T00:00:00+01:00", "2027-04-02T00:00:00+02:00"),
        # exactly local midnight: --at + 7 days is a midnight itself
        ("2027-05-09T22:00:00Z", 7, "2027-05-10T00:00:00+02:00", "2027-05-17T00:00:00+02:00"),
        ("2027-05-10T09:00:00Z", 1, "2027-05-10T00:00:00+02:00", "2027-05-12T00:00:00+02:00"),
    ],
)
def test_the_chart_covers_days_after_at(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, at: str, days: int, first: str, end: str
) -> None:
    dom = _parse(_render(capsys, tmp_path, at, "--days", str(days)))
    svg = dom.find("svg", "timeline")[0]
    start_at, end_at = parse_instant(svg.attrs["data-start"]), parse_instant(svg.attrs["data-end"])
    assert (start_at, end_at) == (datetime.fromisoformat(first), datetime.fromisoformat(end))
    assert start_at <= parse_instant(at) and end_at >= parse_instant(at) + timedelta(days=days)
    midnights = [parse_instant(line.attrs["data-at"]) for line in dom.find("line", "day")]
    assert midnights[0] == start_at and len(midnights) == round((end_at - start_at) / timedelta(days=1))


def test_narrow_bars_are_named_beside_them_in_chromium(
    browser: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """A 1 h window in a week is about 7 px: its name goes right of the bar, over the faded default
    bar that follows (which carries no text), and only where it stays clear of the next window."""
    schedule = write_schedule(
        tmp_path,
        """
        version: 1
        timezone: Europe/Berlin
        tasks: [{name: logs}]
        windows:
          - {name: first, tasks: [logs], cron: "0 2 * * *", duration: 1h}
          - {name: second, tasks: [logs], cron: "0 3 * * *", duration: 1h}
        """,
    )
    page = tmp_path / "narrow.html"
    args = ["plan", "--schedule", str(schedule), "--at", "2027-05-10T10:00:00Z", "--html", str(page)]
    code, _, err = run_cli(capsys, *args, "--state-dir", str(tmp_path / "state"))
    assert code == 0, err
    (row,) = _dom(page).find("g", "row")
    bars = row.find("g", "bar")
    by_source: dict[str, list[Node]] = {}
    for bar in bars:
        by_source.setdefault(bar.attrs["data-source"], []).append(bar)
    assert len(by_source["window:second"]) == 8
    assert all(not bar.find("text") for bar in by_source["default"])
    assert all(not bar.find("text") for bar in by_source["window:first"]), "no room: 'second' follows at once"
    for bar in by_source["window:second"]:
        rect = bar.child("rect")
        (text,) = bar.find("text")
        assert (text.text, text.attrs["class"]) == ("second", "beside")
        right = float(rect.attrs["x"]) + float(rect.attrs["width"])
        assert float(rect.attrs["width"]) < 10
        assert float(text.attrs["x"]) == pytest.approx(right + 3, abs=0.01)
        later = [float(b.child("rect").attrs["x"]) for b in bars if b.attrs["data-source"] == "window:first"]
        following = min((x for x in later if x > right), default=float("inf"))
        assert float(text.attrs["x"]) + 6.6 * len("second") < following, "the label ends before the next window"


@pytest.mark.parametrize("days", [7, 60])
def test_a_dense_schedule_stays_under_the_size_budget(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, days: int
) -> None:
    """A 3-hourly window on 1,000 tasks made a 17 MB page of 56,000 bars: rows are cut to fit 5 MB."""
    schedule = write_schedule(
        tmp_path,
        """
        version: 1
        timezone: Europe/Berlin
        tasks: [{pattern: "app-*"}]
        windows: [{name: every-3h, tasks: ["app-*"], cron: "0 */3 * * *", duration: 1h}]
        """,
    )
    names = [f"app-{i:04d}" for i in range(1000)]
    page = tmp_path / "dense.html"
    args = ["plan", "--schedule", str(schedule), "--at", "2027-05-10T10:00:00Z", "--days", str(days)]
    code, _, err = run_cli(capsys, *args, "--html", str(page), "--task", *names, "--state-dir", str(tmp_path / "s"))
    assert code == 0, err
    size = page.stat().st_size
    assert size < 5_000_000
    dom = _parse(page)
    rows = dom.find("g", "row")
    kept = len(rows)
    assert 0 < kept < 500
    assert [p.text for p in dom.find("p", "note")] == [
        f"Showing the first {kept} of 1000 rows (sorted by site and name); the other {1000 - kept} are not drawn: "
        "their bars would take the page over its 5 MB size limit (fewer --days leave room for more rows)."
    ]
    assert [r.attrs["data-task"] for r in rows] == names[:kept]
    # rows are alike here (every other one striped): one more would not have fitted
    pieces = page.read_text(encoding="utf-8").split('<g class="row"')
    row_bytes = max(len(piece.encode("utf-8")) for piece in pieces[1:3])
    assert size + row_bytes >= 5_000_000
    assert len(rows[-1].find("g", "bar")) == len(rows[0].find("g", "bar")) >= days * 8 * 2
