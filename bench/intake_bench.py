"""The intake (``handler.intake``): a new instance's first answer, and a warm instance's answers.

1. Cold start, side by side with the harness of ``common.py`` (best of ``--runs`` rounds of new
   interpreters, timed inside each, ratio and target on CPU time, wall time beside it): ours imports
   ``handler`` and answers one CloudMonitor alert callback (form body, token in the query), which
   creates a hold (each process a new state folder) and dispatches the async reconcile to a loopback
   stub of FC's ``InvokeFunction``; the baseline only imports the official SDK's client
   (``alibabacloud_esa20240910.client``, dev-only), as ``coldstart_bench.py`` measures it.
   Target: <= 0.5x.
2. Warm: one interpreter answers ``--alerts`` callbacks in turn (20 alert keys, each firing, firing
   again and recovering, so two answers in three write a hold and dispatch to the stub); the
   latency of each ``handler.intake`` call, the state folder in memory (``/dev/shm``). Target:
   p99 <= 20 ms.

The FC stub answers 202 at once, as FC does when it queues an async invocation; it runs in a thread
of this process, the measured interpreters in processes of their own.
"""

from __future__ import annotations

import argparse
import base64
import json
import subprocess
import sys
import tempfile
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from common import ROOT, SDK_IMPORT, Cold, CpuWall, against_sdk, best_of, cold_env, print_cold

TOKEN = "bench-intake-token-0123456789"
KEYS = 20
MEMORY = Path("/dev/shm")
"""Where the warm run keeps its state: in memory, so the figure is the intake's own work and not this
disk's ``fsync`` (FC's state mount, OSS or NAS, adds its own write latency to every hold written)."""
SCHEDULE = """version: 1
timezone: UTC
tasks:
  - name: access-logs-prod
  - pattern: "access-*"
incidents:
  - name: origin-errors
    alert: {source: cloudmonitor, name: "origin-5xx*"}
    tasks: ["access-*"]
    ttl: 2h
intake:
  token_env: ESA_INTAKE_TOKEN
"""
CONTEXT = (
    "fn = types.SimpleNamespace(name='esa-scheduler-intake', timeout=10)\n"
    "ctx = types.SimpleNamespace(request_id='cold', function=fn, region='cn-hangzhou', account_id='1234567890123456')"
)
ANSWER = (
    "import json\n"
    "import handler\n"
    "answer = handler.intake(sys.stdin.buffer.read(), ctx)\n"
    "assert json.loads(answer['body'])['reconcile'] == 'dispatched', answer"
)
COLD_START_TARGET = 0.5
WARM = (
    "import json, sys, time, types\n"
    "import handler\n"
    "fn = types.SimpleNamespace(name='esa-scheduler-intake', timeout=10)\n"
    "ctx = types.SimpleNamespace(request_id='warm', function=fn, region='cn-hangzhou', account_id='1234567890123456')\n"
    "took = []\n"
    "for line in sys.stdin.buffer:\n"
    "    start = time.perf_counter()\n"
    "    answer = handler.intake(line, ctx)\n"
    "    took.append(time.perf_counter() - start)\n"
    "    assert answer['statusCode'] == 200, answer\n"
    "print(json.dumps(took))\n"
)


def callback(key: int, state: str, at: int) -> bytes:
    """An FC HTTP trigger event carrying one CloudMonitor alert callback (base64 form, token in the query)."""
    fields = {
        "alertName": "origin-5xx-rate",
        "alertState": state,
        "triggerLevel": "CRITICAL" if state == "ALERT" else "OK",
        "preTriggerLevel": "OK" if state == "ALERT" else "CRITICAL",
        "curValue": "7.4",
        "dimensions": f"{{userId=1234567890123456, instanceId=esa-site-{key:03d}}}",
        "metricName": "origin_5xx_ratio",
        "namespace": "acs_esa",
        "ruleId": "origin-5xx-rate-rule",
        "regionId": "cn-hangzhou",
        "transId": f"trans-{key:03d}",
        "timestamp": str(at),
        "signature": "null",
    }
    event = {
        "version": "v1",
        "rawPath": "/alerts/cloudmonitor",
        "body": base64.b64encode(urlencode(fields).encode()).decode(),
        "isBase64Encoded": True,
        "headers": {"Content-Type": "application/x-www-form-urlencoded"},
        "queryParameters": {"token": TOKEN},
        "requestContext": {"http": {"method": "POST", "path": "/alerts/cloudmonitor"}, "requestId": uuid.uuid4().hex},
    }
    return json.dumps(event).encode()


