"""The timer's event, the strict base of every event shape, and the ``Intent`` one invocation becomes.

Commands (``commands``) and CloudEvents (``incidents``) have modules of their own, loaded with the
first such event: a timer tick defines none of their models.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from esa_scheduler.engine.holds import Hold
from esa_scheduler.errors import EventError, first_problem
from esa_scheduler.strict_json import loads_strict
from esa_scheduler.timeutil import parse_instant

if TYPE_CHECKING:
    from esa_scheduler.engine.alerts import Alert


class StrictShape(BaseModel):
    """Strict: a value is taken only in its JSON type. Lax pydantic reads ``"force": "on"``, ``1`` or
    ``"yes"`` as true, so a typo or a hostile sender would bypass the safety limits or turn a run
    into a dry run; a string where a boolean belongs is refused, naming the field."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, defer_build=True)


class Options(StrictShape):
    """Options a timer's ``payload`` or a command may carry."""

    dry_run: bool = False
    force: bool = False


class TimerEvent(StrictShape):
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
