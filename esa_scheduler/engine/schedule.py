"""The schedule: YAML files under ``schedule/`` turned into one validated, immutable model.

Loading is strict on purpose (unknown keys are typos, not extensions) and reports every problem
at once, each on one line that names the file, the entry and the field, so an operator can fix a
schedule in one pass. The resolved model carries aware instants and ``ZoneInfo`` objects only.
"""

from __future__ import annotations

import difflib
import fnmatch
import os
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any, Generic, Literal, TypeVar
from zoneinfo import ZoneInfo

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from esa_scheduler import config
from esa_scheduler.engine.calendars import Calendar, CalendarSpec, IcsCalendar, reject_date_times, resolve_calendars
from esa_scheduler.engine.cron import CronExpr, wall_to_instant
from esa_scheduler.engine.targets import (
    ScheduleTarget,
    TargetSpec,
    applies_to_target,
    check_target_selectors,
    resolve_target,
    unknown_target,
)
from esa_scheduler.errors import ScheduleError
from esa_scheduler.invocation.notify.model import NotifySpec, NotifyTarget
from esa_scheduler.timeutil import UTC, in_range, parse_datetime, parse_duration, parse_instant, zone

Status = Literal["online", "offline"]
Mode = Literal["enforce", "transitions"]
MAX_FILE_BYTES = 1024 * 1024
UTC_ZONE = zone("UTC")


class _ScheduleLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """The safe loader (libyaml's when available: faster, leaner), reporting bad dates by value and line."""


