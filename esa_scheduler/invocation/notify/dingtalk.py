"""DingTalk custom group robot: markdown messages, optionally signed ("加签").

With a secret, the URL gains ``timestamp`` (milliseconds) and ``sign``, the URL-encoded base64 of
HMAC-SHA256 keyed by the secret over ``"{timestamp}\\n{secret}"``; DingTalk refuses a timestamp more
than an hour from its clock. It answers ``errcode: 0`` on success and 130101 when a robot sends
more than 20 messages a minute. The markdown text may hold 20,000 bytes.
"""

from __future__ import annotations

from datetime import datetime
from urllib.parse import quote

from esa_scheduler.invocation.notify.message import Message, cut_note, fit
from esa_scheduler.invocation.notify.wire import (
    JSON_TYPE,
    Answer,
    Outgoing,
    b64,
    coded_answer,
    hmac_sha256,
    json_body,
    markdown_bytes,
    with_query,
)

THROTTLED = frozenset({"130101"})
MAX_BYTES = 20_000
LINES = 20


def sign(secret: str, timestamp_ms: int) -> str:
    """The ``sign`` value before URL encoding."""
    return b64(hmac_sha256(secret, f"{timestamp_ms}\n{secret}"))


def prepare(url: str, secret: str | None, message: Message, now: datetime, event_id: str) -> Outgoing:
    """The robot's markdown message; the signature goes in the query string."""
    del event_id
    fitted = fit(message.markdown_lines, markdown_bytes, MAX_BYTES, LINES, ("", cut_note("dingtalk")))
    text = "\n".join(fitted.lines)
    body = json_body({"msgtype": "markdown", "markdown": {"title": message.title, "text": text}})
    if secret:
        timestamp = int(now.timestamp() * 1000)
        url = with_query(url, f"timestamp={timestamp}&sign={quote(sign(secret, timestamp), safe='')}")
    return Outgoing(url, {"Content-Type": JSON_TYPE}, body, fitted.reminders)


def answer(status: int, body: bytes) -> Answer:
    """``errcode`` decides; 130101 is throttling."""
    del status
    return coded_answer(body, "errcode", THROTTLED)
