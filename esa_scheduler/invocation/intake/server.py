"""``esa-scheduler serve``: the intake's routes over HTTP on loopback, and its reconciles run in process.

Each request becomes the event FC's HTTP trigger would deliver (header names capitalised as FC does,
a non-JSON body base64-encoded) and goes through the same ``Intake.handle`` as on FC, so what works
here works there. Requests are handled one at a time. Where FC would be asked for an asynchronous
reconcile, the reconcile is queued instead and run by one worker thread after the answer has been
sent, one at a time; reconciles queued meanwhile are merged into the next run. A task id seen
before is refused, as FC refuses it, so a retried callback reconciles once here too.
"""

from __future__ import annotations

import base64
import contextlib
import json
import queue
import socket
import threading
import time
import traceback
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, TextIO
from urllib.parse import parse_qsl, unquote, urlsplit

from esa_scheduler.errors import UserError
from esa_scheduler.invocation.connection import Target
from esa_scheduler.invocation.function import execute
from esa_scheduler.invocation.intake.app import Clock, Intake
from esa_scheduler.invocation.intake.dispatch import Dispatched, Reconcile
from esa_scheduler.invocation.intake.http import MAX_BODY_BYTES, respond
from esa_scheduler.logs import RunLog
from esa_scheduler.timeutil import now_utc, utc_iso

Runner = Callable[[Reconcile], None]
"""Runs one reconcile in process (``in_process``: against ESA or the embedded emulator)."""
_STOP = object()


def in_process(
    target: Target, schedule_path: str | None, state: str | None, clock: Clock | None, stream: TextIO | None
) -> Runner:
    """Each reconcile as the scheduler function would run the event FC delivers, at the intake's clock.

    A bad schedule or state is refused by the run itself (``run.rejected``), which changes nothing."""

    def run(reconcile: Reconcile) -> None:
        now = clock() if clock is not None else None
        with contextlib.suppress(UserError):
            execute(reconcile.event(), target=target, schedule_path=schedule_path, state=state, stream=stream, now=now)

    return run


def fc_event(method: str, target: str, headers: list[tuple[str, str]], body: bytes, source_ip: str) -> dict[str, Any]:
    """The HTTP trigger event FC would deliver for this request."""
    parts = urlsplit(target)
    named: dict[str, str] = {}
    for name, value in headers:
        key = "-".join(word.capitalize() for word in name.split("-"))
        named[key] = f"{named[key]},{value}" if key in named else value
    query: dict[str, str] = {}
    for name, value in parse_qsl(parts.query, keep_blank_values=True):
        query[name] = f"{query[name]},{value}" if name in query else value
    textual = (named.get("Content-Type") or "").split(";")[0].strip().lower() == "application/json"
    now = now_utc()
    return {
        "version": "v1",
        "rawPath": parts.path,
        "body": body.decode("utf-8", "surrogateescape") if textual else base64.b64encode(body).decode("ascii"),
        "isBase64Encoded": not textual,
        "headers": named,
        "queryParameters": query,
        "requestContext": {
            "http": {"method": method, "path": unquote(parts.path), "protocol": "HTTP/1.1", "sourceIp": source_ip},
            "requestId": f"serve-{uuid.uuid4().hex[:16]}",
            "time": utc_iso(now.replace(microsecond=0)),
            "timeEpoch": str(int(now.timestamp() * 1000)),
        },
    }