def _timestamp(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> Any:
    try:
        return loader.construct_yaml_timestamp(node)
    except ValueError as exc:
        message = f"invalid date {node.value!r}: {exc}"
        raise yaml.constructor.ConstructorError(None, None, message, node.start_mark) from exc


_ScheduleLoader.add_constructor("tag:yaml.org,2002:timestamp", _timestamp)
GLOB_CHARS = frozenset("*?[")
T = TypeVar("T")


def is_glob(selector: str) -> bool:
    """A selector with shell wildcards matches names; any other selector is an exact name."""
    return any(c in GLOB_CHARS for c in selector)


def selector_matches(selector: str, name: str) -> bool:
    """Case-sensitive match, because ESA task names are case-sensitive."""
    return fnmatch.fnmatchcase(name, selector) if is_glob(selector) else selector == name


class SelectorIndex(Generic[T]):
    """Which values' selectors match a name, without trying every selector on every name.

    Exact names are a dict lookup and ``prefix*`` globs (the common case) a lookup per distinct
    prefix length; only other globs fall back to matching one by one.
    """

    def __init__(self, entries: Iterable[tuple[str, T]]) -> None:
        self._exact: dict[str, list[T]] = {}
        self._prefixes: dict[int, dict[str, list[T]]] = {}
        self._globs: list[tuple[re.Pattern[str], T]] = []
        for selector, value in entries:
            head = selector[:-1]
            if not is_glob(selector):
                self._exact.setdefault(selector, []).append(value)
            elif selector.endswith("*") and not is_glob(head):
                self._prefixes.setdefault(len(head), {}).setdefault(head, []).append(value)
            else:
                self._globs.append((re.compile(fnmatch.translate(selector)), value))

    def lookup(self, name: str) -> list[T]:
        """Every value whose selector matches ``name``, in insertion order, without repeats."""
        found = list(self._exact.get(name, ()))
        for length, table in self._prefixes.items():
            if len(name) >= length:
                found.extend(table.get(name[:length], ()))
        found.extend(value for pattern, value in self._globs if pattern.match(name))
        return list(dict.fromkeys(found))


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TaskSpec(_Strict):
    """One managed task entry: an exact ``name`` or a ``pattern`` over the names ESA lists."""

    name: str | None = Field(default=None, min_length=1)
    pattern: str | None = Field(default=None, min_length=1)
    site_id: int | None = None
    default_status: Status | None = None
    mode: Mode | None = None
    targets: list[str] | None = None


class WindowSpec(_Strict):
    """A recurring (``cron`` + ``duration``/``end_cron``), one-off (``start`` + ``end``) or ICS
    (``calendar``: every event is an occurrence) window; ``skip``/``only_on`` name calendars."""

    name: str = Field(min_length=1)
    tasks: list[str] = Field(min_length=1)
    status: Status = "offline"
    priority: int = 0
    cron: str | None = None
    duration: str | None = None
    end_cron: str | None = None
    timezone: str | None = None
    skip_dates: list[date] = Field(default_factory=list)
    skip: list[str] = Field(default_factory=list)
    only_on: list[str] = Field(default_factory=list)
    calendar: str | None = Field(default=None, min_length=1)
    summary: str | None = Field(default=None, min_length=1)
    active_from: date | None = None
    active_until: date | None = None
    start: datetime | None = None
    end: datetime | None = None
    targets: list[str] | None = None

    @field_validator("start", "end", mode="before")
    @classmethod
    def _iso(cls, value: Any) -> Any:
        return parse_datetime(value) if isinstance(value, str) else value

    @field_validator("skip_dates", "active_from", "active_until", mode="before")
    @classmethod
    def _dates_not_datetimes(cls, value: Any) -> Any:
        return reject_date_times(value)


class MatchSpec(_Strict):
    """What an incident rule looks for in a CloudEvent: globs on string fields, nested ``data``."""

    type: str | None = None
    source: str | None = None
    subject: str | None = None
    data: dict[str, Any] = Field(default_factory=dict)


class IncidentSpec(_Strict):
    """Maps a matching CloudEvent to a hold (and optionally another one to its release)."""

    name: str = Field(min_length=1)
    match: MatchSpec
    tasks: list[str] = Field(min_length=1)
    status: Status = "offline"
    ttl: str
    release_on: MatchSpec | None = None
    targets: list[str] | None = None


class SafetySpec(_Strict):
    """Limits that stop a run from changing too much at once (a bad schedule, a wrong inventory)."""

    max_changes: int | None = Field(default=None, ge=0)
    max_change_ratio: float | None = Field(default=None, ge=0, le=1)


class ExpectSpec(_Strict):
    """A claim about the schedule alone, checked by ``validate``: at ``at``, ``task`` is ``desired``.

    ``site_id`` and ``target`` narrow it to one site or one fleet target; left out, it must hold
    for every managed task of that name (user-level or on any site, on every target managing it).
    """

    at: datetime
    task: str = Field(min_length=1)
    desired: Status
    source: str | None = Field(default=None, min_length=1)
    site_id: int | None = None
    target: str | None = Field(default=None, min_length=1)

    @field_validator("at", mode="before")
    @classmethod
    def _instant(cls, value: Any) -> Any:
        """Like ``--at``: an instant needs an offset or Z (a wall time can be ambiguous around DST).

        YAML reads an unquoted ``2027-03-28T03:15:00`` as a datetime and ``2027-03-28`` as a date;
        both are named back in ISO form, as written, never as Python objects."""
        if isinstance(value, datetime):
            if value.tzinfo is None:
                raise ValueError(f"date-time {value.isoformat()!r} needs an offset or Z")
            return in_range(value, value.isoformat()).astimezone(UTC)
        if isinstance(value, date):
            raise ValueError(f"{value.isoformat()!r} is a date; an instant needs a time and an offset or Z")
        return parse_instant(value if isinstance(value, str) else str(value))


class ScheduleFileSpec(_Strict):
    """The top level of one schedule file."""

    version: Literal[1] = 1
    timezone: str = "UTC"
    default_status: Status = "online"
    mode: Mode = "enforce"
    tick: str | None = None
    safety: SafetySpec | None = None
    calendars: dict[str, CalendarSpec] = Field(default_factory=dict)
    tasks: list[TaskSpec] = Field(default_factory=list)
    windows: list[WindowSpec] = Field(default_factory=list)
    incidents: list[IncidentSpec] = Field(default_factory=list)
    expect: list[ExpectSpec] = Field(default_factory=list)
    notify: list[NotifySpec] = Field(default_factory=list)
    targets: list[TargetSpec] = Field(default_factory=list, json_schema_extra={"minItems": 1})
    """An empty list is refused when the file is read (``_parse_file``); the schema tells editors the same."""

    @field_validator("version", mode="before")
    @classmethod
    def _exactly_one(cls, value: Any) -> Any:
        if isinstance(value, bool):
            raise ValueError("version must be 1")
        return value


@dataclass(frozen=True)
class TaskRule:
    """A resolved task entry; ``default_status`` already falls back to its file's default."""

    name: str | None
    pattern: str | None
    site_id: int | None
    default_status: Status
    mode: Mode
    origin: str
    targets: tuple[str, ...] = ()


@dataclass(frozen=True)
class Window:
    """A resolved window: zone objects, elapsed durations and UTC instants only."""

    name: str
    selectors: tuple[str, ...]
    status: Status
    priority: int
    tz: ZoneInfo
    origin: str
    cron: CronExpr | None = None
    duration: timedelta | None = None
    end_cron: CronExpr | None = None
    skip_dates: frozenset[date] = frozenset()
    skip: tuple[Calendar, ...] = ()
    only_on: tuple[Calendar, ...] = ()
    events: IcsCalendar | None = None
    summary: str | None = None
    active_from: date | None = None
    active_until: date | None = None
    start: datetime | None = None
    end: datetime | None = None
    targets: tuple[str, ...] = ()

    def selects(self, name: str) -> bool:
        """Whether this window applies to the task called ``name``."""
        return any(selector_matches(s, name) for s in self.selectors)


@dataclass(frozen=True)
class IncidentRule:
    """A resolved incident rule."""

    name: str
    match: MatchSpec
    selectors: tuple[str, ...]
    status: Status
    ttl: timedelta
    release_on: MatchSpec | None
    origin: str
    targets: tuple[str, ...] = ()


@dataclass(frozen=True)
class Safety:
    """Resolved safety limits (``None`` means no limit)."""

    max_changes: int | None = None
    max_change_ratio: float | None = None


@dataclass(frozen=True)
class Expectation:
    """An ``expect:`` entry with the file and index that ``validate`` names when it fails."""

    file: str
    index: int
    spec: ExpectSpec


@dataclass(frozen=True)
class Schedule:
    """Every file merged: the only input the planner needs besides the instant and the inventory."""

    tasks: tuple[TaskRule, ...]
    windows: tuple[Window, ...]
    incidents: tuple[IncidentRule, ...] = ()
    tick: timedelta = timedelta(minutes=1)
    safety: Safety = field(default_factory=Safety)
    files: tuple[str, ...] = ()
    expectations: tuple[Expectation, ...] = ()
    notify: tuple[NotifyTarget, ...] = ()
    targets: tuple[ScheduleTarget, ...] = ()
    timezone: ZoneInfo = UTC_ZONE
    """The schedule's zone, in which the views draw and describe it: that of the first file, in load
    order, that sets ``timezone:`` (the others' zones apply to their own windows), else UTC."""

    @property
    def explicit_tasks(self) -> tuple[TaskRule, ...]:
        """Task entries naming one task exactly (these are reported even when ESA lacks them)."""
        return tuple(t for t in self.tasks if t.name is not None)

    @property
    def task_entries(self) -> tuple[str, ...]:
        """Every task entry as written, a name or a pattern: what a mistyped task name is compared with."""
        return tuple(t.name or t.pattern or "" for t in self.tasks)

    def is_managed_name(self, name: str) -> bool:
        """Whether ``name`` is, or could be, a managed task (an explicit name or a pattern match)."""
        return any(t.name == name or (t.pattern and selector_matches(t.pattern, name)) for t in self.tasks)

    def selector_may_match(self, selector: str) -> bool:
        """Whether a hold or window selector can select any managed task (a glob may meet a pattern)."""
        if not is_glob(selector):
            return self.is_managed_name(selector)
        return any(
            (t.name is not None and selector_matches(selector, t.name))
            or (
                t.pattern is not None
                and (selector_matches(selector, t.pattern) or selector_matches(t.pattern, selector))
            )
            for t in self.tasks
        )


def schedule_files(path: str | os.PathLike[str]) -> list[Path]:
    """The files a ``--schedule`` argument names: one file, or every ``.yaml``/``.yml`` in a folder."""
    root = Path(path)
    if root.is_dir():
        files = sorted(p for p in root.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file())
        if not files:
            raise ScheduleError(f"{root}: no .yaml or .yml schedule files in this folder")
        return files
    if root.is_file():
        return [root]
    raise ScheduleError(f"{root}: schedule file or folder not found")


def default_schedule_path() -> str:
    """``ESA_SCHEDULE``, else ``schedule/``."""
    return config.env(config.SCHEDULE, config.DEFAULT_SCHEDULE) or config.DEFAULT_SCHEDULE


def load_schedule(path: str | os.PathLike[str] | None = None, *, expectations: bool = False) -> Schedule:
    """Read, validate and resolve a schedule; raise ``ScheduleError`` listing every problem.

    ``expect:`` entries are read only with ``expectations`` (``validate``): they are claims for
    review, so ``plan``, ``run`` and the handler skip them and a malformed one cannot stop a run.
    """
    files = schedule_files(path if path is not None else default_schedule_path())
    problems: list[str] = []
    parsed = [spec for spec in (_parse_file(file, problems, expectations) for file in files) if spec is not None]
    schedule = _resolve(parsed, problems)
    if problems or schedule is None:
        summary = f"{len(problems)} problem(s) in the schedule"
        raise ScheduleError(summary if len(problems) != 1 else problems[0], problems)
    return schedule


@dataclass(frozen=True)
class _ParsedFile:
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


_SECTIONS: dict[str, type[BaseModel]] = {
    "tasks": TaskSpec,
    "windows": WindowSpec,
    "incidents": IncidentSpec,
    "notify": NotifySpec,
    "targets": TargetSpec,
}


def _parse_file(file: Path, problems: list[str], expectations: bool) -> _ParsedFile | None:
    """Validate entry by entry, so one bad window does not hide the problems of the others."""
    try:
        size = file.stat().st_size
        if size > MAX_FILE_BYTES:
            problems.append(f"{file}: file too large ({size} bytes; the limit is {MAX_FILE_BYTES})")
            return None
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        problems.append(f"{file}: cannot read: {exc}")
        return None
    try:
        raw = yaml.load(text, Loader=_ScheduleLoader)
    except yaml.YAMLError as exc:
        problems.append(f"{file}: {_yaml_error(exc)}")
        return None
    except (ValueError, TypeError, IndexError, OverflowError, RecursionError) as exc:
        # PyYAML's constructors raise plain errors for values like 2027-02-30 or a bare !!int
        problems.append(f"{file}: YAML value could not be read: {exc or type(exc).__name__}")
        return None
    if raw is None:
        problems.append(f"{file}: the file is empty (expected a mapping with version: 1)")
        return None
    if not isinstance(raw, dict):
        problems.append(f"{file}: the top level must be a mapping, not {type(raw).__name__}")
        return None
    top = dict(raw)
    if not expectations:
        top.pop("expect", None)
    sections: dict[str, type[BaseModel]] = {**_SECTIONS, "expect": ExpectSpec} if expectations else _SECTIONS
    entries = {key: _validate_section(model, key, raw, top, file, problems) for key, model in sections.items()}
    if raw.get("targets") == []:
        # an empty fleet would manage nothing at all; without the key the function's own account is managed
        problems.append(f"{file}: targets: empty list; omit the key to use the function's own account")
    calendars = _validate_calendars(raw, top, file, problems)
    try:
        spec = ScheduleFileSpec.model_validate(top)
    except ValidationError as exc:
        problems.extend(f"{file}: {_describe(err, raw)}" for err in exc.errors())
        return None
    return _ParsedFile(
        str(file),
        spec,
        entries["tasks"],
        entries["windows"],
        entries["incidents"],
        entries["notify"],
        entries["targets"],
        entries.get("expect", []),
        calendars,
    )


def _validate_section(
    model: type[BaseModel], key: str, raw: dict[str, Any], top: dict[str, Any], file: Path, problems: list[str]
) -> list[tuple[int, Any]]:
    """The valid entries of the list ``raw[key]`` with their indexes; ``top`` keeps an empty list
    in its place, so the file's own model does not validate (and report) the entries again."""
    value = raw.get(key)
    if not isinstance(value, list):
        return []
    top[key] = []
    found = []
    for index, item in enumerate(value):
        entry = _validate_entry(model, item, (key, index), raw, file, problems)
        if entry is not None:
            found.append((index, entry))
    return found


def _validate_calendars(
    raw: dict[str, Any], top: dict[str, Any], file: Path, problems: list[str]
) -> dict[str, CalendarSpec | None]:
    """Each calendar on its own, so that one calendar's bad field hides no other problem; ``None`` for
    one that did not validate (its name stays defined: windows that name it are not told it is unknown).

    Unlike list entries, a calendar is not retried without its bad fields: without its ``dates``
    or ``country`` it would draw a misleading "give exactly one of" as well. Names that are not
    strings are left in ``top``, for the file model to report."""
    entries = raw.get("calendars")
    if not isinstance(entries, dict):
        return {}
    top["calendars"] = {name: item for name, item in entries.items() if not isinstance(name, str)}
    return {
        name: _validate_entry(CalendarSpec, item, ("calendars", name), raw, file, problems, retry=False)
        for name, item in entries.items()
        if isinstance(name, str)
    }


def _validate_entry(
    model: type[BaseModel],
    item: Any,
    prefix: tuple[str, int | str],
    raw: dict[str, Any],
    file: Path,
    problems: list[str],
    retry: bool = True,
) -> Any:
    """Validate one list (or map) entry; on field errors, report them and (with ``retry``) retry without
    those fields so the entry's other fields still get their semantic checks (the file is rejected
    either way)."""
    if not isinstance(item, dict):
        where = _location(prefix, raw)
        required = [name for name, info in model.model_fields.items() if info.is_required()]
        fields = f" with {', '.join(required)}" if required else ""
        problems.append(f"{file}: {where}: must be a mapping{fields} (got {_shown(item)})")
        return None
    try:
        return model.model_validate(item)
    except ValidationError as exc:
        errors = exc.errors()
    problems.extend(f"{file}: {_describe({**err, 'loc': (*prefix, *err['loc'])}, raw)}" for err in errors)
    if not retry:
        return None
    bad = {err["loc"][0] for err in errors if err["loc"]}
    try:
        return model.model_validate({k: v for k, v in item.items() if k not in bad})
    except ValidationError:
        return None


def _yaml_error(exc: yaml.YAMLError) -> str:
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
    return f"{where}YAML syntax error: {problem}"


_FIELD_NAMES: dict[str, tuple[str, ...]] = {
    "": tuple(ScheduleFileSpec.model_fields),
    "calendars": tuple(CalendarSpec.model_fields),
    "tasks": tuple(TaskSpec.model_fields),
    "windows": tuple(WindowSpec.model_fields),
    "incidents": tuple(IncidentSpec.model_fields),
    "notify": tuple(NotifySpec.model_fields),
    "safety": tuple(SafetySpec.model_fields),
    "match": tuple(MatchSpec.model_fields),
    "release_on": tuple(MatchSpec.model_fields),
    "expect": tuple(ExpectSpec.model_fields),
    "targets": tuple(TargetSpec.model_fields),
}


def _describe(err: Any, raw: dict[str, Any]) -> str:
    """Turn a pydantic error into ``windows[1] (nightly).cron: <problem> <value>``."""
    loc = tuple(err["loc"])
    where = _location(loc, raw)
    kind = err["type"]
    if kind == "extra_forbidden":
        key = str(loc[-1])
        parent = next((str(p) for p in reversed(loc[:-1]) if isinstance(p, str)), "")
        if loc[-3:-2] == ("calendars",):  # a map: the parent key is the calendar's name
            parent = "calendars"
        hint = difflib.get_close_matches(key, _FIELD_NAMES.get(parent, ()), n=1)
        suggestion = f" (did you mean '{hint[0]}'?)" if hint else ""
        return f"{where}: unknown key {key!r}{suggestion}"
    message = str(err["msg"]).removeprefix("Value error, ")
    if kind == "missing":
        return f"{where}: required field is missing"
    value = err.get("input")
    text = _shown(value)
    quoted = isinstance(value, (str, date)) and text in message  # the message already names it
    shown = f" (got {text})" if not isinstance(value, (dict, list)) and not quoted else ""
    return f"{where}: {message}{shown}"


def _shown(value: Any) -> str:
    """A value as the schedule wrote it: YAML's null and booleans, dates in ISO form, strings quoted."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, date):  # datetimes too
        return repr(value.isoformat())
    if isinstance(value, (dict, list)):
        return "a mapping" if isinstance(value, dict) else "a list"
    return repr(value)


def _location(loc: tuple[Any, ...], raw: dict[str, Any]) -> str:
    parts: list[str] = []
    node: Any = raw
    for item in loc:
        if isinstance(item, int):
            label = f"[{item}]"
            node = node[item] if isinstance(node, list) and item < len(node) else None
            if isinstance(node, dict) and isinstance(node.get("name"), str):
                label += f" ({node['name']})"
            parts.append(label)
        else:
            parts.append(("." if parts else "") + str(item))
            node = node.get(item) if isinstance(node, dict) else None
    return "".join(parts) or "(top level)"


def _resolve(parsed: list[_ParsedFile], problems: list[str]) -> Schedule | None:
    targets = _resolve_targets(parsed, problems)
    tasks: list[TaskRule] = []
    seen_tasks: dict[tuple[str, int | None, str | None], str] = {}
    for pf in parsed:
        tasks.extend(_resolve_tasks(pf, problems, seen_tasks, targets))
    probe = Schedule(tasks=tuple(tasks), windows=())
    windows: list[Window] = []
    calendars = resolve_calendars(((pf.file, pf.calendars) for pf in parsed), problems)
    incidents: list[IncidentRule] = []
    seen_windows: dict[str, str] = {}
    seen_incidents: dict[str, str] = {}
    seen_notify: dict[str, str] = {}
    notify_targets: list[NotifyTarget] = []
    for pf in parsed:
        file = pf.file
        file_tz = _zone(pf.spec.timezone, f"{file}: timezone", problems)
        for index, window in pf.windows:
            where = f"{file}: windows[{index}] ({window.name})"
            _check_unique(window.name, where, seen_windows, problems)
            _check_selectors(window.tasks, where, probe, problems)
            on = check_target_selectors(window.targets, where, targets, problems)
            resolved = _resolve_window(window, file_tz, file, calendars, where, problems)
            if resolved is not None:
                windows.append(replace(resolved, targets=on))
        for index, rule in pf.incidents:
            where = f"{file}: incidents[{index}] ({rule.name})"
            _check_unique(rule.name, where, seen_incidents, problems)
            _check_selectors(rule.tasks, where, probe, problems)
            on = check_target_selectors(rule.targets, where, targets, problems)
            ttl = _duration(rule.ttl, f"{where}.ttl", problems)
            if ttl is not None:
                incidents.append(
                    IncidentRule(rule.name, rule.match, tuple(rule.tasks), rule.status, ttl, rule.release_on, file, on)
                )
        for index, entry in pf.notify:
            where = f"{file}: notify[{index}] ({entry.name})"
            _check_unique(entry.name, where, seen_notify, problems)
            _check_selectors(entry.tasks, where, probe, problems)
            for i, selector in enumerate(entry.tasks):
                if is_glob(selector) and not probe.selector_may_match(selector):
                    problems.append(f"{where}.tasks[{i}]: {selector!r} matches no managed task")
            notify_targets.append(NotifyTarget(entry, file_tz, file))
    expectations = tuple(Expectation(pf.file, i, e) for pf in parsed for i, e in pf.expect)
    for expectation in expectations:
        _check_expect_target(expectation, targets, problems)
    tick_file, tick = _single_setting(parsed, "tick", problems)
    _, safety = _single_setting(parsed, "safety", problems)
    tick_delta = _duration(tick, f"{tick_file}: tick", problems) if isinstance(tick, str) else None
    if problems:
        return None
    return Schedule(
        tasks=tuple(tasks),
        windows=tuple(windows),
        incidents=tuple(incidents),
        tick=tick_delta or timedelta(minutes=1),
        safety=Safety(safety.max_changes, safety.max_change_ratio) if isinstance(safety, SafetySpec) else Safety(),
        files=tuple(pf.file for pf in parsed),
        timezone=next((zone(pf.spec.timezone) for pf in parsed if "timezone" in pf.spec.model_fields_set), UTC_ZONE),
        expectations=expectations,
        notify=tuple(notify_targets),
        targets=targets,
    )


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


def _resolve_targets(parsed: list[_ParsedFile], problems: list[str]) -> tuple[ScheduleTarget, ...]:
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
    pf: _ParsedFile,
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


def _single_setting(parsed: list[_ParsedFile], key: str, problems: list[str]) -> tuple[str, Any]:
    """Schedule-wide settings may be written in any one file, or repeated with the same value.

    Returns the file that sets it (for messages) and the value, or ``("", None)``."""
    values = {(pf.file, repr(getattr(pf.spec, key))): getattr(pf.spec, key) for pf in parsed}
    present = [(file, value) for (file, _), value in values.items() if value is not None]
    if len({repr(v) for _, v in present}) > 1:
        files = ", ".join(file for file, _ in present)
        problems.append(f"{files}: {key}: set to different values; set it in one file")
        return "", None
    return present[0] if present else ("", None)


def _duration(text: str, where: str, problems: list[str]) -> timedelta | None:
    try:
        return parse_duration(text)
    except ValueError as exc:
        problems.append(f"{where}: {exc}")
        return None


def _cron(text: str, where: str, problems: list[str]) -> CronExpr | None:
    try:
        return CronExpr.parse(text)
    except ValueError as exc:
        problems.append(f"{where}: {exc}")
        return None


def _zone(name: str, where: str, problems: list[str]) -> ZoneInfo:
    """Resolve a zone, recording a problem and carrying on in UTC so later checks still run."""
    try:
        return zone(name)
    except ValueError as exc:
        problems.append(f"{where}: {exc}")
        return zone("UTC")


def _resolve_window(
    window: WindowSpec,
    file_tz: ZoneInfo,
    file: str,
    calendars: dict[str, Calendar | None],
    where: str,
    problems: list[str],
) -> Window | None:
    before = len(problems)
    tz = _zone(window.timezone, f"{where}.timezone", problems) if window.timezone else file_tz
    base = Window(
        window.name,
        tuple(window.tasks),
        window.status,
        window.priority,
        tz,
        file,
        skip=_calendar_refs(window.skip, calendars, f"{where}.skip", problems),
        only_on=_calendar_refs(window.only_on, calendars, f"{where}.only_on", problems),
    )
    kinds = {
        "'cron' (recurring)": window.cron is not None,
        "'start'/'end' (one-off)": window.start is not None or window.end is not None,
        "'calendar' (ICS events)": window.calendar is not None,
    }
    chosen = [kind for kind, present in kinds.items() if present]
    if len(chosen) > 1:
        problems.append(f"{where}: give only one of {', '.join(chosen)}")
        return None
    if not chosen:
        problems.append(f"{where}: needs 'cron' with 'duration' or 'end_cron', 'start' and 'end', or 'calendar'")
        return None
    if window.summary is not None and window.calendar is None:
        problems.append(f"{where}.summary: only applies to 'calendar' (ICS) windows")
    if window.cron is not None:
        resolved = _resolve_recurring(window, base, where, problems)
    elif window.calendar is not None:
        resolved = _resolve_events(window, base, calendars, where, problems)
    else:
        resolved = _resolve_one_off(window, base, where, problems)
    return resolved if len(problems) == before else None


def _calendar_refs(
    names: list[str], calendars: dict[str, Calendar | None], where: str, problems: list[str]
) -> tuple[Calendar, ...]:
    found = [_calendar_ref(name, calendars, f"{where}[{i}]", problems) for i, name in enumerate(names)]
    return tuple(c for c in found if c is not None)


def _calendar_ref(name: str, calendars: dict[str, Calendar | None], where: str, problems: list[str]) -> Calendar | None:
    """The calendar a window names; ``None`` for an unknown name (a problem) or for a calendar whose own
    problems were reported where it is defined (nothing more to say here)."""
    if name in calendars:
        return calendars[name]
    hint = difflib.get_close_matches(name, list(calendars), n=1)
    suggestion = f" (did you mean {hint[0]!r}?)" if hint else " (define it under 'calendars:')"
    problems.append(f"{where}: unknown calendar {name!r}{suggestion}")
    return None


def _resolve_events(
    window: WindowSpec, base: Window, calendars: dict[str, Calendar | None], where: str, problems: list[str]
) -> Window | None:
    assert window.calendar is not None
    extras = [k for k in ("duration", "end_cron") if getattr(window, k)]
    if extras:
        problems.append(f"{where}: {', '.join(extras)} do not apply to 'calendar' windows (events have their own ends)")
    _check_active_bounds(window, where, problems)
    calendar = _calendar_ref(window.calendar, calendars, f"{where}.calendar", problems)
    if calendar is not None and not isinstance(calendar, IcsCalendar):
        problems.append(f"{where}.calendar: {window.calendar!r} is not an ICS calendar (only 'ics:' ones have events)")
        return None
    return replace(
        base,
        events=calendar,
        summary=window.summary,
        skip_dates=frozenset(window.skip_dates),
        active_from=window.active_from,
        active_until=window.active_until,
    )


def _check_active_bounds(window: WindowSpec, where: str, problems: list[str]) -> None:
    if window.active_from and window.active_until and window.active_until < window.active_from:
        problems.append(f"{where}.active_until: {window.active_until} is before active_from {window.active_from}")


def _resolve_recurring(window: WindowSpec, base: Window, where: str, problems: list[str]) -> Window | None:
    assert window.cron is not None
    if (window.duration is None) == (window.end_cron is None):
        problems.append(f"{where}: give exactly one of 'duration' or 'end_cron' with 'cron'")
    cron = _cron(window.cron, f"{where}.cron", problems)
    duration = _duration(window.duration, f"{where}.duration", problems) if window.duration else None
    end_cron = _cron(window.end_cron, f"{where}.end_cron", problems) if window.end_cron else None
    _check_active_bounds(window, where, problems)
    return replace(
        base,
        cron=cron,
        duration=duration,
        end_cron=end_cron,
        skip_dates=frozenset(window.skip_dates),
        active_from=window.active_from,
        active_until=window.active_until,
    )


def _resolve_one_off(window: WindowSpec, base: Window, where: str, problems: list[str]) -> Window | None:
    extras = [
        k
        for k in ("duration", "end_cron", "skip_dates", "active_from", "active_until", "skip", "only_on")
        if getattr(window, k)
    ]
    if extras:
        problems.append(f"{where}: {', '.join(extras)} only apply to recurring (cron or calendar) windows")
    if window.start is None or window.end is None:
        missing = "start" if window.start is None else "end"
        problems.append(f"{where}.{missing}: a one-off window needs both 'start' and 'end'")
        return None
    start = _instant(window.start, base.tz, f"{where}.start", problems)
    end = _instant(window.end, base.tz, f"{where}.end", problems)
    if start is None or end is None or extras:
        return None
    if end <= start:
        problems.append(f"{where}.end: {window.end.isoformat()} is not after start {window.start.isoformat()}")
        return None
    return replace(base, start=start, end=end)


def _instant(value: datetime, tz: ZoneInfo, where: str, problems: list[str]) -> datetime | None:
    """Aware values are taken as written; naive ones are wall clock in the window's zone."""
    try:
        in_range(value, value.isoformat())
    except ValueError as exc:
        problems.append(f"{where}: {exc}")
        return None
    if value.tzinfo is not None:
        return value.astimezone(UTC)
    instant, kind = wall_to_instant(value, tz)
    if kind == "gap":
        problems.append(f"{where}: {value.isoformat()} does not exist in {tz.key} (skipped by a DST change)")
        return None
    if kind == "ambiguous":
        problems.append(f"{where}: {value.isoformat()} happens twice in {tz.key} (DST change); add an offset to choose")
        return None
    return instant
