"""Reconcile: bring ESA to the plan at one fixed instant, with the fewest calls, safely.

The flow is one-way: list what ESA has -> plan (pure) -> actions -> concurrent updates -> one
``task.result`` line per managed task and a ``run.summary`` line. Level-triggered by default
(``enforce`` also reverts manual changes); ``transitions`` only acts on a schedule edge or a hold
made or released by this very event, so a deliberate manual change survives until the next edge.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from esa_scheduler.edge.listing import gather_in_order
from esa_scheduler.edge.responses import DeadlineExceeded, DeliveryTask, EsaApiError
from esa_scheduler.engine.holds import Hold
from esa_scheduler.engine.planner import Decision, ManagedTask, Planner, TaskRef, managed_tasks
from esa_scheduler.engine.schedule.model import Schedule
from esa_scheduler.engine.selectors import selector_matches
from esa_scheduler.logs import RunLog
from esa_scheduler.timeutil import utc_iso

if TYPE_CHECKING:
    from esa_scheduler.edge.client import EsaClient

ACTIONS = ("updated", "unchanged", "would_update", "failed", "missing", "skipped")
OUTCOME_FIELDS = ("ok", "counts", "tasks", "api_calls", "next_change", "blocked", "error")
"""The fields of a target's entry in a fleet's ``run.summary``."""
DEADLINE = "deadline"
"""The ``error`` of a task the run's deadline left undone; such a run is not ok."""


@dataclass(frozen=True)
class RunRequest:
    """What to reconcile: the instant, the switches, and which holds this event made or ended.

    ``since`` is where ``transitions`` mode starts looking for schedule edges (the last completed
    run); ``None`` means one tick before ``at``.
    """

    at: datetime
    holds: tuple[Hold, ...] = ()
    previous_holds: tuple[Hold, ...] = ()
    touched: tuple[str, ...] = ()
    since: datetime | None = None
    dry_run: bool = False
    force: bool = False
    deadline: float | None = None


@dataclass
class TaskResult:
    """One managed task's outcome; ``to_log`` is its ``task.result`` line."""

    decision: Decision
    previous: str | None
    action: str
    request_id: str | None = None
    attempts: int = 0
    error_code: str | None = None
    error: str | None = None
    target: str | None = None
    """The fleet target (schedules with ``targets:``); the log line gets it from the run's bound log."""

    def to_log(self) -> dict[str, Any]:
        """The ``task.result`` fields."""
        return {
            "task": self.decision.task.ref.name,
            "site_id": self.decision.task.ref.site_id,
            "previous": self.previous,
            "desired": self.decision.desired,
            "action": self.action,
            "source": self.decision.source,
            "mode": self.decision.task.mode,
            "request_id": self.request_id,
            "attempts": self.attempts,
            "error_code": self.error_code,
            "error": self.error,
        }


@dataclass
class RunSummary:
    """The run's outcome; ``to_json`` is both the ``run.summary`` line and the handler's return."""

    at: datetime
    dry_run: bool
    mode: str
    results: list[TaskResult] = field(default_factory=list)
    api_calls: int = 0
    duration_ms: int = 0
    next_change: datetime | None = None
    blocked: str | None = None
    error: str | None = None
    notified: int = 0
    notify_failed: int = 0
    targets: dict[str, dict[str, Any]] | None = None
    """Each target's outcome (schedules with ``targets:``); ``None`` keeps the summary as before."""
    error_code: str | None = None
    """ESA's code when the inventory could not be read (not logged here: ``run.inventory_failed`` has it)."""

    @property
    def counts(self) -> dict[str, int]:
        """Tasks per action; every action is present so dashboards need no defaults."""
        tally = Counter(r.action for r in self.results)
        return {action: tally.get(action, 0) for action in ACTIONS}

    @property
    def undone(self) -> int:
        """Tasks the deadline left undone."""
        return sum(1 for r in self.results if r.error == DEADLINE)

    @property
    def failed(self) -> bool:
        """A failed task, a blocked run, a run that could not read ESA or that ran out of time
        fails the invocation, so FC's retries and failure destination apply."""
        return bool(self.blocked or self.error or self.counts["failed"] or self.undone)

    def to_json(self) -> dict[str, Any]:
        """The summary fields."""
        return {
            "at": utc_iso(self.at),
            "dry_run": self.dry_run,
            "mode": self.mode,
            "counts": self.counts,
            "tasks": len(self.results),
            "api_calls": self.api_calls,
            "duration_ms": self.duration_ms,
            "next_change": utc_iso(self.next_change) if self.next_change else None,
            "blocked": self.blocked,
            "error": self.error,
            "ok": not self.failed,
            "notified": self.notified,
            "notify_failed": self.notify_failed,
            **({"targets": self.targets} if self.targets is not None else {}),
        }

    def outcome(self) -> dict[str, Any]:
        """What a fleet's ``run.summary`` says of this target: a selection of its own summary."""
        fields = self.to_json()
        return {key: fields[key] for key in OUTCOME_FIELDS}


