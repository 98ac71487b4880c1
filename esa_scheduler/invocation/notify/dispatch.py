"""After the reconcile: compose each notify entry's message, send them all at once, log and count outcomes.

``Notifier`` is what ``function.execute`` hands to the reconciler when the schedule has ``notify:``
entries (and what a fleet run calls once every fleet target is done); it runs once the ESA calls
are done and before ``run.summary`` is written, so the summary carries ``notified`` and
``notify_failed``. It never raises for a delivery problem: a missing variable, a refusing or
silent service all end as one ``notify.failed`` line.
"""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from esa_scheduler.engine.holds import Hold
from esa_scheduler.engine.planner import Planner
from esa_scheduler.engine.schedule.load import load_schedule
from esa_scheduler.engine.schedule.model import NotifyTarget, Schedule
from esa_scheduler.engine.targets import holds_for, project
from esa_scheduler.errors import ConfigError
from esa_scheduler.invocation.notify.message import (
    Message,
    Reminder,
    RunFacts,
    Scope,
    alerts_for,
    compose,
    probe_message,
    task_filter,
)
from esa_scheduler.invocation.notify.sender import BUDGET_WITHOUT_DEADLINE, Delivery, deliver, new_http
from esa_scheduler.invocation.notify.state import (
    KnownHolds,
    LastAlerts,
    Record,
    SentAlert,
    SentReminders,
    StateFile,
    alerts_file,
    holds_file,
    reminders_file,
)
from esa_scheduler.invocation.reconciler import RunSummary
from esa_scheduler.logs import RunLog, redact
from esa_scheduler.timeutil import now_to_the_second

REPEAT_ALERT_AFTER = timedelta(hours=1)
"""An unchanged alert (a run that stays blocked or failing) is sent again after this long, not every tick."""


@dataclass(frozen=True)
class _Planned:
    """One entry's message, the alert to record once it is delivered, and whether it ends one."""

    entry: NotifyTarget
    message: Message
    alert: str | None
    recovers: bool