def warm_events(count: int) -> bytes:
    """Each key fires, fires again (a refresh) and recovers, in turn: 2 answers in 3 dispatch."""
    states = ("ALERT", "ALERT", "OK")
    lines = [callback(i % KEYS, states[(i // KEYS) % 3], 1799031600000 + i) for i in range(count)]
    return b"\n".join(lines) + b"\n"


class _Fc(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.send_response(202)
        self.send_header("x-fc-request-id", uuid.uuid4().hex)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet."""


@contextmanager
def fc_stub() -> Iterator[str]:
    """FC's ``InvokeFunction`` on loopback, answering every async invocation 202 at once."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Fc)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def environment(folder: Path, fc: str) -> dict[str, str]:
    (folder / "schedule.yaml").write_text(SCHEDULE)
    return {
        **cold_env(),
        "PYTHONPATH": str(ROOT),
        "ESA_SCHEDULE": str(folder / "schedule.yaml"),
        "ESA_INTAKE_TOKEN": TOKEN,
        "ESA_SCHEDULER_FUNCTION": "esa-scheduler",
        "ESA_FC_ENDPOINT": fc,
        "ALIBABA_CLOUD_ACCESS_KEY_ID": "bench-key-id",
        "ALIBABA_CLOUD_ACCESS_KEY_SECRET": "bench-key-secret",
    }


def measure(runs: int, alerts: int) -> dict[str, Any]:
    """Best cold CPU and wall seconds (ours and the SDK's import) and the warm latencies."""
    with tempfile.TemporaryDirectory() as tmp, fc_stub() as fc:
        folder = Path(tmp)
        env = environment(folder, fc)
        first_alert = callback(0, "ALERT", 1799031600000)
        cases = {"sdk": Cold(SDK_IMPORT, env), "cold": Cold(ANSWER, env, CONTEXT, first_alert, folder / "cold")}
        cold: dict[str, CpuWall] = best_of(cases, runs)
        with tempfile.TemporaryDirectory(dir=MEMORY if MEMORY.is_dir() else None) as state:
            warm_env = {**env, "ESA_STATE_DIR": state}
            out = subprocess.run(
                [sys.executable, "-c", WARM],
                input=warm_events(alerts),
                env=warm_env,
                cwd=ROOT,
                check=True,
                capture_output=True,
            )
    took = sorted(json.loads(out.stdout.splitlines()[-1]))  # the log lines (stdout, as on FC) come first
    return {
        **cold,
        "p50": took[len(took) // 2],
        "p99": took[min(len(took) - 1, int(len(took) * 0.99))],
        "alerts": len(took),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--alerts", type=int, default=1000)
    parser.add_argument("--json", action="store_true", help="print the figures as JSON (for make bench)")
    args = parser.parse_args()
    m = measure(args.runs, args.alerts)
    name = "intake cold start: import + answer one CloudMonitor alert (FC dispatch to a stub)"
    cold = against_sdk(name, m["cold"], m["sdk"], COLD_START_TARGET, args.runs)
    warm = {
        "figure": f"intake warm: {m['alerts']} alerts answered, p99 (p50 {m['p50'] * 1000:.1f} ms)",
        "ours": f"{m['p99'] * 1000:.1f} ms",
        "target": "<= 20 ms",
        "pass": m["p99"] <= 0.020,
    }
    if args.json:
        print(json.dumps([cold, warm]))
        return 0
    print_cold([cold], m["sdk"], args.runs)
    print(f"{warm['figure']}: {warm['ours']} (target {warm['target']})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
