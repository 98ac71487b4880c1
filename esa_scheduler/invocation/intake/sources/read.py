"""The one door to the source parsers, for the intake's routes and the handler's alert CloudEvents alike:
the parser picked by source, CloudMonitor's ``INSUFFICIENT_DATA`` set apart, and every problem named
at its place in what was received. The parsers load with the first alert of their source."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from esa_scheduler.errors import EventError

if TYPE_CHECKING:
    from esa_scheduler.engine.alerts import Alert


@dataclass(frozen=True)
class AlertsRead:
    """The alerts of one event, and the ``intake.alert`` lines of those without a state (CloudMonitor's
    ``INSUFFICIENT_DATA``), which are logged and ignored."""

    alerts: tuple[Alert, ...] = ()
    unstated: tuple[Mapping[str, Any], ...] = ()


def read_alerts(source: str, data: Any, where: str) -> AlertsRead:
    """``data`` normalized by ``source``'s parser. This is the one place that checks for an object and
    names a problem's place: ``where`` (``body``, ``body[1]``, ``event[0].data``) goes before the
    parser's ``FIELD: problem``, once, and stands alone for a body that is not an object at all."""
    if not isinstance(data, dict):
        raise EventError(f"{where}: expected a JSON object, got {type(data).__name__}")
    try:
        return _parsed(source, data)
    except EventError as exc:
        raise EventError(f"{where}.{exc}") from exc


def _parsed(source: str, data: dict[str, Any]) -> AlertsRead:
    if source == "cloudmonitor":
        from esa_scheduler.invocation.intake.sources.cloudmonitor import no_data_line, parse_cloudmonitor

        alert = parse_cloudmonitor(data)
        return AlertsRead((alert,)) if alert is not None else AlertsRead(unstated=(no_data_line(data),))
    if source == "alertmanager":
        from esa_scheduler.invocation.intake.sources.alertmanager import parse_alertmanager

        return AlertsRead(tuple(parse_alertmanager(data)))
    from esa_scheduler.invocation.intake.sources.sls import parse_sls

    return AlertsRead((parse_sls(data),))
