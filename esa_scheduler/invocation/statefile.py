"""Small files the function keeps between invocations (under ``ESA_STATE_DIR``), written atomically.

FC may stop an instance at any moment and a state folder may be shared by instances on an OSS
mount: a reader must see the old file or the new one, never half of one.
"""

from __future__ import annotations

import os
import tempfile
from datetime import datetime, timedelta
from pathlib import Path

from pydantic import BaseModel, ConfigDict, ValidationError

from esa_scheduler import config
from esa_scheduler.errors import ConfigError

LAST_RUN_FILE = "last-run.state"
"""Not ``*.json``: the hold store owns every ``*.json`` file of the folder."""
CATCH_UP_LIMIT = timedelta(hours=24)
"""How far back ``transitions`` mode looks for edges after missed invocations."""


def write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same folder and a rename."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}-", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise ConfigError(f"cannot write {path}: {exc.strerror or type(exc).__name__}") from None
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def check_writable(root: Path) -> None:
    """Create ``root`` and write a probe into it: a folder that refuses files must stop a run before it
    changes ESA, not after, when the hold or last-run record it needs cannot be kept."""
    try:
        root.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=root):
            pass
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise ConfigError(
            f"state folder {root} is not writable: {reason} (--state-dir or {config.STATE_DIR})"
        ) from None


class _LastRun(BaseModel):
    model_config = ConfigDict(extra="ignore", defer_build=True)

    at: datetime


def _last_run_file(root: Path, target: str | None) -> Path:
    """One record per fleet target (their runs complete or fail independently), else one."""
    return root / (LAST_RUN_FILE if target is None else f"last-run.{target}.state")


def last_completed_run(root: Path, target: str | None = None) -> datetime | None:
    """The instant of the last run that completed, or ``None`` when none is recorded (or readable).

    An unreadable record must not stop the function: without it, edges are looked for over one
    tick, as before this record existed.
    """
    try:
        record = _LastRun.model_validate_json(_last_run_file(root, target).read_bytes())
    except (OSError, ValidationError, ValueError):
        return None
    return record.at if record.at.tzinfo is not None else None


def record_completed_run(root: Path, at: datetime, target: str | None = None) -> None:
    """Remember ``at`` as the last completed run, never moving the record backwards."""
    last = last_completed_run(root, target)
    if last is not None and last >= at:
        return
    write_atomic(_last_run_file(root, target), _LastRun(at=at).model_dump_json().encode())


def transitions_since(last: datetime | None, at: datetime, tick: timedelta) -> datetime:
    """Where ``transitions`` mode looks for edges: the last completed run, at most a day back;
    one tick back when there is no usable record (first run, or ``at`` before the record)."""
    if last is None or last >= at:
        return at - tick
    return max(last, at - CATCH_UP_LIMIT)
