"""After the intake changed holds: one asynchronous reconcile of the scheduler function, asked of FC.

FC answers a sync HTTP invocation and then may freeze the instance, so nothing can run after the
answer: the dispatch happens inside the request. An async ``InvokeFunction`` only queues the event
(FC answers 202 at once), and the whole dispatch is bounded by ``DISPATCH_BUDGET_S``, well inside
the intake's 10 s timeout. The task id (``x-fc-async-task-id``) is derived from the route and the
request body, so a sender's retry of the same callback is refused by FC as a duplicate and the
scheduler reconciles once. A dispatch that fails undoes nothing: the holds are written, and the
scheduler's next timer tick applies them.

The FC client (``edge/fc_invoke.py``, with asyncio, httpx and h11) loads with the first reconcile a
request asks for: an answer that dispatches nothing (a health check, a refusal, an alert that
changes no hold) loads none of it.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from esa_scheduler import config
from esa_scheduler.errors import UserError
from esa_scheduler.fc_context import fc_field
from esa_scheduler.logs import RunLog

DISPATCH_BUDGET_S = 3.0
"""The longest a request waits for FC to queue the reconcile (the intake's timeout is 10 s)."""
Outcome = Literal["dispatched", "already dispatched", "not dispatched", "failed"]
LATER = "the hold changes are saved; the scheduler's next timer tick applies them"


@dataclass(frozen=True)
class Reconcile:
    """The reconcile a request asks for: which holds it touched, and the task id FC de-duplicates by."""

    hold_ids: tuple[str, ...]
    task_id: str

    def event(self) -> bytes:
        """What the scheduler function receives: reconcile now, acting on these holds' tasks."""
        return json.dumps({"action": "reconcile", "touched": list(self.hold_ids)}, separators=(",", ":")).encode()


def reconcile_for(route: str, body: bytes, hold_ids: Sequence[str]) -> Reconcile:
    """The reconcile of one request: a retried callback (the same route and body) gets the same task id."""
    from esa_scheduler.edge.fc_invoke import async_task_id

    digest = hashlib.sha256(body).hexdigest()[:16]
    return Reconcile(tuple(dict.fromkeys(hold_ids)), async_task_id(("intake", route.strip("/"), digest), "scheduler"))


@dataclass(frozen=True)
class Dispatched:
    """How the dispatch went, for the answer (``reconcile``) and the log."""

    outcome: Outcome
    error: str | None = None

    def answer(self) -> dict[str, Any]:
        """The answer's fields: the outcome, and when no reconcile is on its way, what happens instead."""
        fields: dict[str, Any] = {"reconcile": self.outcome}
        if self.outcome in ("not dispatched", "failed"):
            fields["note"] = LATER
        return fields


Dispatcher = Callable[[Reconcile, RunLog], Dispatched]
"""Hands a reconcile over: to FC (``fc_dispatcher``), or to ``serve``'s in-process worker."""


@dataclass(frozen=True)
class SchedulerFunction:
    """The scheduler function as FC's ``InvokeFunction`` addresses it."""

    name: str
    qualifier: str | None

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> SchedulerFunction | None:
        """``ESA_SCHEDULER_FUNCTION`` (and ``ESA_SCHEDULER_QUALIFIER``); ``None`` when unset."""
        from esa_scheduler.edge.fc_invoke import FC_NAME, FC_QUALIFIER

        name = config.env(config.SCHEDULER_FUNCTION, environ=environ)
        if name is None:
            return None
        qualifier = config.env(config.SCHEDULER_QUALIFIER, environ=environ)
        if not FC_NAME.fullmatch(name):
            raise UserError(f"{config.SCHEDULER_FUNCTION}={name!r} is not an FC function name")
        if qualifier is not None and not FC_QUALIFIER.fullmatch(qualifier):
            raise UserError(f"{config.SCHEDULER_QUALIFIER}={qualifier!r} is not an FC version or alias")
        return cls(name, qualifier)


def fc_dispatcher(context: Any, environ: Mapping[str, str]) -> Dispatcher:
    """Dispatch through FC's ``InvokeFunction`` as the intake's own role (the FC context's credentials)."""

    def dispatch(reconcile: Reconcile, log: RunLog) -> Dispatched:
        import asyncio

        from esa_scheduler.edge.fc_invoke import ALREADY_DISPATCHED
        from esa_scheduler.edge.responses import EsaApiError

        try:
            function = SchedulerFunction.from_env(environ)
        except UserError as exc:
            log.error("intake.dispatch_failed", error=str(exc), task_id=reconcile.task_id, note=LATER)
            return Dispatched("failed", str(exc))
        if function is None:
            log.warning("intake.not_dispatched", reason=f"{config.SCHEDULER_FUNCTION} is not set", note=LATER)
            return Dispatched("not dispatched")
        try:
            answer = asyncio.run(
                asyncio.wait_for(_invoke(function, reconcile, context, environ, log), DISPATCH_BUDGET_S)
            )
        except (UserError, EsaApiError, asyncio.TimeoutError, ValueError) as exc:
            error = str(exc) or f"no answer from FC within {DISPATCH_BUDGET_S:g} s"
            log.error("intake.dispatch_failed", error=error, task_id=reconcile.task_id, note=LATER)
            return Dispatched("failed", error)
        duplicate = answer == ALREADY_DISPATCHED
        log.info(
            "intake.dispatched",
            function=function.name,
            task_id=reconcile.task_id,
            touched=list(reconcile.hold_ids),
            duplicate=duplicate,
            invocation_id=None if duplicate else answer,
        )
        return Dispatched("already dispatched" if duplicate else "dispatched")

    return dispatch


async def _invoke(
    function: SchedulerFunction, reconcile: Reconcile, context: Any, environ: Mapping[str, str], log: RunLog
) -> str:
    from esa_scheduler.edge.acs import ClientSettings
    from esa_scheduler.edge.credentials import resolve_credentials
    from esa_scheduler.edge.endpoints import resolve_fc_endpoint
    from esa_scheduler.edge.fc_invoke import FcClient
    from esa_scheduler.invocation.connection import retry_logger

    env = dict(environ)
    region = fc_field(context, "region") or config.env(config.FC_REGION, environ=env) or ""
    account = fc_field(context, "account_id")
    endpoint = resolve_fc_endpoint(env, account_id=None if account is None else str(account), region=str(region))
    credentials = resolve_credentials(fc_context=context, environ=env)
    deadline = time.monotonic() + DISPATCH_BUDGET_S
    async with FcClient(
        endpoint, credentials, ClientSettings.from_env(env), on_retry=retry_logger(log), deadline=deadline
    ) as fc:
        return await fc.invoke_async(function.name, reconcile.event(), reconcile.task_id, function.qualifier)
