"""Function Compute entry points; all logic lives in ``esa_scheduler``.

``handler.handler`` is the scheduler (timer, commands, CloudEvents); ``handler.intake`` is the
incident intake behind an HTTP trigger, deployed as a second function from the same code package.
FC imports this module for either function, so each entry point imports its own path when first
called: the intake's cold start does not load the scheduler's event reader, planner and reconciler,
nor the scheduler's the intake's routes.
"""

from __future__ import annotations

import sys
from typing import Any

# httpx imports its command-line client (click, pygments, rich) whenever it can, and click is in the
# code package (x-wr-timezone, an ICS calendar dependency, requires it); the function never runs that
# client. Marked absent before httpx is first imported, it is not imported (httpx.main becomes httpx's
# own stub), and every cold start saves the import of click and pygments.
sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]


def handler(event: bytes, context: Any) -> dict[str, Any]:
    """FC passes the event as bytes and a context with request_id, function, region, credentials."""
    from esa_scheduler.invocation.function import handle

    return handle(event, context)


def intake(event: bytes, context: Any) -> dict[str, Any]:
    """FC's HTTP trigger event in, its response struct (``statusCode``, ``headers``, ``body``) out."""
    from esa_scheduler.invocation.intake.app import Intake

    return Intake().handle(event, context)