AfterReconcile = Callable[[RunSummary], Awaitable[None]]
"""Runs once the ESA calls are done, before ``run.summary`` is written (notifications)."""


async def notify_safely(notifying: Awaitable[None], summary: RunSummary, log: RunLog) -> None:
    """Await the notifications; a bug in them is one ``notify.failed`` line, never a lost summary."""
    try:
        await notifying
    except Exception as exc:
        summary.notify_failed += 1
        log.error("notify.failed", error=f"{type(exc).__name__}: {exc}", stage="compose")


def _mode(modes: Iterable[str]) -> str:
    """The run's mode for the summary: the one mode every task uses, or ``mixed``."""
    distinct = set(modes)
    if len(distinct) > 1:
        return "mixed"
    return distinct.pop() if distinct else "enforce"


def _site_ids(schedule: Schedule) -> list[int]:
    return sorted({t.site_id for t in schedule.tasks if t.site_id is not None})


class Reconciler:
    """One reconcile of one schedule against one ESA client."""

    def __init__(
        self,
        schedule: Schedule,
        client: EsaClient,
        log: RunLog,
        clock: Callable[[], float] = time.monotonic,
        after: AfterReconcile | None = None,
        *,
        target: str | None = None,
    ) -> None:
        self.schedule = schedule
        self.client = client
        self.log = log
        self.clock = clock
        self.after = after
        self.target = target
        self.summary_event = "run.summary" if target is None else "target.summary"

    async def _inventory(self) -> dict[TaskRef, str]:
        sites = _site_ids(self.schedule)
        listings = await gather_in_order(
            [self.client.list_user_delivery_tasks(), *(self.client.list_site_delivery_tasks(site) for site in sites)]
        )
        current: dict[TaskRef, str] = {}
        for site, tasks in zip([None, *sites], listings, strict=True):
            listed: list[DeliveryTask] = tasks
            for task in listed:
                current[TaskRef(task.task_name, site)] = task.status
        return current

    async def run(self, request: RunRequest) -> RunSummary:
        """Reconcile at ``request.at``; never raises for ESA failures, they end up in the summary."""
        started = self.clock()
        summary = RunSummary(request.at, request.dry_run, _mode(t.mode for t in self.schedule.tasks))
        try:
            current = await self._inventory()
        except EsaApiError as exc:
            summary.error, summary.error_code = str(exc), exc.code
            self.log.error("run.inventory_failed", error_code=exc.code, error=str(exc))
            return await self._finish(summary, started)
        tasks = managed_tasks(self.schedule, current)
        summary.mode = _mode(t.mode for t in tasks)
        planner = Planner(self.schedule, request.at, request.holds)
        plan = planner.decide(tasks)
        summary.next_change = plan.next_change
        edges = self._transition_edges(request, tasks, plan.decisions)
        pending: list[TaskResult] = []
        for decision in plan.decisions:
            result = self._triage(decision, current.get(decision.task.ref), edges, request)
            result.target = self.target
            if result.action == "would_update" and not request.dry_run:
                pending.append(result)
            else:
                self._record(summary, result)
        present = sum(1 for r in [*summary.results, *pending] if r.action != "missing")
        summary.blocked = None if request.force else self._safety(len(pending), present)
        if summary.blocked:
            self.log.error("run.blocked", reason=summary.blocked, changes=len(pending), managed=present)
            for result in pending:
                result.action, result.error = "skipped", f"safety: {summary.blocked}"
                self._record(summary, result)
            return await self._finish(summary, started)
        await self._apply_all(summary, pending, request.deadline)
        if summary.undone and summary.error is None:
            summary.error = f"{DEADLINE}: {summary.undone} task(s) not done before the run's deadline"
        return await self._finish(summary, started)

    async def _apply_all(self, summary: RunSummary, pending: list[TaskResult], deadline: float | None) -> None:
        """As many workers as the client allows in flight, so 10,000 changes are not 10,000 tasks in memory."""
        queue = iter(pending)

        async def worker() -> None:
            for result in queue:
                await self._apply(summary, result, deadline)

        await asyncio.gather(*(worker() for _ in range(min(self.client.concurrency, len(pending)))))

    def _transition_edges(
        self, request: RunRequest, tasks: Sequence[ManagedTask], decisions: Sequence[Decision]
    ) -> set[TaskRef]:
        """Tasks in ``transitions`` mode whose desired state changed since the last completed run.

        Every edge in ``(since, at]`` counts, not only the net change: a window that opened and
        closed while invocations were missed still makes its tasks conform now.
        """
        watched = [t for t in tasks if t.mode == "transitions"]
        if not watched:
            return set()
        since = request.since if request.since is not None else request.at - self.schedule.tick
        before = Planner(self.schedule, since, request.previous_holds).decide(watched)
        steady = {
            d.task.ref: d.desired for d in before.decisions if d.next_change is None or d.next_change > request.at
        }
        return {
            d.task.ref
            for d in decisions
            if d.task.mode == "transitions"
            and (
                steady.get(d.task.ref) != d.desired
                or any(selector_matches(s, d.task.ref.name) for s in request.touched)
            )
        }

    def _triage(self, decision: Decision, status: str | None, edges: set[TaskRef], request: RunRequest) -> TaskResult:
        if status is None:
            return TaskResult(decision, None, "missing", error="task not found in ESA (never created by the scheduler)")
        if status == decision.desired:
            return TaskResult(decision, status, "unchanged")
        if decision.task.mode == "transitions" and decision.task.ref not in edges:
            return TaskResult(decision, status, "skipped", error="transitions mode: no schedule edge this tick")
        return TaskResult(decision, status, "would_update")

    def _safety(self, changes: int, managed: int) -> str | None:
        limits = self.schedule.safety
        if limits.max_changes is not None and changes > limits.max_changes:
            return f"{changes} changes exceed safety.max_changes {limits.max_changes}"
        if limits.max_change_ratio is not None and managed and changes / managed > limits.max_change_ratio:
            return f"{changes}/{managed} changes exceed safety.max_change_ratio {limits.max_change_ratio}"
        return None

    async def _apply(self, summary: RunSummary, result: TaskResult, deadline: float | None) -> None:
        if deadline is not None and self.clock() >= deadline:
            result.action, result.error = "skipped", DEADLINE
            self._record(summary, result)
            return
        ref, desired = result.decision.task.ref, result.decision.desired
        try:
            if ref.site_id is None:
                change = await self.client.update_user_delivery_task_status(ref.name, desired)
            else:
                change = await self.client.update_site_delivery_task_status(ref.site_id, ref.name, desired)
        except DeadlineExceeded as exc:
            result.action, result.error_code, result.error = "skipped", exc.last_code, DEADLINE
            result.request_id, result.attempts = exc.request_id, exc.attempts
        except EsaApiError as exc:
            result.action, result.error_code, result.error = "failed", exc.code, str(exc)
            result.request_id, result.attempts = exc.request_id, exc.attempts
        else:
            result.request_id, result.attempts = change.request_id, change.attempts
            if change.status == desired:
                result.action = "updated"
            else:
                result.action, result.error_code = "failed", "StatusMismatch"
                result.error = f"ESA answered status {change.status!r} after asking for {desired!r}"
        self._record(summary, result)

    def _record(self, summary: RunSummary, result: TaskResult) -> None:
        summary.results.append(result)
        if result.action == "failed":
            self.log.error("task.result", **result.to_log())
        elif result.action == "missing" or result.error == DEADLINE:
            self.log.warning("task.result", **result.to_log())
        else:
            self.log.info("task.result", **result.to_log())

    async def _finish(self, summary: RunSummary, started: float) -> RunSummary:
        summary.api_calls = self.client.api_calls
        summary.duration_ms = round((self.clock() - started) * 1000)
        if self.after is not None:
            await notify_safely(self.after(summary), summary, self.log)
        fields = summary.to_json()
        if summary.failed:
            self.log.error(self.summary_event, **fields)
        else:
            self.log.info(self.summary_event, **fields)
        return summary
