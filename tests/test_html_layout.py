"""``plan --html`` as an operator sees it in Chromium: the chart fits the window, every bar is named
without hovering, no name sits on a bar, a name or the ``--at`` line it does not belong to, and every
text is readable (12 px or more at 1280 px, WCAG contrast 4.5:1 or more against what is behind it).

``timeline_probe.js`` measures the laid-out page (``tests/browser.py``); the checks are here. The
instants are pinned (``--at``, holds stored with fixed times), so the pages are the same on any day.
"""

from __future__ import annotations

import re
from datetime import timedelta
from itertools import combinations
from pathlib import Path
from typing import Any

import pytest
from browser import probe, require_chromium
from helpers import run_cli, utc, write_schedule

from esa_scheduler.invocation.holds import Hold, HoldStore

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "schedule" / "sample.yaml"
SPRING_WEEK = "2027-03-26T10:00:00Z"
HARD_AT = "2027-05-14T09:30:00Z"
"""Friday 11:30 CEST: the --at line crosses a reporting bar and the long hold."""
LONG_REASON = (
    "Origin 5xx storm after the 14:05 deploy; vendor ticket 4711 is open and delivery stays off "
    "until their all-clear, then the on-call engineer re-enables it by hand"
)
HARD_CASES = """
version: 1
timezone: Europe/Berlin
tasks:
  - {name: reports, default_status: offline}
  - {name: warehouse}
  - {name: edge-logs}
  - {name: an-unusually-long-task-name-that-cannot-fit-the-name-column, site_id: 1234567890}
windows:
  # five and more bars of one window on a row, the --at line crossing the first; and 15-minute ones
  - {name: reporting, tasks: [reports], status: online, cron: "0 8 * * mon-fri", duration: 10h}
  - {name: rotate, tasks: [reports], status: online, cron: "0 4 * * *", duration: 15m}
  # a long window split by shorter ones inside it (nightly wins: listed first, same priority)
  - {name: nightly, tasks: [warehouse, edge-logs], cron: "30 2 * * *", duration: 1h}
  - {name: weekend-freeze, tasks: [warehouse], cron: "0 22 * * fri", end_cron: "0 6 * * mon"}
  - {name: maintenance, tasks: ["an-*"], cron: "0 20 * * tue", duration: 2h}
  # wide enough for its name on either side of the --at line, online (white on green)
  - {name: migration, tasks: ["an-*"], status: online, priority: 5, cron: "0 6 * * fri", duration: 20h}
"""
VIEWPORTS = [(1280, 900), (1400, 900), (1920, 1080)]
MIN_PX_AT_1280 = 12.0
"""The smallest text the page draws at 1280 px (the chart's 12-unit text at a scale of 1 or more)."""


@pytest.fixture(scope="module")
def browser() -> str:
    """Chromium's path, or a skip (locally) or failure (under CI) saying it is missing."""
    return require_chromium()


def _plan_html(capsys: pytest.CaptureFixture[str], tmp_path: Path, schedule: Path, at: str, *extra: str) -> Path:
    page = tmp_path / "timeline.html"
    args = ["plan", "--schedule", str(schedule), "--at", at, "--html", str(page), "--state-dir", str(tmp_path / "s")]
    code, _, err = run_cli(capsys, *args, *extra)
    assert code == 0, err
    return page


