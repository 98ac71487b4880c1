"""Small files the function keeps between invocations (under ``ESA_STATE_DIR``), written atomically,
read with a small size limit, and changed by one writer at a time.

FC may stop an instance at any moment and a state folder may be shared by instances on an OSS
mount: a reader must see the old file or the new one, never half of one, which the rename of a
complete temporary file guarantees on any file system. Writers that read, decide and write (a
``hold add`` next to a ``hold release``) also take ``folder_lock``, an advisory ``flock`` on a file
of the folder: it orders the processes of one host (the CLI, a local ``serve``), not FC instances
that share a NAS or OSS mount, whose locks do not reach each other.
"""

from __future__ import annotations

import fcntl
import os
import shlex
import stat
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path

from pydantic import BaseModel, ConfigDict, ValidationError

from esa_scheduler import config
from esa_scheduler.errors import ConfigError
from esa_scheduler.files import read_bounded

LAST_RUN_FILE = "last-run.state"
"""Not ``*.json``: the hold store owns every ``*.json`` file of the folder."""
LAST_RUN_BYTES = 64 * 1024
"""A last-run record is a few dozen bytes; anything near this is not one."""
CATCH_UP_LIMIT = timedelta(hours=24)
"""How far back ``transitions`` mode looks for edges after missed invocations."""
LOCK_FILE = ".writer.lock"
"""Neither ``*.json`` nor ``*.state``: no reader of the folder mistakes it for a record."""
LOCK_WAIT_S = 30.0
"""A writer holds the lock for the few milliseconds of a read and a rename; waiting longer than
this means the holder is stuck, and saying so beats hanging until FC's timeout."""


def removal_hint(path: Path) -> str:
    """What an operator types to get rid of a state file the function refuses (no flag of ours can:
    reading the folder is what fails)."""
    return f"remove it with: rm {shlex.quote(str(path))}"


def read_state(path: Path, limit: int, what: str) -> bytes | None:
    """A state file's bytes, ``None`` when there is none; ``FileRefused`` (one line, exit 2) for a
    FIFO, a device, a directory or a file over ``limit``, with the command that removes it."""
    try:
        return read_bounded(path, limit, what, removal_hint(path))
    except FileNotFoundError:
        return None


_held = threading.local()
"""The folders this thread holds the lock of, with how deep: a writer that calls another writer
(``apply_hold_changes`` saving through ``HoldStore.save``) takes the lock once."""


@contextmanager
def folder_lock(root: Path) -> Iterator[None]:
    """Hold the writers' lock of the state folder ``root`` (re-entrant within a thread)."""
    depth: dict[Path, int] = _held.__dict__.setdefault("depth", {})
    key = root.resolve()  # one folder however it is named (relative, through a symlink)
    if depth.get(key):
        depth[key] += 1
        try:
            yield
        finally:
            depth[key] -= 1
        return
    fd = _lock(root)
    depth[key] = 1
    try:
        yield
    finally:
        del depth[key]
        os.close(fd)  # closing the last descriptor releases the flock


def _lock(root: Path) -> int:
    path = root / LOCK_FILE
    try:
        root.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, 0o600)
    except OSError as exc:
        raise ConfigError(f"cannot lock state folder {root}: {exc.strerror or type(exc).__name__}") from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise ConfigError(f"{path}: not a regular file, so it cannot lock the state folder; {removal_hint(path)}")
    deadline, pause = time.monotonic() + LOCK_WAIT_S, 0.002
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return fd
        except BlockingIOError:
            if time.monotonic() >= deadline:
                os.close(fd)
                raise ConfigError(
                    f"state folder {root}: another writer has held {path} for over {LOCK_WAIT_S:g} s; "
                    "try again once it has finished"
                ) from None
            time.sleep(pause)
            pause = min(pause * 2, 0.05)


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
    tick, as before this record existed. A path that holds no record at all (a FIFO, a device, a
    file over ``LAST_RUN_BYTES``) is refused like every other such state file (``FileRefused``).
    """
    try:
        data = read_state(_last_run_file(root, target), LAST_RUN_BYTES, "last-run record")
        if data is None:
            return None
        record = _LastRun.model_validate_json(data)
    except (OSError, ValidationError, ValueError):
        return None
    return record.at if record.at.tzinfo is not None else None


def record_completed_run(root: Path, at: datetime, target: str | None = None) -> None:
    """Remember ``at`` as the last completed run, never moving the record backwards (under the
    writers' lock: two runs finishing together must not put the older instant last)."""
    with folder_lock(root):
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
