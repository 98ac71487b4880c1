"""Function Compute entry points; all logic lives in ``esa_scheduler``.

``handler.handler`` is the scheduler (timer, commands, CloudEvents); ``handler.intake`` is the
incident intake behind an HTTP trigger, deployed as a second function from the same code package.
FC imports this module for either function, so each entry point imports its own path when first
called: the intake's cold start does not load the scheduler's event reader, planner and reconciler,
nor the scheduler's the intake's routes.
"""

from __future__ import annotations

import gc
import importlib
import sys
import types
from typing import Any

# httpx imports its command-line client (click, pygments, rich) whenever it can, and click is in the
# code package (x-wr-timezone, an ICS calendar dependency, requires it); the function never runs that
# client. Marked absent before httpx is first imported, it is not imported (httpx.main becomes httpx's
# own stub), and every cold start saves the import of click and pygments.
sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]

# pydantic looks for plugins (the ``pydantic`` entry-point group) as it builds its first validator:
# it imports importlib.metadata (with zipfile, csv and email) and reads every installed distribution's
# metadata, about 7 ms of each cold start, to find none, since the code package installs no pydantic
# plugin (tests/test_coldstart.py checks its requirements). In place of its loader, this stand-in
# answers "no plugins", as PYDANTIC_DISABLE_PLUGINS=__all__ would make the loader answer; each entry
# point puts it in place before its path loads.
_NO_PLUGINS = types.ModuleType("pydantic.plugin._loader", "No pydantic plugins: see handler.py.")
_NO_PLUGINS.get_plugins = tuple  # type: ignore[attr-defined]


def _first_load(name: str) -> None:
    """Import an entry point's path once, with the cyclic garbage collector paused and its work frozen.

    The import creates some 50,000 objects (modules, classes, functions, pydantic's field infos) that
    live as long as the process: a collection during it finds next to nothing to free, and every
    later full collection would walk them all again. Frozen (``gc.freeze``), they are left out of
    every collection, which spares a cold start some 4 ms; the few hundred unreachable objects the
    import leaves (about 0.2 MB) are kept instead of freed.
    """
    if name in sys.modules:
        return
    sys.modules.setdefault(_NO_PLUGINS.__name__, _NO_PLUGINS)
    collecting = gc.isenabled()
    gc.disable()
    try:
        importlib.import_module(name)
    finally:
        if collecting:
            gc.freeze()
            gc.enable()


def handler(event: bytes, context: Any) -> dict[str, Any]:
    """FC passes the event as bytes and a context with request_id, function, region, credentials."""
    _first_load("esa_scheduler.invocation.function")
    from esa_scheduler.invocation.function import handle

    return handle(event, context)


def intake(event: bytes, context: Any) -> dict[str, Any]:
    """FC's HTTP trigger event in, its response struct (``statusCode``, ``headers``, ``body``) out."""
    _first_load("esa_scheduler.invocation.intake.app")
    from esa_scheduler.invocation.intake.app import Intake

    return Intake().handle(event, context)
