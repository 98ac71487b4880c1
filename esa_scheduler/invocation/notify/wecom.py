"""WeCom (WeChat Work) group robot: markdown messages; the URL's ``key`` is the only credential.

Success is ``errcode: 0``; 45009 is the robot's rate limit (20 messages a minute). Markdown content
is limited to 4096 bytes, so long lists are cut harder than for the other services.
"""

from __future__ import annotations

from datetime import datetime

from esa_scheduler.invocation.notify.message import Message, cut_note, fit
from esa_scheduler.invocation.notify.wire import JSON_TYPE, Answer, Outgoing, coded_answer, json_body, markdown_bytes

THROTTLED = frozenset({"45009"})
MAX_BYTES = 4096
LINES = 10


def prepare(url: str, secret: str | None, message: Message, now: datetime, event_id: str) -> Outgoing:
    """The robot's markdown message (WeCom robots have no signing, so ``secret`` is unused)."""
    del secret, now, event_id
    fitted = fit(message.markdown_lines, markdown_bytes, MAX_BYTES, LINES, ("", cut_note("wecom")))
    body = json_body({"msgtype": "markdown", "markdown": {"content": "\n".join(fitted.lines)}})
    return Outgoing(url, {"Content-Type": JSON_TYPE}, body, fitted.reminders)


def answer(status: int, body: bytes) -> Answer:
    """``errcode`` decides; 45009 is throttling."""
    del status
    return coded_answer(body, "errcode", THROTTLED)
