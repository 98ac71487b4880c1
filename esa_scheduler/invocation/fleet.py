"""Fleet runs: one reconcile per target, inline in this invocation or fanned out over FC.

``inline`` (the default, and always for ``esa-scheduler run``) reconciles every target
concurrently, each with its own client, pacing and concurrency (ESA's quotas are per account)
under the run's one deadline; ``esa-scheduler invoke`` runs the handler as FC would, either way.
``async`` (``ESA_FANOUT=async``, for fleets too large for one invocation) makes this invocation a
coordinator: it asks Function Compute to run the same function once per target, with an
idempotency key made of the delivered event's identity and the target, so an FC retry of the
coordinator (the same event again) dispatches nothing twice, and a different event (a dry-run
preview at the same instant, a second hold) is never mistaken for one. A target that fails
(its role cannot be assumed, ESA refuses, every call is throttled) fails alone, and the run
reports it by name.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from esa_scheduler import config
from esa_scheduler.edge.credentials import Credentials
from esa_scheduler.edge.responses import DeadlineExceeded, EsaApiError
from esa_scheduler.engine.schedule.model import Schedule, ScheduleTarget
from esa_scheduler.engine.targets import holds_for, project
from esa_scheduler.errors import ConfigError
from esa_scheduler.invocation.connection import Edge, retry_logger
from esa_scheduler.invocation.reconciler import Reconciler, RunRequest, RunSummary, notify_safely
from esa_scheduler.invocation.statefile import record_completed_run
from esa_scheduler.logs import RunLog
from esa_scheduler.timeutil import utc_iso

if TYPE_CHECKING:
    from esa_scheduler.edge.sts import RoleSessionCache, StsClient
    from esa_scheduler.invocation.events.models import Intent

FANOUT_MODES = ("inline", "async")
STALE_CREDENTIALS = frozenset(
    {"InvalidAccessKeyId.NotFound", "InvalidSecurityToken.Expired", "InvalidSecurityToken.Mismatch"}
)
"""ESA's answers to STS credentials it no longer accepts: worth one fresh ``AssumeRole``."""
AfterFleet = Callable[[RunSummary, Mapping[str, RunSummary]], Awaitable[None]]
"""Notifications of a fleet run: once, with the combined summary and each target's, before ``run.summary``."""
_sessions: RoleSessionCache | None = None
"""AssumeRole results survive between invocations of a warm FC instance, until shortly before expiry."""


def fanout_mode(environ: Mapping[str, str]) -> str:
    """``ESA_FANOUT``: ``inline`` (default) or ``async``."""
    mode = (config.env(config.FANOUT, environ=environ) or "inline").lower()
    if mode not in FANOUT_MODES:
        raise ConfigError(f"{config.FANOUT}={mode!r} must be 'inline' or 'async'")
    return mode


def _role_sessions() -> RoleSessionCache:
    global _sessions  # noqa: PLW0603 - one cache per warm instance is the point
    if _sessions is None:
        from esa_scheduler.edge.sts import RoleSessionCache

        _sessions = RoleSessionCache()
    return _sessions


def session_name(run_id: str) -> str:
    """``RoleSessionName``: which run acted, in the member account's ActionTrail."""
    return f"esa-scheduler-{run_id}"


@dataclass(frozen=True)
class FleetRun:
    """One invocation's view of its targets: what to reconcile, as whom, and where to record it."""

    schedule: Schedule
    targets: tuple[ScheduleTarget, ...]
    edge: Edge
    log: RunLog
    state: Path
    notifier: AfterFleet | None

    async def reconcile(self, request: RunRequest, since: Mapping[str, Any]) -> RunSummary:
        """Every target concurrently; each target's outcome is its own, the run's is all of them."""
        sts = self._sts_client(self.edge.sts_endpoint) if self.edge.sts_endpoint else None
        try:
            outcomes = await asyncio.gather(
                *(self._one(target, replace(request, since=since[target.name]), sts) for target in self.targets)
            )
        finally:
            if sts is not None:
                await sts.aclose()
        by_target = dict(zip([t.name for t in self.targets], outcomes, strict=True))
        summary = _combined(request, by_target)
        summary.api_calls += sts.api_calls if sts is not None else 0
        return await self.finish(summary, by_target)

    async def finish(self, summary: RunSummary, by_target: Mapping[str, RunSummary]) -> RunSummary:
        """Notify once for the whole run (one message per notify entry, not one per target), then log
        ``run.summary``, which carries the notify counts."""
        if self.notifier is not None:
            await notify_safely(self.notifier(summary, by_target), summary, self.log)
        (self.log.error if summary.failed else self.log.info)("run.summary", **summary.to_json())
        return summary

    def record(self, summary: RunSummary, at: datetime) -> None:
        """Move each target's last-run record on its own: one failing target must not stall the others."""
        if summary.dry_run or self.edge.override.ephemeral or summary.targets is None:
            return
        for name, outcome in summary.targets.items():
            if outcome.get("ok"):
                record_completed_run(self.state, at, name)

    def _sts_client(self, endpoint: str) -> StsClient:
        from esa_scheduler.edge.sts import StsClient

        return StsClient(
            endpoint,
            self.edge.credentials,
            self.edge.settings,
            on_retry=retry_logger(self.log),
            deadline=self.edge.deadline,
        )

    async def _credentials(self, target: ScheduleTarget, sts: StsClient | None) -> Credentials:
        if target.role_arn is None or sts is None:
            return self.edge.credentials
        return await _role_sessions().credentials(sts, target.role_arn, session_name(self.log.run_id))

    async def _one(self, target: ScheduleTarget, request: RunRequest, sts: StsClient | None) -> RunSummary:
        log = self.log.bound(target=target.name)
        scoped = replace(
            request,
            holds=holds_for(request.holds, target.name),
            previous_holds=holds_for(request.previous_holds, target.name),
        )
        summary = await self._attempt(target, scoped, sts, log)
        stale = summary.error_code in STALE_CREDENTIALS
        # Cached STS credentials ESA no longer knows (revoked, or issued by another STS): the listing
        # failed, so nothing changed; assume the role afresh and try once more.
        if stale and sts is not None and target.role_arn and _role_sessions().forget(sts, target.role_arn):
            log.warning("target.credentials_refreshed", role_arn=target.role_arn, error_code=summary.error_code)
            summary = await self._attempt(target, scoped, sts, log)
        return summary

    async def _attempt(
        self, target: ScheduleTarget, request: RunRequest, sts: StsClient | None, log: RunLog
    ) -> RunSummary:
        try:
            credentials = await self._credentials(target, sts)
        except EsaApiError as exc:
            # the deadline is why STS stopped being asked, not what STS answered: report STS's last code
            code = exc.last_code if isinstance(exc, DeadlineExceeded) and exc.last_code else exc.code
            summary = RunSummary(request.at, request.dry_run, "enforce", error=str(exc))
            log.error("target.summary", **summary.to_json(), error_code=code, role_arn=target.role_arn)
            return summary
        endpoint = self.edge.esa_endpoint(region=target.region, explicit=target.endpoint)
        client = self.edge.esa_client(log, endpoint=endpoint, credentials=credentials)
        async with client:
            reconciler = Reconciler(project(self.schedule, target.name), client, log, target=target.name)
            return await reconciler.run(request)


