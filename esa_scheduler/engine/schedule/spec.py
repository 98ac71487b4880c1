"""The schedule file format: one pydantic spec per entry, strict, as an operator writes it."""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictFloat, StrictInt, field_validator, model_validator

from esa_scheduler.engine.calendars.spec import CalendarSpec, empty_dict, empty_list, reject_date_times
from esa_scheduler.timeutil import UTC, in_range, parse_datetime, parse_duration, parse_instant

Status = Literal["online", "offline"]
Mode = Literal["enforce", "transitions"]
NotifyKind = Literal["dingtalk", "feishu", "wecom", "webhook"]
AlertSource = Literal["cloudmonitor", "sls", "alertmanager"]
Severity = Literal["critical", "warning", "info", "unknown"]
NotifyTrigger = Literal["changes", "failures", "blocked", "holds", "reminders"]
DEFAULT_SEND_ON: tuple[NotifyTrigger, ...] = ("changes", "failures", "blocked", "holds")
ENV_NAME_PATTERN = r"^[A-Z_][A-Z0-9_]*$"
ENV_NAME_MAX = 64
_ENV_NAME = re.compile(ENV_NAME_PATTERN)
_TARGET_NAME = r"^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$"
_ROLE_ARN = r"^acs:ram::[0-9]{16}:role/[A-Za-z0-9.\-]{1,64}$"
_REGION = r"^[a-z]{2,}(?:-[a-z0-9]+)+$"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)


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
    priority: StrictInt = 0
    cron: str | None = None
    duration: str | None = None
    end_cron: str | None = None
    timezone: str | None = None
    skip_dates: list[date] = Field(default_factory=empty_list)
    skip: list[str] = Field(default_factory=empty_list)
    only_on: list[str] = Field(default_factory=empty_list)
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
    data: dict[str, Any] = Field(default_factory=empty_dict)


class AlertSpec(_Strict):
    """What an incident rule looks for in a normalized alert (any source, HTTP or EventBridge): every
    given field must match, ``name`` and ``labels`` values as globs. A resolve is matched on
    ``source``, ``name`` and ``labels`` only: it pairs with its firing by key, and CloudMonitor's
    recovery carries no severity of its own."""

    source: AlertSource | None = None
    name: str | None = Field(default=None, min_length=1)
    severity: list[Severity] | None = Field(default=None, min_length=1)
    labels: dict[str, str] = Field(default_factory=empty_dict)

    @model_validator(mode="after")
    def _not_a_catch_all(self) -> AlertSpec:
        """An empty ``alert: {}`` would hold the tasks for any alert of any sender: refused as a slip."""
        if self.source is None and self.name is None and self.severity is None and not self.labels:
            raise ValueError(
                "give at least one of source, name, severity or labels (an empty alert matches every alert)"
            )
        return self


class IncidentSpec(_Strict):
    """Maps a matching CloudEvent (``match``) or normalized alert (``alert``) to a hold, and a
    ``release_on`` CloudEvent or the alert's resolve to its end."""

    name: str = Field(min_length=1)
    match: MatchSpec | None = None
    alert: AlertSpec | None = None
    tasks: list[str] = Field(min_length=1)
    status: Status = "offline"
    ttl: str
    cooldown: str | None = None
    """``alert:`` rules: a resolve ends the hold only after this long without a new firing."""
    release_on: MatchSpec | None = None
    targets: list[str] | None = None

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        json_schema_extra={"oneOf": [{"required": ["match"]}, {"required": ["alert"]}]},
        defer_build=True,
    )


class SafetySpec(_Strict):
    """Limits that stop a run from changing too much at once (a bad schedule, a wrong inventory)."""

    # Numbers only as numbers: YAML reads `yes` and `on` as booleans, and a boolean taken as a
    # number (`max_change_ratio: yes` as 1.0) would quietly lift the limit it was meant to set.
    max_changes: StrictInt | None = Field(default=None, ge=0)
    max_change_ratio: StrictFloat | None = Field(default=None, ge=0, le=1)


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


class TargetSpec(BaseModel):
    """One ``targets:`` entry as written: a name, a region, and how to reach its account."""

    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)

    name: str = Field(pattern=_TARGET_NAME)
    region: str = Field(pattern=_REGION)
    role_arn: str | None = Field(default=None, pattern=_ROLE_ARN)
    endpoint: str | None = Field(default=None, min_length=1)


class ScheduleFileSpec(_Strict):
    """The top level of one schedule file."""

    version: Literal[1] = 1
    timezone: str = "UTC"
    default_status: Status = "online"
    mode: Mode = "enforce"
    tick: str | None = None
    safety: SafetySpec | None = None
    calendars: dict[str, CalendarSpec] = Field(default_factory=empty_dict)
    tasks: list[TaskSpec] = Field(default_factory=empty_list)
    windows: list[WindowSpec] = Field(default_factory=empty_list)
    incidents: list[IncidentSpec] = Field(default_factory=empty_list)
    expect: list[ExpectSpec] = Field(default_factory=empty_list)
    notify: list[NotifySpec] = Field(default_factory=empty_list)
    intake: IntakeSpec | None = None
    targets: list[TargetSpec] = Field(default_factory=empty_list, json_schema_extra={"minItems": 1})
    """An empty list is refused when the file is read (``_parse_file``); the schema tells editors the same."""

    @field_validator("version", mode="before")
    @classmethod
    def _exactly_one(cls, value: Any) -> Any:
        if isinstance(value, bool):
            raise ValueError("version must be 1")
        return value


