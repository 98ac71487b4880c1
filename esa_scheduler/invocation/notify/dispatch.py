"""After the reconcile: compose each target's message, send them all at once, log and count outcomes.

``Notifier`` is what ``function.execute`` hands to the reconciler when the schedule has ``notify:``
entries; it runs once the ESA calls are done and before ``run.summary`` is written, so the summary
carries ``notified`` and ``notify_failed``. It never raises for a delivery problem: a missing
variable, a refusing or silent service all end as one ``notify.failed`` line.
"""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path

from esa_scheduler.engine.planner import Planner
from esa_scheduler.engine.schedule import Schedule, load_schedule
from esa_scheduler.errors import ConfigError
from esa_scheduler.invocation.holds import Hold
from esa_scheduler.invocation.notify.message import Message, Reminder, RunFacts, compose, probe_message, task_filter
from esa_scheduler.invocation.notify.model import NotifyTarget
from esa_scheduler.invocation.notify.reminders import ReminderStore
from esa_scheduler.invocation.notify.sender import BUDGET_WITHOUT_DEADLINE, Delivery, deliver, new_http
from esa_scheduler.invocation.reconciler import RunSummary
from esa_scheduler.logs import RunLog, redact
from esa_scheduler.timeutil import now_utc


class Notifier:
    """Everything a run's notifications need besides the summary, gathered by ``execute``."""

    def __init__(
        self,
        schedule: Schedule,
        holds: Sequence[Hold],
        previous: Sequence[Hold],
        created: Sequence[Hold],
        released: Sequence[Hold],
        state_root: Path,
        environ: Mapping[str, str],
        deadline: float | None,
        log: RunLog,
    ) -> None:
        self.schedule = schedule
        self.holds = tuple(holds)
        self.previous = tuple(previous)
        self.created = tuple(created)
        self.released = tuple(released)
        self.store = ReminderStore(state_root)
        self.environ = environ
        self.deadline = deadline
        self.log = log

    def _expired(self, at: datetime) -> tuple[Hold, ...]:
        """Holds that ran out within this tick, ``(at - tick, at]``: consecutive ticks report each once."""
        gone = {h.id for h in self.released}
        since = at - self.schedule.tick
        return tuple(h for h in self.previous if since < h.expires_at <= at and h.id not in gone)

    async def __call__(self, summary: RunSummary) -> None:
        """Send (or, on a dry run, skip) and set ``summary.notified``/``notify_failed``."""
        targets = self.schedule.notify
        if summary.dry_run:
            for target in targets:
                self.log.info("notify.skipped", target=target.spec.name, kind=target.spec.kind, reason="dry run")
            return
        reminding = any("reminders" in t.spec.send_on for t in targets)
        sent, stale = self._sent_reminders(summary.at) if reminding else ({}, False)
        facts = RunFacts(summary, self.created, self.released, self._expired(summary.at))
        messages = []
        for target in targets:
            due = [r for r in self._reminders(target, summary) if r.key(target.spec.name) not in sent]
            message = compose(target, facts, due)
            if message is not None:
                messages.append((target, message))
        if messages:
            deadline = self.deadline if self.deadline is not None else time.monotonic() + BUDGET_WITHOUT_DEADLINE
            deliveries = await send_all(messages, self.environ, deadline, self.log)
            for target, delivery in zip((t for t, _ in messages), deliveries, strict=True):
                if delivery.ok and delivery.reminders:
                    stale = True
                    sent.update({r.key(target.spec.name): r.at for r in delivery.reminders})
            summary.notified = sum(1 for d in deliveries if d.ok)
            summary.notify_failed = len(deliveries) - summary.notified
        if stale:
            self._save(sent)

    def _sent_reminders(self, at: datetime) -> tuple[dict[str, datetime], bool]:
        try:
            return self.store.load(at)
        except ValueError as exc:
            self.log.warning("notify.state_unreadable", error=str(exc))
            return {}, True

    def _save(self, sent: dict[str, datetime]) -> None:
        try:
            self.store.save(sent)
        except OSError as exc:
            self.log.warning("notify.state_unwritable", error=f"{self.store.path}: {exc.strerror}")

    def _reminders(self, target: NotifyTarget, summary: RunSummary) -> list[Reminder]:
        """Transitions of the target's tasks within its ``before`` period, one per (instant, state, reason)."""
        ahead = target.spec.lead_time
        if ahead is None or "reminders" not in target.spec.send_on:
            return []
        wanted = task_filter(target)
        planner = Planner(self.schedule, summary.at, self.holds, horizon=ahead)
        grouped: dict[tuple[datetime, str, str], list[str]] = defaultdict(list)
        for result in summary.results:
            task = result.decision.task
            if result.action == "missing" or not wanted(task.ref.name):
                continue
            for instant, state in planner.transitions(task, summary.at + ahead):
                grouped[(instant, state.desired, state.source)].append(task.ref.name)
        return [Reminder(*key, tuple(sorted(names))) for key, names in sorted(grouped.items())]


async def send_all(
    messages: Sequence[tuple[NotifyTarget, Message]], environ: Mapping[str, str], deadline: float, log: RunLog
) -> list[Delivery]:
    """Deliver every message concurrently and log one ``notify.sent``/``notify.failed`` line each."""
    async with new_http() as http:
        deliveries = await asyncio.gather(
            *(
                deliver(http, target, message, environ, deadline, f"{log.run_id}.{target.spec.name}", log)
                for target, message in messages
            )
        )
    for delivery in deliveries:
        if delivery.ok:
            log.info("notify.sent", **delivery.log_fields())
        else:
            log.warning("notify.failed", **delivery.log_fields())
    return list(deliveries)


def send_test(name: str, schedule_path: str | None, environ: Mapping[str, str], log: RunLog) -> tuple[Delivery, str]:
    """``notify test NAME``: one test message to one target; the delivery and a line for the operator."""
    schedule = load_schedule(schedule_path)
    target = next((t for t in schedule.notify if t.spec.name == name), None)
    if target is None:
        known = ", ".join(t.spec.name for t in schedule.notify) or "none"
        raise ConfigError(f"notify test: no notify target named {name!r} (targets: {known})")
    message = probe_message(target, now_utc())
    deadline = time.monotonic() + BUDGET_WITHOUT_DEADLINE
    (delivery,) = asyncio.run(send_all([(target, message)], environ, deadline, log))
    status = f"HTTP {delivery.http_status}" if delivery.http_status is not None else "no HTTP answer"
    code = f", code {delivery.code}" if delivery.code is not None else ""
    verdict = "accepted" if delivery.ok else "FAILED"
    line = f"{name} ({target.spec.kind}): {verdict} after {delivery.attempts} attempt(s): {status}{code}"
    line += f": {delivery.detail}" if delivery.detail else ""
    return delivery, redact(line)