def _combined(request: RunRequest, outcomes: dict[str, RunSummary]) -> RunSummary:
    """The fleet's summary: every target's results and counts, and which targets failed and why."""
    modes = {s.mode for s in outcomes.values()}
    summary = RunSummary(request.at, request.dry_run, modes.pop() if len(modes) == 1 else "mixed")
    for one in outcomes.values():
        summary.results.extend(one.results)
        summary.api_calls += one.api_calls
        summary.duration_ms = max(summary.duration_ms, one.duration_ms)
    changes = [s.next_change for s in outcomes.values() if s.next_change is not None]
    summary.next_change = min(changes) if changes else None
    blocked = [f"{name}: {s.blocked}" for name, s in outcomes.items() if s.blocked]
    summary.blocked = "; ".join(blocked) or None
    failed = [name for name, s in outcomes.items() if s.failed]
    if failed:
        summary.error = f"{len(failed)} of {len(outcomes)} target(s) failed: {', '.join(failed)}"
    summary.targets = {name: s.outcome() for name, s in outcomes.items()}
    return summary


def dispatch_event(target: str, intent: Intent, touched: Sequence[str]) -> bytes:
    """What each target's invocation receives: reconcile this target at the coordinator's instant."""
    event: dict[str, Any] = {"action": "reconcile", "target": target, "at": utc_iso(intent.at)}
    if intent.dry_run:
        event["dry_run"] = True
    if intent.force:
        event["force"] = True
    if touched:
        event["touched"] = list(touched)
    return json.dumps(event, separators=(",", ":")).encode()


async def dispatch(run: FleetRun, intent: Intent, touched: Sequence[str]) -> RunSummary:
    """Invoke this function asynchronously once per target; the coordinator changes nothing in ESA.

    A dispatch FC refuses as a duplicate (``duplicate: true``) is not a failure: its task id is
    the same delivered event's, so an earlier delivery of this very event dispatched that target.
    """
    from esa_scheduler.edge.fc_invoke import ALREADY_DISPATCHED, FcClient, async_task_id

    edge, function = run.edge, run.edge.function
    assert function is not None, "Edge.resolve(invoke_self=True) resolves the function for a coordinator"
    outcomes: dict[str, dict[str, Any]] = {}
    async with FcClient(
        function.endpoint, edge.credentials, edge.settings, on_retry=retry_logger(run.log), deadline=edge.deadline
    ) as fc:

        async def one(target: ScheduleTarget) -> None:
            key = async_task_id(intent.delivery, target.name)
            try:
                request_id = await fc.invoke_async(
                    function.name, dispatch_event(target.name, intent, touched), key, function.qualifier
                )
            except EsaApiError as exc:
                outcomes[target.name] = {"ok": False, "task_id": key, "error": str(exc)}
                run.log.error("fanout.failed", target=target.name, task_id=key, error_code=exc.code, error=str(exc))
                return
            duplicate = request_id == ALREADY_DISPATCHED
            outcomes[target.name] = {"ok": True, "task_id": key, "duplicate": duplicate}
            # FC refusing a task id it has seen means an earlier try of this coordinator dispatched it
            run.log.info(
                "fanout.dispatched",
                target=target.name,
                task_id=key,
                invocation_id=None if duplicate else request_id,
                duplicate=duplicate,
            )

        await asyncio.gather(*(one(t) for t in run.targets))
        calls = fc.api_calls
    summary = RunSummary(intent.at, intent.dry_run, "fanout", api_calls=calls)
    summary.targets = {t.name: outcomes[t.name] for t in run.targets}
    failed = [name for name, outcome in summary.targets.items() if not outcome["ok"]]
    if failed:
        summary.error = f"could not dispatch {len(failed)} of {len(run.targets)} target(s): {', '.join(failed)}"
    return await run.finish(summary, {})
