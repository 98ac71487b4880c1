"""Fleet fan-out: 20 targets x 500 tasks that all change, inline, against one target alone.

Each target is its own account behind an STS role; the emulator (in a process of its own, as ESA
and STS are to the scheduler) adds 50 ms to every call, and ``ESA_MAX_RPS=20`` paces each target.
Because quotas are per account, each target gets its own client and pacing: the fleet should take
about as long as one target (target: <= 1.3x), not twenty times as long. The API calls must be the
minimum per target (list pages + one update per task) plus one ``AssumeRole`` per target.

``--serve`` is the emulator process itself: it prints its URL and serves until stdin closes.
"""

from __future__ import annotations

import argparse
import io
import json
import math
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from esa_scheduler.emulator import EmulatedAccount, EmulatedRole, Emulator, Faults
from esa_scheduler.invocation.function import execute
from esa_scheduler.invocation.reconciler import RunSummary

AT = "2027-01-04T03:00:00Z"
TARGETS, TASKS, LATENCY_MS, MAX_RPS = 20, 500, 50.0, 20.0
PAGE_SIZE = 100
TARGET_RATIO = 1.3


def account_id(index: int) -> str:
    return f"{2000000000000000 + index:016d}"


def role_arn(index: int) -> str:
    return f"acs:ram::{account_id(index)}:role/esa-scheduler-target"


def serve(targets: int, tasks: int, latency_ms: float) -> None:
    """The emulator process: ``targets`` accounts of ``tasks`` online tasks, one role in each."""
    accounts = [
        EmulatedAccount(
            id=account_id(i),
            access_key_id=f"bench-account-{i}",
            access_key_secret=f"bench-account-secret-{i}",
            tasks=[{"TaskName": f"task-{k:04d}", "Status": "online"} for k in range(tasks)],
        )
        for i in range(targets)
    ]
    roles = [EmulatedRole(arn=role_arn(i)) for i in range(targets)]
    with Emulator(accounts=accounts, roles=roles, faults=Faults(latency_ms=latency_ms)) as emulator:
        print(f"listening on {emulator.url}", flush=True)
        sys.stdin.read()


@contextmanager
def emulator(targets: int, tasks: int, latency_ms: float) -> Iterator[str]:
    command = [sys.executable, __file__, "--serve", str(targets), str(tasks), str(latency_ms)]
    with subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True) as server:
        try:
            assert server.stdout is not None
            first = server.stdout.readline().strip()
            if not first.startswith("listening on "):
                raise RuntimeError(f"emulator did not start: {first!r}")
            yield first.removeprefix("listening on ")
        finally:
            assert server.stdin is not None
            server.stdin.close()
            server.wait(timeout=60)


def write_schedule(folder: Path, targets: int) -> Path:
    lines = ["version: 1", "timezone: UTC", "targets:"]
    lines += [f"  - {{name: t{i:02d}, role_arn: '{role_arn(i)}', region: cn-hangzhou}}" for i in range(targets)]
    lines += ["tasks:", '  - pattern: "task-*"']
    lines += ["windows:", "  - name: all-off", '    tasks: ["task-*"]', '    cron: "0 3 * * *"', "    duration: 1h"]
    path = folder / f"fleet-{targets}.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path


def one_run(targets: int, tasks: int, latency_ms: float) -> tuple[float, RunSummary]:
    """A fresh emulator, then one inline reconcile of every target; (seconds, summary)."""
    with emulator(targets, tasks, latency_ms) as url, tempfile.TemporaryDirectory() as scratch:
        schedule = write_schedule(Path(scratch), targets)
        env = {
            "ESA_ENDPOINT": url,
            "ESA_STS_ENDPOINT": url,
            "ESA_MAX_RPS": str(MAX_RPS),
            "ALIBABA_CLOUD_ACCESS_KEY_ID": "emulator-access-key-id",
            "ALIBABA_CLOUD_ACCESS_KEY_SECRET": "emulator-access-key-secret",
        }
        started = time.perf_counter()
        summary = execute(
            {"action": "reconcile", "at": AT},
            schedule_path=str(schedule),
            state=str(Path(scratch) / "state"),
            stream=io.StringIO(),
            environ=env,
        )
        elapsed = time.perf_counter() - started
    if summary.counts["updated"] != targets * tasks:
        why = {name: t["error"] for name, t in (summary.targets or {}).items() if not t["ok"]}
        raise SystemExit(f"expected {targets * tasks} updates, got {summary.counts}: {why}")
    return elapsed, summary


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--json", action="store_true", help="print the figures as JSON (for make bench)")
    parser.add_argument("--serve", nargs=3, metavar=("TARGETS", "TASKS", "LATENCY_MS"))
    args = parser.parse_args()
    if args.serve:
        serve(int(args.serve[0]), int(args.serve[1]), float(args.serve[2]))
        return 0
    single, single_summary = one_run(1, TASKS, LATENCY_MS)
    fleet, fleet_summary = one_run(TARGETS, TASKS, LATENCY_MS)
    ratio = fleet / single
    minimum = TARGETS * (math.ceil(TASKS / PAGE_SIZE) + TASKS + 1)  # + 1: every target has a role
    figures = [
        {
            "figure": f"fan-out inline {TARGETS} targets x {TASKS} changes, {LATENCY_MS:g} ms, {MAX_RPS:g} rps/target",
            "ours": f"{fleet:.1f} s",
            "baseline": f"{single:.1f} s (1 target)",
            "ratio": f"{ratio:.2f}x",
            "target": f"<= {TARGET_RATIO:g}x",
            "pass": ratio <= TARGET_RATIO,
        },
        {
            "figure": "fan-out API calls (pages + changes per target, + 1 AssumeRole each)",
            "ours": str(fleet_summary.api_calls),
            "baseline": str(minimum),
            "target": "= minimum",
            "pass": fleet_summary.api_calls == minimum and single_summary.api_calls == minimum // TARGETS,
        },
    ]
    if args.json:
        print(json.dumps(figures))
        return 0
    for figure in figures:
        print(f"{figure['figure']}: {figure['ours']} vs {figure['baseline']} (target {figure['target']})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