class Notifier:
    """Everything a run's notifications need besides the summary, gathered by ``execute``.

    Hold facts (created, released, expired) are announced by the invocation that changes the hold
    store, once: a run, or the coordinator of an ``async`` fan-out (``reports_run=False``: it only
    dispatches, so its messages hold nothing else). ``serves`` is the one fleet target of an
    invocation that such a coordinator dispatched: a run of its own, which sends its own messages,
    titled with the target, and leaves the holds to the coordinator. Holds that ``esa-scheduler
    hold add|release`` changed between runs are announced by the next announcing run, which
    compares the store with the holds it announced last (``holds.json``; without that record, the
    holds created since ``since``, the last completed run, are the new ones)."""

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
        *,
        since: datetime,
        serves: str | None = None,
        reports_run: bool = True,
    ) -> None:
        self.schedule = schedule
        self.holds = tuple(holds)
        self.previous = tuple(previous)
        self.created = tuple(created)
        self.released = tuple(released)
        self.reminders = reminders_file(state_root)
        self.known_holds = holds_file(state_root)
        self.alerts = alerts_file(state_root)
        self.environ = environ
        self.deadline = deadline
        self.log = log
        self.since = since
        self.serves = serves
        self.reports_run = reports_run

    async def __call__(self, summary: RunSummary, targets: Mapping[str, RunSummary] | None = None) -> None:
        """Send (or, on a dry run, skip) and set ``summary.notified``/``notify_failed``.

        ``targets`` are a fleet run's per-target summaries (``summary`` is then the combined one):
        each notify entry still gets one message, covering them all."""
        entries = self.schedule.notify
        if summary.dry_run:
            for entry in entries:
                self.log.info("notify.skipped", target=entry.spec.name, kind=entry.spec.kind, reason="dry run")
            return
        scopes = tuple(Scope(name, one) for name, one in (targets or {}).items()) or (Scope(None, summary),)
        facts = RunFacts(summary, scopes if self.reports_run else (), self.serves, *self._hold_facts(summary.at))
        reminding = self.reports_run and any("reminders" in t.spec.send_on for t in entries)
        sent, stale = self._sent_reminders(summary.at) if reminding else ({}, False)
        recorded = self._load(self.alerts) if self.reports_run else None
        alerts = dict(recorded.alerts) if recorded is not None else {}
        planned = [plan for entry in entries if (plan := self._plan(entry, facts, sent, alerts)) is not None]
        if planned:
            deadline = self.deadline if self.deadline is not None else time.monotonic() + BUDGET_WITHOUT_DEADLINE
            messages = [(plan.entry, plan.message) for plan in planned]
            deliveries = await send_all(messages, self.environ, deadline, self.log, self.serves)
            stale = self._remember(planned, deliveries, sent, alerts, summary.at) or stale
            summary.notified = sum(1 for d in deliveries if d.ok)
            summary.notify_failed = len(deliveries) - summary.notified
        if stale:
            self._save(self.reminders, SentReminders(sent=sent))
        if self.reports_run and alerts != (recorded.alerts if recorded is not None else None):
            self._save(self.alerts, LastAlerts(alerts=alerts))  # changed, or missing, or unreadable

    def _plan(
        self, entry: NotifyTarget, facts: RunFacts, sent: Mapping[str, datetime], alerts: dict[str, SentAlert]
    ) -> _Planned | None:
        """The entry's message, if it has one: its reminders not sent yet, its alert unless the same
        went out within the hour, and a "recovered" line when the run ends an alert it sent."""
        at, key = facts.summary.at, self._alert_key(entry)
        due = [r for r in self._reminders(entry, at, facts.scopes) if r.key(entry.spec.name) not in sent]
        fingerprint = alerts_for(entry, facts).fingerprint()
        last = alerts.get(key)
        alerting = not self._repeated(entry, fingerprint, last, at)
        ended = last is not None and fingerprint is None and not facts.summary.failed
        recovered = last.sent_at if last is not None and ended else None
        if recovered is not None and "failures" not in entry.spec.send_on:
            del alerts[key]  # the alert is over, but only `failures` hears that
            recovered = None
        message = compose(entry, facts, due, alerting=alerting, recovered=recovered)
        if message is None:
            return None
        return _Planned(entry, message, fingerprint if alerting else None, recovered is not None)

    def _remember(
        self,
        planned: Sequence[_Planned],
        deliveries: Sequence[Delivery],
        sent: dict[str, datetime],
        alerts: dict[str, SentAlert],
        at: datetime,
    ) -> bool:
        """Record what the accepted messages said (a refused one is tried again next run); whether
        reminders were recorded."""
        reminded = False
        for plan, delivery in zip(planned, deliveries, strict=True):
            if not delivery.ok:
                continue
            reminded = reminded or bool(delivery.reminders)
            sent.update({r.key(plan.entry.spec.name): r.at for r in delivery.reminders})
            if plan.alert is not None:
                alerts[self._alert_key(plan.entry)] = SentAlert(fingerprint=plan.alert, sent_at=at)
            elif plan.recovers:
                alerts.pop(self._alert_key(plan.entry), None)
        return reminded

    def _alert_key(self, entry: NotifyTarget) -> str:
        """Whose alert: the entry's, or, in an invocation serving one fleet target, the entry's for that
        target (the fan-out's invocations alternate, and each reports its own target)."""
        return entry.spec.name if self.serves is None else f"{entry.spec.name}|{self.serves}"

    def _repeated(self, entry: NotifyTarget, fingerprint: str | None, last: SentAlert | None, at: datetime) -> bool:
        """Whether the run's alert is the one sent less than ``REPEAT_ALERT_AFTER`` ago (then it is left
        out, and a ``notify.suppressed`` line says so); a different alert goes at once."""
        if fingerprint is None or last is None or last.fingerprint != fingerprint:
            return False
        if not timedelta(0) <= at - last.sent_at < REPEAT_ALERT_AFTER:
            return False
        reason = "the same alert went out less than an hour ago"
        self.log.info(
            "notify.suppressed", target=entry.spec.name, kind=entry.spec.kind, reason=reason, last_alert=last.sent_at
        )
        return True

    def _hold_facts(self, at: datetime) -> tuple[tuple[Hold, ...], tuple[Hold, ...], tuple[Hold, ...]]:
        """The holds this invocation announces as created, released and expired (none when it serves
        one fleet target, or when no entry listens for holds).

        Each hold is compared, by id, with the holds announced last. One not among them is created.
        One whose end moved earlier while it still holds (an alert's resolve starting its cooldown)
        is released, announced with its new end and remembered as ending; only a firing during that
        cooldown announces it again, as created. Any other change is a refresh (the alert posted
        again while it fires, as Alertmanager re-sends a group) and not news. A hold that no longer
        holds is released when it was to run longer, or expired when it reached its end within the
        tick, never both."""
        if self.serves is not None or not any("holds" in t.spec.send_on for t in self.schedule.notify):
            return (), (), ()
        recorded = self._load(self.known_holds)
        known = {
            h.id: h for h in (recorded.holds if recorded else [h for h in self.holds if h.created_at <= self.since])
        }
        ending = set(recorded.ending) if recorded else set()
        created, shortened = list(self.created), []
        for hold in self.holds:
            before = known.get(hold.id)
            if hold in created or before == hold:
                continue
            if before is None or (hold.id in ending and hold.expires_at > before.expires_at):
                created.append(hold)
                ending.discard(hold.id)
            elif hold.expires_at < before.expires_at and hold.id not in ending:
                shortened.append(hold)
        in_force, stored = {h.id for h in self.holds}, {h.id: h for h in self.previous}
        ended = [  # `hold release`, or the intake's release, which keeps the hold ending when it was released
            stored.get(h.id, h)
            for h in known.values()
            if h.id not in in_force and h.expires_at > at and h.id not in ending
        ]
        released_here = {h.id for h in self.released}
        released = [*self.released, *(h for h in (*shortened, *ended) if h.id not in released_here)]
        ending = (ending | {h.id for h in shortened}) & in_force
        if recorded is None or set(recorded.holds) != set(self.holds) or set(recorded.ending) != ending:
            self._save(self.known_holds, KnownHolds(holds=self.holds, ending=tuple(sorted(ending))))
        announced = {h.id for h in released}
        expired = [h for h in self.previous if at - self.schedule.tick < h.expires_at <= at and h.id not in announced]
        return tuple(created), tuple(released), tuple(expired)

    def _sent_reminders(self, at: datetime) -> tuple[dict[str, datetime], bool]:
        """Reminders sent for transitions still ahead of ``at``, and whether the file needs rewriting
        (older ones were dropped, or it was unreadable)."""
        recorded = self._load(self.reminders)
        if recorded is None:
            return {}, self.reminders.path.exists()
        ahead = {key: instant for key, instant in recorded.sent.items() if instant > at}
        return ahead, len(ahead) != len(recorded.sent)

    def _load(self, file: StateFile[Record]) -> Record | None:
        try:
            return file.load()
        except ValueError as exc:
            self.log.warning("notify.state_unreadable", error=str(exc))
            return None

    def _save(self, file: StateFile[Record], record: Record) -> None:
        try:
            file.save(record)
        except ConfigError as exc:
            self.log.warning("notify.state_unwritable", error=str(exc))
        except OSError as exc:
            self.log.warning("notify.state_unwritable", error=f"{file.path}: {exc.strerror or type(exc).__name__}")

    def _reminders(self, entry: NotifyTarget, at: datetime, scopes: Sequence[Scope]) -> list[Reminder]:
        """Transitions of the entry's tasks within its ``before`` period, one per (fleet target,
        instant, state, reason); a fleet target's are planned as its own reconcile was."""
        ahead = entry.spec.lead_time
        if ahead is None or "reminders" not in entry.spec.send_on:
            return []
        wanted = task_filter(entry)
        grouped: dict[tuple[str | None, datetime, str, str], list[str]] = defaultdict(list)
        for scope in scopes:
            schedule, holds = self.schedule, self.holds
            if scope.name is not None:
                schedule, holds = project(schedule, scope.name), holds_for(holds, scope.name)
            planner = Planner(schedule, at, holds, horizon=ahead)
            for result in scope.summary.results:
                task = result.decision.task
                if result.action == "missing" or not wanted(task.ref.name):
                    continue
                for instant, state in planner.transitions(task, at + ahead):
                    grouped[(scope.name, instant, state.desired, state.source)].append(task.ref.name)
        ordered = sorted(grouped.items(), key=lambda item: (item[0][1], item[0][0] or "", item[0][2:]))
        return [
            Reminder(instant, status, source, tuple(sorted(names)), name)
            for (name, instant, status, source), names in ordered
        ]


