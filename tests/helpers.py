"""Helpers shared by several test modules.

Imported as ``from helpers import ...``: pytest's default (prepend) import mode puts ``tests/`` on
``sys.path`` because the folder has no ``__init__.py``, and mypy adds it to its search path for the
same reason.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import textwrap
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from urllib.parse import parse_qsl, quote, urlsplit

import httpx
import pytest

from esa_scheduler.cli import main
from esa_scheduler.emulator import EMULATOR_ACCESS_KEY_ID, EMULATOR_ACCESS_KEY_SECRET, Emulator
from esa_scheduler.engine.schedule.load import load_schedule
from esa_scheduler.invocation.events.reader import EventReader
from esa_scheduler.invocation.holds import HoldStore

UTC = timezone.utc


# --------------------------------------------------------------------------- schedules and the CLI

ONE_NIGHTLY_TASK = """\
version: 1
timezone: UTC
tasks:
  - name: access-a
windows:
  - name: nightly
    tasks: [access-a]
    status: offline
    cron: "0 2 * * *"
    duration: 1h
"""
"""The smallest useful schedule: one task, offline every night 02:00-03:00 UTC."""


def write_schedule(directory: Path, text: str, name: str = "ops.yaml") -> Path:
    """``text`` (dedented) as ``directory/name``; creates ``directory`` if needed."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
    return path


def run_cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """``cli.main(args)`` in-process: exit code (argparse's ``SystemExit`` included), stdout, stderr."""
    try:
        code = main(list(args))
    except SystemExit as exc:  # argparse errors
        code = exc.code if isinstance(exc.code, int) else 1
    out, err = capsys.readouterr()
    return code, out, err


def add_hold(schedule: Path, state: Path, task: str, start: datetime, until: datetime, hold_id: str) -> None:
    """The hold ``hold add --until`` stores, as if made at ``start``: the same event reader, with the
    instant pinned where ``hold add`` stamps ``created_at`` with the real clock."""
    command = {"action": "hold", "tasks": [task], "until": iso(until), "reason": f"test {hold_id}", "id": hold_id}
    (hold,) = EventReader(load_schedule(schedule), start).read(command).new_holds
    HoldStore(state).save(hold)


# --------------------------------------------------------------------------- instants


def parse_instant(text: str) -> datetime:
    """A ``...Z`` instant as printed by the CLI -> aware UTC datetime (anything else fails the test)."""
    assert text.endswith("Z"), f"instants must be UTC with Z: {text!r}"
    return datetime.fromisoformat(text[:-1] + "+00:00").astimezone(UTC)


def utc(text: str) -> datetime:
    """``2027-03-28T01:00`` -> aware UTC datetime."""
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def iso(instant: datetime) -> str:
    """An aware datetime -> ``YYYY-MM-DDTHH:MM:SSZ``."""
    return instant.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# --------------------------------------------------------------------------- environment and emulator


SETTING_PREFIXES = ("ALIBABA_CLOUD_", "ESA_", "FC_")
"""Environment variables that configure the scheduler or its credentials; a test sets its own."""


