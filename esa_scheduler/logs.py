"""Structured logs: one JSON object per line on stdout, from a logger of our own.

FC's Python runtime decorates every record that reaches the root logger with its own prefix, so
ours does not propagate: each line stays pure JSON that SLS can index field by field. Every line
carries ``ts`` (UTC, ``Z``), ``level``, ``event`` and ``run_id`` (and ``fc_request_id`` on FC).
Known secret values are masked as a last line of defence, whatever field they end up in.
"""

from __future__ import annotations

import json
import logging
import sys
import uuid
from datetime import datetime
from typing import Any, TextIO

from esa_scheduler.timeutil import now_utc, utc_iso

LOGGER_NAME = "esa_scheduler"
MASK = "***"
_secrets: set[str] = set()


def register_secret(value: str | None) -> None:
    """Remember a value that must never be printed (AccessKey secrets, STS tokens)."""
    if value and len(value) >= 4:
        _secrets.add(value)


def redact(text: str) -> str:
    """Mask every registered secret in ``text``."""
    for secret in _secrets:
        if secret in text:
            text = text.replace(secret, MASK)
    return text


def _json_default(value: object) -> str:
    """Instants are written as UTC with ``Z``; anything else unknown as its ``str``."""
    if isinstance(value, datetime) and value.tzinfo is not None:
        return utc_iso(value)
    return str(value)


def _iso_ms(instant: datetime) -> str:
    return instant.strftime("%Y-%m-%dT%H:%M:%S.") + f"{instant.microsecond // 1000:03d}Z"


class _JsonLines(logging.Handler):
    """Writes to the *current* ``sys.stdout`` (or a given stream), one JSON object per record."""

    def __init__(self, stream: TextIO | None = None) -> None:
        super().__init__()
        self.stream = stream

    def emit(self, record: logging.LogRecord) -> None:
        line = redact(json.dumps(getattr(record, "fields", {}), default=_json_default, ensure_ascii=False))
        stream = self.stream or sys.stdout
        stream.write(line + "\n")
        stream.flush()


def _logger(stream: TextIO | None) -> logging.Logger:
    logger = logging.getLogger(LOGGER_NAME)
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
    logger.addHandler(_JsonLines(stream))
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
