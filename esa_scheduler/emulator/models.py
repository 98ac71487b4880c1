"""What the emulator serves (tasks), how it misbehaves (faults), and how it says no (API errors).

Tasks and faults are frozen pydantic models: the emulator swaps whole values under its lock, so a
snapshot handed to a test can never change under it, and a bad task file is reported field by field.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, ValidationError, model_validator

from esa_scheduler.errors import ConfigError, EventError
from esa_scheduler.strict_json import loads_strict

EMULATOR_ACCESS_KEY_ID = "emulator-access-key-id"
EMULATOR_ACCESS_KEY_SECRET = "emulator-access-key-secret"
EMULATOR_ACCOUNT_ID = "1000000000000001"
"""The account that ``tasks=`` and the emulator's own AccessKey pair belong to."""
API_VERSION = "2024-09-10"
STS_API_VERSION = "2015-04-01"
FC_API_VERSION = "2023-03-30"
ROLE_ARN = re.compile(r"acs:ram::(?P<account>[0-9]{16}):role/(?P<name>[A-Za-z0-9.-]{1,64})")

TaskStatus = Literal["online", "offline"]
TaskKey = tuple[int | None, str]
"""``(SiteId, TaskName)``; ``SiteId`` is ``None`` for account-level (user) tasks."""

# HTTP status per error code. Alibaba Cloud's tables disagree between products; these follow ESA's
# own page where it has one (InternalError is 400 there) and the API gateway's table otherwise, then
# STS's AssumeRole and FC 3.0's InvokeFunction codes. FC documents only the 409 for a repeated async
# task id, not its code: AsyncTaskAlreadyExists is the emulator's name for it.
STATUS_BY_CODE: dict[str, int] = {
    "IncompleteSignature": 400,
    "InvalidTimeStamp.Format": 400,
    "InvalidTimeStamp.Expired": 400,
    "SignatureNonceUsed": 400,
    "InvalidSecurityToken.Malformed": 400,
    "InvalidSecurityToken.Mismatch": 400,
    "InvalidAccessKeyId.NotFound": 404,
    "SignatureDoesNotMatch": 403,
    "InvalidApi.NotFound": 404,
    "InvalidVersion": 400,
    "UnsupportedHTTPMethod": 400,
    "InvalidParameter": 400,
    "Throttling": 400,
    "Throttling.User": 400,
    "Throttling.Api": 400,
    "InternalError": 400,
    "ServiceUnavailable": 503,
    "EsaService.NotOpen": 403,
    "Forbidden": 403,
    "Forbidden.RAM": 403,
    "InvalidSecurityToken.Expired": 400,
    "NoPermission": 403,
    "EntityNotExist.Role": 404,
    "InvalidParameter.RoleArn": 400,
    "InvalidParameter.RoleSessionName": 400,
    "InvalidParameter.DurationSeconds": 400,
    "InvalidArgument": 400,
    "FunctionNotFound": 404,
    "AsyncTaskAlreadyExists": 409,
}
THROTTLING_CODES = frozenset({"Throttling", "Throttling.User", "Throttling.Api"})
DROPPED = "dropped"
"""Pseudo error code: close the connection without answering (a scripted fault or an outcome)."""
HANG = "hang"
"""Pseudo error code: hold the connection open and never answer (until the emulator stops)."""
TOO_MANY_REQUESTS = "http-429"
"""Pseudo error code: a gateway's HTTP 429 with a plain-text body and a ``Retry-After`` header."""

_MESSAGES = {
    "InvalidParameter": "The specified parameter is invalid.",
    "InternalError": "An internal exception occurred, please try again later.",
    "ServiceUnavailable": "The request has failed due to a temporary failure of the server.",
    "Throttling.User": "Request was denied due to user flow control.",
    "EsaService.NotOpen": "ESA service has not opend.",
    "NoPermission": "You are not authorized to do this action. You should be authorized by RAM.",
    "InvalidParameter.DurationSeconds": "The Min/Max value of DurationSeconds is 15min/1hr.",
    "InvalidParameter.RoleSessionName": "The parameter RoleSessionName is wrongly formed.",
    "InvalidSecurityToken.Expired": "Specified SecurityToken is expired.",
}


class ApiError(Exception):
    """A refusal answered with ESA's error JSON; unlisted codes (scripted ones) get HTTP 400."""

    def __init__(self, code: str, message: str | None = None, retry_after_ms: int | None = None) -> None:
        self.code = code
        self.message = message or _MESSAGES.get(code, f"The request was refused ({code}).")
        self.status = STATUS_BY_CODE.get(code, 400)
        self.retry_after_ms = retry_after_ms
        super().__init__(f"{self.code}: {self.message}")


