"""Headless Chromium for the HTML timeline: DOM dumps, layout probes, screenshots, and small readers
of what they give (an HTML tree, PNG pixels).

Used by the browser tests and by ``make screenshot`` (``python tests/browser.py``), which renders
the sample schedule's timeline into ``docs/timeline.png`` for the README.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import struct
import subprocess
import sys
import tempfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

PROBE = Path(__file__).with_name("timeline_probe.js")
CANDIDATES = ("chromium", "chromium-browser", "google-chrome")
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
)
TIMEOUT_S = 120


def chromium() -> str | None:
    """The Chromium binary on PATH, if any."""
    return next((found for name in CANDIDATES if (found := shutil.which(name))), None)


def require_chromium() -> str:
    """Chromium's path for a browser test: a skip with the reason when it is missing locally, a
    failure under CI (``CI`` set), which installs it."""
    import pytest

    found = chromium()
    if found is None:
        reason = "chromium is not installed (apt-get install -y chromium); .ci/run installs it"
        if os.environ.get("CI"):
            pytest.fail(f"CI must run the browser tests: {reason}")
        pytest.skip(reason)
    return found


def _run(page: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    binary = chromium()
    if binary is None:
        raise RuntimeError("chromium is not installed (apt-get install -y chromium)")
    with tempfile.TemporaryDirectory(prefix="chromium-profile-") as profile:
        command = [binary, *FLAGS, f"--user-data-dir={profile}", *extra, page.resolve().as_uri()]
        done = subprocess.run(command, capture_output=True, text=True, timeout=TIMEOUT_S, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"chromium exited {done.returncode}: {done.stderr.strip()[-500:]}")
    return done


def dump_dom(page: Path) -> str:
    """The DOM Chromium built from ``page`` (``--dump-dom``), serialised as HTML."""
    return _run(page, "--dump-dom").stdout


def probe(page: Path, width: int, height: int) -> dict[str, Any]:
    """What ``timeline_probe.js`` measures in ``page`` laid out in a ``width`` x ``height`` window.

    The script runs in a copy of the page (the page itself has none), and leaves its findings as
    JSON in the DOM that ``--dump-dom`` returns once the page has loaded.
    """
    probed = page.with_name(f"{page.stem}-probe-{width}x{height}.html")
    script = f"<script>{PROBE.read_text(encoding='utf-8')}</script></body>"
    probed.write_text(page.read_text(encoding="utf-8").replace("</body>", script), encoding="utf-8")
    dom = _run(probed, "--dump-dom", f"--window-size={width},{height}").stdout
    found = re.search(r'<script type="application/json" id="probe-out">(.*?)</script>', dom, re.DOTALL)
    if found is None:
        raise RuntimeError(f"the probe left no results in {probed}")
    result: dict[str, Any] = json.loads(found.group(1))
    return result


def screenshot(page: Path, png: Path, width: int, height: int) -> None:
    """A PNG of the page's first ``width`` x ``height`` pixels."""
    _run(page, f"--screenshot={png.resolve()}", f"--window-size={width},{height}")
    if not png.is_file():
        raise RuntimeError(f"chromium wrote no screenshot to {png}")


VOID = {"meta", "br", "img", "input", "link", "hr"}


@dataclass
class Node:
    """One element of a page: its tag, attributes, children and its own text (not its children's)."""

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
    """Builds ``Node``s; closes what an end tag leaves open, as browsers do."""

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


def parse_dom(html: str) -> Node:
    """A tree of ``html``'s elements, for tests that read the page's structure without a browser
    (the file as written) or after one (``dump_dom``)."""
    parser = _Tree()
    parser.feed(html)
    return parser.root


def _unfilter(kind: int, line: bytearray, previous: bytes, bpp: int) -> None:
    """Undo one PNG scanline filter (RFC 2083 section 6) in place."""
    for i in range(len(line)):
        left = line[i - bpp] if i >= bpp else 0
        up = previous[i]
        corner = previous[i - bpp] if i >= bpp else 0
        if kind == 1:
            line[i] = (line[i] + left) & 0xFF
        elif kind == 2:
            line[i] = (line[i] + up) & 0xFF
        elif kind == 3:
            line[i] = (line[i] + (left + up) // 2) & 0xFF
        elif kind == 4:
            p = left + up - corner
            pa, pb, pc = abs(p - left), abs(p - up), abs(p - corner)
            predictor = left if pa <= pb and pa <= pc else up if pb <= pc else corner
            line[i] = (line[i] + predictor) & 0xFF


def png_pixels(png: Path) -> tuple[int, int, list[tuple[int, int, int]]]:
    """Width, height and RGB pixels of an 8-bit RGB or RGBA, non-interlaced PNG (what Chromium writes)."""
    data = png.read_bytes()
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError(f"{png}: not a PNG")
    pos, chunks, header = 8, bytearray(), b""
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            header = body
        elif kind == b"IDAT":
            chunks += body
        pos += 12 + length
    width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", header)
    if depth != 8 or colour not in (2, 6) or interlace:
        raise ValueError(f"{png}: unsupported PNG (depth {depth}, colour type {colour}, interlace {interlace})")
    bpp = 3 if colour == 2 else 4
    raw = zlib.decompress(bytes(chunks))
    stride = width * bpp
    previous = bytes(stride)
    pixels: list[tuple[int, int, int]] = []
    for row in range(height):
        start = row * (stride + 1)
        line = bytearray(raw[start + 1 : start + 1 + stride])
        _unfilter(raw[start], line, previous, bpp)
        pixels.extend((line[i], line[i + 1], line[i + 2]) for i in range(0, stride, bpp))
        previous = bytes(line)
    return width, height, pixels


def main() -> int:
    """``make screenshot``: the sample schedule's timeline over the spring-forward week, as a PNG."""
    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--output", default="docs/timeline.png")
    parser.add_argument("--schedule", default="schedule/sample.yaml")
    parser.add_argument("--at", default="2027-03-26T10:00:00Z")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        page = Path(scratch) / "timeline.html"
        command = [sys.executable, "-m", "esa_scheduler", "plan", "--schedule", args.schedule, "--at", args.at]
        command += ["--html", str(page), "--task", "waf-edge", "--state-dir", str(Path(scratch) / "state")]
        subprocess.run(command, check=True, env={**os.environ, "ESA_STATE_DIR": ""})
        Path(args.output).parent.mkdir(parents=True, exist_ok=True)
        screenshot(page, Path(args.output), 1400, 352)
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
