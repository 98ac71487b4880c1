"""Incoming events -> intents: reconcile at an instant, create a hold, release holds."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from esa_scheduler.engine.holds import Hold, new_hold_id
from esa_scheduler.engine.schedule.model import Schedule
from esa_scheduler.engine.targets import check_target_selectors, unknown_target
from esa_scheduler.errors import EventError, close_hint, close_matches, first_problem
from esa_scheduler.invocation.events.body import decode_body, delivery_identity
from esa_scheduler.invocation.events.models import Intent, TimerEvent
from esa_scheduler.timeutil import parse_duration, parse_instant, utc_iso

if TYPE_CHECKING:  # commands, CloudEvents and alerts load with the first such event, never on a timer tick
    from esa_scheduler.engine.alerts import Alert
    from esa_scheduler.invocation.events.commands import Command, HoldCommand
    from esa_scheduler.invocation.events.incidents import CloudEvent, IncidentRelease
    from esa_scheduler.invocation.intake.sources.read import AlertsRead


@dataclass
class _Gathered:
    """What the events of one body ask for so far: ``read`` folds them in, in order, and the last
    instant given wins."""

    at: datetime
    dry_run: bool = False
    force: bool = False
    holds: list[Hold] = field(default_factory=list)
    release_ids: list[str] = field(default_factory=list)
    release_tasks: list[str] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)
    target: str | None = None
    touched: list[str] = field(default_factory=list)
    carried: list[str] = field(default_factory=list)
    """What an operator would recognise in the delivery's identity (hold ids, ``at``)."""
    timers: list[TimerEvent] = field(default_factory=list)
    alerts: list[Alert] = field(default_factory=list)
    unstated: list[Mapping[str, Any]] = field(default_factory=list)

    def flags(self, dry_run: bool, force: bool) -> None:
        """Any event of the body may ask for a dry run or a forced run."""
        self.dry_run, self.force = self.dry_run or dry_run, self.force or force

    def timer(self, event: TimerEvent) -> None:
        """A timer firing: evaluate at its trigger time, with its payload's options."""
        self.at = parse_instant(event.triggerTime)
        options = event.options()
        self.flags(options.dry_run, options.force)
        self.sources.append(f"timer:{event.triggerName or 'timer'}")
        self.timers.append(event)

    def incident(self, result: Hold | IncidentRelease) -> None:
        """A CloudEvent an incident rule matched: its hold, or the end of it."""
        if isinstance(result, Hold):
            self.holds.append(result)
            hold_id = result.id
        else:
            self.release_ids.append(result.hold_id)
            hold_id = result.hold_id
        self.sources.append(f"incident:{hold_id}")
        self.carried.append(hold_id)

    def alerted(self, read: AlertsRead, schedule: Schedule) -> None:
        """Alerts from an alert source's CloudEvent: each names the hold its rule keeps for it (decided
        against the store when holds are written), or ``alert:<source>`` when no rule takes it."""
        from esa_scheduler.engine.alerts import alert_hold_id, matching_rule

        self.alerts.extend(read.alerts)
        self.unstated.extend(read.unstated)
        self.sources.extend(f"alert:{line['source']}" for line in read.unstated)
        for alert in read.alerts:
            rule = matching_rule(schedule.incidents, alert)
            if rule is None:
                self.sources.append(f"alert:{alert.source}")
            else:
                hold_id = alert_hold_id(rule.name, alert)
                self.sources.append(f"incident:{hold_id}")
                self.carried.append(hold_id)

    def intent(self, body: bytes | str | Mapping[str, Any] | list[Any], count: int) -> Intent:
        """The one ``Intent`` of the body (``count`` elements), with the identity of its delivery."""
        lone_timer = self.timers[0] if count == 1 and self.timers else None
        kind = "-".join(sorted({source.split(":", 1)[0] for source in self.sources}))
        return Intent(
            self.at,
            self.dry_run,
            self.force,
            tuple(self.holds),
            tuple(self.release_ids),
            tuple(self.release_tasks),
            tuple(self.sources),
            self.target,
            tuple(self.touched),
            delivery_identity(body, lone_timer, self.carried, kind),
            tuple(self.alerts),
            tuple(self.unstated),
        )


