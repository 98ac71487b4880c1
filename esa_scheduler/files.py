"""Reading a local file the function was pointed at, with bounded work whatever the path turns out to be.

Operators write the schedule, its ICS files, the state folder and the credentials files, and a
mistake there (a path to ``/dev/zero``, a FIFO that no one writes to, a hold file that is a symlink
to a device, a file of hundreds of megabytes) must not hang the function or exhaust its memory.
Every such read goes through ``read_bounded``: it opens without blocking (a FIFO opens at once
instead of waiting for a writer), accepts only a regular file (after symlinks, on the opened file
itself, so a swap between the check and the read changes nothing), and stops one byte past the
limit whatever size the file claims (``st_size`` is 0 for a device that never ends).
"""

from __future__ import annotations

import os
import stat

from esa_scheduler.errors import UserError

_CHUNK = 1 << 20
_KINDS = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


class FileRefused(UserError):
    """A file that is not a regular file or is over its limit: one line naming it and what to do."""

    def __init__(self, path: str | os.PathLike[str], problem: str, fix: str) -> None:
        self.path = os.fspath(path)
        self.problem = problem
        self.fix = fix
        super().__init__(f"{self.path}: {problem}; {fix}")


def size_text(limit: int) -> str:
    """A byte limit as people read it (``16 MiB``, ``64 KiB``, ``100 bytes``)."""
    for unit, scale in (("MiB", 1 << 20), ("KiB", 1 << 10)):
        if limit >= scale and limit % scale == 0:
            return f"{limit // scale} {unit}"
    return f"{limit} bytes"


def _kind(mode: int) -> str:
    return next((name for test, name in _KINDS if test(mode)), "a special file")


def read_bounded(path: str | os.PathLike[str], limit: int, what: str, fix: str | None = None) -> bytes:
    """The whole content of ``path``, a regular file of at most ``limit`` bytes, else ``FileRefused``.

    ``what`` names the kind of file in the message (``the ICS file limit is 16 MiB``) and ``fix``
    says what to do (by default: use a regular file within the limit). Other failures to open or
    read (missing, permission denied) are the ``OSError`` they are: callers word those already."""
    advice = fix or f"use a regular file of at most {size_text(limit)}"
    mode = os.stat(path).st_mode
    if not stat.S_ISREG(mode):
        # refused before opening it: opening a device can have effects of its own
        raise FileRefused(path, f"{_kind(mode)}, not a regular file", advice)
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | getattr(os, "O_CLOEXEC", 0))
    try:
        opened = os.fstat(fd)
        if not stat.S_ISREG(opened.st_mode):
            raise FileRefused(path, f"{_kind(opened.st_mode)}, not a regular file", advice)
        limit_text = f"the {what} limit is {size_text(limit)}"
        if opened.st_size > limit:
            raise FileRefused(path, f"file too large ({opened.st_size} bytes; {limit_text})", advice)
        data = _read_at_most(fd, limit + 1)
        if len(data) > limit:  # it grew while being read
            raise FileRefused(path, f"file too large (over {limit} bytes; {limit_text})", advice)
        return data
    finally:
        os.close(fd)


def _read_at_most(fd: int, most: int) -> bytes:
    """Up to ``most`` bytes, whatever the file's size claims, in chunks (no buffer of ``most`` up front)."""
    chunks: list[bytes] = []
    total = 0
    while total < most:
        chunk = os.read(fd, min(_CHUNK, most - total))
        if not chunk:
            break
        chunks.append(chunk)
        total += len(chunk)
    return b"".join(chunks)
