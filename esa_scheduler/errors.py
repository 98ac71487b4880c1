"""Error types shared by every layer.

A ``UserError`` is a mistake in what the operator gave us (schedule, event, flag, environment):
it carries one line that names the file, field or value, and the CLI turns it into exit code 2
without a traceback. Anything else reaching the top is a bug and is allowed to show its trace.
"""

from __future__ import annotations

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
    return f"{where}: {message}"
