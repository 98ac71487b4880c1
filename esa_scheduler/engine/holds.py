"""Incident holds: operator- or alarm-made overrides that outrank every window until they expire.

A hold is what the planner weighs against the windows (its selectors, status and bounds), so it lives
in the engine with the schedule; ``invocation/holds.py`` keeps holds on disk. Every hold expires:
nothing an operator sets in an incident has to be remembered and undone by hand.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Annotated, Any

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    Strict,
    field_serializer,
    model_serializer,
)

from esa_scheduler.engine.schedule.spec import Status
from esa_scheduler.engine.selectors import selectors_overlap
from esa_scheduler.timeutil import utc_iso

_SAFE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")
Instant = Annotated[AwareDatetime, Strict()]
"""A hold's bounds as a hold file must write them: an ISO 8601 instant with its offset. A file is not
only ever written by this code (another instance, an older version, a hand), and lax parsing would
take a number as Unix seconds or milliseconds (guessing which) and a wall time without an offset as
a naive instant that fails the first comparison with a traceback."""


class Hold(BaseModel):
    """A stored hold; ``tasks`` are selectors (exact names or globs) over managed tasks."""

    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)

    id: str = Field(pattern=_SAFE_ID.pattern)
    tasks: tuple[str, ...] = Field(min_length=1)
    status: Status
    reason: str = ""
    by: str = ""
    created_at: Instant
    expires_at: Instant
    targets: tuple[str, ...] = ()
    """Target selectors (schedules with ``targets:``); empty: every target."""

    @field_serializer("created_at", "expires_at")
    def _utc(self, value: datetime) -> str:
        return utc_iso(value)

    @model_serializer(mode="wrap")
    def _without_default_targets(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        """A hold for every target is written (and logged) exactly as before targets existed."""
        data: dict[str, Any] = handler(self)
        if not self.targets:
            data.pop("targets", None)
        return data

    def active_at(self, instant: datetime) -> bool:
        """Holds are half-open like windows: [created_at, expires_at)."""
        return self.created_at <= instant < self.expires_at


def new_hold_id() -> str:
    """A short random id an operator can type back in a ``release``."""
    return f"h-{secrets.token_hex(4)}"


def check_hold_id(value: str) -> str:
    """Ids become file names, so only a safe alphabet is accepted (``ValueError`` otherwise)."""
    if not _SAFE_ID.match(value):
        raise ValueError(f"hold id {value!r} is invalid (letters, digits, '.', '_', '-'; at most 128)")
    return value


def hold_id_part(text: str, limit: int) -> str:
    """``text`` (a rule's name) as part of a hold id ``check_hold_id`` accepts: each character outside
    its alphabet becomes ``-``, and at most ``limit`` are kept so the id stays within 128."""
    return _UNSAFE.sub("-", text)[:limit]


def holds_touching(holds: Sequence[Hold], names: Iterable[str]) -> list[Hold]:
    """Holds whose selectors apply to any of ``names`` (what ``release`` by tasks removes)."""
    wanted = list(names)
    return [h for h in holds if any(selectors_overlap(s, n) for s in h.tasks for n in wanted)]