def _hard_page(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> Path:
    """The hard cases, and two holds: one with a long reason across the --at line, one whose name
    fits inside it, white on its stripes."""
    schedule = write_schedule(tmp_path, HARD_CASES)
    at = utc(HARD_AT.rstrip("Z"))
    store = HoldStore(tmp_path / "s")
    for hold_id, start, hours, reason in (
        ("INC-4711", at - timedelta(hours=3), 24, LONG_REASON),
        ("CHG-88", at + timedelta(days=4), 48, "vendor maintenance call"),
    ):
        store.save(
            Hold(
                id=hold_id,
                tasks=("edge-logs",),
                status="offline",
                reason=reason,
                created_at=start,
                expires_at=start + timedelta(hours=hours),
            )
        )
    return _plan_html(capsys, tmp_path, schedule, HARD_AT)


# --------------------------------------------------------------------------- colour


RGB = tuple[float, float, float]


def _rgb(paint: str) -> RGB:
    if paint.startswith("#"):
        return (int(paint[1:3], 16), int(paint[3:5], 16), int(paint[5:7], 16))
    found = re.fullmatch(r"rgba?\((\d+), (\d+), (\d+)(?:, [\d.]+)?\)", paint)
    assert found, f"unexpected colour {paint!r}"
    return (float(found[1]), float(found[2]), float(found[3]))


def _channel(value: float) -> float:
    c = value / 255
    return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4


def contrast(a: RGB, b: RGB) -> float:
    """WCAG 2 contrast ratio (1 to 21) of two colours, from their relative luminance."""
    lum = [0.2126 * _channel(r) + 0.7152 * _channel(g) + 0.0722 * _channel(b_) for r, g, b_ in (a, b)]
    high, low = max(lum), min(lum)
    return (high + 0.05) / (low + 0.05)


def _blend(top: RGB, under: RGB, alpha: float) -> RGB:
    return (
        alpha * top[0] + (1 - alpha) * under[0],
        alpha * top[1] + (1 - alpha) * under[1],
        alpha * top[2] + (1 - alpha) * under[2],
    )


def _backgrounds(layers: list[dict[str, Any]]) -> set[RGB]:
    """Every colour the stacked paints (top first) can show: translucent ones composited over what
    is under them, each colour of a pattern taken on its own."""
    shown = {_rgb(paint) for paint in layers[-1]["paints"]}
    for layer in reversed(layers[:-1]):
        shown = {_blend(_rgb(paint), base, layer["alpha"]) for paint in layer["paints"] for base in shown}
    return shown


def test_contrast_matches_wcag_reference_values() -> None:
    """The checker itself: black on white is 21:1, a colour on itself 1:1, #767676 on white the
    lightest grey WCAG's 4.5:1 admits; a half-transparent black over white is mid grey."""
    assert contrast((0, 0, 0), (255, 255, 255)) == pytest.approx(21)
    assert contrast((200, 55, 45), (200, 55, 45)) == pytest.approx(1)
    assert contrast(_rgb("#767676"), (255, 255, 255)) == pytest.approx(4.54, abs=0.01)
    layers = [{"paints": ["rgb(0, 0, 0)"], "alpha": 0.5}, {"paints": ["#ffffff", "#000000"], "alpha": 1}]
    assert _backgrounds(layers) == {(127.5, 127.5, 127.5), (0, 0, 0)}


# --------------------------------------------------------------------------- layout


Box = list[float]


def _meet(a: Box, b: Box, slack: float = 0.5) -> bool:
    """Whether two boxes (left, top, right, bottom) overlap by more than ``slack`` both ways."""
    return a[0] < b[2] - slack and b[0] < a[2] - slack and a[1] < b[3] - slack and b[1] < a[3] - slack


def _within(inner: Box, outer: Box, slack: float = 0.5) -> bool:
    return all(
        (
            inner[0] >= outer[0] - slack,
            inner[1] >= outer[1] - slack,
            inner[2] <= outer[2] + slack,
            inner[3] <= outer[3] + slack,
        )
    )


def _leader_boxes(leader: dict[str, Any]) -> list[Box]:
    """A leader's two strokes (down, then across) as thin boxes."""
    (x0, y0), (x1, y1), (x2, y2) = leader["points"]
    return [[x0 - 0.75, y0, x1 + 0.75, y1], [min(x1, x2), y1 - 0.75, max(x1, x2), y2 + 0.75]]


def _is_named(text: str, bar: dict[str, Any]) -> bool:
    """Whether ``text`` names ``bar``: a window by its name (a long one may be cut after 30
    characters), a hold by its id, then its reason."""
    kind, _, name = bar["source"].partition(":")
    if kind == "hold":
        return text == f"hold {name}" or text.startswith(f"hold {name}: ")
    cut = text.endswith("…") and len(text) > 30 and name.startswith(text[:-1])
    return text == name or cut


def _naming_problems(found: dict[str, Any], listed_ok: bool) -> list[str]:
    """Every bar but a default one named by a text of its own (or, if ``listed_ok``, on its row's
    list), and that text its own source's name."""
    problems = []
    by_bar: dict[int, list[dict[str, Any]]] = {}
    for text in found["texts"]:
        if text["bar"] >= 0:
            by_bar.setdefault(text["bar"], []).append(text)
    listed = {t["row"]: t["title"] for t in found["texts"] if t["cls"] == "listed"}
    for i, bar in enumerate(found["bars"]):
        names = [t["text"] for t in by_bar.get(i, [])]
        if bar["kind"] == "default":
            if names:
                problems.append(f"default bar {i} carries {names}")
            continue
        if len(names) > 1 or (names and not _is_named(names[0], bar)):
            problems.append(f"bar {i} ({bar['source']}) is named {names}")
        elif not names and not (listed_ok and bar["source"].partition(":")[2] in (listed.get(bar["row"]) or "")):
            problems.append(f"bar {i} ({bar['source']}) is not named")
    return problems


def _overlap_problems(found: dict[str, Any]) -> list[str]:
    """No text on another text, on a bar not its own (a name inside its own bar stays inside it), on
    the --at line; no leader across a text or a bar not its own."""
    problems = []
    texts, bars = found["texts"], found["bars"]
    for a, b in combinations(texts, 2):
        if _meet(a["box"], b["box"]):
            problems.append(f"text {a['text']!r} overlaps text {b['text']!r}")
    for text in texts:
        if _meet(text["box"], found["at"], slack=0):
            problems.append(f"text {text['text']!r} overlaps the --at line")
        for i, bar in enumerate(bars):
            if i == text["bar"] and text["cls"] == "name":
                if not _within(text["box"], bar["box"]):
                    problems.append(f"name {text['text']!r} spills out of its bar")
            elif _meet(text["box"], bar["box"]):
                problems.append(f"text {text['text']!r} overlaps bar {i} ({bar['source']})")
    for leader in found["leaders"]:
        (x, y), own = leader["points"][0], bars[leader["bar"]]["box"]
        if not (own[0] - 0.75 <= x <= own[2] + 0.75 and abs(y - own[3]) < 0.5):
            problems.append(f"leader of bar {leader['bar']} does not leave from its bar's foot")
        for stroke in _leader_boxes(leader):
            problems += [
                f"leader of bar {leader['bar']} crosses text {t['text']!r}"
                for t in texts
                if t["bar"] != leader["bar"] and _meet(stroke, t["box"])
            ]
            problems += [
                f"leader of bar {leader['bar']} crosses bar {i}"
                for i, bar in enumerate(bars)
                if i != leader["bar"] and _meet(stroke, bar["box"])
            ]
    return problems


def _readability_problems(found: dict[str, Any], min_px: float) -> list[str]:
    """Text size and WCAG contrast: a haloed text against its halo (the halo rings every glyph),
    any other against every colour painted behind it where it is drawn."""
    problems = []
    for text in found["texts"]:
        colour = _rgb(text["colour"])
        behind = {_rgb(text["halo"])} if text["halo"] else set().union(*map(_backgrounds, text["behind"]))
        worst = min(contrast(colour, back) for back in behind)
        if worst < 4.5:
            problems.append(f"text {text['text']!r} has a contrast of {worst:.2f}")
        if text["px"] < min_px:
            problems.append(f"text {text['text']!r} is {text['px']:.2f} px")
    for element in found["html"]:
        worst = contrast(_rgb(element["colour"]), _rgb(element["background"]))
        if worst < 4.5 or element["px"] < min_px:
            problems.append(f"{element['tag']} {element['text'][:30]!r}: contrast {worst:.2f}, {element['px']} px")
    return problems


def _fit_problems(found: dict[str, Any]) -> list[str]:
    view = found["viewport"]
    problems = []
    if view["scroll"] > view["client"]:
        problems.append(f"the page scrolls sideways: {view['scroll']} px wide in a {view['client']} px window")
    if found["svg"][2] > view["inner"]:
        problems.append(f"the chart ends at {found['svg'][2]} px, past the window's {view['inner']} px")
    return problems


def assert_reads_well(found: dict[str, Any], min_px: float, listed_ok: bool = False) -> None:
    """Everything this module asks of a page; fails with the list of what is wrong."""
    problems = (
        _fit_problems(found)
        + _naming_problems(found, listed_ok)
        + _overlap_problems(found)
        + _readability_problems(found, min_px)
    )
    assert not problems, "\n".join(problems)


# --------------------------------------------------------------------------- the pages


@pytest.mark.parametrize(("width", "height"), VIEWPORTS, ids=[f"{w}x{h}" for w, h in VIEWPORTS])
def test_hard_cases_fit_the_window_and_name_every_bar(
    browser: str, capsys: pytest.CaptureFixture[str], tmp_path: Path, width: int, height: int
) -> None:
    found = probe(_hard_page(capsys, tmp_path), width, height)
    assert_reads_well(found, MIN_PX_AT_1280)
    assert not [t for t in found["texts"] if t["cls"] == "listed"], "every bar here has room for its own name"

    # the hard cases are on the page
    bars = found["bars"]
    by_source: dict[str, list[dict[str, Any]]] = {}
    for bar in bars:
        by_source.setdefault(bar["source"], []).append(bar)
    assert len(by_source["window:reporting"]) >= 5
    assert len(by_source["window:weekend-freeze"]) == 5, "three nightly windows cut the first weekend in four"
    assert min(b["box"][2] - b["box"][0] for b in by_source["window:rotate"]) < 3
    at_x = (found["at"][0] + found["at"][2]) / 2
    crossed = {b["source"] for b in bars if b["box"][0] < at_x < b["box"][2]}
    assert {"window:reporting", "hold:INC-4711", "window:migration"} <= crossed
    migration = next(
        t
        for t in found["texts"]
        if t["bar"] >= 0 and bars[t["bar"]]["box"][0] < at_x < bars[t["bar"]]["box"][2] and t["text"] == "migration"
    )
    assert migration["cls"] == "name" and migration["box"][0] > at_x, "inside its bar, right of the --at line"

    # a hold shows its id and the start of its reason, the whole reason in its tooltip
    (hold,) = by_source["hold:INC-4711"]
    (label,) = [t for t in found["texts"] if t["bar"] == bars.index(hold)]
    assert label["text"].startswith("hold INC-4711: Origin 5xx storm") and label["text"].endswith("…")
    assert f"reason: {LONG_REASON}" in hold["title"]
    (short,) = [t for t in found["texts"] if t["bar"] == bars.index(by_source["hold:CHG-88"][0])]
    assert (short["cls"], short["text"]) == ("name", "hold CHG-88: vendor maintenance call")

    # a row name too long for its column is cut, whole in its tooltip
    (long_row,) = [t for t in found["texts"] if t["cls"] == "label" and t["text"].startswith("an-unusually")]
    assert long_row["text"].endswith("…")
    assert long_row["title"] == "an-unusually-long-task-name-that-cannot-fit-the-name-column (site 1234567890)"


def test_the_sample_week_reads_without_hovering(
    browser: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """The issue's page (the sample over the spring-forward week, at 1400x900): no sideways scroll,
    every nightly and site-report-hours bar named, weekend-freeze once per piece."""
    found = probe(_plan_html(capsys, tmp_path, SAMPLE, SPRING_WEEK, "--task", "waf-edge"), 1400, 900)
    assert_reads_well(found, MIN_PX_AT_1280)
    named = [t["text"] for t in found["texts"] if t["bar"] >= 0]
    assert named.count("site-report-hours") == 6
    assert named.count("nightly") == 16
    freeze = [b for b in found["bars"] if b["source"] == "window:weekend-freeze"]
    assert named.count("weekend-freeze") == len(freeze) == 5


def test_crowded_rows_list_the_names_no_lane_holds(
    browser: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """A 1-hour window every 3 hours over 60 days is 480 bars 2 px apart: the lanes name what they
    can, and one line under the row names the rest, with how many bars each."""
    schedule = write_schedule(
        tmp_path,
        """
        version: 1
        timezone: Europe/Berlin
        tasks: [{name: app}]
        windows: [{name: every-3h, tasks: [app], cron: "0 */3 * * *", duration: 1h}]
        """,
    )
    found = probe(_plan_html(capsys, tmp_path, schedule, "2027-05-10T10:00:00Z", "--days", "60"), 1280, 900)
    assert_reads_well(found, MIN_PX_AT_1280, listed_ok=True)
    named = sum(1 for t in found["texts"] if t["bar"] >= 0)
    windows = sum(1 for b in found["bars"] if b["kind"] == "window")
    (listed,) = [t for t in found["texts"] if t["cls"] == "listed"]
    assert 0 < named < windows
    assert listed["title"] == f"Too crowded to name each bar: every-3h ×{windows - named}"
