"""Structured logs: one JSON object per line on stdout, from a logger of our own.

FC's Python runtime decorates every record that reaches the root logger with its own prefix, so
ours does not propagate: each line stays pure JSON that SLS can index field by field. Every line
carries ``ts`` (UTC, ``Z``), ``level``, ``event`` and ``run_id`` (and ``fc_request_id`` on FC).
On a terminal the CLI may ask for short text lines instead (``log_format``); JSON stays the
default everywhere else. Known secret values are masked as a last line of defence, whatever field
they end up in, and ``masked_stdio`` applies the same mask to everything else the CLI prints.
"""

from __future__ import annotations

import copy
import io
import json
import logging
import os
import re
import sys
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any, Literal, TextIO, cast, get_args

from esa_scheduler.timeutil import now_utc, utc_iso

LOGGER_NAME = "esa_scheduler"
MASK = "***"
LogFormat = Literal["auto", "json", "text"]
LOG_FORMATS: tuple[str, ...] = get_args(LogFormat)


class _Secrets:
    """The values to mask. The set is replaced whole, never changed in place: a thread masking a line
    iterates the set it read while another registers a secret (fleet targets assuming their roles in
    parallel, as the emulator runs FC's async invocations, or an FC instance serving concurrent
    requests); changed in place, the masking raised "Set changed size during iteration"."""

    def __init__(self) -> None:
        self.values: frozenset[str] = frozenset()
        self._lock = threading.Lock()

    def add(self, value: str) -> None:
        with self._lock:
            self.values = self.values | {value}

    def discard(self, value: str) -> None:
        with self._lock:
            self.values = self.values - {value}


_secrets = _Secrets()
_settings: dict[str, LogFormat] = {"format": "json"}
_TEXT_HEADER = frozenset({"ts", "level", "event", "run_id", "fc_request_id"})
_TEXT_LEVELS = {"WARNING": "WARN"}
_BARE = re.compile(r"[\w.:/@+*#-]+")


def register_secret(value: str | None) -> None:
    """Remember a value that must never be printed (AccessKey secrets, STS tokens)."""
    if value and len(value) >= 4:
        _secrets.add(value)


def forget_secret(value: str) -> None:
    """Stop masking a value known to be public (the emulator's built-in test key), so that a
    command whose job is to print it can do so even when it was also found in the environment."""
    _secrets.discard(value)


def redact(text: str) -> str:
    """Mask every registered secret in ``text``."""
    for secret in _secrets.values:
        if secret in text:
            text = text.replace(secret, MASK)
    return text


class MaskedStream(io.TextIOBase):
    """A text stream that masks registered secrets in whatever is written through it.

    Text is passed on a complete line at a time, so a secret written in pieces is still seen
    whole; ``flush`` passes on what is left.

    Output nobody can receive is dropped quietly, as a Unix tool's output is: a stream closed
    before the command started (``>&-``: Python gives ``None``) and a pipe whose reader went away
    (``| head``). The command still finishes and exits with its own status, whoever stopped
    reading: a report cut short must not turn into a traceback, nor undo or hide what was done.
    """

    def __init__(self, inner: TextIO | None) -> None:
        super().__init__()
        self._inner = inner
        self._pending = ""

    @property
    def encoding(self) -> str:  # type: ignore[override]
        """The wrapped stream's encoding."""
        return self._inner.encoding if self._inner is not None else "utf-8"

    def writable(self) -> bool:
        """Always: this is an output stream."""
        return True

    def write(self, text: str) -> int:
        """Buffer ``text`` and pass on every complete line, masked."""
        self._pending += text
        if "\n" in self._pending:
            lines, _, self._pending = self._pending.rpartition("\n")
            self._pass_on(lines + "\n")
        return len(text)

    def flush(self) -> None:
        """Pass on the unfinished line, masked, and flush the wrapped stream."""
        text, self._pending = self._pending, ""
        self._pass_on(text, flush=True)

    def _pass_on(self, text: str, *, flush: bool = False) -> None:
        if self._inner is None:
            return
        try:
            if text:
                self._inner.write(redact(text))
            if flush:
                self._inner.flush()
        except BrokenPipeError:
            self._reader_gone(self._inner)

    def _reader_gone(self, inner: TextIO) -> None:
        """Nothing more is passed on, and the wrapped stream's descriptor becomes ``/dev/null``: what
        its buffer still holds goes there when the interpreter flushes it at exit, instead of failing
        again on stderr."""
        self._inner = None
        try:
            null = os.open(os.devnull, os.O_WRONLY)
            os.dup2(null, inner.fileno())
            os.close(null)
        except (OSError, ValueError):  # a stream without a descriptor keeps nothing for the exit
            pass

    def isatty(self) -> bool:
        """Whether the wrapped stream is a terminal (``--log-format auto`` asks)."""
        return self._inner is not None and self._inner.isatty()

    def fileno(self) -> int:
        """The wrapped stream's descriptor."""
        if self._inner is None:
            raise io.UnsupportedOperation("the stream is closed")
        return self._inner.fileno()


@contextmanager
def masked_stdio() -> Iterator[None]:
    """Route ``sys.stdout`` and ``sys.stderr`` through ``MaskedStream`` while the block runs.

    One mechanism for every CLI output (tables, JSON summaries, error lines, log lines,
    tracebacks), rather than a ``redact`` call at each ``print``.
    """
    saved = sys.stdout, sys.stderr
    masked = MaskedStream(saved[0]), MaskedStream(saved[1])
    sys.stdout, sys.stderr = cast(TextIO, masked[0]), cast(TextIO, masked[1])
    try:
        yield
    finally:
        sys.stdout, sys.stderr = saved
        for stream in masked:
            stream.flush()


