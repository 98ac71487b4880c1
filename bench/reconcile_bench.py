"""Reconcile throughput, pacing, call count and memory, against the local emulator.

1. Speed-up: 1,000 tasks that all need a change, emulator latency 50 ms, no client rate limit.
   Our run (default concurrency 16) against the same updates made one by one with the official
   SDK (``alibabacloud-esa20240910``, dev-only), side by side. The SDK pass updates every
   ``--sdk-sample``-th task and is scaled up (sequential calls are linear in count).
2. Pacing: with ``ESA_MAX_RPS=R`` the achieved update rate, which should be >= 0.9 R.
3. API calls: a run's calls against the minimum (list pages + changed tasks).
4. Peak memory: a 10,000-task run in a fresh process.

The emulator always runs in a process of its own, as ESA would, so it does not share our GIL.
"""

from __future__ import annotations

import argparse
import io
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from common import emulator_process

from esa_scheduler.edge.credentials import Credentials
from esa_scheduler.emulator import EMULATOR_ACCESS_KEY_ID, EMULATOR_ACCESS_KEY_SECRET
from esa_scheduler.invocation.function import Target, execute
from esa_scheduler.invocation.reconciler import RunSummary

AT = "2027-01-04T03:00:00Z"
PAGE_SIZE = 100
CREDS = Credentials(EMULATOR_ACCESS_KEY_ID, EMULATOR_ACCESS_KEY_SECRET)


def write_schedule(folder: Path, count: int) -> Path:
    """``count`` explicit tasks and one window that wants them all offline at ``AT``."""
    lines = ["version: 1", "timezone: UTC", "tasks:"]
    lines += [f"  - name: task-{i:05d}" for i in range(count)]
    lines += ["windows:", "  - name: all-off", '    tasks: ["task-*"]', '    cron: "0 3 * * *"', "    duration: 1h"]
    path = folder / f"bench-{count}.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path


def seed(count: int) -> list[dict[str, Any]]:
    """Every task online, so every task needs an update."""
    return [{"TaskName": f"task-{i:05d}", "Status": "online"} for i in range(count)]


@contextmanager
def emulator(count: int, latency_ms: float) -> Iterator[str]:
    """An emulator seeded with ``count`` online tasks; yields its URL."""
    with emulator_process(seed(count), latency_ms) as (url, _):
        yield url


def ours(folder: Path, schedule: Path, count: int, latency_ms: float, max_rps: float) -> tuple[float, RunSummary]:
    """One run through the product's own path (event -> plan -> concurrent signed updates)."""
    with emulator(count, latency_ms) as url, tempfile.TemporaryDirectory() as st:
        env = {"ESA_MAX_RPS": str(max_rps)}
        start = time.perf_counter()
        summary = execute(
            {"action": "reconcile", "at": AT},
            target=Target(url, CREDS),
            schedule_path=str(schedule),
            state=st,
            stream=io.StringIO(),
            environ=env,
        )
        elapsed = time.perf_counter() - start
    if summary.counts["updated"] != count:
        raise SystemExit(f"expected {count} updates, got {summary.counts}")
    return elapsed, summary


def official_sdk(folder: Path, count: int, sample: int, latency_ms: float) -> float:
    """The same updates, one at a time, with the official SDK; returns the time scaled to all."""
    from alibabacloud_esa20240910 import models
    from alibabacloud_esa20240910.client import Client
    from alibabacloud_tea_openapi import models as open_api_models

    names = [t["TaskName"] for t in seed(count)][::sample]
    with emulator(count, latency_ms) as url:
        config = open_api_models.Config(
            access_key_id=EMULATOR_ACCESS_KEY_ID,
            access_key_secret=EMULATOR_ACCESS_KEY_SECRET,
            endpoint=url.removeprefix("http://"),
            protocol="http",
        )
        client = Client(config)
        start = time.perf_counter()
        for name in names:
            request = models.UpdateUserDeliveryTaskStatusRequest(task_name=name, method="offline")
            client.update_user_delivery_task_status(request)
        return (time.perf_counter() - start) * count / len(names)


