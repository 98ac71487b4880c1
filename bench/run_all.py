"""``make bench``: run every benchmark under ``bench/``, print one table and fail when a target is missed.

``make bench-record`` (``--record``) also writes the table to BENCHMARKS.md, the tracked record of
the figures; a plain ``make bench`` leaves it alone, so checking performance never dirties the tree.
Both exit 1 when a target is missed (after recording, with ``--record``): a miss is news either way.

Each script prints its figures as JSON with ``--json``; every comparison inside a script is
measured side by side in the same run, and every figure is a median of several runs.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
SCRIPTS = [
    "plan_bench.py",
    "calendar_bench.py",
    "ics_bench.py",
    "html_bench.py",
    "reconcile_bench.py",
    "emulator_bench.py",
    "fanout_bench.py",
    "coldstart_bench.py",
    "intake_bench.py",
]
COLUMNS = ["figure", "ours", "baseline", "ratio", "target", "pass"]
RECORD = BENCH.parent / "BENCHMARKS.md"


def machine() -> str:
    """What the figures were measured on."""
    cpu = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        models = [
            line.split(":", 1)[1].strip() for line in cpuinfo.read_text().splitlines() if line.startswith("model name")
        ]
        cpu = models[0] if models else cpu
    return f"{os.cpu_count()} CPU ({cpu}), Python {platform.python_version()}, {platform.system()} {platform.release()}"


def run(script: str) -> list[dict[str, Any]]:
    started = time.perf_counter()
    out = subprocess.run([sys.executable, str(BENCH / script), "--json"], capture_output=True, text=True, check=False)
    if out.returncode != 0:
        return [{"figure": script, "ours": "error", "target": out.stderr.strip().splitlines()[-1:], "pass": False}]
    figures: list[dict[str, Any]] = json.loads(out.stdout.strip().splitlines()[-1])
    print(f"{script}: {len(figures)} figure(s) in {time.perf_counter() - started:.0f} s", file=sys.stderr)
    return figures


def markdown(rows: list[dict[str, Any]]) -> str:
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    for row in rows:
        cells = [("pass" if row.get(c) else "FAIL") if c == "pass" else str(row.get(c, "")) for c in COLUMNS]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def measure_all() -> list[dict[str, Any]]:
    """Every figure of every script, in the order of ``SCRIPTS``."""
    return [figure for script in SCRIPTS for figure in run(script)]


def main(argv: list[str] | None = None, measure: Callable[[], list[dict[str, Any]]] = measure_all) -> int:
    """0 when every target is met, 1 otherwise; the table on stdout, BENCHMARKS.md only with ``--record``."""
    parser = argparse.ArgumentParser(description="Run every benchmark and print the table of figures.")
    parser.add_argument(
        "--record",
        nargs="?",
        const=str(RECORD),
        metavar="FILE",
        help=f"also write the table to FILE (default {RECORD.name}), as make bench-record does",
    )
    args = parser.parse_args(argv)
    rows = measure()
    table = markdown(rows)
    print(table)
    if args.record is not None:
        stamp = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        Path(args.record).write_text(
            f"# Benchmarks\n\nMeasured {stamp} by `make bench-record` on {machine()}.\n\n{table}\n"
        )
    missed = [str(r["figure"]) for r in rows if not r.get("pass")]
    print(f"targets not met: {'; '.join(missed)}" if missed else f"all {len(rows)} targets met")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
