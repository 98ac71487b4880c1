"""Feishu (and Lark) custom bot: rich-text ``post`` messages, optionally signed.

With a secret, the body carries ``timestamp`` (seconds) and ``sign``, the base64 of HMAC-SHA256
keyed by ``"{timestamp}\\n{secret}"`` over an empty message (the bot's documented scheme, unlike
DingTalk's). Success is ``code: 0``; 11232 is Feishu's rate limit (100 a minute, 5 a second).
"""

from __future__ import annotations

from datetime import datetime

from esa_scheduler.invocation.notify.message import Message, fit
from esa_scheduler.invocation.notify.wire import JSON_TYPE, Answer, Outgoing, b64, coded_answer, hmac_sha256, json_body

THROTTLED = frozenset({"11232"})
MAX_BYTES = 18_000
LINES = 20


def sign(secret: str, timestamp_s: int) -> str:
    """The ``sign`` body field."""
    return b64(hmac_sha256(f"{timestamp_s}\n{secret}", ""))


def prepare(url: str, secret: str | None, message: Message, now: datetime, event_id: str) -> Outgoing:
    """A ``post`` with one paragraph per line; the signature goes in the body."""
    del event_id
    limit = fit(lambda n: "\n".join(message.plain_lines(n)), MAX_BYTES, LINES)
    paragraphs = [[{"tag": "text", "text": line}] for line in message.plain_lines(limit)]
    payload: dict[str, object] = {
        "msg_type": "post",
        "content": {"post": {"zh_cn": {"title": message.title, "content": paragraphs}}},
    }
    if secret:
        timestamp = int(now.timestamp())
        payload = {"timestamp": str(timestamp), "sign": sign(secret, timestamp), **payload}
    return Outgoing(url, {"Content-Type": JSON_TYPE}, json_body(payload))


def answer(status: int, body: bytes) -> Answer:
    """``code`` decides (``StatusCode`` on older bot versions); 11232 is throttling."""
    del status
    found = coded_answer(body, "code", THROTTLED)
    return found if found.code is not None else coded_answer(body, "StatusCode", THROTTLED)
