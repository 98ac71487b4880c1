"""Incoming events -> intents: reconcile at an instant, create a hold, release holds."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from esa_scheduler.engine.holds import Hold, new_hold_id
from esa_scheduler.engine.schedule.model import Schedule
from esa_scheduler.engine.targets import check_target_selectors, unknown_target
from esa_scheduler.errors import EventError, first_problem
from esa_scheduler.invocation.events.body import decode_body, delivery_identity
from esa_scheduler.invocation.events.incidents import event_matches, incident_hold_id, release_spec
from esa_scheduler.invocation.events.models import (
    COMMANDS,
    CloudEvent,
    Command,
    HoldCommand,
    IncidentRelease,
    Intent,
    ReconcileCommand,
    ReleaseCommand,
    TimerEvent,
)
from esa_scheduler.timeutil import parse_duration, parse_instant, utc_iso


class EventReader:
    """Turns a body into one ``Intent``, using the schedule's incident rules for CloudEvents."""

    def __init__(self, schedule: Schedule, now: datetime) -> None:
        self.schedule = schedule
        self.now = now

    def read(self, body: bytes | str | Mapping[str, Any] | list[Any]) -> Intent:
        """Every element must be understood; otherwise nothing happens."""
        at, dry_run, force = self.now, False, False
        holds: list[Hold] = []
        release_ids: list[str] = []
        release_tasks: list[str] = []
        sources: list[str] = []
        target: str | None = None
        touched: list[str] = []
        carried: list[str] = []
        timers: list[TimerEvent] = []
        items = decode_body(body)
        for index, item in enumerate(items):
            where = f"event[{index}]"
            result = self._one(item, where)
            if isinstance(result, TimerEvent):
                at = parse_instant(result.triggerTime)
                options = result.options()
                dry_run, force = dry_run or options.dry_run, force or options.force
                sources.append(f"timer:{result.triggerName or 'timer'}")
                timers.append(result)
                continue
            if isinstance(result, Hold):
                holds.append(result)
                sources.append(f"incident:{result.id}")
                carried.append(result.id)
                continue
            if isinstance(result, IncidentRelease):
                release_ids.append(result.hold_id)
                sources.append(f"incident:{result.hold_id}")
                carried.append(result.hold_id)
                continue
            dry_run, force = dry_run or result.dry_run, force or result.force
            sources.append(f"command:{result.action}")
            if isinstance(result, ReconcileCommand):
                if result.at:
                    at = parse_instant(result.at)
                    carried.append(utc_iso(at))
                target = self._target(result.target, f"{where}.target") or target
                touched.extend(result.touched)
            elif isinstance(result, HoldCommand):
                holds.append(self._hold(result, where))
                if result.id is not None:
                    carried.append(result.id)
            elif isinstance(result, ReleaseCommand):
                if result.id is not None:
                    release_ids.append(result.id)
                    carried.append(result.id)
                else:
                    release_tasks.extend(result.tasks or ())
        lone_timer = timers[0] if len(items) == 1 and timers else None
        kind = "-".join(sorted({source.split(":", 1)[0] for source in sources}))
        return Intent(
            at,
            dry_run,
            force,
            tuple(holds),
            tuple(release_ids),
            tuple(release_tasks),
            tuple(sources),
            target,
            tuple(touched),
            delivery_identity(body, lone_timer, carried, kind),
        )

    def _target(self, name: str | None, where: str) -> str | None:
        problem = unknown_target(name, self.schedule.targets)
        if problem is not None:
            raise EventError(f"{where}: {problem}")
        return name

    def _one(self, item: dict[str, Any], where: str) -> TimerEvent | Command | Hold | IncidentRelease:
        try:
            if "triggerTime" in item:
                return TimerEvent.model_validate(item)
            if "specversion" in item:
                envelope = CloudEvent.model_validate(item)
                data = envelope.data
                if isinstance(data, dict) and "action" in data:
                    return self._command(data, f"{where}.data")
                return self._incident(envelope, where)
            if "action" in item:
                return self._command(item, where)
        except ValidationError as exc:
            raise EventError(f"{where}.{first_problem(exc)}") from exc
        raise EventError(f"{where}: not a timer event (triggerTime), a command (action) or a CloudEvent (specversion)")

    def _command(self, item: dict[str, Any], where: str) -> Command:
        action = item.get("action")
        model = COMMANDS.get(action) if isinstance(action, str) else None
        if model is None:
            raise EventError(f"{where}.action: unknown action {action!r} (expected reconcile, hold or release)")
        try:
            return model.model_validate(item)
        except ValidationError as exc:
            raise EventError(f"{where}.{first_problem(exc)}") from exc

    def _incident(self, event: CloudEvent, where: str) -> Hold | IncidentRelease:
        for rule in self.schedule.incidents:
            if event_matches(rule.match, event):
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
        raise EventError(f"{where}: CloudEvent type {event.type!r} from {event.source!r} matches no incident rule")

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
            raise EventError(f"{where}.tasks: {', '.join(map(repr, unmanaged))} select(s) no managed task")
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
