"""Who may change holds through the intake: the shared token of ``/alerts/*``, DingTalk's signature.

Both comparisons run in constant time (``hmac.compare_digest``), so the time an answer takes tells
nothing about how much of a guess was right. Neither the expected values nor what was sent ever
reaches an answer or a log line: a refusal says ``unauthorized`` and no more.
"""

from __future__ import annotations

import hmac
from datetime import datetime, timedelta

from esa_scheduler.invocation.intake.http import Request

DINGTALK_SKEW = timedelta(hours=1)
"""How far DingTalk's ``timestamp`` may be from our clock, as DingTalk itself allows for its robots."""


def _same(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode("utf-8", "surrogatepass"), expected.encode("utf-8"))


def presented_token(request: Request) -> str | None:
    """``Authorization: Bearer TOKEN``, else ``?token=TOKEN`` (CloudMonitor's callbacks cannot set headers)."""
    authorization = request.header("authorization")
    if authorization is not None:
        scheme, _, value = authorization.strip().partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip()
    return request.query.get("token")


def token_ok(request: Request, expected: str) -> bool:
    """Whether the request carries the expected token."""
    given = presented_token(request)
    return given is not None and _same(given, expected)


def dingtalk_ok(request: Request, app_secret: str, now: datetime) -> bool:
    """DingTalk's HTTP-mode robot: header ``sign`` is base64(HMAC-SHA256(app secret, timestamp + "\\n" +
    app secret)) and header ``timestamp`` (milliseconds) is within an hour of ``now``.

    The signature does not cover the body: a captured request can be sent again within the hour,
    which is why the chat route also refuses a ``msgId`` it has seen (``replay``).
    """
    from esa_scheduler.invocation.notify.dingtalk import sign  # the chat route's only: alerts do without it

    timestamp, given = request.header("timestamp"), request.header("sign")
    if timestamp is None or given is None or not (timestamp.isascii() and timestamp.isdigit()) or len(timestamp) > 15:
        return False
    sent = int(timestamp)
    if abs(now.timestamp() * 1000 - sent) > DINGTALK_SKEW.total_seconds() * 1000:
        return False
    return _same(given.strip(), sign(app_secret, sent))
