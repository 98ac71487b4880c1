"""Turning validated specs into the ``Schedule``: names unique across files, selectors that select,
settings given once, and every problem recorded rather than raised."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from datetime import timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from esa_scheduler.engine.calendars.resolve import resolve_calendars
from esa_scheduler.engine.calendars.spec import CalendarSpec
from esa_scheduler.engine.schedule.model import (
    UTC_ZONE,
    DingTalkSettings,
    Expectation,
    IncidentRule,
    IntakeSettings,
    NotifyTarget,
    Safety,
    Schedule,
    ScheduleTarget,
    TaskRule,
    Window,
)
from esa_scheduler.engine.schedule.resolve_windows import read_duration, resolve_window, zone_or_utc
from esa_scheduler.engine.schedule.spec import (
    ExpectSpec,
    IncidentSpec,
    IntakeSpec,
    NotifySpec,
    SafetySpec,
    ScheduleFileSpec,
    TargetSpec,
    TaskSpec,
    WindowSpec,
)
from esa_scheduler.engine.selectors import is_glob
from esa_scheduler.engine.targets import applies_to_target, check_target_selectors, resolve_target, unknown_target
from esa_scheduler.timeutil import zone

if TYPE_CHECKING:
    from esa_scheduler.engine.calendars.dates import Calendar


@dataclass(frozen=True)
class ParsedFile:
    """One file's settings, and each list entry that validated, with its index for messages."""

    file: str
    spec: ScheduleFileSpec
    tasks: list[tuple[int, TaskSpec]]
    windows: list[tuple[int, WindowSpec]]
    incidents: list[tuple[int, IncidentSpec]]
    notify: list[tuple[int, NotifySpec]]
    targets: list[tuple[int, TargetSpec]]
    expect: list[tuple[int, ExpectSpec]]
    calendars: dict[str, CalendarSpec | None]


@dataclass
class _Entries:
    """The windows, incident rules and notify targets of the files read so far, and the names they took
    (names are unique across files)."""

    probe: Schedule
    """The task entries alone, which the other entries' selectors must select."""
    targets: tuple[ScheduleTarget, ...]
    calendars: dict[str, Calendar | None]
    windows: list[Window] = field(default_factory=list)
    incidents: list[IncidentRule] = field(default_factory=list)
    notify: list[NotifyTarget] = field(default_factory=list)
    seen_windows: dict[str, str] = field(default_factory=dict)
    seen_incidents: dict[str, str] = field(default_factory=dict)
    seen_notify: dict[str, str] = field(default_factory=dict)


def resolve(parsed: list[ParsedFile], problems: list[str]) -> Schedule | None:
    """The merged ``Schedule``, or ``None`` once any problem is recorded: every check runs, so one pass
    reports them all."""
    targets = _resolve_targets(parsed, problems)
    tasks: list[TaskRule] = []
    seen_tasks: dict[tuple[str, int | None, str | None], str] = {}
    for pf in parsed:
        tasks.extend(_resolve_tasks(pf, problems, seen_tasks, targets))
    probe = Schedule(tasks=tuple(tasks), windows=())
    calendars = resolve_calendars(((pf.file, pf.calendars) for pf in parsed), problems)
    found = _Entries(probe, targets, calendars)
    for pf in parsed:
        file_tz = zone_or_utc(pf.spec.timezone, f"{pf.file}: timezone", problems)
        _add_windows(pf, file_tz, found, problems)
        _add_incidents(pf, found, problems)
        _add_notify(pf, file_tz, found, problems)
    expectations = tuple(Expectation(pf.file, i, e) for pf in parsed for i, e in pf.expect)
    for expectation in expectations:
        _check_expect_target(expectation, targets, problems)
    tick_file, tick = _single_setting(parsed, "tick", problems)
    _, safety = _single_setting(parsed, "safety", problems)
    intake_file, intake = _single_setting(parsed, "intake", problems)
    tick_delta = read_duration(tick, f"{tick_file}: tick", problems) if isinstance(tick, str) else None
    if problems:
        return None
    return Schedule(
        tasks=tuple(tasks),
        windows=tuple(found.windows),
        incidents=tuple(found.incidents),
        tick=tick_delta or timedelta(minutes=1),
        safety=Safety(safety.max_changes, safety.max_change_ratio) if isinstance(safety, SafetySpec) else Safety(),
        files=tuple(pf.file for pf in parsed),
        timezone=next((zone(pf.spec.timezone) for pf in parsed if "timezone" in pf.spec.model_fields_set), UTC_ZONE),
        expectations=expectations,
        notify=tuple(found.notify),
        targets=targets,
        intake=_intake(intake, intake_file) if isinstance(intake, IntakeSpec) else None,
    )


