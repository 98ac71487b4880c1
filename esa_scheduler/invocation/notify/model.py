"""The ``notify:`` entries of a schedule file: where to send, what to send, and for which tasks.

URLs carry access tokens, so the file only names the environment variables that hold them
(``url_env``/``secret_env``); the values are read at send time. A name must look like one that FC
accepts (``A-Z``, ``0-9``, ``_``, at most 64 characters), which no URL and no service's secret does,
so a value pasted where a name belongs is refused here, and problems found here never quote it: an
operator must not see the token echoed into a CI log (nor later in "X is not set").
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from esa_scheduler.timeutil import parse_duration

Kind = Literal["dingtalk", "feishu", "wecom", "webhook"]
Trigger = Literal["changes", "failures", "blocked", "holds", "reminders"]
DEFAULT_SEND_ON: tuple[Trigger, ...] = ("changes", "failures", "blocked", "holds")
ENV_NAME_PATTERN = r"^[A-Z_][A-Z0-9_]*$"
ENV_NAME_MAX = 64
_ENV_NAME = re.compile(ENV_NAME_PATTERN)
_VARIABLES = ("url_env", "secret_env")


class NotifySpec(BaseModel):
    """One target as written in the file; ``send_on`` because YAML 1.1 reads a bare ``on`` as true."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
    kind: Kind
    url_env: str = Field(json_schema_extra={"pattern": ENV_NAME_PATTERN, "maxLength": ENV_NAME_MAX})
    secret_env: str | None = Field(
        default=None, json_schema_extra={"pattern": ENV_NAME_PATTERN, "maxLength": ENV_NAME_MAX}
    )
    send_on: list[Trigger] = Field(default_factory=lambda: list(DEFAULT_SEND_ON), min_length=1)
    before: str | None = None
    tasks: list[str] = Field(default_factory=list)

    @model_validator(mode="before")
    @classmethod
    def _bare_on_and_variable_names(cls, data: Any) -> Any:
        """Checked on the raw entry, so that the problem is reported without the field's value (a
        field's own check would show what it got)."""
        if not isinstance(data, dict):
            return data
        if True in data:
            raise ValueError("YAML 1.1 reads a bare 'on' key as true: write send_on")
        for field in _VARIABLES:
            value = data.get(field)
            if field in data and not (field == "secret_env" and value is None) and not _is_variable_name(value):
                raise ValueError(
                    f"{field} must name an environment variable (A-Z, 0-9 and _, not starting with a digit, "
                    f"at most {ENV_NAME_MAX} characters), not hold its value"
                )
        return data

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


def _is_variable_name(value: object) -> bool:
    return isinstance(value, str) and len(value) <= ENV_NAME_MAX and _ENV_NAME.fullmatch(value) is not None


@dataclass(frozen=True)
class NotifyTarget:
    """A validated entry with the zone of its file: messages show times in it, UTC beside them."""

    spec: NotifySpec
    tz: ZoneInfo
    origin: str
