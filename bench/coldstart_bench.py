"""Cold start: what a new FC instance pays before its first answer, in fresh processes.

Side by side in the same run, with the harness of ``common.py`` (best of ``--runs`` rounds of new
interpreters, timed inside each, ratios and targets on CPU time, wall time beside it):
- the official SDK: ``import alibabacloud_esa20240910.client`` (installed for benchmarks only), the baseline;
- ``import handler``, what FC does when an instance starts;
- the cold start: ``import handler`` and serve one timer event against the emulator (a process of its own).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

from common import SDK_IMPORT, Cold, CpuWall, against_sdk, best_of, cold_env, emulator_process, print_cold

from esa_scheduler.emulator import EMULATOR_ACCESS_KEY_ID, EMULATOR_ACCESS_KEY_SECRET

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
CONTEXT = (
    "function = types.SimpleNamespace(name='f', timeout=300)\n"
    "ctx = types.SimpleNamespace(request_id='cold', function=function, region=None)"
)
IMPORT = "import handler"
SERVE = (
    "import handler\n"
    "summary = handler.handler(sys.stdin.buffer.read(), ctx)\n"
    "assert summary['counts']['updated'] + summary['counts']['unchanged'] == 1, summary"
)
IMPORT_TARGET = 0.4
COLD_START_TARGET = 0.5
SERVE_FIGURE = "cold start: import handler + serve one timer event"


def measure(runs: int) -> dict[str, CpuWall]:
    """Best CPU and best wall seconds of ``runs`` rounds for the SDK import, ``import handler`` and the
    cold start."""
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "schedule.yaml").write_text(SCHEDULE)
        with emulator_process([{"TaskName": "access-logs-prod", "Status": "online"}]) as (url, _):
            env = {
                **cold_env(),
                "ESA_ENDPOINT": url,
                "ALIBABA_CLOUD_ACCESS_KEY_ID": EMULATOR_ACCESS_KEY_ID,
                "ALIBABA_CLOUD_ACCESS_KEY_SECRET": EMULATOR_ACCESS_KEY_SECRET,
                "ESA_SCHEDULE": str(folder / "schedule.yaml"),
                "ESA_STATE_DIR": str(folder / "state"),
            }
            cases = {
                "sdk": Cold(SDK_IMPORT, env),
                "import": Cold(IMPORT, env),
                "serve": Cold(SERVE, env, setup=CONTEXT, stdin=EVENT),
            }
            return best_of(cases, runs)


def rows(m: dict[str, CpuWall], runs: int) -> list[dict[str, object]]:
    """The two figures against the SDK import, for ``make bench``."""
    return [
        against_sdk("import handler", m["import"], m["sdk"], IMPORT_TARGET, runs),
        against_sdk(SERVE_FIGURE, m["serve"], m["sdk"], COLD_START_TARGET, runs),
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--json", action="store_true", help="print the figures as JSON (for make bench)")
    args = parser.parse_args()
    m = measure(args.runs)
    if args.json:
        print(json.dumps(rows(m, args.runs)))
    else:
        print_cold(rows(m, args.runs), m["sdk"], args.runs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
