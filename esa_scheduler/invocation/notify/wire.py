"""What every service module provides: the request to send, and how to read the service's answer.

Chat services answer HTTP 200 with their own code in the body (``errcode``/``code``), so success,
throttling and rejection are read from the body; plain webhooks are judged by the HTTP status.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

from esa_scheduler.errors import UserError
from esa_scheduler.logs import redact
from esa_scheduler.strict_json import loads_strict

if TYPE_CHECKING:
    from esa_scheduler.invocation.notify.message import Reminder

JSON_TYPE = "application/json; charset=utf-8"
DETAIL_CHARS = 200


@dataclass(frozen=True)
class Outgoing:
    """One POST: where, with which headers, and the exact bytes (signatures cover these bytes);
    ``reminders`` are the ones the body shows (a long list may hide some behind "and N more")."""

    url: str
    headers: dict[str, str]
    body: bytes
    reminders: tuple[Reminder, ...] = ()


@dataclass(frozen=True)
class Answer:
    """The service's verdict; ``code`` is its own code (``errcode``/``code``) when it sends one."""

    ok: bool
    code: str | None
    detail: str
    throttled: bool = False


def json_body(payload: dict[str, Any]) -> bytes:
    """UTF-8 JSON, not ASCII-escaped: the chat services count message size in bytes."""
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def markdown_bytes(lines: Sequence[str]) -> int:
    """The size of markdown text as the chat services count it: UTF-8 bytes."""
    return len("\n".join(lines).encode("utf-8"))


def hmac_sha256(key: str, message: str | bytes) -> bytes:
    """HMAC-SHA256 keyed by UTF-8 text, the primitive all three signing schemes use."""
    data = message.encode("utf-8") if isinstance(message, str) else message
    return hmac.new(key.encode("utf-8"), data, hashlib.sha256).digest()


def b64(raw: bytes) -> str:
    """Standard base64 text."""
    return base64.b64encode(raw).decode("ascii")


def with_query(url: str, extra: str) -> str:
    """``url`` with ``extra`` (already encoded) appended to its query string."""
    parts = urlsplit(url)
    query = f"{parts.query}&{extra}" if parts.query else extra
    return urlunsplit(parts._replace(query=query))


def detail(text: str) -> str:
    """A service's message as a log detail: masked before it is cut, so that no part of an echoed
    token survives the cut, and cut to ``DETAIL_CHARS``."""
    return redact(text)[:DETAIL_CHARS]


def coded_answer(body: bytes, field: str, throttled: frozenset[str]) -> Answer:
    """Read ``{field: 0, ...msg}`` answers; a body that is not one JSON object is a failure without a code.

    Only the number 0 is success, as each service documents it: ``"0"``, ``false`` or ``0.0`` come
    from something else (a proxy, a stub) and must not mark a reminder or an alert as delivered, and
    an answer with its code twice (``{"errcode": 0, "errcode": 310000}``) says nothing certain."""
    try:
        payload = loads_strict(body, "answer", max_bytes=None)
    except UserError:
        return Answer(False, None, detail(body.decode("utf-8", "replace")))
    if not isinstance(payload, dict) or field not in payload:
        return Answer(False, None, detail(body.decode("utf-8", "replace")))
    value = payload[field]
    numeric = type(value) is int  # not bool, not float, not a string of digits
    code = str(value) if numeric or isinstance(value, str) else json.dumps(value)
    message = payload.get("errmsg") or payload.get("msg") or payload.get("StatusMessage") or ""
    return Answer(numeric and value == 0, code, detail(str(message)), numeric and code in throttled)
