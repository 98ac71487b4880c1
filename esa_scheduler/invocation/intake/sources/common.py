"""What the source parsers share: one-line problems that quote no more than a glimpse of the input,
instants from Unix times or RFC 3339 text, and summaries clipped to what a log line may carry."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from esa_scheduler.engine.alerts import MAX_SUMMARY, Alert
from esa_scheduler.errors import EventError, first_problem
from esa_scheduler.timeutil import MAX_YEAR, MIN_YEAR, UTC, parse_instant

M = TypeVar("M", bound=BaseModel)
_SHOWN = 40
_MS_FROM = 10**11
"""A Unix time at or above this is in milliseconds (10**11 s is in the year 5138)."""
_LAST_SECOND = 253402300799
"""9999-12-31T23:59:59Z: later Unix times are clamped to it (then refused), not left to overflow."""
DIGITS = re.compile(r"[0-9]{1,20}")
"""ASCII digits only: ``str.isdigit`` also takes ``"²"``, which ``int`` refuses."""
_FRACTION = re.compile(r"(\.\d{1,6})\d*")


def shown(value: object) -> str:
    """A value quoted in a problem, cut short: a hostile body must not fill the error line or the log."""
    text = repr(value)
    return text if len(text) <= _SHOWN else text[: _SHOWN - 3] + "..."


def validated(model: type[M], data: Mapping[str, Any]) -> M:
    """``data`` as ``model``, or ``EventError("field: problem")`` (pydantic's message, never the input);
    ``read_alerts`` has checked that it is an object and names where it was."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise EventError(first_problem(exc)) from exc


def unix_instant(value: str | int | None, where: str) -> datetime | None:
    """A Unix time in seconds or in milliseconds (CloudMonitor sends both), as an aware UTC instant."""
    if value is None:
        return None
    text = str(value).strip()
    if not DIGITS.fullmatch(text):
        raise EventError(f"{where}: {shown(value)} is not a Unix time in seconds or milliseconds")
    number = int(text)
    seconds = number / 1000 if number >= _MS_FROM else float(number)
    instant = datetime.fromtimestamp(min(seconds, _LAST_SECOND), UTC)
    if not MIN_YEAR <= instant.year <= MAX_YEAR:
        raise EventError(f"{where}: {shown(value)} is outside the years {MIN_YEAR}-{MAX_YEAR}")
    return instant


def rfc3339_instant(value: str | None, where: str) -> datetime | None:
    """Alertmanager's ``startsAt``/``endsAt`` (nanoseconds allowed); its zero time ``0001-01-01T00:00:00Z``
    means "not set"."""
    if value is None or not value.strip() or value.startswith("0001-"):
        return None
    try:
        return parse_instant(_FRACTION.sub(r"\1", value.strip()))
    except ValueError as exc:
        raise EventError(f"{where}: {shown(value)} is not an RFC 3339 instant") from exc


def summary(*parts: str | None) -> str:
    """The non-empty parts joined, on one line, clipped to what an ``Alert`` keeps."""
    text = " ".join(" ".join(part.split()) for part in parts if part and part.strip())
    return text if len(text) <= MAX_SUMMARY else text[: MAX_SUMMARY - 3] + "..."


def scalar_text(value: Any) -> Any:
    """JSON scalars as the form strings the same source sends over HTTP (``12`` -> ``"12"``); the
    literal ``"null"`` and empty strings as missing. Anything else is left for the model to refuse."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, str) and value.strip() in ("", "null"):
        return None
    return value


def normalized(source: str, *, labels_from: str = "labels", **values: Any) -> Alert:
    """The ``Alert``; a value out of its bounds is one ``EventError`` naming the source's field
    (``labels_from``: what the source calls the labels), never a pydantic traceback."""
    try:
        return Alert.model_validate({"source": source, **values})
    except ValidationError as exc:
        raise EventError(first_problem(exc).replace("labels", labels_from, 1)) from exc
