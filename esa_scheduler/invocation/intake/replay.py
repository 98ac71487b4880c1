"""DingTalk message ids already obeyed, kept two hours, so a captured request sent again does nothing.

DingTalk's signature covers only the timestamp (valid for an hour either way), never the body: a
request seen on the wire could be replayed with the same headers for up to two hours. Each
``msgId`` obeyed is a small file in ``intake/dingtalk-messages/`` of the state folder (the holds own
the top level's ``*.json``), named by a digest of the id, created exclusively so that two instances
receiving the same message at once cannot both obey it. Entries older than the window are removed
as new ones arrive, so the folder holds at most two hours of messages.
"""

from __future__ import annotations

import hashlib
import os
import time
from datetime import datetime, timedelta
from pathlib import Path

from esa_scheduler.errors import ConfigError
from esa_scheduler.invocation.statefile import read_state
from esa_scheduler.timeutil import parse_instant, utc_iso

KEEP = timedelta(hours=2)
FOLDER = Path("intake") / "dingtalk-messages"
RECORD_BYTES = 1024
"""A record is one instant (20 bytes)."""


class ReplayStore:
    """``claim`` a message id once; a second claim within ``KEEP`` is a replay."""

    def __init__(self, root: Path) -> None:
        self.folder = root / FOLDER

    def _seen_at(self, path: Path) -> datetime | None:
        """When the message was obeyed; ``None`` when its file is gone or unreadable. One that is no
        message record at all (a FIFO, a device, a big file) is refused by name (``FileRefused``)."""
        try:
            data = read_state(path, RECORD_BYTES, "message record")
            return None if data is None else parse_instant(data.decode("ascii").strip())
        except (OSError, ValueError, UnicodeDecodeError):
            return None

    def claim(self, message_id: str, now: datetime) -> bool:
        """``True`` the first time ``message_id`` is seen within ``KEEP`` of ``now``, ``False`` for a replay."""
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError(f"cannot write {self.folder}: {exc.strerror or type(exc).__name__}") from None
        self._prune(now)
        path = self.folder / hashlib.sha256(message_id.encode("utf-8", "surrogatepass")).hexdigest()[:40]
        for _ in range(2):
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            except FileExistsError:
                seen = self._seen_at(path)
                # unreadable: another instance is writing it this very moment, so it is a replay all the same
                if seen is None or now - seen < KEEP:
                    return False
                path.unlink(missing_ok=True)  # an entry from before the window: the id may be used again
                continue
            with os.fdopen(fd, "w", encoding="ascii") as handle:
                handle.write(utc_iso(now))
            return True
        return False

    def _prune(self, now: datetime) -> None:
        """Entries past the window go; an unreadable one only once its file is older than the window."""
        for path in self.folder.iterdir():
            seen = self._seen_at(path)
            try:
                stale = (
                    now - seen >= KEEP
                    if seen is not None
                    else time.time() - path.stat().st_mtime >= KEEP.total_seconds()
                )
            except OSError:
                continue
            if stale:
                path.unlink(missing_ok=True)
