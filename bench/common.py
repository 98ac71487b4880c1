"""What every benchmark needs: the emulator in a process of its own, as ESA is to the scheduler, and
the cold-start harness that times a body of code in new interpreters side by side with the SDK's import.

A cold start is timed inside each new process (the interpreter's own start-up is the same for every
case and excluded). Its ratio and target are on the process's CPU time: on a shared machine wall time
swings with the other load, while the work a cold start does does not; the wall time is shown beside
it (serving also waits for the emulator or FC's stub, as it would for the real services). Each figure
is the best of ``runs`` rounds, one round running every case once, so a busy machine slows them alike.
Bytecode caches are written first for every case, as a warm package directory would have them, even
where the environment says ``PYTHONDONTWRITEBYTECODE``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SDK_IMPORT = "import alibabacloud_esa20240910.client"
"""The baseline: the official SDK's client (installed for benchmarks only), as a cold start imports it."""
TIMED = """\
import sys, time, types
{setup}
wall, cpu = time.perf_counter(), time.process_time()
{body}
print(time.process_time() - cpu, time.perf_counter() - wall, file=sys.stderr)
"""
CpuWall = tuple[float, float]


@contextmanager
def emulator_process(tasks: list[dict[str, Any]], latency_ms: float = 0.0) -> Iterator[tuple[str, int]]:
    """``esa-scheduler emulator`` on a free loopback port, seeded with ``tasks``; yields (url, pid)."""
    with tempfile.TemporaryDirectory() as scratch:
        tasks_file = Path(scratch) / "tasks.json"
        tasks_file.write_text(json.dumps(tasks))
        command = [sys.executable, "-m", "esa_scheduler", "emulator", "--port", "0", "--tasks", str(tasks_file)]
        with subprocess.Popen([*command, "--latency-ms", str(latency_ms)], stdout=subprocess.PIPE, text=True) as server:
            try:
                assert server.stdout is not None
                first = server.stdout.readline().strip()
                if not first.startswith("listening on "):
                    raise RuntimeError(f"emulator did not start: {first!r}")
                yield first.removeprefix("listening on "), server.pid
            finally:
                server.terminate()
                server.wait(timeout=10)


@dataclass(frozen=True)
class Cold:
    """One case of a cold start: ``body`` is timed, after ``setup`` (not timed) made FC's context."""

    body: str
    env: Mapping[str, str]
    setup: str = ""
    stdin: bytes = b""
    fresh_state: Path | None = None
    """Each process gets a new ``ESA_STATE_DIR`` under this folder: a new instance's first event."""


def timed(case: Cold, run: str) -> CpuWall:
    """CPU and wall seconds ``case.body`` takes in a new interpreter, as it measures itself (the
    handlers log to stdout, so the figures come on stderr)."""
    env = {**case.env, "PYTHONPATH": str(ROOT)}
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # the caches must exist, for ours and the SDK alike
    if case.fresh_state is not None:
        env["ESA_STATE_DIR"] = str(case.fresh_state / run)
    script = TIMED.format(setup=case.setup, body=case.body)
    out = subprocess.run(
        [sys.executable, "-c", script], input=case.stdin, env=env, cwd=ROOT, check=True, capture_output=True
    )
    cpu, wall = out.stderr.decode().strip().splitlines()[-1].split()
    return float(cpu), float(wall)


def best_of(cases: Mapping[str, Cold], runs: int) -> dict[str, CpuWall]:
    """Best CPU and best wall seconds of each case over ``runs`` interleaved rounds, after one round
    that writes the bytecode caches."""
    for name, case in cases.items():
        timed(case, f"{name}-cache")
    rounds = [{name: timed(case, f"{name}-{i}") for name, case in cases.items()} for i in range(runs)]
    return {name: (min(r[name][0] for r in rounds), min(r[name][1] for r in rounds)) for name in cases}


def cold_env() -> dict[str, str]:
    """This environment without the cloud's and the scheduler's variables: each case sets its own."""
    return {k: v for k, v in os.environ.items() if not k.startswith(("ALIBABA_CLOUD_", "ESA_", "FC_"))}


def ms(cpu_wall: CpuWall) -> str:
    """``160 ms CPU (162 ms wall)``."""
    return f"{cpu_wall[0] * 1000:.0f} ms CPU ({cpu_wall[1] * 1000:.0f} ms wall)"


def against_sdk(name: str, ours: CpuWall, sdk: CpuWall, target: float, runs: int) -> dict[str, object]:
    """One ``make bench`` row: a cold start against the SDK's import, the ratio and target on CPU time."""
    return {
        "figure": f"{name} (best of {runs} new processes)",
        "ours": ms(ours),
        "baseline": f"{ms(sdk)}: import official SDK client",
        "ratio": f"{ours[0] / sdk[0]:.2f}x",
        "target": f"<= {target}x",
        "pass": ours[0] <= target * sdk[0],
    }


def print_cold(rows: list[dict[str, object]], sdk: CpuWall, runs: int) -> None:
    """The cold-start rows as a table for a reader, the SDK's import first."""
    print(f"best of {runs} new processes, timed inside each; ratios and targets on CPU time")
    names = [str(row["figure"]).split(" (best of")[0] for row in rows]
    width = max(len(SDK_IMPORT), *map(len, names))
    print(f"{SDK_IMPORT:{width}} {ms(sdk):>28}")
    for name, row in zip(names, rows, strict=True):
        print(f"{name:{width}} {row['ours']:>28}  {row['ratio']} (target {row['target']})")