def _intake(spec: IntakeSpec, file: str) -> IntakeSettings:
    dingtalk = spec.dingtalk
    chat = None
    if dingtalk is not None:
        rooms = frozenset(dingtalk.allow_conversations) if dingtalk.allow_conversations is not None else None
        chat = DingTalkSettings(dingtalk.app_secret_env, frozenset(dingtalk.allow_senders), rooms)
    return IntakeSettings(spec.token_env, chat, file)


def _add_windows(pf: ParsedFile, file_tz: ZoneInfo, found: _Entries, problems: list[str]) -> None:
    for index, window in pf.windows:
        where = f"{pf.file}: windows[{index}] ({window.name})"
        _check_unique(window.name, where, found.seen_windows, problems)
        _check_selectors(window.tasks, where, found.probe, problems)
        on = check_target_selectors(window.targets, where, found.targets, problems)
        resolved = resolve_window(window, file_tz, pf.file, found.calendars, where, problems)
        if resolved is not None:
            found.windows.append(replace(resolved, targets=on))


def _add_incidents(pf: ParsedFile, found: _Entries, problems: list[str]) -> None:
    for index, rule in pf.incidents:
        where = f"{pf.file}: incidents[{index}] ({rule.name})"
        _check_unique(rule.name, where, found.seen_incidents, problems)
        _check_selectors(rule.tasks, where, found.probe, problems)
        kind_ok = _check_incident_kind(rule, where, problems)
        on = check_target_selectors(rule.targets, where, found.targets, problems)
        ttl = read_duration(rule.ttl, f"{where}.ttl", problems)
        cooldown = read_duration(rule.cooldown, f"{where}.cooldown", problems) if rule.cooldown is not None else None
        if ttl is not None and kind_ok:
            found.incidents.append(
                IncidentRule(
                    rule.name,
                    rule.match,
                    tuple(rule.tasks),
                    rule.status,
                    ttl,
                    rule.release_on,
                    pf.file,
                    on,
                    alert=rule.alert,
                    cooldown=cooldown,
                )
            )


def _check_incident_kind(rule: IncidentSpec, where: str, problems: list[str]) -> bool:
    """A rule reads CloudEvents (``match``, ended by ``release_on``) or alerts (``alert``, ended by their
    resolve, after ``cooldown``): exactly one kind, and only that kind's fields."""
    if (rule.match is None) == (rule.alert is None):
        reported = any(p.startswith((f"{where}.match", f"{where}.alert")) for p in problems)  # and dropped
        if not reported:
            problems.append(f"{where}: give exactly one of 'match' (a CloudEvent) or 'alert' (an alert from a source)")
        return False
    if rule.alert is not None and rule.release_on is not None:
        problems.append(f"{where}.release_on: applies to 'match' rules; an 'alert' rule ends with the alert's resolve")
        return False
    if rule.match is not None and rule.cooldown is not None:
        problems.append(f"{where}.cooldown: applies to 'alert' rules only (a 'match' rule ends with 'release_on')")
        return False
    return True


def _add_notify(pf: ParsedFile, file_tz: ZoneInfo, found: _Entries, problems: list[str]) -> None:
    for index, entry in pf.notify:
        where = f"{pf.file}: notify[{index}] ({entry.name})"
        _check_unique(entry.name, where, found.seen_notify, problems)
        _check_selectors(entry.tasks, where, found.probe, problems)
        for i, selector in enumerate(entry.tasks):
            if is_glob(selector) and not found.probe.selector_may_match(selector):
                problems.append(f"{where}.tasks[{i}]: {selector!r} matches no managed task")
        found.notify.append(NotifyTarget(entry, file_tz, pf.file))