class EmulatedTask(BaseModel):
    """One delivery task as ESA reports it; ``SiteId`` set means a site-level task.

    Strict, like every file the project reads from someone else: ``"SiteId": "1001"`` or ``true``
    is a mistake in the tasks file to name, not a number to guess."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True, defer_build=True)

    TaskName: str = Field(min_length=1)
    Status: TaskStatus
    BusinessType: str = Field(default="dcdn_log_access_l1", min_length=1)
    DataCenter: str = Field(default="cn", min_length=1)
    DeliveryType: str = Field(default="sls", min_length=1)
    SiteId: int | None = Field(default=None, gt=0)

    @property
    def key(self) -> TaskKey:
        return (self.SiteId, self.TaskName)

    def summary(self) -> dict[str, str]:
        """The five fields ESA puts in a list item (no SiteId there, even for site tasks)."""
        return {
            "TaskName": self.TaskName,
            "Status": self.Status,
            "BusinessType": self.BusinessType,
            "DataCenter": self.DataCenter,
            "DeliveryType": self.DeliveryType,
        }


class Faults(BaseModel):
    """Misbehaviour knobs; a new value (with its seed) replaces the old one as a whole.

    Rates are fractions of API requests and are drawn from one roll per request, so together they
    must not exceed 1. ``seed=None`` means a different fault sequence on every run.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)

    latency_ms: float = Field(default=0.0, ge=0)
    jitter_ms: float = Field(default=0.0, ge=0)
    throttle_rps: float | None = Field(default=None, gt=0)
    unavailable_rate: float = Field(default=0.0, ge=0, le=1)
    internal_error_rate: float = Field(default=0.0, ge=0, le=1)
    drop_rate: float = Field(default=0.0, ge=0, le=1)
    too_many_requests_rate: float = Field(default=0.0, ge=0, le=1)
    retry_after_s: int = Field(default=1, ge=0)
    """``Retry-After`` (whole seconds) sent with a 429."""
    hang_actions: frozenset[str] = frozenset()
    """Actions never answered (``"*"``: every action), like a gateway that accepted and went silent."""
    page_size_cap: int | None = Field(default=None, gt=0)
    """The most tasks a list page holds whatever ``PageSize`` asked for (reported as ``PageSize``)."""
    repeat_page: int | None = Field(default=None, ge=2)
    """This list page number answers with the tasks of the page before it."""
    total_count: int | None = Field(default=None, ge=0)
    """A ``TotalCount`` claimed by every list page instead of the true one."""
    echo_credentials: bool = False
    """Error messages echo the AccessKey secrets and STS tokens the emulator knows."""
    seed: int | None = None

    @model_validator(mode="after")
    def _rates_fit_one_roll(self) -> Faults:
        if self.unavailable_rate + self.internal_error_rate + self.drop_rate + self.too_many_requests_rate > 1:
            raise ValueError(
                "unavailable_rate + internal_error_rate + drop_rate + too_many_requests_rate must not exceed 1"
            )
        return self


class EmulatedAccount(BaseModel):
    """One Alibaba Cloud account the emulator serves: its id, its permanent AccessKey pair, its tasks.

    ``error`` makes every ESA call on the account fail with that code (``EsaService.NotOpen``,
    ``Throttling.User``...), so one target of a fleet can fail while the others work.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)

    id: str = Field(pattern=r"^[0-9]{16}$")
    access_key_id: str = Field(min_length=1)
    access_key_secret: str = Field(min_length=1, repr=False)
    tasks: list[EmulatedTask] = Field(default=[])
    error: str | None = None


class EmulatedRole(BaseModel):
    """A RAM role that ``AssumeRole`` can issue credentials for, in the account its ARN names.

    ``trusted_accounts`` lists the accounts whose callers may assume it (``None``: any account of
    the emulator). ``deny`` refuses every caller with ``NoPermission``; ``throttle`` answers every
    call with ``Throttling.User``, as STS does past its quota. The first ``issue_expired`` answers
    carry credentials whose ``Expiration`` is an hour past, as from an STS whose clock is behind
    the caller's (ESA refuses them too).
    """

    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)

    arn: str = Field(pattern=f"^{ROLE_ARN.pattern}$")
    trusted_accounts: list[str] | None = None
    deny: StrictBool = False
    throttle: StrictBool = False
    issue_expired: StrictInt = Field(default=0, ge=0)

    @property
    def account(self) -> str:
        """The id of the account that owns the role."""
        return self.arn.split(":")[3]

    @property
    def name(self) -> str:
        """The role's name, the last part of its ARN."""
        return self.arn.rsplit("/", 1)[1]


def _problem_lines(origin: str, index: int, exc: ValidationError) -> list[str]:
    lines = []
    for error in exc.errors():
        field = ".".join(str(part) for part in error["loc"]) or "task"
        lines.append(f"{origin}: [{index}].{field}: {error['msg']}")
    return lines


def coerce_tasks(items: Iterable[EmulatedTask | Mapping[str, Any]], origin: str) -> list[EmulatedTask]:
    """Validate seed tasks, reporting every bad entry by index and field, and refusing duplicates."""
    tasks: list[EmulatedTask] = []
    problems: list[str] = []
    seen: set[TaskKey] = set()
    for index, item in enumerate(items):
        try:
            task = item if isinstance(item, EmulatedTask) else EmulatedTask.model_validate(item)
        except ValidationError as exc:
            problems.extend(_problem_lines(origin, index, exc))
            continue
        if task.key in seen:
            problems.append(f"{origin}: [{index}].TaskName: duplicate task {task.TaskName!r} (SiteId {task.SiteId})")
        seen.add(task.key)
        tasks.append(task)
    if problems:
        raise ConfigError(problems[0], problems)
    return tasks


def load_tasks(path: str | Path) -> list[EmulatedTask]:
    """Read a JSON list of task objects; any problem is a ``ConfigError`` naming the file."""
    try:
        data = loads_strict(Path(path).read_bytes(), str(path), max_bytes=None)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read tasks file: {exc.strerror}") from exc
    except EventError as exc:
        raise ConfigError(str(exc)) from None
    if not isinstance(data, list):
        raise ConfigError(f"{path}: expected a JSON list of task objects, got {type(data).__name__}")
    return coerce_tasks(data, str(path))
