"""FC's ``context`` object: its fields read safely (``fc_field``), and a stand-in for it, for
``esa-scheduler invoke`` and tests.

There is no FC runtime shim on PyPI; this is the subset of FC's context the handler reads, as a
pydantic model so that a context file with a typo is refused like any other bad input.
"""

from __future__ import annotations

import uuid
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from esa_scheduler.errors import UserError, first_problem
from esa_scheduler.files import read_bounded
from esa_scheduler.strict_json import MAX_BYTES, loads_strict


def fc_field(context: Any, *path: str) -> Any:
    """``context.a.b`` or ``None``: FC's context differs between runtimes, and tests pass stand-ins."""
    for name in path:
        context = getattr(context, name, None)
    return context


class _Shape(BaseModel):
    """Strict, like an event: ``"timeout": true`` or ``"300"`` is a typo to name, not a number to guess."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, defer_build=True)


class FunctionInfo(_Shape):
    """``context.function``."""

    name: str = "esa-scheduler"
    handler: str = "handler.handler"
    memory: int = Field(default=256, gt=0)
    timeout: float = Field(default=300, gt=0)


class ContextCredentials(_Shape):
    """``context.credentials`` (python3.10 runtimes): the function role's STS credentials."""

    access_key_id: str
    access_key_secret: str = Field(repr=False)
    security_token: str | None = Field(default=None, repr=False)


class FcContext(_Shape):
    """``context`` as FC passes it to ``handler(event, context)``."""

    request_id: str = Field(default_factory=lambda: str(uuid.uuid4()))
    function: FunctionInfo = Field(default_factory=FunctionInfo)
    region: str | None = None
    account_id: str | None = None
    credentials: ContextCredentials | None = None


def load_context(path: str | None) -> FcContext:
    """Read a context JSON file (or make a default one), naming the file and field on error."""
    if path is None:
        return FcContext()
    try:
        raw = loads_strict(read_bounded(path, MAX_BYTES, "context file"), path)
    except OSError as exc:
        raise UserError(f"{path}: cannot read context file: {exc.strerror}") from exc
    try:
        return FcContext.model_validate(raw)
    except ValidationError as exc:
        raise UserError(f"{path}: {first_problem(exc)}") from exc
