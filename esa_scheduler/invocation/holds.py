"""Incident holds: operator- or alarm-made overrides that outrank every window until they expire.

One JSON file per hold under the state directory, written atomically (temporary file + rename)
so that a crash or a concurrent FC instance never leaves a half-written hold. Every hold expires:
nothing an operator sets in an incident has to be remembered and undone by hand.
"""

from __future__ import annotations

import json
import os
import re
import secrets
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    ValidationError,
    field_serializer,
    model_serializer,
)

from esa_scheduler import config
from esa_scheduler.engine.schedule.spec import Status
from esa_scheduler.engine.selectors import selector_matches
from esa_scheduler.errors import ConfigError, UserError
from esa_scheduler.invocation.statefile import write_atomic
from esa_scheduler.timeutil import utc_iso

PRUNE_AFTER = timedelta(days=1)
_SAFE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


class Hold(BaseModel):
    """A stored hold; ``tasks`` are selectors (exact names or globs) over managed tasks."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=_SAFE_ID.pattern)
    tasks: tuple[str, ...] = Field(min_length=1)
    status: Status
    reason: str = ""
    by: str = ""
    created_at: datetime
    expires_at: datetime
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


def state_dir(explicit: str | os.PathLike[str] | None = None) -> Path:
    """``--state-dir``, else ``ESA_STATE_DIR``, else ``.esa-scheduler/`` in the working directory.

    A path through a file is refused here, before anything is read or changed: found only when
    a hold or the last-run record is written, it would fail a run that has already acted.
    """
    if explicit is not None:
        root = Path(explicit)
    else:
        root = Path(config.env(config.STATE_DIR, config.DEFAULT_STATE_DIR) or config.DEFAULT_STATE_DIR)
    existing = next((path for path in (root, *root.parents) if path.exists()), None)
    if existing is not None and not existing.is_dir():
        raise ConfigError(f"state folder {root} is unusable: {existing} is a file (--state-dir or {config.STATE_DIR})")
    return root


class HoldStore:
    """Holds on disk; reads skip (and prune) expired ones so the folder cannot grow without bound."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, hold_id: str) -> Path:
        try:
            return self.root / f"{check_hold_id(hold_id)}.json"
        except ValueError as exc:
            raise UserError(str(exc)) from exc

    def active(self, at: datetime, prune: bool = True) -> list[Hold]:
        """Holds still in force at ``at`` (or starting later), oldest first.

        Pruning deletes only holds that ended over a day before ``at``: a hold that ended a moment
        ago must still be readable by the tick that turns its end into a transition.
        """
        if not self.root.is_dir():
            return []
        holds = []
        for path in sorted(self.root.glob("*.json")):
            try:
                hold = Hold.model_validate_json(path.read_bytes())
            except (OSError, ValidationError, ValueError) as exc:
                first = str(exc).splitlines()[0]
                raise UserError(f"{path}: unreadable hold file: {first}") from exc
            if hold.expires_at <= at:
                if prune and hold.expires_at <= at - PRUNE_AFTER:
                    path.unlink(missing_ok=True)
                continue
            holds.append(hold)
        return sorted(holds, key=lambda h: (h.created_at, h.id))

    def save(self, hold: Hold) -> None:
        """Write atomically: readers see the old file or the new one, never a partial one."""
        data = json.dumps(hold.model_dump(mode="json"), indent=2, sort_keys=True).encode()
        write_atomic(self._path(hold.id), data)

    def remove(self, hold_ids: Iterable[str]) -> list[str]:
        """Delete holds by id; returns the ids that existed."""
        removed = []
        for hold_id in hold_ids:
            path = self._path(hold_id)
            if path.exists():
                path.unlink()
                removed.append(hold_id)
        return removed


def holds_touching(holds: Sequence[Hold], names: Iterable[str]) -> list[Hold]:
    """Holds whose selectors apply to any of ``names`` (what ``release`` by tasks removes)."""
    wanted = list(names)
    return [h for h in holds if any(selector_matches(s, n) or selector_matches(n, s) for s in h.tasks for n in wanted)]