@dataclass
class Reconciles:
    """The queue of reconciles and its one worker; ``dispatch`` is the intake's dispatcher in ``serve``."""

    runner: Runner
    log_stream: Any = None
    _queue: queue.Queue[object] = field(default_factory=queue.Queue)
    _pending: list[Reconcile] = field(default_factory=list)
    _task_ids: set[str] = field(default_factory=set)
    _busy: int = 0
    _idle: threading.Condition = field(default_factory=threading.Condition)

    def dispatch(self, reconcile: Reconcile, log: RunLog) -> Dispatched:
        """Keep the reconcile until the answer is sent (``release``); a task id seen before is a duplicate."""
        with self._idle:
            duplicate = reconcile.task_id in self._task_ids
            self._task_ids.add(reconcile.task_id)
            if not duplicate:
                self._pending.append(reconcile)
                self._busy += 1
        log.info("intake.dispatched", function="in-process", task_id=reconcile.task_id, duplicate=duplicate)
        return Dispatched("already dispatched" if duplicate else "dispatched")

    def release(self) -> None:
        """The answer is out: queue what the request dispatched."""
        with self._idle:
            pending, self._pending = self._pending, []
        for item in pending:
            self._queue.put(item)

    def work(self) -> None:
        """The worker: one reconcile at a time, those queued meanwhile merged into it."""
        while True:
            item = self._queue.get()
            if item is _STOP:
                return
            batch = [item]
            while not self._queue.empty():
                extra = self._queue.get()
                if extra is _STOP:
                    self._queue.put(_STOP)
                    break
                batch.append(extra)
            merged = [r for r in batch if isinstance(r, Reconcile)]
            hold_ids = tuple(dict.fromkeys(h for r in merged for h in r.hold_ids))
            try:
                self.runner(Reconcile(hold_ids, merged[0].task_id))
            except Exception as exc:  # a failed reconcile is logged; the next timer tick (or request) retries
                RunLog(stream=self.log_stream).error("serve.reconcile_failed", error=f"{type(exc).__name__}: {exc}")
            with self._idle:
                self._busy -= len(merged)
                self._idle.notify_all()

    def wait_idle(self, timeout: float) -> None:
        """Block until every dispatched reconcile has run (tests, and a clean stop)."""
        deadline = time.monotonic() + timeout
        with self._idle:
            while self._busy:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"{self._busy} reconcile(s) still running after {timeout} s")
                self._idle.wait(remaining)

    def stop(self) -> None:
        """Let the worker finish what is queued, then end."""
        self._queue.put(_STOP)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: IntakeHttpServer

    def _serve(self) -> None:
        length = self.headers.get("Content-Length")
        size = int(length) if length and length.isdigit() else 0
        body = self.rfile.read(min(size, MAX_BODY_BYTES + 1))
        # a body over the limit is not read further: the intake answers 413 and the connection closes
        self.close_connection = self.close_connection or size > len(body)
        peer = str(self.client_address[0]) if self.client_address else "127.0.0.1"
        event = fc_event(self.command, self.path, list(self.headers.items()), body, peer)
        with self.server.lock:
            try:
                response = self.server.intake.handle(json.dumps(event).encode())
            except Exception:  # a bug: FC would answer 5xx and log the trace; so does serve
                traceback.print_exc()
                response = respond(500, {"ok": False, "error": "internal error; see the server's log"})
            self._answer(response)
            self.server.reconciles.release()

    def _answer(self, response: dict[str, Any]) -> None:
        body = response.get("body", "")
        raw = base64.b64decode(body) if response.get("isBase64Encoded") else str(body).encode("utf-8")
        self.send_response(int(response.get("statusCode", 200)))
        for name, value in (response.get("headers") or {}).items():
            self.send_header(str(name), str(value))
        self.send_header("Content-Length", str(len(raw)))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(raw)
        self.wfile.flush()

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = _serve

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: every request is one ``intake.*`` JSON line already."""


class IntakeHttpServer(ThreadingHTTPServer):
    """The intake on one loopback address; connections are read concurrently, requests handled in turn."""

    daemon_threads = True

    def __init__(self, address: tuple[str, int], intake: Intake, reconciles: Reconciles) -> None:
        self.address_family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        super().__init__(address, _Handler)
        self.intake = intake
        self.reconciles = reconciles
        self.lock = threading.Lock()

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        name = host.decode() if isinstance(host, bytes) else str(host)
        return f"http://{f'[{name}]' if ':' in name else name}:{port}"


class ServingIntake:
    """The server and the reconcile worker in background threads, for ``serve`` and for tests."""

    def __init__(self, server: IntakeHttpServer) -> None:
        self.server = server
        self._threads = [
            threading.Thread(target=server.reconciles.work, name="intake-reconcile", daemon=True),
            threading.Thread(target=server.serve_forever, name="intake-http", daemon=True),
        ]

    @property
    def url(self) -> str:
        return self.server.url

    def __enter__(self) -> ServingIntake:
        for thread in self._threads:
            thread.start()
        return self

    def wait_idle(self, timeout: float = 60.0) -> None:
        """Until the reconciles dispatched so far have run."""
        self.server.reconciles.wait_idle(timeout)

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.server.shutdown()
        self.server.reconciles.stop()
        self._threads[0].join(timeout=120)
        self.server.server_close()