@contextmanager
def log_format(choice: LogFormat) -> Iterator[None]:
    """Every ``RunLog`` made inside the block writes ``choice`` lines; outside (FC) it is JSON.

    ``auto`` means text when the log's stream is a terminal and JSON lines otherwise.
    """
    saved = _settings["format"]
    _settings["format"] = choice
    try:
        yield
    finally:
        _settings["format"] = saved


def _json_default(value: object) -> str:
    """Instants are written as UTC with ``Z``; anything else unknown as its ``str``."""
    if isinstance(value, datetime) and value.tzinfo is not None:
        return utc_iso(value)
    return str(value)


def _iso_ms(instant: datetime) -> str:
    return instant.strftime("%Y-%m-%dT%H:%M:%S.") + f"{instant.microsecond // 1000:03d}Z"


def _json_line(fields: dict[str, Any]) -> str:
    return json.dumps(fields, default=_json_default, ensure_ascii=False)


def _text_value(value: object) -> str:
    """A bare word when that is unambiguous, else compact JSON with nothing a terminal would act on."""
    if isinstance(value, datetime):
        value = _json_default(value)
    if isinstance(value, str) and _BARE.fullmatch(value):
        return value
    return terminal_safe(json.dumps(value, default=_json_default, ensure_ascii=False, separators=(",", ":")))


def terminal_safe(text: str) -> str:
    """``text`` with every unprintable character (escape sequences, line breaks) as ``\\uXXXX``:
    a server or a file can put anything in a task name, and a terminal must not act on it."""
    return "".join(c if c.isprintable() else f"\\u{ord(c):04x}" for c in text)


def _text_line(fields: dict[str, Any]) -> str | None:
    """``12:01:02Z WARN  api.retry action=... error="..."``: UTC time, level, event, set fields.

    ``None`` (nothing written) for a task left unchanged: a terminal shows what happened, and the
    run's table lists every task anyway. JSON lines keep every decision."""
    if fields.get("event") == "task.result" and fields.get("action") == "unchanged":
        return None
    level = str(fields.get("level", ""))
    clock = str(fields.get("ts", ""))[11:19] + "Z"
    head = [clock, f"{_TEXT_LEVELS.get(level, level):<5}", str(fields.get("event", ""))]
    rest = [
        f"{key}={_text_value(value)}"
        for key, value in fields.items()
        if key not in _TEXT_HEADER and value is not None and value not in ("", [], {})
    ]
    return " ".join(head + rest)


class _Lines(logging.Handler):
    """Writes to the *current* ``sys.stdout`` (or a given stream), one rendered line per record."""

    def __init__(self, stream: TextIO | None, render: Callable[[dict[str, Any]], str | None]) -> None:
        super().__init__()
        self.stream = stream
        self.render = render

    def emit(self, record: logging.LogRecord) -> None:
        rendered = self.render(getattr(record, "fields", {}))
        if rendered is None:
            return
        line = redact(rendered)
        stream = self.stream or sys.stdout
        stream.write(line + "\n")
        stream.flush()


def _renderer(stream: TextIO | None) -> Callable[[dict[str, Any]], str | None]:
    choice = _settings["format"]
    if choice == "auto":
        target = stream or sys.stdout
        choice = "text" if target.isatty() else "json"
    return _text_line if choice == "text" else _json_line


def _logger(stream: TextIO | None) -> logging.Logger:
    logger = logging.getLogger(LOGGER_NAME)
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
    logger.addHandler(_Lines(stream, _renderer(stream)))
    return logger


class RunLog:
    """The log of one run: every line shares the run's correlation ids."""

    def __init__(
        self,
        run_id: str | None = None,
        fc_request_id: str | None = None,
        stream: TextIO | None = None,
        level: str = "INFO",
    ) -> None:
        self.run_id = run_id or uuid.uuid4().hex[:16]
        self.fc_request_id = fc_request_id
        self._logger = _logger(stream)
        self._threshold = logging.getLevelName(level.upper())
        if not isinstance(self._threshold, int):
            self._threshold = logging.INFO
        self._context: dict[str, Any] = {}

    def bound(self, **context: Any) -> RunLog:
        """The same run's log with fields on every line (``target`` in a fleet run)."""
        child = copy.copy(self)
        child._context = {**self._context, **context}
        return child

    def _emit(self, level: int, event: str, fields: dict[str, Any]) -> None:
        if level < self._threshold:
            return
        line: dict[str, Any] = {
            "ts": _iso_ms(now_utc()),
            "level": logging.getLevelName(level),
            "event": event,
            "run_id": self.run_id,
        }
        if self.fc_request_id:
            line["fc_request_id"] = self.fc_request_id
        line.update(self._context)
        line.update(fields)
        self._logger.log(level, event, extra={"fields": line})

    def debug(self, event: str, **fields: Any) -> None:
        """Detail an operator rarely needs (``ESA_LOG_LEVEL=DEBUG``)."""
        self._emit(logging.DEBUG, event, fields)

    def info(self, event: str, **fields: Any) -> None:
        """A decision or result."""
        self._emit(logging.INFO, event, fields)

    def warning(self, event: str, **fields: Any) -> None:
        """Something an operator should look at, that did not fail the run."""
        self._emit(logging.WARNING, event, fields)

    def error(self, event: str, **fields: Any) -> None:
        """Something that failed the run."""
        self._emit(logging.ERROR, event, fields)
