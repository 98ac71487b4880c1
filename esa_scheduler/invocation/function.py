"""One invocation, as FC runs it and as the CLI runs it: event -> intent -> holds -> reconcile.

Everything that can be wrong with the input (schedule, event, configuration, credentials) is
checked before the first hold is written or the first ESA call is made, so a bad invocation
changes nothing. Hold changes are persisted before ESA is called: if ESA is down, the next timer
tick still applies them.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from esa_scheduler import config
from esa_scheduler.engine.schedule.load import load_schedule
from esa_scheduler.engine.schedule.model import Schedule
from esa_scheduler.engine.targets import select_targets
from esa_scheduler.errors import UserError
from esa_scheduler.fc_context import fc_field
from esa_scheduler.invocation.connection import Edge, Target
from esa_scheduler.invocation.events.models import Intent
from esa_scheduler.invocation.events.reader import EventReader
from esa_scheduler.invocation.hold_changes import HoldChanges, apply_hold_changes
from esa_scheduler.invocation.holds import HoldStore, state_dir
from esa_scheduler.invocation.reconciler import AfterReconcile, Reconciler, RunRequest, RunSummary
from esa_scheduler.invocation.statefile import (
    check_writable,
    last_completed_run,
    record_completed_run,
    transitions_since,
)
from esa_scheduler.logs import RunLog
from esa_scheduler.timeutil import now_to_the_second

if TYPE_CHECKING:
    from esa_scheduler.edge.client import EsaClient
    from esa_scheduler.invocation.notify.dispatch import Notifier

__all__ = [
    "HoldChanges",
    "RunFailed",
    "Target",
    "apply_hold_changes",
    "deadline_from",
    "execute",
    "fail_on_error",
    "handle",
]

DEADLINE_RESERVE_MIN = 5.0
DEADLINE_RESERVE_MAX = 30.0


class RunFailed(Exception):
    """Raised after the summary is logged, so FC marks the invocation failed and its retries apply."""

    def __init__(self, summary: RunSummary) -> None:
        reason = summary.blocked or summary.error or f"{summary.counts['failed']} task(s) failed"
        super().__init__(f"esa-scheduler run failed: {reason}")
        self.summary = summary


def deadline_from(context: Any, budget_s: float | None, started: float) -> float | None:
    """Stop starting calls before FC's timeout: keep 10% of it (5 s to 30 s) for in-flight calls."""
    seconds = budget_s if budget_s is not None else fc_field(context, "function", "timeout")
    if not isinstance(seconds, (int, float)) or seconds <= 0:
        return None
    reserve = min(max(seconds * 0.1, DEADLINE_RESERVE_MIN), DEADLINE_RESERVE_MAX)
    return started + max(seconds - reserve, seconds * 0.5)


def fail_on_error(environ: Mapping[str, str] | None = None) -> bool:
    """``ESA_FAIL_ON_ERROR`` (default true) decides whether a failed run raises."""
    raw = (config.env(config.FAIL_ON_ERROR, environ=environ) or "").lower()
    if raw in ("", "1", "true", "yes", "on"):
        return True
    if raw in ("0", "false", "no", "off"):
        return False
    raise UserError(f"{config.FAIL_ON_ERROR}={raw!r} must be true or false")


def execute(
    body: bytes | str | Mapping[str, Any] | list[Any],
    context: Any = None,
    *,
    target: Target | None = None,
    schedule_path: str | None = None,
    state: str | None = None,
    budget_s: float | None = None,
    stream: TextIO | None = None,
    environ: Mapping[str, str] | None = None,
    now: datetime | None = None,
) -> RunSummary:
    """Run one invocation to its summary; raises ``UserError`` (nothing changed) on bad input.

    ``now`` is the clock the event is read and holds are stamped by (default: this second)."""
    started = time.monotonic()
    now = now or now_to_the_second()
    env = environ if environ is not None else os.environ
    log = RunLog(
        fc_request_id=fc_field(context, "request_id"),
        stream=stream,
        level=env.get(config.LOG_LEVEL, "INFO") or "INFO",
    )
    deadline = deadline_from(context, budget_s, started)
    try:
        schedule = load_schedule(schedule_path)
        intent = EventReader(schedule, now).read(body)
        fanout = fleet_fanout(schedule, intent, context, env)
        roles = any(t.role_arn for t in select_targets(schedule.targets, intent.target))
        edge = Edge.resolve(
            target or Target(), context, env, deadline, assume_roles=roles, invoke_self=fanout == "async"
        )
        root = state_dir(state)
        if not intent.dry_run:
            check_writable(root)
    except UserError as exc:
        log.error("run.rejected", error=str(exc), problems=exc.problems)
        raise
    log.info("run.start", at=intent.at, sources=list(intent.sources), dry_run=intent.dry_run, force=intent.force)
    if schedule.targets:
        return _run_fleet(schedule, intent, edge, log, root, fanout, now)
    since = transitions_since(last_completed_run(root), intent.at, schedule.tick)
    changes = apply_hold_changes(intent, HoldStore(root), log, since, schedule=schedule, now=now)
    request = _request(intent, changes, since, deadline)
    notifier = _notifier(schedule, intent, changes, root, env, deadline, log, since)
    summary = asyncio.run(_reconcile(schedule, edge.esa_client(log), log, request, notifier))
    if not (summary.failed or summary.dry_run or edge.override.ephemeral):
        record_completed_run(root, intent.at)
    return summary


