"""Alerts that reach the handler through EventBridge: the CloudEvents of CloudMonitor's alert callbacks
(``cms:CloudMonitor:AlertWebHook``) and of SLS alerts (``sls.alert``), or their bare ``data`` when
the trigger delivers raw data. They are normalized by the intake's parsers (``intake/sources/read.py``,
imported only when such an event arrives, so a timer tick loads none of them) and go through the same
``alert:`` rules.

The layout of a ``cms:CloudMonitor:AlertWebHook`` event's ``data`` is not published: it is read as
the alert callback's fields, as JSON values; confirm it with a captured event.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

ALERT_EVENT_TYPES = {"cms:CloudMonitor:AlertWebHook": "cloudmonitor", "sls.alert": "sls"}
"""CloudEvent ``type`` -> alert source (EventBridge's ``source`` is ``acs.cms`` and ``acs:sls``)."""


def raw_alert_source(item: Mapping[str, Any]) -> str | None:
    """The source whose alert ``item`` is when it is the bare ``data`` of an alert CloudEvent."""
    if "alertState" in item and "alertName" in item:
        return "cloudmonitor"
    if "alert_name" in item and "status" in item:
        return "sls"
    return None
