"""Incident holds on disk (the ``Hold`` itself is the engine's, ``engine/holds.py``).

One JSON file per hold under the state directory, written atomically (temporary file + rename)
so that a crash or a concurrent FC instance never leaves a half-written hold. Every write goes
through ``HoldStore`` under the folder's writers' lock (``statefile.folder_lock``), so whoever adds
holds (``hold add``, an event, an incident) cannot lose a release running next to it. Every hold
expires: nothing an operator sets in an incident has to be remembered and undone by hand.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path

from pydantic import ValidationError

from esa_scheduler import config
from esa_scheduler.engine.holds import Hold, check_hold_id
from esa_scheduler.errors import ConfigError, UserError, first_problem
from esa_scheduler.invocation.statefile import folder_lock, read_state, removal_hint, write_atomic

PRUNE_AFTER = timedelta(days=1)
HOLD_FILE_BYTES = 1024 * 1024
"""A hold comes from an event of at most 256 KiB, which the stored JSON at most triples."""


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

    @contextmanager
    def writing(self) -> Iterator[None]:
        """The folder's writers' lock, for a read-decide-write sequence (re-entrant: ``save`` and
        ``remove`` inside it do not take it again)."""
        with folder_lock(self.root):
            yield

    def active(self, at: datetime, prune: bool = True) -> list[Hold]:
        """Holds still in force at ``at`` (or starting later), oldest first.

        Pruning deletes only holds that ended over a day before ``at``: a hold that ended a moment
        ago must still be readable by the tick that turns its end into a transition. A file that
        vanished between the listing and its reading was released meanwhile; one that cannot be
        read stops the caller (fail closed: it may be an incident hold).
        """
        if not self.root.is_dir():
            return []
        holds = []
        for path in sorted(self.root.glob("*.json")):
            hold = _read(path)
            if hold is None:
                continue
            if hold.expires_at <= at:
                if prune and hold.expires_at <= at - PRUNE_AFTER:
                    with self.writing():
                        path.unlink(missing_ok=True)
                continue
            holds.append(hold)
        return sorted(holds, key=lambda h: (h.created_at, h.id))

    def save(self, hold: Hold) -> None:
        """Write atomically: readers see the old file or the new one, never a partial one."""
        data = json.dumps(hold.model_dump(mode="json"), indent=2, sort_keys=True).encode()
        with self.writing():
            write_atomic(self._path(hold.id), data)

    def remove(self, hold_ids: Iterable[str]) -> list[str]:
        """Delete holds by id; returns the ids that existed."""
        removed: list[str] = []
        wanted = list(hold_ids)
        if not wanted:  # nothing to write: the folder (and its lock file) stays as it is
            return removed
        with self.writing():
            for hold_id in wanted:
                try:
                    self._path(hold_id).unlink()
                except FileNotFoundError:
                    continue
                removed.append(hold_id)
        return removed


def _read(path: Path) -> Hold | None:
    """One hold file, ``None`` if it is gone; any other failure is one line naming the file and the
    command that removes it."""
    try:
        data = read_state(path, HOLD_FILE_BYTES, "hold file")
        return None if data is None else Hold.model_validate_json(data)
    except ValidationError as exc:
        reason = first_problem(exc)
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
    raise UserError(f"{path}: unreadable hold file: {reason}; runs stop until it is fixed or {removal_hint(path)}")