class EventReader:
    """Turns a body into one ``Intent``, using the schedule's incident rules for CloudEvents."""

    def __init__(self, schedule: Schedule, now: datetime) -> None:
        self.schedule = schedule
        self.now = now

    def read(self, body: bytes | str | Mapping[str, Any] | list[Any]) -> Intent:
        """Every element must be understood; otherwise nothing happens."""
        items = decode_body(body)
        got = _Gathered(self.now)
        for index, item in enumerate(items):
            where = f"event[{index}]"
            result = self._one(item, where)
            if isinstance(result, TimerEvent):
                got.timer(result)
            else:
                self._other(result, where, got)
        return got.intent(body, len(items))

    def _other(self, result: Command | Hold | IncidentRelease | AlertsRead, where: str, got: _Gathered) -> None:
        """Anything but a timer: the modules of commands, CloudEvents and alerts load with the first."""
        from esa_scheduler.invocation.events.incidents import IncidentRelease
        from esa_scheduler.invocation.intake.sources.read import AlertsRead

        if isinstance(result, Hold | IncidentRelease):
            got.incident(result)
        elif isinstance(result, AlertsRead):
            got.alerted(result, self.schedule)
        else:
            self._apply(result, where, got)

    def _apply(self, command: Command, where: str, got: _Gathered) -> None:
        """A command's part of the intent; its target and its hold are checked against the schedule."""
        from esa_scheduler.invocation.events.commands import HoldCommand, ReconcileCommand, ReleaseCommand

        got.flags(command.dry_run, command.force)
        got.sources.append(f"command:{command.action}")
        if isinstance(command, ReconcileCommand):
            if command.at:
                got.at = parse_instant(command.at)
                got.carried.append(utc_iso(got.at))
            got.target = self._target(command.target, f"{where}.target") or got.target
            got.touched.extend(command.touched)
        elif isinstance(command, HoldCommand):
            got.holds.append(self._hold(command, where))
            if command.id is not None:
                got.carried.append(command.id)
        elif isinstance(command, ReleaseCommand):
            if command.id is not None:
                got.release_ids.append(command.id)
                got.carried.append(command.id)
            else:
                got.release_tasks.extend(command.tasks or ())

    def _target(self, name: str | None, where: str) -> str | None:
        problem = unknown_target(name, self.schedule.targets)
        if problem is not None:
            raise EventError(f"{where}: {problem}")
        return name

    def _one(self, item: dict[str, Any], where: str) -> TimerEvent | Command | Hold | IncidentRelease | AlertsRead:
        try:
            if "triggerTime" in item:
                return TimerEvent.model_validate(item)
            from esa_scheduler.invocation.events.incidents import CloudEvent

            if "specversion" in item:
                envelope = CloudEvent.model_validate(item)
                data = envelope.data
                if isinstance(data, dict) and "action" in data:
                    return self._command(data, f"{where}.data")
                return self._cloudevent(envelope, where)
            if "action" in item:
                return self._command(item, where)
        except ValidationError as exc:
            raise EventError(f"{where}.{first_problem(exc)}") from exc
        from esa_scheduler.invocation.events.alerts import raw_alert_source
        from esa_scheduler.invocation.intake.sources.read import read_alerts

        source = raw_alert_source(item)
        if source is not None:  # an alert CloudEvent's bare data: FC's raw-data delivery
            return read_alerts(source, item, where)
        raise EventError(
            f"{where}: not a timer event (triggerTime), a command (action), a CloudEvent (specversion) "
            "or an alert's data (alertName, alert_name)"
        )

    def _command(self, item: dict[str, Any], where: str) -> Command:
        from esa_scheduler.invocation.events.commands import COMMANDS

        action = item.get("action")
        model = COMMANDS.get(action) if isinstance(action, str) else None
        if model is None:
            raise EventError(f"{where}.action: unknown action {action!r} (expected reconcile, hold or release)")
        try:
            return model.model_validate(item)
        except ValidationError as exc:
            raise EventError(f"{where}.{first_problem(exc)}") from exc

    def _cloudevent(self, event: CloudEvent, where: str) -> Hold | IncidentRelease | AlertsRead:
        """A ``match:`` rule's CloudEvent, as before ``alert:`` rules existed; else an alert source's
        event, normalized for the ``alert:`` rules (one that none takes is logged and ignored)."""
        from esa_scheduler.invocation.events.alerts import ALERT_EVENT_TYPES
        from esa_scheduler.invocation.intake.sources.read import read_alerts

        matched = self._incident(event)
        if matched is not None:
            return matched
        source = ALERT_EVENT_TYPES.get(event.type)
        if source is not None:
            return read_alerts(source, event.data, f"{where}.data")
        raise EventError(f"{where}: CloudEvent type {event.type!r} from {event.source!r} matches no incident rule")

    def _incident(self, event: CloudEvent) -> Hold | IncidentRelease | None:
        from esa_scheduler.invocation.events.incidents import (
            IncidentRelease,
            event_matches,
            incident_hold_id,
            release_spec,
        )

        for rule in self.schedule.incidents:
            if rule.match is not None and event_matches(rule.match, event):
                return Hold(
                    id=incident_hold_id(rule),
                    tasks=rule.selectors,
                    status=rule.status,
                    reason=f"incident rule {rule.name}: {event.type} {event.id}",
                    by=event.source,
                    created_at=self.now,
                    expires_at=self.now + rule.ttl,
                    targets=rule.targets,
                )
            release = release_spec(rule)
            if release is not None and event_matches(release, event):
                return IncidentRelease(incident_hold_id(rule))
        return None

    def _hold(self, command: HoldCommand, where: str) -> Hold:
        if command.ttl is not None:
            expires = self.now + parse_duration(command.ttl)
        else:
            assert command.until is not None
            expires = parse_instant(command.until)
        if expires <= self.now:
            raise EventError(f"{where}.until: {command.until} is not in the future")
        unmanaged = [s for s in command.tasks if not self.schedule.selector_may_match(s)]
        if unmanaged:
            close = [m for s in unmanaged for m in close_matches(s, self.schedule.task_entries)]
            raise EventError(
                f"{where}.tasks: {', '.join(map(repr, unmanaged))} select(s) no managed task{close_hint(close)}"
            )
        problems: list[str] = []
        targets = check_target_selectors(command.targets, where, self.schedule.targets, problems)
        if problems:
            raise EventError(problems[0])
        return Hold(
            id=command.id or new_hold_id(),
            tasks=tuple(command.tasks),
            status=command.status,
            reason=command.reason,
            by=command.by,
            created_at=self.now,
            expires_at=expires,
            targets=targets,
        )
