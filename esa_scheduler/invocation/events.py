"""Incoming events -> intents: reconcile at an instant, create a hold, release holds.

FC hands the handler raw bytes: a timer trigger's JSON, a direct command, or a CloudEvents 1.0
envelope from EventBridge (one event or a batch). Every shape is a pydantic model, and anything
that is not exactly one of them is refused with the field it failed on, before anything changes.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from esa_scheduler.engine.schedule import IncidentRule, MatchSpec, Schedule, Status, selector_matches
from esa_scheduler.engine.targets import check_target_selectors, unknown_target
from esa_scheduler.errors import EventError, close_hint, close_matches, first_problem
from esa_scheduler.invocation.holds import Hold, check_hold_id, new_hold_id
from esa_scheduler.timeutil import parse_duration, parse_instant, utc_iso

MAX_EVENT_BYTES = 256 * 1024
MAX_DEPTH = 32


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Options(_Model):
    """Options a timer's ``payload`` or a command may carry."""

    dry_run: bool = False
    force: bool = False


class TimerEvent(_Model):
    """FC's timer trigger: evaluate the schedule at the trigger time."""

    triggerTime: str
    triggerName: str = ""
    payload: str = ""

    @field_validator("triggerTime")
    @classmethod
    def _instant(cls, value: str) -> str:
        parse_instant(value)
        return value

    def options(self) -> Options:
        """The payload is empty or JSON text with options."""
        if not self.payload.strip():
            return Options()
        try:
            return Options.model_validate_json(self.payload)
        except ValidationError as exc:
            raise EventError(f"timer payload: {first_problem(exc)}") from exc


class ReconcileCommand(_Model):
    """Bring every managed task to its desired state now (or at ``at``)."""

    action: Literal["reconcile"]
    at: str | None = None
    dry_run: bool = False
    force: bool = False
    target: str | None = Field(default=None, min_length=1)
    """One fleet target only (what an ``async`` fan-out dispatches); default: every target."""
    touched: list[str] = Field(default_factory=list)
    """Task selectors whose holds the dispatching event made or ended (transitions mode acts on them)."""

    @field_validator("at")
    @classmethod
    def _instant(cls, value: str | None) -> str | None:
        if value is not None:
            parse_instant(value)
        return value


class HoldCommand(_Model):
    """Hold tasks in a state until a TTL or an instant: incidents outrank every window."""

    action: Literal["hold"]
    tasks: list[str] = Field(min_length=1)
    status: Status = "offline"
    reason: str = Field(min_length=1)
    ttl: str | None = None
    until: str | None = None
    id: str | None = None
    by: str = ""
    targets: list[str] | None = Field(default=None, min_length=1)
    dry_run: bool = False
    force: bool = False

    @field_validator("ttl")
    @classmethod
    def _ttl(cls, value: str | None) -> str | None:
        if value is not None:
            parse_duration(value)
        return value

    @field_validator("until")
    @classmethod
    def _until(cls, value: str | None) -> str | None:
        if value is not None:
            parse_instant(value)
        return value

    @field_validator("id")
    @classmethod
    def _id(cls, value: str | None) -> str | None:
        return check_hold_id(value) if value is not None else None

    @model_validator(mode="after")
    def _one_expiry(self) -> HoldCommand:
        if (self.ttl is None) == (self.until is None):
            raise ValueError("give exactly one of 'ttl' or 'until' (no hold lasts forever)")
        return self


class ReleaseCommand(_Model):
    """End holds early, by id or by the tasks they apply to."""

    action: Literal["release"]
    id: str | None = None
    tasks: list[str] | None = Field(default=None, min_length=1)
    dry_run: bool = False
    force: bool = False

    @field_validator("id")
    @classmethod
    def _id(cls, value: str | None) -> str | None:
        return check_hold_id(value) if value is not None else None

    @model_validator(mode="after")
    def _one_selector(self) -> ReleaseCommand:
        if (self.id is None) == (self.tasks is None):
            raise ValueError("give exactly one of 'id' or 'tasks'")
        return self


class CloudEvent(BaseModel):
    """A CloudEvents 1.0 envelope (EventBridge adds its own extension attributes)."""

    model_config = ConfigDict(extra="allow", frozen=True)

    specversion: Literal["1.0"]
    id: str = Field(min_length=1)
    source: str = Field(min_length=1)
    type: str = Field(min_length=1)
    subject: str | None = None
    data: Any = None


Command = ReconcileCommand | HoldCommand | ReleaseCommand
_COMMANDS: dict[str, type[ReconcileCommand] | type[HoldCommand] | type[ReleaseCommand]] = {
    "reconcile": ReconcileCommand,
    "hold": HoldCommand,
    "release": ReleaseCommand,
}


@dataclass(frozen=True)
class IncidentRelease:
    """A CloudEvent that a rule's ``release_on`` matched: end that rule's hold."""

    hold_id: str


@dataclass(frozen=True)
class Intent:
    """What one invocation asks for, after every event in it was understood."""

    at: datetime
    dry_run: bool = False
    force: bool = False
    new_holds: tuple[Hold, ...] = ()
    release_ids: tuple[str, ...] = ()
    release_tasks: tuple[str, ...] = ()
    sources: tuple[str, ...] = field(default=())
    target: str | None = None
    touched: tuple[str, ...] = ()
    delivery: tuple[str, ...] = ()
    """What identifies the delivered event, whenever it is read (see ``delivery_identity``)."""


