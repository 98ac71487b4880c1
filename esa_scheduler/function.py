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
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple, TextIO

from esa_scheduler import config
from esa_scheduler.client import ClientSettings, EsaApiError, EsaClient, check_endpoint, resolve_endpoint
from esa_scheduler.credentials import Credentials, resolve_credentials
from esa_scheduler.errors import UserError
from esa_scheduler.events import EventReader, Intent
from esa_scheduler.holds import Hold, HoldStore, holds_touching, state_dir
from esa_scheduler.logs import RunLog
from esa_scheduler.reconciler import AfterReconcile, Reconciler, RunRequest, RunSummary
from esa_scheduler.schedule import load_schedule
from esa_scheduler.statefile import last_completed_run, record_completed_run, transitions_since
from esa_scheduler.timeutil import now_utc

DEADLINE_RESERVE_MIN = 5.0
DEADLINE_RESERVE_MAX = 30.0


class RunFailed(Exception):
    """Raised after the summary is logged, so FC marks the invocation failed and its retries apply."""

    def __init__(self, summary: RunSummary) -> None:
        reason = summary.blocked or summary.error or f"{summary.counts['failed']} task(s) failed"
        super().__init__(f"esa-scheduler run failed: {reason}")
        self.summary = summary


@dataclass(frozen=True)
class Target:
    """Where to send ESA calls and as whom; ``None`` fields are resolved from the environment.

    ``ephemeral`` marks an ESA whose state dies with the run (the embedded emulator): nothing is
    recorded about it, so a later run against the real ESA never inherits its last-run instant.
    """

    endpoint: str | None = None
    credentials: Credentials | None = None
    ephemeral: bool = False


def _fc_field(context: Any, *path: str) -> Any:
    for name in path:
        context = getattr(context, name, None)
    return context


def deadline_from(context: Any, budget_s: float | None, started: float) -> float | None:
    """Stop starting calls before FC's timeout: keep 10% of it (5 s to 30 s) for in-flight calls."""
    seconds = budget_s if budget_s is not None else _fc_field(context, "function", "timeout")
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


class HoldChanges(NamedTuple):
    """Holds in force after this event, before it, the selectors it touched, and the holds it released."""

    current: tuple[Hold, ...]
    previous: tuple[Hold, ...]
    touched: tuple[str, ...]
    released: tuple[Hold, ...] = ()


def apply_hold_changes(intent: Intent, store: HoldStore, log: RunLog, since: datetime | None = None) -> HoldChanges:
    """Persist an intent's new holds and releases (unless it is a dry run) and log each one.

    ``previous`` holds are those in force at any time since ``since`` (the start of the last
    tick), so that a hold that ended within the tick still counts as a transition.
    """
    now = now_utc()
    recent = store.active(min(since or now, now), prune=not intent.dry_run)
    existing = [h for h in recent if h.expires_at > now]
    by_id = {h.id: h for h in existing}
    released = [by_id[i] for i in intent.release_ids if i in by_id]
    released += [h for h in holds_touching(existing, intent.release_tasks) if h not in released]
    for missing in sorted(set(intent.release_ids) - by_id.keys()):
        log.warning("hold.release_missing", hold_id=missing)
    replaced = {h.id for h in intent.new_holds}
    gone = {h.id for h in released} | replaced
    current = tuple(h for h in existing if h.id not in gone) + intent.new_holds
    if not intent.dry_run:
        for hold in intent.new_holds:
            store.save(hold)
        store.remove([h.id for h in released])
    for hold in intent.new_holds:
        log.info("hold.created", **hold.model_dump(mode="json"), dry_run=intent.dry_run)
    for hold in released:
        log.info("hold.released", hold_id=hold.id, tasks=list(hold.tasks), dry_run=intent.dry_run)
    touched = tuple(s for h in (*intent.new_holds, *released) for s in h.tasks)
    return HoldChanges(current, tuple(recent), touched, tuple(released))


def _client_for(
    target: Target, context: Any, environ: Mapping[str, str], log: RunLog, deadline: float | None
) -> EsaClient:
    region = _fc_field(context, "region")
    env = dict(environ)
    if isinstance(region, str) and region and not env.get(config.FC_REGION):
        env[config.FC_REGION] = region
    endpoint = check_endpoint(target.endpoint) if target.endpoint else resolve_endpoint(env)
    credentials = target.credentials or resolve_credentials(fc_context=context, environ=env)

    def retrying(error: EsaApiError, delay: float) -> None:
        log.warning(
            "api.retry",
            action=error.action,
            error_code=error.code,
            error=str(error),
            attempt=error.attempts,
            delay_ms=round(delay * 1000),
        )

    return EsaClient(endpoint, credentials, ClientSettings.from_env(env), on_retry=retrying, deadline=deadline)


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
) -> RunSummary:
    """Run one invocation to its summary; raises ``UserError`` (nothing changed) on bad input."""
    started = time.monotonic()
    env = environ if environ is not None else os.environ
    log = RunLog(
        fc_request_id=_fc_field(context, "request_id"),
        stream=stream,
        level=env.get(config.LOG_LEVEL, "INFO") or "INFO",
    )
    deadline = deadline_from(context, budget_s, started)
    target = target or Target()
    try:
        schedule = load_schedule(schedule_path)
        intent = EventReader(schedule, now_utc()).read(body)
        client = _client_for(target, context, env, log, deadline)
    except UserError as exc:
        log.error("run.rejected", error=str(exc), problems=exc.problems)
        raise
    log.info("run.start", at=intent.at, sources=list(intent.sources), dry_run=intent.dry_run, force=intent.force)
    root = state_dir(state)
    since = transitions_since(last_completed_run(root), intent.at, schedule.tick)
    holds, previous, touched, released = apply_hold_changes(intent, HoldStore(root), log, since)
    request = RunRequest(
        at=intent.at,
        holds=holds,
        previous_holds=previous,
        touched=touched,
        since=since,
        dry_run=intent.dry_run,
        force=intent.force,
        deadline=deadline,
    )
    notifier = None
    if schedule.notify:
        from esa_scheduler.notify.dispatch import Notifier

        notifier = Notifier(schedule, holds, previous, intent.new_holds, released, root, env, request.deadline, log)
    summary = asyncio.run(_reconcile(schedule, client, log, request, notifier))
    if not (summary.failed or summary.dry_run or target.ephemeral):
        record_completed_run(root, intent.at)
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
