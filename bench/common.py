"""What every benchmark needs: the emulator in a process of its own, as ESA is to the scheduler."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


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
