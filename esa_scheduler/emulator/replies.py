"""What the emulator answers: a ``Reply`` the HTTP layer carries out, and ESA's success and error documents."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from esa_scheduler.emulator.models import (
    ApiError,
)
from esa_scheduler.emulator.params import Payload


@dataclass(frozen=True)
class Reply:
    """What to send (after ``delay`` seconds), or ``drop`` to close the connection unanswered."""

    status: int
    body: bytes
    headers: tuple[tuple[str, str], ...] = ()
    delay: float = 0.0
    drop: bool = False
    defer: Callable[[], Reply] | None = None
    """Work that must not block the server's loop (a sync function call): run it in a worker
    thread after ``delay`` and send what it returns instead."""


def json_body(document: Mapping[str, Any]) -> bytes:
    """Compact JSON, as the real gateway sends it."""
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode()


def ok_reply(payload: Payload) -> Reply:
    """A success document with its request id, in the body and the header as ESA sends both."""
    request_id = _request_id()
    return Reply(200, json_body({"RequestId": request_id, **payload}), (("x-acs-request-id", request_id),))


def _request_id() -> str:
    return str(uuid.uuid4()).upper()


def error_reply(err: ApiError, host: str, delay: float = 0.0) -> Reply:
    """ESA's error document, which the SDK parses: Code and Message, plus RequestId, HostId, Recommend."""
    request_id = _request_id()
    document = {
        "RequestId": request_id,
        "Code": err.code,
        "Message": err.message,
        "HostId": host,
        "Recommend": f"https://api.aliyun.com/troubleshoot?q={err.code}&product=ESA&requestId={request_id}",
    }
    headers = [("x-acs-request-id", request_id)]
    if err.retry_after_ms is not None:
        headers.append(("x-acs-retry-after", str(err.retry_after_ms)))
    return Reply(err.status, json_body(document), tuple(headers), delay)
