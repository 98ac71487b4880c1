"""The commands an event may carry (reconcile, hold, release), directly or as a CloudEvent's ``data``.

Loaded with the first command an invocation reads: a timer tick defines none of these models.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from esa_scheduler.engine.holds import check_hold_id
from esa_scheduler.engine.schedule.spec import Status
from esa_scheduler.invocation.events.models import StrictShape
from esa_scheduler.timeutil import parse_duration, parse_instant


class ReconcileCommand(StrictShape):
    """Bring every managed task to its desired state now (or at ``at``)."""

    action: Literal["reconcile"]
    at: str | None = None
    dry_run: bool = False
    force: bool = False
    target: str | None = Field(default=None, min_length=1)
    """One fleet target only (what an ``async`` fan-out dispatches); default: every target."""
    touched: list[str] = Field(default=[])
    """Task selectors, or ids of holds standing for their selectors, whose holds the dispatching event
    made or ended (transitions mode acts on them)."""

    @field_validator("at")
    @classmethod
    def _instant(cls, value: str | None) -> str | None:
        if value is not None:
            parse_instant(value)
        return value


class HoldCommand(StrictShape):
    """Hold tasks in a state until a TTL or an instant: incidents outrank every window."""

    action: Literal["hold"]
    tasks: list[str] = Field(min_length=1)
    status: Status = "offline"
    reason: str = Field(min_length=1)
    ttl: str | None = None
    until: str | None = None
    id: str | None = None
    by: str = ""
    targets: list[str] | None = Field(default=None, min_length=1)
    dry_run: bool = False
    force: bool = False

    @field_validator("ttl")
    @classmethod
    def _ttl(cls, value: str | None) -> str | None:
        if value is not None:
            parse_duration(value)
        return value

    @field_validator("until")
    @classmethod
    def _until(cls, value: str | None) -> str | None:
        if value is not None:
            parse_instant(value)
        return value

    @field_validator("id")
    @classmethod
    def _id(cls, value: str | None) -> str | None:
        return check_hold_id(value) if value is not None else None

    @model_validator(mode="after")
    def _one_expiry(self) -> HoldCommand:
        if (self.ttl is None) == (self.until is None):
            raise ValueError("give exactly one of 'ttl' or 'until' (no hold lasts forever)")
        return self


class ReleaseCommand(StrictShape):
    """End holds early, by id or by the tasks they apply to."""

    action: Literal["release"]
    id: str | None = None
    tasks: list[str] | None = Field(default=None, min_length=1)
    dry_run: bool = False
    force: bool = False

    @field_validator("id")
    @classmethod
    def _id(cls, value: str | None) -> str | None:
        return check_hold_id(value) if value is not None else None

    @model_validator(mode="after")
    def _one_selector(self) -> ReleaseCommand:
        if (self.id is None) == (self.tasks is None):
            raise ValueError("give exactly one of 'id' or 'tasks'")
        return self


Command = ReconcileCommand | HoldCommand | ReleaseCommand
COMMANDS: dict[str, type[ReconcileCommand] | type[HoldCommand] | type[ReleaseCommand]] = {
    "reconcile": ReconcileCommand,
    "hold": HoldCommand,
    "release": ReleaseCommand,
}