def _body_digest(body: bytes | str | Mapping[str, Any] | list[Any]) -> str:
    """SHA-256 of the body as received: FC redelivers the very same bytes when it retries an event.

    Bodies handed over already parsed (the CLI, tests) are digested in one canonical JSON form.
    """
    if isinstance(body, (bytes, bytearray)):
        raw = bytes(body)
    elif isinstance(body, str):
        raw = body.encode("utf-8", "surrogatepass")
    else:
        raw = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    return hashlib.sha256(raw).hexdigest()


def delivery_identity(
    body: bytes | str | Mapping[str, Any] | list[Any], timer: TimerEvent | None, carried: list[str], kind: str
) -> tuple[str, ...]:
    """The identity of one delivered event, so that a retried delivery and only it looks the same.

    A lone timer event is its trigger firing: ``triggerName``, ``triggerTime`` (as an instant) and the
    ``dry_run``/``force`` options of its payload, so a dry-run preview trigger firing at the same
    instant as the real one is a different event. Any other body is its digest as received (an FC or
    EventBridge retry redelivers it unchanged, while ``now`` moves on), after its ``kind`` and what
    it carries that an operator recognises (hold ids, ``at``); two different bodies never share it.
    """
    if timer is not None:
        options = timer.options()
        flags = [name for name, on in (("dry-run", options.dry_run), ("force", options.force)) if on]
        return ("timer", timer.triggerName, utc_iso(parse_instant(timer.triggerTime)), *flags)
    return (kind, *carried, _body_digest(body)[:16])


def _too_deep(value: Any) -> bool:
    """Iterative depth check, so a hostile body cannot exhaust the stack later on."""
    stack = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_DEPTH:
            return True
        children = node.values() if isinstance(node, dict) else node if isinstance(node, list) else ()
        stack.extend((child, depth + 1) for child in children)
    return False


def decode_body(body: bytes | str | Mapping[str, Any] | list[Any]) -> list[Any]:
    """FC passes bytes; tests and direct callers may pass text or parsed JSON."""
    if isinstance(body, (bytes, bytearray)):
        if len(body) > MAX_EVENT_BYTES:
            raise EventError(f"event: {len(body)} bytes is larger than the {MAX_EVENT_BYTES}-byte limit")
        try:
            body = body.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise EventError(f"event: not UTF-8 text ({exc.reason} at byte {exc.start})") from exc
    if isinstance(body, str):
        if not body.strip():
            raise EventError("event: the body is empty (expected a JSON object or a list of them)")
        try:
            body = json.loads(body)
        except RecursionError as exc:
            raise EventError(f"event: JSON nested deeper than {MAX_DEPTH} levels") from exc
        except json.JSONDecodeError as exc:
            raise EventError(f"event: not valid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno})") from exc
    if _too_deep(body):
        raise EventError(f"event: JSON nested deeper than {MAX_DEPTH} levels")
    items = body if isinstance(body, list) else [body]
    if not items:
        raise EventError("event: an empty list has nothing to do")
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            raise EventError(f"event[{index}]: expected a JSON object, got {type(item).__name__}")
    return items


def _glob_match(expected: Any, actual: Any) -> bool:
    if isinstance(expected, dict):
        return isinstance(actual, dict) and all(_glob_match(v, actual.get(k)) for k, v in expected.items())
    if isinstance(expected, str) and isinstance(actual, str):
        return selector_matches(expected, actual)
    return bool(expected == actual)


def _event_matches(spec: MatchSpec, event: CloudEvent) -> bool:
    fields = {"type": spec.type, "source": spec.source, "subject": spec.subject}
    for name, expected in fields.items():
        if expected is not None and not _glob_match(expected, getattr(event, name)):
            return False
    return not spec.data or _glob_match(spec.data, event.data)


def _release_spec(rule: IncidentRule) -> MatchSpec | None:
    """``release_on`` refines the rule's own match: same alert, other state."""
    if rule.release_on is None:
        return None
    merged = rule.match.model_dump()
    for key, value in rule.release_on.model_dump().items():
        if key == "data":
            merged["data"] = {**merged["data"], **value}
        elif value is not None:
            merged[key] = value
    return MatchSpec.model_validate(merged)


def incident_hold_id(rule: IncidentRule) -> str:
    """One hold per rule: a repeated alarm refreshes it instead of stacking copies."""
    return "inc-" + re.sub(r"[^A-Za-z0-9._-]", "-", rule.name)[:120]


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
        model = _COMMANDS.get(action) if isinstance(action, str) else None
        if model is None:
            raise EventError(f"{where}.action: unknown action {action!r} (expected reconcile, hold or release)")
        try:
            return model.model_validate(item)
        except ValidationError as exc:
            raise EventError(f"{where}.{first_problem(exc)}") from exc

    def _incident(self, event: CloudEvent, where: str) -> Hold | IncidentRelease:
        for rule in self.schedule.incidents:
            if _event_matches(rule.match, event):
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
            release = _release_spec(rule)
            if release is not None and _event_matches(release, event):
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
