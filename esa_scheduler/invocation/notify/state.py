"""What the notifications remember between runs, so that nothing is announced twice.

Small JSON files in a ``notify/`` folder of the state directory (the holds own the top level's
``*.json``), each replaced atomically: the reminders already sent (``reminders.json``, entries
dropped once their transition has passed, so it holds at most the next ``before`` period) and the
holds already announced (``holds.json``, the holds in force at the last announcing run), which
lets a run announce the holds that ``esa-scheduler hold add|release`` changed between runs, and the
last alert each notify entry sent (``alerts.json``), so that a run that stays blocked or failing
does not send the same alert every tick.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError, field_serializer

from esa_scheduler.engine.holds import Hold
from esa_scheduler.errors import UserError
from esa_scheduler.invocation.statefile import read_state, write_atomic
from esa_scheduler.timeutil import utc_iso

FOLDER = "notify"
STATE_FILE_BYTES = 4 * 1024 * 1024
"""Each file holds at most the holds in force or the next ``before`` period's reminders: far less."""


class SentReminders(BaseModel):
    """``reminders.json``: reminder key -> the instant of the transition it announced."""

    model_config = ConfigDict(extra="forbid", defer_build=True)

    version: Literal[1] = 1
    sent: dict[str, datetime] = {}

    @field_serializer("sent")
    def _utc(self, value: dict[str, datetime]) -> dict[str, str]:
        return {key: utc_iso(at) for key, at in sorted(value.items())}


class KnownHolds(BaseModel):
    """``holds.json``: the holds in force when holds were last announced."""

    model_config = ConfigDict(extra="forbid", defer_build=True)

    version: Literal[1] = 1
    holds: tuple[Hold, ...] = ()
    ending: tuple[str, ...] = ()
    """Ids of holds in force that were announced as released (an alert's cooldown is running): only a
    firing that holds them again is news, and their end is announced as expired, not released."""


class SentAlert(BaseModel):
    """The last alert (blocked or failing) a notify entry sent: what it said, and when."""

    model_config = ConfigDict(extra="forbid", defer_build=True)

    fingerprint: str
    sent_at: datetime

    @field_serializer("sent_at")
    def _utc(self, value: datetime) -> str:
        return utc_iso(value)


class LastAlerts(BaseModel):
    """``alerts.json``: notify entry (``name|fleet target`` for an async fan-out's invocation) -> its
    last alert, until a run without failures ends it."""

    model_config = ConfigDict(extra="forbid", defer_build=True)

    version: Literal[1] = 1
    alerts: dict[str, SentAlert] = {}


Record = TypeVar("Record", bound=BaseModel)


class StateFile(Generic[Record]):
    """One file of the ``notify/`` folder, read into and written from its model."""

    def __init__(self, root: Path, name: str, model: type[Record]) -> None:
        self.path = root / FOLDER / name
        self.model: type[Record] = model

    def load(self) -> Record | None:
        """The record, ``None`` when there is none yet; ``ValueError`` when it is unreadable.

        Notifications come after the run has acted, so even a path that is no record at all (a
        FIFO, a device, a file over ``STATE_FILE_BYTES``) is a warning, not a failure of the run:
        its one line says what to do, and the next ``save`` replaces it with a regular file."""
        try:
            data = read_state(self.path, STATE_FILE_BYTES, "notification state file")
            return None if data is None else self.model.model_validate_json(data)
        except UserError as exc:
            raise ValueError(str(exc)) from exc
        except (OSError, ValidationError) as exc:
            raise ValueError(f"{self.path}: unreadable notification state: {str(exc).splitlines()[0]}") from exc

    def save(self, record: Record) -> None:
        """Replace the file atomically."""
        write_atomic(self.path, record.model_dump_json(indent=2).encode())


def reminders_file(root: Path) -> StateFile[SentReminders]:
    """The reminders already sent."""
    return StateFile(root, "reminders.json", SentReminders)


def holds_file(root: Path) -> StateFile[KnownHolds]:
    """The holds already announced."""
    return StateFile(root, "holds.json", KnownHolds)


def alerts_file(root: Path) -> StateFile[LastAlerts]:
    """The last alert of each notify entry."""
    return StateFile(root, "alerts.json", LastAlerts)
