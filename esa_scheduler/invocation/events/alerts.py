"""Alerts that reach the handler through EventBridge: the CloudEvents of CloudMonitor's alert callbacks
(``cms:CloudMonitor:AlertWebHook``) and of SLS alerts (``sls.alert``), or their bare ``data`` when
the trigger delivers raw data. They are normalized by the intake's parsers (imported only when such
an event arrives, so a timer tick loads none of them) and go through the same ``alert:`` rules.

The layout of a ``cms:CloudMonitor:AlertWebHook`` event's ``data`` is not published: it is read as
the alert callback's fields, as JSON values; confirm it with a captured event.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from esa_scheduler.errors import EventError

if TYPE_CHECKING:
    from esa_scheduler.engine.alerts import Alert

ALERT_EVENT_TYPES = {"cms:CloudMonitor:AlertWebHook": "cloudmonitor", "sls.alert": "sls"}
"""CloudEvent ``type`` -> alert source (EventBridge's ``source`` is ``acs.cms`` and ``acs:sls``)."""


@dataclass(frozen=True)
class AlertsRead:
    """The alerts of one event, and the ``intake.alert`` lines of those without a state (CloudMonitor's
    ``INSUFFICIENT_DATA``), which are logged and ignored."""

    alerts: tuple[Alert, ...] = ()
    unstated: tuple[Mapping[str, Any], ...] = ()


def raw_alert_source(item: Mapping[str, Any]) -> str | None:
    """The source whose alert ``item`` is when it is the bare ``data`` of an alert CloudEvent."""
    if "alertState" in item and "alertName" in item:
        return "cloudmonitor"
    if "alert_name" in item and "status" in item:
        return "sls"
    return None


def read_alerts(source: str, data: Any, where: str) -> AlertsRead:
    """``data`` normalized by ``source``'s parser; its problems are named under ``where``."""
    if not isinstance(data, dict):
        raise EventError(f"{where}: expected a JSON object with the alert's fields, got {type(data).__name__}")
    try:
        if source == "cloudmonitor":
            from esa_scheduler.invocation.intake.sources.cloudmonitor import no_data_line, parse_cloudmonitor

            alert = parse_cloudmonitor(data)
            return AlertsRead((alert,)) if alert is not None else AlertsRead(unstated=(no_data_line(data),))
        from esa_scheduler.invocation.intake.sources.sls import parse_sls

        return AlertsRead((parse_sls(data),))
    except EventError as exc:
        raise EventError(f"{where}.{exc}") from exc
