"""The shapes an event may take (timer, command, CloudEvent) and the ``Intent`` one invocation becomes."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from esa_scheduler.engine.holds import Hold, check_hold_id
from esa_scheduler.engine.schedule.spec import Status
from esa_scheduler.errors import EventError, first_problem
from esa_scheduler.strict_json import loads_strict
from esa_scheduler.timeutil import parse_duration, parse_instant

if TYPE_CHECKING:
    from esa_scheduler.engine.alerts import Alert


class _Model(BaseModel):
    """Strict: a value is taken only in its JSON type. Lax pydantic reads ``"force": "on"``, ``1`` or
    ``"yes"`` as true, so a typo or a hostile sender would bypass the safety limits or turn a run
    into a dry run; a string where a boolean belongs is refused, naming the field."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, defer_build=True)


class Options(_Model):
    """Options a timer's ``payload`` or a command may carry."""

    dry_run: bool = False
    force: bool = False


class TimerEvent(_Model):
    """FC's timer trigger: evaluate the schedule at the trigger time."""

    triggerTime: str
    triggerName: str = ""
    payload: str = ""

    @field_validator("triggerTime")
    @classmethod
    def _instant(cls, value: str) -> str:
        parse_instant(value)
        return value

    def options(self) -> Options:
        """The payload is empty or JSON text with options, read as strictly as the event around it."""
        if not self.payload.strip():
            return Options()
        try:
            return Options.model_validate(loads_strict(self.payload, "timer payload"))
        except ValidationError as exc:
            raise EventError(f"timer payload: {first_problem(exc)}") from exc


class ReconcileCommand(_Model):
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


class HoldCommand(_Model):
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


class ReleaseCommand(_Model):
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


class CloudEvent(BaseModel):
    """A CloudEvents 1.0 envelope (EventBridge adds its own extension attributes)."""

    model_config = ConfigDict(extra="allow", frozen=True, strict=True, defer_build=True)

    specversion: Literal["1.0"]
    id: str = Field(min_length=1)
    source: str = Field(min_length=1)
    type: str = Field(min_length=1)
    subject: str | None = None
    data: Any = None


Command = ReconcileCommand | HoldCommand | ReleaseCommand
COMMANDS: dict[str, type[ReconcileCommand] | type[HoldCommand] | type[ReleaseCommand]] = {
    "reconcile": ReconcileCommand,
    "hold": HoldCommand,
    "release": ReleaseCommand,
}


@dataclass(frozen=True)
class IncidentRelease:
    """A CloudEvent that a rule's ``release_on`` matched: end that rule's hold."""

    hold_id: str


@dataclass(frozen=True)
class Intent:
    """What one invocation asks for, after every event in it was understood."""

    at: datetime
    dry_run: bool = False
    force: bool = False
    new_holds: tuple[Hold, ...] = ()
    release_ids: tuple[str, ...] = ()
    release_tasks: tuple[str, ...] = ()
    sources: tuple[str, ...] = field(default=())
    target: str | None = None
    touched: tuple[str, ...] = ()
    delivery: tuple[str, ...] = ()
    """What identifies the delivered event, whenever it is read (see ``delivery_identity``)."""
    alerts: tuple[Alert, ...] = ()
    """Normalized alerts (EventBridge CloudEvents of alert sources): their holds are decided against the
    store when they are written (``invocation/intake/apply.py``), like the intake's."""
    unstated: tuple[Mapping[str, Any], ...] = ()
    """The ``intake.alert`` lines of alerts without a state (CloudMonitor ``INSUFFICIENT_DATA``)."""
