"""Function Compute entry points; all logic lives in ``esa_scheduler``.

``handler.handler`` is the scheduler (timer, commands, CloudEvents); ``handler.intake`` is the
incident intake behind an HTTP trigger, deployed as a second function from the same code package.
"""

from __future__ import annotations

from typing import Any

from esa_scheduler.invocation.function import handle


def handler(event: bytes, context: Any) -> dict[str, Any]:
    """FC passes the event as bytes and a context with request_id, function, region, credentials."""
    return handle(event, context)


def intake(event: bytes, context: Any) -> dict[str, Any]:
    """FC's HTTP trigger event in, its response struct (``statusCode``, ``headers``, ``body``) out."""
    from esa_scheduler.invocation.intake.app import Intake

    return Intake().handle(event, context)
