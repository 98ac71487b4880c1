"""Signed requests per second through the emulator, and what each side costs in CPU.

The emulator runs as the ``esa-scheduler emulator`` subprocess (its own process and GIL, as when a
CI job starts it next to the scheduler); ``--in-process`` serves from a thread of this process
instead, as the test fixture does. Every request is a freshly signed UpdateUserDeliveryTaskStatus
that the emulator verifies in full.

Clients: ``esa`` (default) is the scheduler's own ``EsaClient`` (signing, keep-alive transport,
retries, response models), with no rate limit; ``raw`` is a minimal keep-alive HTTP/1.1 client that
signs with the same ``esa_scheduler.edge.signer`` functions: it shows the emulator's own ceiling once
the client stops being the bottleneck.

    .venv/bin/python bench/emulator_bench.py [--client esa|raw] [--requests 3000]
        [--concurrency 64] [--runs 3] [--in-process] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlsplit

from common import emulator_process

from esa_scheduler.edge.client import ClientSettings, EsaClient
from esa_scheduler.edge.credentials import Credentials
from esa_scheduler.edge.signer import (
    DATE_FORMAT,
    EMPTY_SHA256,
    authorization,
    canonical_query,
    canonical_request,
    new_nonce,
    signature,
)
from esa_scheduler.emulator import EMULATOR_ACCESS_KEY_ID, EMULATOR_ACCESS_KEY_SECRET, EmulatedTask, Emulator
from esa_scheduler.timeutil import now_utc

TASKS = [EmulatedTask(TaskName=f"bench-{i}", Status="online") for i in range(16)]
ACTION = "UpdateUserDeliveryTaskStatus"
HEADERS = {"x-acs-action": ACTION, "x-acs-version": "2024-09-10"}


def params(i: int) -> dict[str, str]:
    return {"TaskName": f"bench-{i % len(TASKS)}", "Method": ("online", "offline")[i % 2]}


@contextlib.contextmanager
def emulator_subprocess() -> Iterator[tuple[str, Callable[[], float]]]:
    """The emulator in its own process; yields its URL and a CPU-seconds probe of that process."""
    with emulator_process([task.model_dump(exclude_none=True) for task in TASKS]) as (url, pid):
        yield url, lambda: process_cpu(pid)


def not_measured() -> float:
    return math.nan


def process_cpu(pid: int) -> float:
    """User + system CPU seconds of a process (Linux ``/proc``; NaN elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return math.nan
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def esa_load(url: str, requests: int, concurrency: int) -> int:
    """The scheduler's own async client, ``concurrency`` calls in flight; return failures."""
    settings = ClientSettings(max_rps=0, concurrency=concurrency)
    async with EsaClient(url, Credentials(EMULATOR_ACCESS_KEY_ID, EMULATOR_ACCESS_KEY_SECRET), settings) as client:
        results = await asyncio.gather(
            *(client.update_user_delivery_task_status(**call(i)) for i in range(requests)), return_exceptions=True
        )
    return sum(isinstance(r, BaseException) for r in results)


def call(i: int) -> dict[str, str]:
    p = params(i)
    return {"task_name": p["TaskName"], "method": p["Method"]}


def raw_request(authority: str, i: int) -> bytes:
    """One signed GET, built with the signer's own canonicalisation."""
    query = canonical_query(params(i).items())
    headers = {
        "host": authority,
        "x-acs-action": ACTION,
        "x-acs-content-sha256": EMPTY_SHA256,
        "x-acs-date": now_utc().strftime(DATE_FORMAT),
        "x-acs-signature-nonce": new_nonce(),
        "x-acs-version": "2024-09-10",
    }
    names = sorted(headers)
    sig = signature(EMULATOR_ACCESS_KEY_SECRET, canonical_request("GET", "/", query, headers, names, EMPTY_SHA256))
    headers["authorization"] = authorization(EMULATOR_ACCESS_KEY_ID, names, sig)
    head = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
    return f"GET /?{query} HTTP/1.1\r\n{head}\r\n".encode()


async def raw_load(url: str, requests: int, concurrency: int) -> int:
    """Keep-alive connections, one request in flight on each; return failures."""
    parts = urlsplit(url)
    assert parts.hostname is not None and parts.port is not None
    counter = iter(range(requests))

    async def worker() -> int:
        reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
        failures = 0
        for i in counter:
            writer.write(raw_request(parts.netloc, i))
            status = await reader.readline()
            length = 0
            while (line := await reader.readline()) not in (b"\r\n", b""):
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            await reader.readexactly(length)
            failures += not status.startswith(b"HTTP/1.1 200 ")
        writer.close()
        await writer.wait_closed()
        return failures

    return sum(await asyncio.gather(*(worker() for _ in range(concurrency))))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--client", choices=["esa", "raw"], default="esa")
    parser.add_argument("--json", action="store_true", help="print the figure as one JSON object (for make bench)")
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--in-process", action="store_true", help="serve from a thread of this process")
    args = parser.parse_args()

    rates, client_us, server_us = [], [], []
    server_cpu: Callable[[], float]
    with contextlib.ExitStack() as stack:
        if args.in_process:
            url, server_cpu = stack.enter_context(Emulator(tasks=TASKS)).url, not_measured
        else:
            url, server_cpu = stack.enter_context(emulator_subprocess())
        for _ in range(args.runs):
            load = (
                raw_load(url, args.requests, args.concurrency)
                if args.client == "raw"
                else esa_load(url, args.requests, args.concurrency)
            )
            server_before, client_before, started = server_cpu(), time.process_time(), time.perf_counter()
            failures = asyncio.run(load)
            elapsed = time.perf_counter() - started
            if failures:
                raise SystemExit(f"{failures} of {args.requests} requests failed")
            rates.append(args.requests / elapsed)
            client_us.append((time.process_time() - client_before) / args.requests * 1e6)
            server_us.append((server_cpu() - server_before) / args.requests * 1e6)

    if args.json:
        rate = statistics.median(rates)
        figure = {"figure": f"emulator capacity ({args.client} client, {args.concurrency} concurrent)"}
        print(json.dumps([{**figure, "ours": f"{rate:.0f} req/s", "target": ">= 1000 req/s", "pass": rate >= 1000}]))
        return 0
    where = "thread of the client process" if args.in_process else "subprocess"
    client = "EsaClient (esa_scheduler.edge.client)" if args.client == "esa" else "raw signed HTTP/1.1"
    print(f"emulator in a {where}; client: {client}; {args.concurrency} concurrent; {args.requests} signed {ACTION}")
    print("runs (requests/s): " + ", ".join(f"{rate:.0f}" for rate in rates))
    server = statistics.median(server_us)
    server_text = "shared with the client" if math.isnan(server) else f"{server:.0f} us"
    print(f"CPU per request: client {statistics.median(client_us):.0f} us, server {server_text}")
    print(f"median: {statistics.median(rates):.0f} requests/s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
