"""Function Compute entry point (``handler.handler``); all logic lives in ``esa_scheduler``."""

from __future__ import annotations

from typing import Any

from esa_scheduler.invocation.function import handle


def handler(event: bytes, context: Any) -> dict[str, Any]:
    """FC passes the event as bytes and a context with request_id, function, region, credentials."""
    return handle(event, context)
