"""Planning throughput: 10,000 managed tasks, 500 windows, one plan with ``next_change``.

Side by side in one run: the planner (one shared timeline per window, tasks grouped by the
windows that select them) against a naive evaluation that builds croniter-backed timelines per
task per selecting window (a fresh planner per task, so nothing is shared). The naive pass runs
on every ``--sample``-th task and is scaled to all tasks (it is linear in tasks); its decisions
must equal the planner's. Prints the times and the ratio.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from pathlib import Path

from esa_scheduler.engine.planner import Planner, TaskRef, managed_tasks
from esa_scheduler.engine.schedule.load import load_schedule
from esa_scheduler.engine.schedule.model import Schedule

TASKS = 10_000
WINDOWS = 500
BUCKETS = 50
ZONES = ["Europe/Berlin", "UTC", "Asia/Shanghai", "America/New_York", "Australia/Sydney"]
AT = datetime(2027, 3, 27, 23, 45, tzinfo=timezone.utc)


def window_lines(i: int) -> list[str]:
    """Window ``i``: one of four cron shapes over a name bucket, in one of five zones."""
    bucket = i % BUCKETS
    family = "app" if i % 2 else "svc"
    minute, hour = (i * 7) % 60, (i // 7) % 24
    cron = [f"{minute} {hour} * * *", f"{minute} * * * 1-5", f"{minute} {hour} * * sat", f"0 {hour} L * *"][i % 4]
    return [
        f"  - name: w{i:03d}",
        f'    tasks: ["{family}-{bucket:02d}-*"]',
        f"    status: {'offline' if i % 3 else 'online'}",
        f"    priority: {i % 5}",
        f'    cron: "{cron}"',
        f"    duration: {15 + (i % 8) * 15}m",
        f"    timezone: {ZONES[i % len(ZONES)]}",
    ]


def write_schedule(folder: Path, windows: Callable[[int], list[str]] = window_lines, head: Sequence[str] = ()) -> None:
    """5,000 exact tasks, patterns over the rest, and 500 windows over name buckets."""
    lines = ["version: 1", "timezone: Europe/Berlin", *head, "tasks:"]
    lines += [f"  - name: app-{b:02d}-{k:04d}" for b in range(BUCKETS) for k in range(TASKS // 2 // BUCKETS)]
    lines += [f'  - pattern: "svc-{b:02d}-*"' for b in range(BUCKETS)]
    lines.append("windows:")
    for i in range(WINDOWS):
        lines += windows(i)
    (folder / "bench.yaml").write_text("\n".join(lines) + "\n")


def inventory() -> list[TaskRef]:
    """10,000 names as ESA would list them: the exact ones, and 5,000 more that patterns match."""
    names = [f"app-{b:02d}-{k:04d}" for b in range(BUCKETS) for k in range(TASKS // 2 // BUCKETS)]
    names += [f"svc-{b:02d}-{k:04d}" for b in range(BUCKETS) for k in range(TASKS // 2 // BUCKETS)]
    return [TaskRef(n) for n in names]


def shared(schedule: Schedule, refs: list[TaskRef]) -> list[tuple[str, str, datetime | None]]:
    """The planner as shipped."""
    planner = Planner(schedule, AT)
    decisions = planner.decide(managed_tasks(schedule, refs)).decisions
    return [(d.task.ref.name, d.desired, d.next_change) for d in decisions]


def naive(schedule: Schedule, refs: list[TaskRef], sample: int) -> list[tuple[str, str, datetime | None]]:
    """Fresh croniter timelines for every task and every window selecting it (nothing shared)."""
    out: list[tuple[str, str, datetime | None]] = []
    for task in managed_tasks(schedule, refs)[::sample]:
        decision = Planner(schedule, AT).decide([task]).decisions[0]
        out.append((task.ref.name, decision.desired, decision.next_change))
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--sample", type=int, default=10, help="naive pass on every Nth task, scaled up")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON (for make bench)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        write_schedule(Path(tmp))
        schedule = load_schedule(tmp)
    refs = inventory()
    ours, base = [], []
    for _ in range(args.runs):
        start = time.perf_counter()
        fast = shared(schedule, refs)
        ours.append(time.perf_counter() - start)
        start = time.perf_counter()
        slow = naive(schedule, refs, args.sample)
        base.append((time.perf_counter() - start) * args.sample)
        if fast[:: args.sample] != slow:
            print("MISMATCH between planner and naive evaluation", file=sys.stderr)
            return 1
    ours_s, base_s = statistics.median(ours), statistics.median(base)
    if args.json:
        figure = f"plan {len(fast)} tasks x {len(schedule.windows)} windows"
        print(
            json.dumps(
                [
                    {"figure": figure, "ours": f"{ours_s:.3f} s", "target": "<= 1 s", "pass": ours_s <= 1},
                    {
                        "figure": f"{figure}: speed-up over naive croniter",
                        "ours": f"{ours_s:.3f} s",
                        "baseline": f"{base_s:.1f} s (naive, sampled 1/{args.sample})",
                        "ratio": f"{base_s / ours_s:.0f}x",
                        "target": ">= 10x",
                        "pass": base_s / ours_s >= 10,
                    },
                ]
            )
        )
        return 0
    print(f"plan: {len(fast)} managed tasks, {len(schedule.windows)} windows, median of {args.runs} runs")
    print(f"planner       {ours_s:8.3f} s")
    print(f"naive         {base_s:8.3f} s   (1 task in {args.sample} measured, scaled to all)")
    print(f"speed-up      {base_s / ours_s:8.1f} x   (targets: planner <= 1 s, speed-up >= 10 x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
