"""Incident holds on disk (the ``Hold`` itself is the engine's, ``engine/holds.py``).

One JSON file per hold under the state directory, written atomically (temporary file + rename)
so that a crash or a concurrent FC instance never leaves a half-written hold. Every hold expires:
nothing an operator sets in an incident has to be remembered and undone by hand.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from datetime import datetime, timedelta
from pathlib import Path

from pydantic import ValidationError

from esa_scheduler import config
from esa_scheduler.engine.holds import Hold, check_hold_id
from esa_scheduler.errors import ConfigError, UserError, first_problem
from esa_scheduler.invocation.statefile import write_atomic

PRUNE_AFTER = timedelta(days=1)


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
            except ValidationError as exc:
                raise UserError(f"{path}: unreadable hold file: {first_problem(exc)}") from exc
            except (OSError, ValueError) as exc:
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
