"""The ``notify:`` entries of a schedule file: where to send, what to send, and for which tasks.

URLs carry access tokens, so the file only names the environment variables that hold them
(``url_env``/``secret_env``); the values are read at send time. Problems found here never quote
those names' values, since an operator who pastes a URL where a variable name belongs must not see
the token echoed into a CI log.
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
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class NotifySpec(BaseModel):
    """One target as written in the file; ``send_on`` because YAML 1.1 reads a bare ``on`` as true."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
    kind: Kind
    url_env: str = Field(min_length=1)
    secret_env: str | None = Field(default=None, min_length=1)
    send_on: list[Trigger] = Field(default_factory=lambda: list(DEFAULT_SEND_ON), min_length=1)
    before: str | None = None
    tasks: list[str] = Field(default_factory=list)

    @model_validator(mode="before")
    @classmethod
    def _bare_on(cls, data: Any) -> Any:
        if isinstance(data, dict) and True in data:
            raise ValueError("YAML 1.1 reads a bare 'on' key as true: write send_on")
        return data

    @field_validator("before")
    @classmethod
    def _duration(cls, value: str | None) -> str | None:
        if value is not None:
            parse_duration(value)
        return value

    @model_validator(mode="after")
    def _consistent(self) -> NotifySpec:
        for field in ("url_env", "secret_env"):
            value = getattr(self, field)
            if value is not None and not _ENV_NAME.fullmatch(value):
                raise ValueError(f"{field} must name an environment variable (letters, digits, _), not hold a value")
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


@dataclass(frozen=True)
class NotifyTarget:
    """A validated entry with the zone of its file: messages show times in it, UTC beside them."""

    spec: NotifySpec
    tz: ZoneInfo
    origin: str
