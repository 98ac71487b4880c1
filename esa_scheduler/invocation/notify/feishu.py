"""Feishu (and Lark) custom bot: rich-text ``post`` messages, optionally signed.

With a secret, the body carries ``timestamp`` (seconds) and ``sign``, the base64 of HMAC-SHA256
keyed by ``"{timestamp}\\n{secret}"`` over an empty message (the bot's documented scheme, unlike
DingTalk's). Success is ``code: 0``; 11232 is Feishu's rate limit (100 a minute, 5 a second). The
request body may hold 20 KB.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from esa_scheduler.invocation.notify.message import Message, cut_note, fit
from esa_scheduler.invocation.notify.wire import JSON_TYPE, Answer, Outgoing, b64, coded_answer, hmac_sha256, json_body

THROTTLED = frozenset({"11232"})
MAX_BYTES = 20_000
LINES = 20


def sign(secret: str, timestamp_s: int) -> str:
    """The ``sign`` body field."""
    return b64(hmac_sha256(f"{timestamp_s}\n{secret}", ""))


def prepare(url: str, secret: str | None, message: Message, now: datetime, event_id: str) -> Outgoing:
    """A ``post`` with one paragraph per line; the signature goes in the body, whose size is limited."""
    del event_id
    signature: dict[str, object] = {}
    if secret:
        timestamp = int(now.timestamp())
        signature = {"timestamp": str(timestamp), "sign": sign(secret, timestamp)}

    def body(lines: Sequence[str]) -> bytes:
        paragraphs = [[{"tag": "text", "text": line}] for line in lines]
        post = {"zh_cn": {"title": message.title, "content": paragraphs}}
        return json_body({**signature, "msg_type": "post", "content": {"post": post}})

    fitted = fit(message.plain_lines, lambda lines: len(body(lines)), MAX_BYTES, LINES, (cut_note("feishu"),))
    return Outgoing(url, {"Content-Type": JSON_TYPE}, body(fitted.lines), fitted.reminders)


def answer(status: int, body: bytes) -> Answer:
    """``code`` decides (``StatusCode`` on older bot versions); 11232 is throttling."""
    del status
    found = coded_answer(body, "code", THROTTLED)
    return found if found.code is not None else coded_answer(body, "StatusCode", THROTTLED)
