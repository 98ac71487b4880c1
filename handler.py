"""Function Compute entry points; all logic lives in ``esa_scheduler``.

``handler.handler`` is the scheduler (timer, commands, CloudEvents); ``handler.intake`` is the
incident intake behind an HTTP trigger, deployed as a second function from the same code package.
FC imports this module for either function, so each entry point loads its own path when first
called (``esa_scheduler.entrypoints``): the intake's cold start does not load the scheduler's event
reader, planner and reconciler, nor the scheduler's the intake's routes.
"""

from __future__ import annotations

from typing import Any

from esa_scheduler.entrypoints import load_path


def handler(event: bytes, context: Any) -> dict[str, Any]:
    """FC passes the event as bytes and a context with request_id, function, region, credentials."""
    load_path("esa_scheduler.invocation.function")
    from esa_scheduler.invocation.function import handle

    return handle(event, context)


def intake(event: bytes, context: Any) -> dict[str, Any]:
    """FC's HTTP trigger event in, its response struct (``statusCode``, ``headers``, ``body``) out."""
    load_path("esa_scheduler.invocation.intake.app")
    from esa_scheduler.invocation.intake.app import Intake

    return Intake().handle(event, context)