def _check_expect_target(expectation: Expectation, targets: tuple[ScheduleTarget, ...], problems: list[str]) -> None:
    """An expectation's ``target`` must name a declared target (one name: it pins one target's plan)."""
    name = expectation.spec.target
    if name is None:
        return
    where = f"{expectation.file}: expect[{expectation.index}].target"
    if not targets:
        problems.append(f"{where}: no targets are declared (add a top-level 'targets:' list first)")
    elif (problem := unknown_target(name, targets)) is not None:
        problems.append(f"{where}: {problem}")


def _resolve_targets(parsed: list[ParsedFile], problems: list[str]) -> tuple[ScheduleTarget, ...]:
    """``targets:`` from every file; names are unique across files, like windows."""
    targets: list[ScheduleTarget] = []
    seen: dict[str, str] = {}
    for pf in parsed:
        for index, spec in pf.targets:
            where = f"{pf.file}: targets[{index}] ({spec.name})"
            _check_unique(spec.name, where, seen, problems)
            target = resolve_target(spec, pf.file, where, problems)
            if target is not None:
                targets.append(target)
    return tuple(targets)


def _resolve_tasks(
    pf: ParsedFile,
    problems: list[str],
    seen: dict[tuple[str, int | None, str | None], str],
    targets: tuple[ScheduleTarget, ...],
) -> Iterator[TaskRule]:
    file, spec = pf.file, pf.spec
    for index, task in pf.tasks:
        label = task.name or task.pattern
        where = f"{file}: tasks[{index}]" + (f" ({label})" if label else "")
        if (task.name is None) == (task.pattern is None):
            problems.append(f"{where}: give exactly one of 'name' or 'pattern'")
            continue
        if task.name is not None and is_glob(task.name):
            problems.append(f"{where}.name: {task.name!r} has wildcards; use 'pattern' for globs")
            continue
        on = check_target_selectors(task.targets, where, targets, problems)
        label_key = task.name or task.pattern or ""
        # the same task may have one entry per target: it is duplicated only where targets overlap
        scope: list[str | None] = [t.name for t in targets if applies_to_target(on, t.name)] or [None]
        identities = [(label_key, task.site_id, target) for target in scope]
        clash = next((i for i in identities if i in seen), None)
        if clash is not None:
            problems.append(f"{where}: duplicate task entry {label_key!r} (also {seen[clash]})")
            continue
        seen.update(dict.fromkeys(identities, where))
        yield TaskRule(
            name=task.name,
            pattern=task.pattern,
            site_id=task.site_id,
            default_status=task.default_status or spec.default_status,
            mode=task.mode or spec.mode,
            origin=file,
            targets=on,
        )


def _check_unique(name: str, where: str, seen: dict[str, str], problems: list[str]) -> None:
    if name in seen:
        problems.append(f"{where}.name: duplicate name {name!r} (also in {seen[name]})")
    else:
        seen[name] = where


def _check_selectors(selectors: Iterable[str], where: str, probe: Schedule, problems: list[str]) -> None:
    for i, selector in enumerate(selectors):
        if not isinstance(selector, str) or not selector:
            problems.append(f"{where}.tasks[{i}]: empty task selector")
        elif not is_glob(selector) and not probe.is_managed_name(selector):
            problems.append(f"{where}.tasks[{i}]: {selector!r} is not a managed task (add it under 'tasks:' first)")


def _single_setting(parsed: list[ParsedFile], key: str, problems: list[str]) -> tuple[str, Any]:
    """Schedule-wide settings may be written in any one file, or repeated with the same value.

    Returns the file that sets it (for messages) and the value, or ``("", None)``."""
    values = {(pf.file, repr(getattr(pf.spec, key))): getattr(pf.spec, key) for pf in parsed}
    present = [(file, value) for (file, _), value in values.items() if value is not None]
    if len({repr(v) for _, v in present}) > 1:
        files = ", ".join(file for file, _ in present)
        problems.append(f"{files}: {key}: set to different values; set it in one file")
        return "", None
    return present[0] if present else ("", None)