async def send_all(
    messages: Sequence[tuple[NotifyTarget, Message]],
    environ: Mapping[str, str],
    deadline: float,
    log: RunLog,
    serves: str | None = None,
) -> list[Delivery]:
    """Deliver every message concurrently and log one ``notify.sent``/``notify.failed`` line each.

    A webhook event's id is ``<run_id>.<notify entry>``, and ``<run_id>.<fleet target>.<notify
    entry>`` when the invocation serves one fleet target, so that ids never collide whatever the
    run ids of a fan-out's invocations (fleet target names have no dots)."""
    scope = f"{serves}." if serves else ""
    async with new_http() as http:
        outcomes = await asyncio.gather(
            *(
                deliver(http, target, message, environ, deadline, f"{log.run_id}.{scope}{target.spec.name}", log)
                for target, message in messages
            ),
            return_exceptions=True,
        )
    # An error nobody foresaw (a bug, an exception of the HTTP client) fails its target alone; only
    # its type is kept, since its text may quote the URL. Cancellation still ends the run's sending.
    deliveries = []
    for (target, _), outcome in zip(messages, outcomes, strict=True):
        if isinstance(outcome, Exception):
            deliveries.append(Delivery(target, False, 0, detail=f"unexpected error: {type(outcome).__name__}"))
        elif isinstance(outcome, BaseException):
            raise outcome
        else:
            deliveries.append(outcome)
    for delivery in deliveries:
        if delivery.ok:
            log.info("notify.sent", **delivery.log_fields())
        else:
            log.warning("notify.failed", **delivery.log_fields())
    return deliveries


