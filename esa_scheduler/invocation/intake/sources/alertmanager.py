"""Alertmanager's webhook (Prometheus, ARMS, Grafana): one notification groups alerts, each its own
``Alert``. Only the entries of ``alerts`` are read: the group's ``status``, ``groupLabels`` and
``commonLabels`` summarize them, and ``version`` (``"4"``; Grafana sends ``"1"``) is not checked.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from esa_scheduler.engine.alerts import MAX_KEY, MAX_LABELS, MAX_NAME, Alert, Labels, composed_key
from esa_scheduler.engine.schedule.spec import Severity
from esa_scheduler.errors import EventError
from esa_scheduler.invocation.intake.sources.common import normalized, rfc3339_instant, summary, validated

MAX_ALERTS = 500
"""Far more than one group holds in practice (Alertmanager's default ``max_alerts`` is unlimited, but
each notification is one group of one rule)."""
KNOWN: tuple[Severity, ...] = ("critical", "warning", "info")


class AlertmanagerAlert(BaseModel):
    """One entry of ``alerts``."""

    model_config = ConfigDict(extra="ignore", frozen=True, defer_build=True)

    status: Literal["firing", "resolved"]
    labels: Labels
    annotations: dict[str, Any] = Field(default={}, max_length=MAX_LABELS)
    startsAt: str | None = Field(default=None, max_length=64)
    endsAt: str | None = Field(default=None, max_length=64)
    fingerprint: str | None = Field(default=None, min_length=1, max_length=MAX_KEY)


class AlertmanagerGroup(BaseModel):
    """The notification: the alerts of one group."""

    model_config = ConfigDict(extra="ignore", frozen=True, defer_build=True)

    alerts: list[AlertmanagerAlert] = Field(max_length=MAX_ALERTS)


def parse_alertmanager(obj: Mapping[str, Any]) -> list[Alert]:
    """Every alert of a notification; ``EventError("alerts.0.labels: problem")`` for a malformed one."""
    group = validated(AlertmanagerGroup, obj)
    return [_alert(entry, f"alerts.{index}") for index, entry in enumerate(group.alerts)]


def _alert(entry: AlertmanagerAlert, where: str) -> Alert:
    name = entry.labels.get("alertname")
    if not name:
        raise EventError(f"{where}.labels.alertname: missing (every Alertmanager alert is named by it)")
    if len(name) > MAX_NAME:
        raise EventError(f"{where}.labels.alertname: longer than {MAX_NAME} characters")
    level = entry.labels.get("severity", "").strip().lower()
    notes = [entry.annotations.get(note) for note in ("summary", "description", "message")]
    starts = rfc3339_instant(entry.startsAt, f"{where}.startsAt")
    ends = rfc3339_instant(entry.endsAt, f"{where}.endsAt")
    try:
        return normalized(
            "alertmanager",
            name=name,
            state=entry.status,
            key=entry.fingerprint or composed_key(name, entry.labels),
            severity=next((known for known in KNOWN if known == level), "unknown"),
            labels=entry.labels,
            summary=summary(next((note for note in notes if isinstance(note, str) and note.strip()), None)),
            at=(ends or starts) if entry.status == "resolved" else starts,
        )
    except EventError as exc:
        raise EventError(f"{where}.{exc}") from exc
