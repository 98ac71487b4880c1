"""What every route of the intake is given and gives back, and the refusals they share.

A route (``alerts``, ``dingtalk``) takes a ``Call`` (the request, the schedule, the state folder, the
instant, the log) and returns an ``Answer`` or raises ``HttpProblem``; ``app`` routes the request and
dispatches the reconcile an answer asks for.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from esa_scheduler import config
from esa_scheduler.engine.schedule.model import Schedule
from esa_scheduler.invocation.intake.http import HttpProblem, Request
from esa_scheduler.logs import RunLog, register_secret


def unauthorized() -> HttpProblem:
    """A missing or wrong token, a bad signature or timestamp: the same answer, whatever was wrong."""
    return HttpProblem(401, "unauthorized", "unauthorized", {"WWW-Authenticate": 'Bearer realm="esa-scheduler"'})


def disabled(what: str) -> HttpProblem:
    """A route whose configuration or secret is missing does nothing: closed by default."""
    return HttpProblem(503, f"this route is not enabled ({what})", "disabled")


@dataclass
class Answer:
    """A route's answer before the reconcile is dispatched: status, JSON payload, holds to reconcile."""

    status: int
    payload: dict[str, Any]
    touched: list[str] = field(default_factory=list)
    logged: dict[str, Any] = field(default_factory=dict)
    """What ``intake.accepted`` says about the request besides its route."""
    rejected: str | None = None
    """A request answered 200 that did nothing (a replayed message): logged as ``intake.rejected``."""


@dataclass(frozen=True)
class Call:
    """Everything a route needs: the request, the schedule, the state folder, the instant, the log."""

    request: Request
    schedule: Schedule
    state: Path
    now: datetime
    environ: Mapping[str, str]
    log: RunLog

    def secret(self, variable: str) -> str:
        """The value of the variable the schedule names; 503 when it is unset or empty."""
        value = config.env(variable, environ=self.environ)
        if value is None:
            raise disabled(f"{variable} is not set")
        register_secret(value)
        return value
