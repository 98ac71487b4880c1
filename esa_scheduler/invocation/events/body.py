"""A body as FC delivers it: bounded, decoded to JSON objects, and identified so a redelivery is known."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

from esa_scheduler.errors import EventError
from esa_scheduler.invocation.events.models import TimerEvent
from esa_scheduler.strict_json import check_parsed, loads_strict
from esa_scheduler.timeutil import parse_instant, utc_iso


def _body_digest(body: bytes | str | Mapping[str, Any] | list[Any]) -> str:
    """SHA-256 of the body as received: FC redelivers the very same bytes when it retries an event.

    Bodies handed over already parsed (the CLI, tests) are digested in one canonical JSON form.
    """
    if isinstance(body, (bytes, bytearray)):
        raw = bytes(body)
    elif isinstance(body, str):
        raw = body.encode("utf-8", "surrogatepass")
    else:
        raw = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    return hashlib.sha256(raw).hexdigest()


def delivery_identity(
    body: bytes | str | Mapping[str, Any] | list[Any], timer: TimerEvent | None, carried: list[str], kind: str
) -> tuple[str, ...]:
    """The identity of one delivered event, so that a retried delivery and only it looks the same.

    A lone timer event is its trigger firing: ``triggerName``, ``triggerTime`` (as an instant) and the
    ``dry_run``/``force`` options of its payload, so a dry-run preview trigger firing at the same
    instant as the real one is a different event. Any other body is its digest as received (an FC or
    EventBridge retry redelivers it unchanged, while ``now`` moves on), after its ``kind`` and what
    it carries that an operator recognises (hold ids, ``at``); two different bodies never share it.
    """
    if timer is not None:
        options = timer.options()
        flags = [name for name, on in (("dry-run", options.dry_run), ("force", options.force)) if on]
        return ("timer", timer.triggerName, utc_iso(parse_instant(timer.triggerTime)), *flags)
    return (kind, *carried, _body_digest(body)[:16])


def decode_body(body: bytes | str | Mapping[str, Any] | list[Any]) -> list[Any]:
    """FC passes bytes; tests and direct callers may pass text or parsed JSON. Either way the body goes
    through the strict reader's checks (``strict_json``), so it means one thing or nothing happens."""
    if isinstance(body, (bytes, bytearray, str)):
        body = loads_strict(body, "event", as_items=True)
    else:
        check_parsed(body, "event", as_items=True)
    items = body if isinstance(body, list) else [body]
    if not items:
        raise EventError("event: an empty list has nothing to do")
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            raise EventError(f"event[{index}]: expected a JSON object, got {type(item).__name__}")
    return items