def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No inherited ALIBABA_CLOUD_*/ESA_*/FC_* settings, HOME without credential files, cwd in tmp_path."""
    for name in list(os.environ):
        if name.startswith(SETTING_PREFIXES):
            monkeypatch.delenv(name)
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.chdir(tmp_path)
    return tmp_path


def child_environment(values: Mapping[str, str]) -> dict[str, str]:
    """The whole environment of a child process that must inherit nothing else: PATH, ``values``, and
    what keeps it on this process's clock, LD_PRELOAD and every FAKETIME* variable. Under
    ``faketime`` a child without them runs on the real clock, and an emulator on the faked one
    refuses its signatures (InvalidTimeStamp.Expired)."""
    clock = {name: value for name, value in os.environ.items() if name == "LD_PRELOAD" or name.startswith("FAKETIME")}
    return {"PATH": os.environ.get("PATH", ""), **clock, **values}


def endpoint_env(
    url: str, key_id: str = EMULATOR_ACCESS_KEY_ID, secret: str = EMULATOR_ACCESS_KEY_SECRET
) -> dict[str, str]:
    """ESA_ENDPOINT, an AccessKey pair (the emulator's by default) and no client-side pacing."""
    return {
        "ESA_ENDPOINT": url,
        "ALIBABA_CLOUD_ACCESS_KEY_ID": key_id,
        "ALIBABA_CLOUD_ACCESS_KEY_SECRET": secret,
        "ESA_MAX_RPS": "0",
    }


def set_env(monkeypatch: pytest.MonkeyPatch, values: dict[str, str]) -> None:
    for name, value in values.items():
        monkeypatch.setenv(name, value)


def fc_context(request_id: str = "fc-req-0001", timeout: float = 60, credentials: Any = None) -> Any:
    """What FC passes as ``context`` (``credentials`` only on python3.10 runtimes)."""
    context = SimpleNamespace(
        request_id=request_id,
        function=SimpleNamespace(name="esa-scheduler", handler="handler.handler", memory=256, timeout=timeout),
        region="cn-hangzhou",
    )
    if credentials is not None:
        context.credentials = credentials
    return context


def parse_lines(text: str) -> list[dict[str, Any]]:
    """JSON log lines: every non-empty line must be one JSON object."""
    lines = []
    for raw in text.splitlines():
        if not raw.strip():
            continue
        value = json.loads(raw)
        assert isinstance(value, dict), raw
        lines.append(value)
    return lines


def updates(emulator: Emulator) -> int:
    """How many status updates (account and site) the emulator has served."""
    by_action = emulator.stats["by_action"]
    return int(by_action.get("UpdateUserDeliveryTaskStatus", 0) + by_action.get("UpdateSiteDeliveryTaskStatus", 0))


# --------------------------------------------------------------------------- notification receivers


@dataclass(frozen=True)
class Received:
    """One POST a receiver got: path, decoded query, headers (lower-case names) and the raw body."""

    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


Answer = tuple[int, Any]
"""What a receiver answers: HTTP status and a JSON value."""


class Receiver:
    """A threaded HTTP server on 127.0.0.1 that plays a notification service.

    ``respond`` sees each request (recorded first) and returns the answer; it may block on
    ``release`` to play a service that never answers. Stopping sets ``release`` so no thread lingers.
    """

    def __init__(self, respond: Callable[[Received], Answer]) -> None:
        self.respond = respond
        self.received: list[Received] = []
        self.release = threading.Event()
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                parts = urlsplit(self.path)
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                request = Received(
                    parts.path,
                    dict(parse_qsl(parts.query)),
                    {name.lower(): value for name, value in self.headers.items()},
                    body,
                )
                with receiver._lock:
                    receiver.received.append(request)
                status, answer = receiver.respond(request)
                data = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                del format, args

        class Server(ThreadingHTTPServer):
            daemon_threads = True

            def handle_error(self, request: Any, client_address: Any) -> None:
                """A sender that gave up (a deadline) leaves a closed socket behind: expected here."""
                if not isinstance(sys.exc_info()[1], ConnectionError):
                    super().handle_error(request, client_address)

        self._server = Server(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self._server.server_port}"

    def __enter__(self) -> Receiver:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()


def official_sdk_config(monkeypatch: pytest.MonkeyPatch, url: str) -> Any:
    """An official SDK ``Config`` for the emulator at ``url`` with its own key pair, and no proxy in the
    way (the SDK's HTTP layer honours the proxy variables even for loopback)."""
    from alibabacloud_tea_openapi import models as open_api_models

    for name in ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    return open_api_models.Config(
        access_key_id=EMULATOR_ACCESS_KEY_ID,
        access_key_secret=EMULATOR_ACCESS_KEY_SECRET,
        endpoint=url.removeprefix("http://"),
        protocol="http",
    )


# --------------------------------------------------------------------------- the official SDK as the signing oracle


def _sdk_query(pairs: Iterable[tuple[str, str]]) -> dict[str, str]:
    """Query pairs as the SDK's signer takes them: a dict, keys already encoded. The SDK encodes
    values but not keys (ESA's keys are plain ASCII, where that is the same); the V3 spec encodes
    keys like values, with the same RFC 3986 rule."""
    return {quote(key, safe="~"): value for key, value in pairs}


def sdk_canonical_query(pairs: Iterable[tuple[str, str]]) -> str:
    """The canonical query string the official SDK builds for ``pairs``."""
    from alibabacloud_tea_openapi.utils import get_canonical_query_string

    result: str = get_canonical_query_string(_sdk_query(pairs))
    return result


def wire_params(request: httpx.Request) -> list[tuple[str, str]]:
    """The query of a request as a server decodes it (stdlib, not the signer's own parser)."""
    return parse_qsl(request.url.query.decode("ascii"), keep_blank_values=True)


def sdk_authorization(
    request: httpx.Request,
    access_key_id: str,
    secret: str,
    params: Iterable[tuple[str, str]] | None = None,
) -> str:
    """The ``Authorization`` the official SDK's V3 signer computes for what ``request`` carries: its
    method, path, body, the headers its own ``Authorization`` names as signed, and the query
    ``params`` (by default, as decoded from the wire). It shares no code with esa_scheduler's
    signer, so a wrong canonical request or string to sign cannot agree with it."""
    from alibabacloud_tea_openapi.utils import Utils

    names = request.headers["Authorization"].split("SignedHeaders=")[1].split(",")[0].split(";")
    sdk_request = SimpleNamespace(
        method=request.method,
        pathname=request.url.path,
        query=_sdk_query(wire_params(request) if params is None else params),
        headers={name: request.headers[name] for name in names},
    )
    result: str = Utils.get_authorization(
        sdk_request, "ACS3-HMAC-SHA256", hashlib.sha256(request.content).hexdigest(), access_key_id, secret
    )
    return result
