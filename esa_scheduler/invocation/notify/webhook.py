"""A signed webhook into your own systems: one CloudEvents 1.0 event in structured mode.

The body is the JSON event format (``Content-Type: application/cloudevents+json``) with
``specversion``, ``id``, ``source``, ``type``, ``time`` and ``data`` (the run summary and the
reported task results, holds and reminders). The ``id`` is the run id and notify entry name (and
the fleet target between them when the invocation serves one), the same on every retry, so a
receiver can drop duplicates. With a secret, ``X-Esa-Scheduler-Signature:
sha256=<hex>`` is the HMAC-SHA256 of the exact body bytes keyed by the secret.
"""

from __future__ import annotations

from datetime import datetime

from esa_scheduler.invocation.notify.message import Message
from esa_scheduler.invocation.notify.wire import Answer, Outgoing, detail, hmac_sha256, json_body
from esa_scheduler.timeutil import utc_iso

CONTENT_TYPE = "application/cloudevents+json; charset=utf-8"
SIGNATURE_HEADER = "X-Esa-Scheduler-Signature"
SOURCE = "esa-scheduler"


def signature(secret: str, body: bytes) -> str:
    """The header value: ``sha256=`` and the hex HMAC of the body."""
    return "sha256=" + hmac_sha256(secret, body).hex()


def prepare(url: str, secret: str | None, message: Message, now: datetime, event_id: str) -> Outgoing:
    """The structured-mode event; ``time`` is the run's instant, not the sending time."""
    del now
    event = {
        "specversion": "1.0",
        "id": event_id,
        "source": SOURCE,
        "type": message.event_type,
        "time": utc_iso(message.at),
        "datacontenttype": "application/json",
        "data": message.data,
    }
    body = json_body(event)
    headers = {"Content-Type": CONTENT_TYPE}
    if secret:
        headers[SIGNATURE_HEADER] = signature(secret, body)
    return Outgoing(url, headers, body, message.reminders)


def answer(status: int, body: bytes) -> Answer:
    """Any 2xx is delivered; the HTTP status is the code."""
    return Answer(200 <= status < 300, None, detail(body.decode("utf-8", "replace")))