def peak_memory(folder: Path, count: int) -> float:
    """Peak RSS (MiB) of a fresh process running one ``count``-task reconcile."""
    with emulator(count, 0) as url:
        code = (
            "import os, sys\n"
            "from esa_scheduler.invocation.function import execute\n"
            f"s = execute({{'action': 'reconcile', 'at': '{AT}'}}, schedule_path=sys.argv[1], state=sys.argv[2],"
            " stream=open(os.devnull, 'w'))  # logs leave the process, as on FC\n"
            f"assert s.counts['updated'] == {count}, s.counts\n"
            # VmHWM, not ru_maxrss: the latter survives exec and would report the parent's peak
            "print(next(l.split()[1] for l in open('/proc/self/status') if l.startswith('VmHWM')))\n"
        )
        env = {
            **os.environ,
            "ESA_ENDPOINT": url,
            "ALIBABA_CLOUD_ACCESS_KEY_ID": EMULATOR_ACCESS_KEY_ID,
            "ALIBABA_CLOUD_ACCESS_KEY_SECRET": EMULATOR_ACCESS_KEY_SECRET,
            "ESA_MAX_RPS": "0",
        }
        schedule = write_schedule(folder, count)
        out = subprocess.run(
            [sys.executable, "-c", code, str(schedule), str(folder / "state")],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        return int(out.stdout.strip().splitlines()[-1]) / 1024


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", type=int, default=1000)
    parser.add_argument("--latency-ms", type=float, default=50.0)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--sdk-sample", type=int, default=5, help="SDK pass on every Nth task, scaled up")
    parser.add_argument("--rps", type=float, default=50.0, help="ESA_MAX_RPS for the pacing check")
    parser.add_argument("--memory-tasks", type=int, default=10_000)
    parser.add_argument("--json", action="store_true", help="print the figures as JSON (for make bench)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        schedule = write_schedule(folder, args.tasks)
        our_times, sdk_times = [], []
        for _ in range(args.runs):
            elapsed, summary = ours(folder, schedule, args.tasks, args.latency_ms, 0)
            our_times.append(elapsed)
            sdk_times.append(official_sdk(folder, args.tasks, args.sdk_sample, args.latency_ms))
        ours_s, sdk_s = statistics.median(our_times), statistics.median(sdk_times)
        minimum = math.ceil(args.tasks / PAGE_SIZE) + args.tasks
        paced_tasks = int(args.rps * 6)
        paced_schedule = write_schedule(folder, paced_tasks)
        rates = []
        for _ in range(args.runs):
            paced_s, paced = ours(folder, paced_schedule, paced_tasks, 0, args.rps)
            rates.append(paced.api_calls / paced_s)
        rate = statistics.median(rates)
        memory = statistics.median(peak_memory(folder, args.memory_tasks) for _ in range(args.runs))
    if args.json:
        speedup = sdk_s / ours_s
        print(
            json.dumps(
                [
                    {
                        "figure": f"reconcile {args.tasks} changes, {args.latency_ms:g} ms latency",
                        "ours": f"{ours_s:.2f} s",
                        "baseline": f"{sdk_s:.1f} s (official SDK, sequential)",
                        "ratio": f"{speedup:.1f}x",
                        "target": ">= 12x",
                        "pass": speedup >= 12,
                    },
                    {
                        "figure": f"achieved rate with ESA_MAX_RPS={args.rps:g}",
                        "ours": f"{rate:.1f} /s",
                        "ratio": f"{rate / args.rps:.2f} R",
                        "target": ">= 0.9 R",
                        "pass": rate >= 0.9 * args.rps,
                    },
                    {
                        "figure": "API calls per run",
                        "ours": str(summary.api_calls),
                        "baseline": f"{minimum} (list pages + changes)",
                        "target": "= minimum",
                        "pass": summary.api_calls == minimum,
                    },
                    {
                        "figure": f"peak memory, {args.memory_tasks} tasks",
                        "ours": f"{memory:.1f} MiB",
                        "target": "<= 100 MB",
                        "pass": memory * 1.048576 <= 100,
                    },
                ]
            )
        )
        return 0
    print(f"reconcile: {args.tasks} tasks to change, emulator latency {args.latency_ms:g} ms, median of {args.runs}")
    print(f"ours (concurrency 16)     {ours_s:8.2f} s")
    print(f"official SDK, sequential  {sdk_s:8.2f} s   (1 task in {args.sdk_sample} measured, scaled)")
    print(f"speed-up                  {sdk_s / ours_s:8.1f} x   (target >= 12 x, ceiling 16 x)")
    print(f"api calls per run         {summary.api_calls:8d}     (minimum: list pages + changes = {minimum})")
    print(f"paced rate at R={args.rps:g}      {rate:8.1f} /s   ({rate / args.rps:.2f} R; target >= 0.9 R)")
    print(f"peak memory, {args.memory_tasks} tasks {memory:8.1f} MiB (target <= 100 MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
