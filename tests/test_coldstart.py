"""The timer's cold start: what ``import handler`` and one timer event load and build.

A new Function Compute instance imports ``handler`` and serves its first event before it answers;
every module on that path and every pydantic model built on it is paid again by each cold start
(``make bench`` measures it against the official SDK's import: bench/coldstart_bench.py).
"""

from __future__ import annotations

import importlib
import pkgutil

from pydantic import BaseModel

import esa_scheduler


def _models() -> list[type[BaseModel]]:
    """Every pydantic model the package defines (``__main__`` would run the CLI, so it is skipped)."""
    for module in pkgutil.walk_packages(esa_scheduler.__path__, "esa_scheduler."):
        if not module.name.endswith("__main__"):
            importlib.import_module(module.name)
    found, pending = [], list(BaseModel.__subclasses__())
    while pending:
        model = pending.pop()
        pending.extend(model.__subclasses__())
        if model.__module__.startswith("esa_scheduler."):
            found.append(model)
    return found


def test_every_model_is_built_when_first_used_not_when_imported() -> None:
    """A model's validator is built by its first validation (``defer_build``), so a model the timer
    path imports but a timer event never validates (a command event, the aliyun CLI's config file,
    the notify state) costs the cold start nothing."""
    models = _models()
    eager = sorted(f"{m.__module__}.{m.__qualname__}" for m in models if not m.model_config.get("defer_build"))
    assert len(models) > 30  # the walk found the package's models
    assert not eager, f"add defer_build=True to their model_config: {eager}"
