"""The resolved schedule a planner reads: zone objects, elapsed durations and UTC instants only."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from esa_scheduler.engine.cron import CronExpr
from esa_scheduler.engine.schedule.spec import AlertSpec, ExpectSpec, MatchSpec, Mode, NotifySpec, Status
from esa_scheduler.engine.selectors import is_glob, selector_matches, selectors_overlap
from esa_scheduler.timeutil import zone

if TYPE_CHECKING:  # the calendar modules load only for a schedule that defines calendars
    from esa_scheduler.engine.calendars.dates import Calendar
    from esa_scheduler.engine.calendars.ics import IcsCalendar

UTC_ZONE = zone("UTC")


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
    """A resolved incident rule: exactly one of ``match`` (a CloudEvent's fields, ``release_on`` for
    its end) and ``alert`` (a normalized alert, whose resolve ends it, after ``cooldown`` if set)."""

    name: str
    match: MatchSpec | None
    selectors: tuple[str, ...]
    status: Status
    ttl: timedelta
    release_on: MatchSpec | None
    origin: str
    targets: tuple[str, ...] = ()
    alert: AlertSpec | None = None
    cooldown: timedelta | None = None


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
class NotifyTarget:
    """A validated entry with the zone of its file: messages show times in it, UTC beside them."""

    spec: NotifySpec
    tz: ZoneInfo
    origin: str


@dataclass(frozen=True)
class DingTalkSettings:
    """``intake.dingtalk``: the robot's secret (by variable name) and who may give commands, from where."""

    app_secret_env: str
    allow_senders: frozenset[str]
    allow_conversations: frozenset[str] | None
    """``None``: any conversation of an allowed sender."""


@dataclass(frozen=True)
class IntakeSettings:
    """``intake:``: which routes of ``handler.intake`` are open, and where their secrets are read from."""

    token_env: str | None
    dingtalk: DingTalkSettings | None
    origin: str


@dataclass(frozen=True)
class ScheduleTarget:
    """A resolved target; ``role_arn=None`` means the function's own credentials."""

    name: str
    region: str
    role_arn: str | None
    endpoint: str | None
    origin: str

    @property
    def account_id(self) -> str | None:
        """The account the role lives in (``None`` for the function's own account)."""
        return self.role_arn.split(":")[3] if self.role_arn else None


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
    intake: IntakeSettings | None = None
    """The intake's settings; ``None``: every route but ``/healthz`` answers 503."""
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
            or (t.pattern is not None and selectors_overlap(selector, t.pattern))
            for t in self.tasks
        )
