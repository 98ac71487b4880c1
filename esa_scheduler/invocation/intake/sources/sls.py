"""Simple Log Service alerts: the object a custom webhook's JSON template renders (one per alert), and
the ``data`` of an ``sls.alert`` CloudEvent.

The operator writes the template, so numbers may arrive as JSON numbers or as their text
(``"severity": 8`` or ``"severity": "8"``); unknown fields are ignored.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from esa_scheduler.engine.alerts import MAX_KEY, MAX_LABELS, MAX_NAME, Alert, Labels, composed_key
from esa_scheduler.engine.schedule.spec import Severity
from esa_scheduler.errors import EventError
from esa_scheduler.invocation.intake.sources.common import DIGITS, normalized, shown, summary, unix_instant, validated

SEVERITIES: dict[int, Severity] = {10: "critical", 8: "critical", 6: "warning", 4: "info", 2: "info"}
_SUMMARY_ANNOTATIONS = ("title", "summary", "desc", "description")


class SlsAlert(BaseModel):
    """The fields of an SLS alert this parser reads."""

    model_config = ConfigDict(extra="ignore", frozen=True, defer_build=True)

    alert_name: str = Field(min_length=1, max_length=MAX_NAME)
    status: Literal["firing", "resolved"]
    alert_id: str | None = Field(default=None, min_length=1, max_length=MAX_KEY)
    severity: int | None = None
    labels: Labels = Field(default={})
    annotations: dict[str, Any] = Field(default={}, max_length=MAX_LABELS)
    fire_time: str | int | None = None
    resolve_time: str | int | None = None
    fingerprint: str | None = Field(default=None, min_length=1, max_length=MAX_KEY)

    @field_validator("severity", mode="before")
    @classmethod
    def _known_severity(cls, value: Any) -> Any:
        if value is None or value == "":
            return None
        number = int(value) if isinstance(value, str) and DIGITS.fullmatch(value.strip()) else value
        if type(number) is not int or number not in SEVERITIES:
            raise ValueError(f"{shown(value)} is not an SLS severity (10, 8, 6, 4 or 2)")
        return number


def parse_sls(obj: Mapping[str, Any]) -> Alert:
    """One alert from an SLS alert object; ``EventError("FIELD: problem")`` for a malformed one."""
    got = validated(SlsAlert, obj)
    if got.fingerprint is None and got.alert_id is None:
        raise EventError("fingerprint: missing, and no alert_id to pair the alert with its resolve")
    resolved = got.status == "resolved"
    when = unix_instant(_set(got.resolve_time), "resolve_time") if resolved else None
    notes = [got.annotations.get(name) for name in _SUMMARY_ANNOTATIONS]
    return normalized(
        "sls",
        name=got.alert_name,
        state=got.status,
        key=got.fingerprint or composed_key(got.alert_id or "", got.labels),
        severity=SEVERITIES[got.severity] if got.severity is not None else "unknown",
        labels=got.labels,
        summary=summary(next((note for note in notes if isinstance(note, str) and note.strip()), None)),
        at=when or unix_instant(_set(got.fire_time), "fire_time"),
    )


def _set(stamp: str | int | None) -> str | int | None:
    """SLS renders a time not reached yet (a firing alert's ``resolve_time``) as 0."""
    return None if stamp in (0, "0", "") else stamp
