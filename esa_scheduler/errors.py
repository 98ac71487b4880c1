"""Error types shared by every layer.

A ``UserError`` is a mistake in what the operator gave us (schedule, event, flag, environment):
it carries one line that names the file, field or value, and the CLI turns it into exit code 2
without a traceback. Anything else reaching the top is a bug and is allowed to show its trace.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pydantic import ValidationError


class UserError(Exception):
    """Bad input from the operator: one clear line, exit code 2, nothing changed in ESA."""

    exit_code = 2

    def __init__(self, message: str, problems: list[str] | None = None) -> None:
        message = _one_line(message)
        super().__init__(message)
        self.problems = [_one_line(p) for p in problems] if problems is not None else [message]


def _one_line(text: str) -> str:
    """Values quoted from input may hold line breaks; a problem is always exactly one line."""
    return text.replace("\r", "\\r").replace("\n", "\\n")


class ScheduleError(UserError):
    """The schedule files are invalid; ``problems`` holds one line per problem."""


class EventError(UserError):
    """An incoming event is malformed or matches nothing."""


class ConfigError(UserError):
    """Environment, credentials or CLI configuration is unusable."""


def first_problem(exc: ValidationError) -> str:
    """``field.path: what is wrong`` for the first error of a pydantic validation."""
    err = exc.errors()[0]
    where = ".".join(str(p) for p in err["loc"]) or "(top level)"
    message = str(err["msg"]).removeprefix("Value error, ")
    if err["type"] == "extra_forbidden":
        message = "unknown field"
    elif err["type"] in ("bool_type", "bool_parsing"):
        message = f"expected true or false (a JSON boolean), got {_scalar(err.get('input'))}"
    return f"{where}: {message}"


def _scalar(value: object) -> str:
    """A refused value as JSON writes it (``"on"``, ``1``), short; a list or an object by its kind only."""
    if isinstance(value, (dict, list, tuple)):
        return "an object" if isinstance(value, dict) else "a list"
    try:
        shown = json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        shown = repr(value)
    return shown if len(shown) <= 40 else shown[:39] + "…"


def close_matches(value: str, known: Iterable[str], *, n: int = 5, cutoff: float = 0.5) -> list[str]:
    """The known values that look like ``value`` (case aside), closest first: a typo is shown its fix."""
    import difflib  # only a mistake needs it: the timer path does not pay for its import

    by_case = {k.upper(): k for k in known}
    return [by_case[c] for c in difflib.get_close_matches(value.upper(), list(by_case), n=n, cutoff=cutoff)]


def close_hint(matches: Sequence[str]) -> str:
    """`` (close matches: a, b)`` to end a problem line, or nothing when nothing looks close."""
    return f" (close matches: {', '.join(dict.fromkeys(matches))})" if matches else ""
