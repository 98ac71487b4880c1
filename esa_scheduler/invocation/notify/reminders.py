"""Which reminders were already sent, so each is announced once however many ticks see it coming.

One small JSON file in a ``notify/`` folder of the state directory (the holds own the top level's
``*.json``), replaced atomically. Entries are
dropped once their transition has passed, so the file holds at most the reminders of the next
``before`` period.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, ValidationError, field_serializer

from esa_scheduler.invocation.statefile import write_atomic
from esa_scheduler.timeutil import utc_iso

FOLDER = "notify"
FILE_NAME = "reminders.json"


class SentReminders(BaseModel):
    """The file: reminder key -> the instant of the transition it announced."""

    model_config = ConfigDict(extra="forbid")

    version: Literal[1] = 1
    sent: dict[str, datetime] = {}

    @field_serializer("sent")
    def _utc(self, value: dict[str, datetime]) -> dict[str, str]:
        return {key: utc_iso(at) for key, at in sorted(value.items())}


class ReminderStore:
    """Load and save ``SentReminders`` under ``root``."""

    def __init__(self, root: Path) -> None:
        self.path = root / FOLDER / FILE_NAME

    def load(self, now: datetime) -> tuple[dict[str, datetime], bool]:
        """Reminders sent for transitions still ahead of ``now``, and whether older ones were dropped
        (then the file is worth rewriting); raises ``ValueError`` if the file is unreadable."""
        if not self.path.exists():
            return {}, False
        try:
            stored = SentReminders.model_validate_json(self.path.read_bytes())
        except (OSError, ValidationError) as exc:
            raise ValueError(f"{self.path}: unreadable reminder state: {str(exc).splitlines()[0]}") from exc
        ahead = {key: at for key, at in stored.sent.items() if at > now}
        return ahead, len(ahead) != len(stored.sent)

    def save(self, sent: dict[str, datetime]) -> None:
        """Replace the file atomically."""
        write_atomic(self.path, SentReminders(sent=sent).model_dump_json(indent=2).encode())