def fleet_fanout(schedule: Schedule, intent: Intent, context: Any, environ: Mapping[str, str]) -> str | None:
    """How this invocation runs a fleet: ``inline``, ``async`` (a coordinator on FC), or ``None``
    without targets. A dispatched invocation (its event names one target) always runs inline."""
    if not schedule.targets:
        return None
    from esa_scheduler.invocation.fleet import fanout_mode

    mode = fanout_mode(environ)
    return "async" if mode == "async" and intent.target is None and context is not None else "inline"


def _request(intent: Intent, changes: HoldChanges, since: datetime, deadline: float | None) -> RunRequest:
    return RunRequest(
        at=intent.at,
        holds=changes.current,
        previous_holds=changes.previous,
        touched=changes.touched,
        since=since,
        dry_run=intent.dry_run,
        force=intent.force,
        deadline=deadline,
    )


def _notifier(
    schedule: Schedule,
    intent: Intent,
    changes: HoldChanges,
    root: Path,
    environ: Mapping[str, str],
    deadline: float | None,
    log: RunLog,
    since: datetime,
    *,
    reports_run: bool = True,
) -> Notifier | None:
    """Notifications after the reconcile, only for schedules with ``notify:`` (imported lazily)."""
    if not schedule.notify:
        return None
    from esa_scheduler.invocation.notify.dispatch import Notifier

    return Notifier(
        schedule,
        changes.current,
        changes.previous,
        intent.new_holds,
        changes.released,
        root,
        environ,
        deadline,
        log,
        since=since,
        serves=intent.target,
        reports_run=reports_run,
    )


def _run_fleet(
    schedule: Schedule, intent: Intent, edge: Edge, log: RunLog, root: Path, fanout: str | None, now: datetime
) -> RunSummary:
    """Holds are written once, by this invocation; then every target is reconciled or dispatched."""
    from esa_scheduler.invocation.fleet import FleetRun, dispatch

    targets = select_targets(schedule.targets, intent.target)
    since = {t.name: transitions_since(last_completed_run(root, t.name), intent.at, schedule.tick) for t in targets}
    earliest = min(since.values())
    changes = apply_hold_changes(intent, HoldStore(root), log, earliest, schedule=schedule, now=now)

    # an async coordinator announces the hold changes it wrote; each target invocation reports its run
    notifier = _notifier(
        schedule, intent, changes, root, edge.env, edge.deadline, log, earliest, reports_run=fanout != "async"
    )
    run = FleetRun(schedule, targets, edge, log, root, notifier)
    if fanout == "async":
        return asyncio.run(dispatch(run, intent, changes.touched))
    summary = asyncio.run(run.reconcile(_request(intent, changes, earliest, edge.deadline), since))
    run.record(summary, intent.at)
    return summary


async def _reconcile(
    schedule: Any, client: EsaClient, log: RunLog, request: RunRequest, notifier: AfterReconcile | None = None
) -> RunSummary:
    async with client:
        return await Reconciler(schedule, client, log, after=notifier).run(request)


def handle(event: bytes | str, context: Any = None) -> dict[str, Any]:
    """FC's entry point behaviour: the summary as a dict, or ``RunFailed`` after logging it."""
    strict = fail_on_error()
    summary = execute(event, context)
    if summary.failed and strict:
        raise RunFailed(summary)
    return summary.to_json()
