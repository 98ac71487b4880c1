"""How a Function Compute entry point loads its path: as little, and as cheaply, as a cold start allows.

FC imports ``handler.py`` for the scheduler and the intake alike, and each new instance pays for
every module its first event loads, so ``handler.py`` asks this module for its path on first call
(``load_path``) instead of importing it at module level. Foundation: it imports no layer, only the
module it is given by name.
"""

from __future__ import annotations

import gc
import importlib
import sys
import types

# httpx imports its command-line client (click, pygments, rich) whenever it can, and click is in the
# code package (x-wr-timezone, an ICS calendar dependency, requires it); the function never runs that
# client. Marked absent before httpx is first imported, it is not imported (httpx.main becomes httpx's
# own stub), and every cold start saves the import of click and pygments.
sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]

# pydantic looks for plugins (the ``pydantic`` entry-point group) as it builds its first validator:
# it imports importlib.metadata (with zipfile, csv and email) and reads every installed distribution's
# metadata, about 7 ms of each cold start, to find none, since the code package installs no pydantic
# plugin (tests/test_coldstart.py checks its requirements). In place of its loader, this stand-in
# answers "no plugins", as PYDANTIC_DISABLE_PLUGINS=__all__ would make the loader answer (the variable
# alone would not do: the loader imports importlib.metadata before it reads it).
_NO_PLUGINS = types.ModuleType("pydantic.plugin._loader", "No pydantic plugins: see esa_scheduler/entrypoints.py.")
_NO_PLUGINS.get_plugins = tuple  # type: ignore[attr-defined]


def load_path(name: str) -> None:
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