def send_tests(
    name: str | None, schedule_path: str | None, environ: Mapping[str, str], log: RunLog
) -> list[tuple[Delivery, str]]:
    """``notify test [NAME]``: one test message to the target NAME, or to every target of the schedule
    (none when it has none), sent together; each delivery with a line for the operator."""
    schedule = load_schedule(schedule_path)
    targets = [t for t in schedule.notify if name is None or t.spec.name == name]
    if name is not None and not targets:
        known = ", ".join(t.spec.name for t in schedule.notify) or "none"
        raise ConfigError(f"notify test: no notify target named {name!r} (targets: {known})")
    if not targets:
        return []
    now = now_to_the_second()
    deadline = time.monotonic() + BUDGET_WITHOUT_DEADLINE
    deliveries = asyncio.run(send_all([(t, probe_message(t, now)) for t in targets], environ, deadline, log))
    return [(delivery, _test_line(delivery)) for delivery in deliveries]


def _test_line(delivery: Delivery) -> str:
    spec = delivery.target.spec
    status = f"HTTP {delivery.http_status}" if delivery.http_status is not None else "no HTTP answer"
    code = f", code {delivery.code}" if delivery.code is not None else ""
    verdict = "accepted" if delivery.ok else "FAILED"
    line = f"{spec.name} ({spec.kind}): {verdict} after {delivery.attempts} attempt(s): {status}{code}"
    line += f": {delivery.detail}" if delivery.detail else ""
    return redact(line)
