"""HTML timeline: ``plan --html`` for 1,000 managed tasks over 7 days, time and file size.

The schedule is a realistic fleet: 20 buckets of 50 tasks (half named, half listed under patterns),
each bucket with a nightly window, a weekly freeze and a weekday online window, in three zones, so
the week holds a DST-free mix of about 18 intervals per task. The page draws at most 500 rows (the
cut the issue asks for), fewer if their bars would take it over its 5 MB budget, and notes the rest.
Prints the median render time (schedule loaded once; planning and rendering timed), the size of
the page and how many rows it drew.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

from esa_scheduler.engine.schedule.load import load_schedule
from esa_scheduler.views.html import render_html

BUCKETS = 20
PER_BUCKET = 50
DAYS = 7
ZONES = ["Europe/Berlin", "Asia/Shanghai", "America/New_York"]
AT = datetime(2027, 5, 12, 9, 30, tzinfo=timezone.utc)
TARGET_S = 2.0
TARGET_MB = 5.0


def write_schedule(folder: Path) -> None:
    """Named tasks and patterns per bucket, three windows per bucket."""
    lines = ["version: 1", "timezone: Europe/Berlin", "tasks:"]
    for b in range(BUCKETS):
        lines += [f"  - name: app-{b:02d}-{k:03d}" for k in range(PER_BUCKET // 2)]
        lines.append(f'  - pattern: "svc-{b:02d}-*"')
    lines.append("windows:")
    for b in range(BUCKETS):
        selectors = f'["app-{b:02d}-*", "svc-{b:02d}-*"]'
        zone = ZONES[b % len(ZONES)]
        lines += [
            f"  - {{name: nightly-{b:02d}, tasks: {selectors}, cron: '{b % 60} 2 * * *', duration: 45m, "
            f"timezone: {zone}}}",
            f"  - {{name: freeze-{b:02d}, tasks: {selectors}, cron: '0 20 * * sat', end_cron: '0 6 * * mon', "
            f"timezone: {zone}}}",
            f"  - {{name: peak-{b:02d}, tasks: {selectors}, status: online, priority: 5, cron: '0 9 * * mon-fri', "
            f"duration: 8h, timezone: {zone}}}",
        ]
    (folder / "fleet.yaml").write_text("\n".join(lines) + "\n")


def inventory() -> list[str]:
    """The names ESA lists: every named task plus 500 that the patterns match."""
    half = range(PER_BUCKET // 2)
    return [f"{kind}-{b:02d}-{k:03d}" for kind in ("app", "svc") for b in range(BUCKETS) for k in half]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--json", action="store_true", help="print the figures as JSON (for make bench)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        write_schedule(Path(tmp))
        schedule = load_schedule(tmp)
    names = inventory()
    times, page = [], ""
    for _ in range(args.runs):
        start = time.perf_counter()
        page = render_html("fleet.yaml", schedule, AT, DAYS, names, [])
        times.append(time.perf_counter() - start)
    seconds = statistics.median(times)
    size_mb = len(page.encode("utf-8")) / 1_000_000
    bars = page.count('<g class="bar ')
    rows = page.count('<g class="row"')
    drawn = f"{bars} bars, {rows} rows drawn"
    figure = f"HTML timeline {len(names)} tasks x {DAYS} days"
    if args.json:
        print(
            json.dumps(
                [
                    {
                        "figure": figure,
                        "ours": f"{seconds:.3f} s",
                        "target": f"<= {TARGET_S:g} s",
                        "pass": seconds <= TARGET_S,
                    },
                    {
                        "figure": f"{figure}: page size ({drawn})",
                        "ours": f"{size_mb:.2f} MB",
                        "target": f"< {TARGET_MB:g} MB",
                        "pass": size_mb < TARGET_MB,
                    },
                ]
            )
        )
        return 0
    print(f"{figure}: median of {args.runs} runs")
    print(f"render        {seconds:8.3f} s   (target <= {TARGET_S:g} s)")
    print(f"page size     {size_mb:8.2f} MB  (target < {TARGET_MB:g} MB), {drawn}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
