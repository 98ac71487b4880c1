"""Cold-import cost of our ESA client against the official SDK's, as an FC cold start pays it.

Each measurement is a fresh ``python -c "import ..."`` of this same interpreter and venv, so the
figure includes interpreter start-up exactly as a new function instance would. One untimed run
per module first writes the bytecode caches, as a deployed package would already have them.

    .venv/bin/python bench/import_bench.py [--runs 5]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

OURS = "esa_scheduler.client"
OFFICIAL = "alibabacloud_esa20240910.client"


def wall_seconds(statement: str) -> float:
    """Wall time of one fresh interpreter running ``statement``; a failing import is an error."""
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", statement], check=True, capture_output=True)
    return time.perf_counter() - started


def median_import(module: str, runs: int) -> float:
    statement = f"import {module}" if module else "pass"
    wall_seconds(statement)
    return statistics.median(wall_seconds(statement) for _ in range(runs))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    baseline = median_import("", args.runs)
    ours = median_import(OURS, args.runs)
    official = median_import(OFFICIAL, args.runs)
    print(f"python -c pass (baseline)              median of {args.runs}: {baseline * 1000:7.0f} ms")
    print(f"import {OURS:<32} median of {args.runs}: {ours * 1000:7.0f} ms")
    print(f"import {OFFICIAL:<32} median of {args.runs}: {official * 1000:7.0f} ms")
    print(f"ratio official / ours: {official / ours:.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