class FileTopSpec(ScheduleFileSpec):
    """A file's top level as ``load_schedule`` validates it, after each list of entries was validated
    entry by entry (and left empty here): those lists only have to be lists, so reading a file builds
    no validator for the sections it does not have. ``ScheduleFileSpec`` stays the whole format (the
    JSON schema); the fields keep its order, and so its errors theirs."""

    tasks: list[Any] = Field(default_factory=empty_list)
    windows: list[Any] = Field(default_factory=empty_list)
    incidents: list[Any] = Field(default_factory=empty_list)
    expect: list[Any] = Field(default_factory=empty_list)
    notify: list[Any] = Field(default_factory=empty_list)
    targets: list[Any] = Field(default_factory=empty_list)


class NotifySpec(BaseModel):
    """One target as written in the file; ``send_on`` because YAML 1.1 reads a bare ``on`` as true."""

    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)

    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
    kind: NotifyKind
    url_env: str = Field(json_schema_extra={"pattern": ENV_NAME_PATTERN, "maxLength": ENV_NAME_MAX})
    secret_env: str | None = Field(
        default=None, json_schema_extra={"pattern": ENV_NAME_PATTERN, "maxLength": ENV_NAME_MAX}
    )
    send_on: list[NotifyTrigger] = Field(default_factory=lambda: list(DEFAULT_SEND_ON), min_length=1)
    before: str | None = None
    tasks: list[str] = Field(default_factory=empty_list)

    @model_validator(mode="before")
    @classmethod
    def _bare_on_and_variable_names(cls, data: Any) -> Any:
        """Checked on the raw entry, so that the problem is reported without the field's value (a
        field's own check would show what it got).

        URLs carry access tokens, so the file only names the environment variables that hold them
        (``url_env``/``secret_env``); the values are read at send time. A name must look like one that
        FC accepts (``A-Z``, ``0-9``, ``_``, at most 64 characters), which no URL and no service's secret
        does, so a value pasted where a name belongs is refused here, and problems found here never
        quote it: an operator must not see the token echoed into a CI log (nor later in "X is not set").
        """
        if not isinstance(data, dict):
            return data
        if True in data:
            raise ValueError("YAML 1.1 reads a bare 'on' key as true: write send_on")
        return check_variable_names(data, ("url_env",), ("secret_env",))

    @field_validator("before")
    @classmethod
    def _duration(cls, value: str | None) -> str | None:
        if value is not None:
            parse_duration(value)
        return value

    @model_validator(mode="after")
    def _consistent(self) -> NotifySpec:
        if self.kind == "wecom" and self.secret_env is not None:
            raise ValueError("secret_env does not apply to wecom: WeCom group robots have no signing")
        if len(set(self.send_on)) != len(self.send_on):
            raise ValueError("send_on lists a trigger more than once")
        if self.before is not None and "reminders" not in self.send_on:
            raise ValueError("before only applies with 'reminders' in send_on")
        if self.before is None and "reminders" in self.send_on:
            raise ValueError("'reminders' in send_on needs before (how long ahead to announce, e.g. 15m)")
        return self

    @property
    def lead_time(self) -> timedelta | None:
        """How long before a transition its reminder goes out (``None`` without reminders)."""
        return parse_duration(self.before) if self.before is not None else None


def check_variable_names(data: Any, required: tuple[str, ...], optional: tuple[str, ...] = ()) -> Any:
    """Refuse a raw entry whose ``*_env`` fields hold anything but a variable name, without quoting it.

    Used in ``mode="before"`` validators: a field's own check would show what it got, and a URL or a
    token pasted where its variable's name belongs must never be echoed into a CI log.
    """
    if not isinstance(data, dict):
        return data
    for field in (*required, *optional):
        value = data.get(field)
        if field in data and not (field in optional and value is None) and not _is_variable_name(value):
            raise ValueError(
                f"{field} must name an environment variable (A-Z, 0-9 and _, not starting with a digit, "
                f"at most {ENV_NAME_MAX} characters), not hold its value"
            )
    return data


class DingTalkIntakeSpec(BaseModel):
    """``intake.dingtalk``: who may command the scheduler from a DingTalk group, and the robot's secret."""

    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)

    app_secret_env: str = Field(json_schema_extra={"pattern": ENV_NAME_PATTERN, "maxLength": ENV_NAME_MAX})
    allow_senders: list[Annotated[str, Field(min_length=1)]] = Field(min_length=1)
    """``senderStaffId`` values: nobody else's command is obeyed (closed by default)."""
    allow_conversations: list[Annotated[str, Field(min_length=1)]] | None = Field(default=None, min_length=1)
    """``conversationId`` values; left out, a listed sender may command from any conversation."""

    @model_validator(mode="before")
    @classmethod
    def _variable_name(cls, data: Any) -> Any:
        return check_variable_names(data, ("app_secret_env",))


class IntakeSpec(BaseModel):
    """``intake:``: the HTTP routes of ``handler.intake``; a route whose part is left out answers 503."""

    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)

    token_env: str | None = Field(
        default=None, json_schema_extra={"pattern": ENV_NAME_PATTERN, "maxLength": ENV_NAME_MAX}
    )
    """The variable holding the shared token of the ``/alerts/*`` routes."""
    dingtalk: DingTalkIntakeSpec | None = None

    @model_validator(mode="before")
    @classmethod
    def _variable_name(cls, data: Any) -> Any:
        return check_variable_names(data, (), ("token_env",))


def _is_variable_name(value: object) -> bool:
    return isinstance(value, str) and len(value) <= ENV_NAME_MAX and _ENV_NAME.fullmatch(value) is not None
