"""Cold start: what a new FC instance pays before its first answer, in fresh processes.

Side by side, median of ``--runs`` fresh interpreters each:
- ours: import ``handler`` and serve one timer event against the emulator (a separate process);
- the official SDK: only ``import alibabacloud_esa20240910.client`` (installed for benchmarks only);
- the import of ``handler`` alone, timed inside the process (interpreter start-up excluded).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import emulator_process

from esa_scheduler.emulator import EMULATOR_ACCESS_KEY_ID, EMULATOR_ACCESS_KEY_SECRET

ROOT = Path(__file__).resolve().parent.parent
EVENT = b'{"triggerTime": "2027-01-04T03:30:00Z", "triggerName": "every-minute", "payload": ""}'
SCHEDULE = """version: 1
timezone: UTC
tasks:
  - name: access-logs-prod
windows:
  - name: nightly
    tasks: [access-logs-prod]
    cron: "0 3 * * *"
    duration: 1h
"""
SERVE = (
    "import sys, types\n"
    "import handler\n"
    "fn = types.SimpleNamespace(name='f', timeout=300)\n"
    "ctx = types.SimpleNamespace(request_id='cold', function=fn, region=None)\n"
    "summary = handler.handler(sys.stdin.buffer.read(), ctx)\n"
    "assert summary['counts']['updated'] + summary['counts']['unchanged'] == 1, summary\n"
)
IMPORT_ONLY = "import time; t = time.perf_counter(); import handler; print(time.perf_counter() - t)"


def timed(command: list[str], env: dict[str, str], stdin: bytes = b"") -> float:
    start = time.perf_counter()
    subprocess.run(command, input=stdin, env=env, cwd=ROOT, check=True, capture_output=True)
    return time.perf_counter() - start


def measure(runs: int) -> dict[str, float]:
    """Median seconds for each of the three figures."""
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "schedule.yaml").write_text(SCHEDULE)
        with emulator_process([{"TaskName": "access-logs-prod", "Status": "online"}]) as (url, _):
            env = {
                **os.environ,
                "PYTHONPATH": str(ROOT),
                "ESA_ENDPOINT": url,
                "ALIBABA_CLOUD_ACCESS_KEY_ID": EMULATOR_ACCESS_KEY_ID,
                "ALIBABA_CLOUD_ACCESS_KEY_SECRET": EMULATOR_ACCESS_KEY_SECRET,
                "ESA_SCHEDULE": str(folder / "schedule.yaml"),
                "ESA_STATE_DIR": str(folder / "state"),
            }
            python = [sys.executable]
            for warm in (["-c", "import handler"], ["-c", "import alibabacloud_esa20240910.client"]):
                timed(python + warm, env)  # write bytecode caches first, as a deployed zip would have
            serve = [timed([*python, "-c", SERVE], env, EVENT) for _ in range(runs)]
            sdk = [timed([*python, "-c", "import alibabacloud_esa20240910.client"], env) for _ in range(runs)]
            imports = [
                float(
                    subprocess.run(
                        [*python, "-c", IMPORT_ONLY], env=env, cwd=ROOT, check=True, capture_output=True, text=True
                    ).stdout
                )
                for _ in range(runs)
            ]
    return {"serve": statistics.median(serve), "sdk": statistics.median(sdk), "import": statistics.median(imports)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--json", action="store_true", help="print the figures as JSON (for make bench)")
    args = parser.parse_args()
    m = measure(args.runs)
    ratio = m["serve"] / m["sdk"]
    if args.json:
        print(
            json.dumps(
                [
                    {
                        "figure": "cold start: import + serve one timer event",
                        "ours": f"{m['serve'] * 1000:.0f} ms",
                        "baseline": f"{m['sdk'] * 1000:.0f} ms (import official SDK client)",
                        "ratio": f"{ratio:.2f}x",
                        "target": "<= 0.3x",
                        "pass": ratio <= 0.3,
                    },
                    {
                        "figure": "import handler alone",
                        "ours": f"{m['import'] * 1000:.0f} ms",
                        "target": "<= 350 ms",
                        "pass": m["import"] <= 0.35,
                    },
                ]
            )
        )
        return 0
    print(f"fresh process: import handler + serve one timer event  {m['serve'] * 1000:7.0f} ms (median of {args.runs})")
    print(f"fresh process: import alibabacloud_esa20240910.client  {m['sdk'] * 1000:7.0f} ms")
    print(f"ratio                                                  {ratio:7.2f} x   (target <= 0.3 x)")
    print(f"import handler alone (in process)                      {m['import'] * 1000:7.0f} ms (target <= 350 ms)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
