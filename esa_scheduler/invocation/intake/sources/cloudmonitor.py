"""CloudMonitor threshold alerts: the alert callback's form fields, or the same fields as JSON values
(the ``data`` of a ``cms:CloudMonitor:AlertWebHook`` CloudEvent, whose layout Alibaba Cloud does not
publish: reading it as the callback's fields is an assumption to confirm with a captured event).

Form values are all strings, a missing one is the literal ``"null"``; ``dimensions`` is a Java map
(``{userId=1, instanceId=i-x}``), older callbacks sent JSON (``[{"userId": "1", ...}]``);
``timestamp`` comes in seconds or milliseconds; ``signature`` uses an undocumented algorithm and is
ignored (the intake's token authenticates the sender).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from esa_scheduler.engine.alerts import MAX_KEY, MAX_LABEL_VALUE, MAX_NAME, Alert, composed_key
from esa_scheduler.engine.schedule.spec import Severity
from esa_scheduler.errors import EventError
from esa_scheduler.invocation.intake.sources.common import (
    normalized,
    scalar_text,
    shown,
    summary,
    unix_instant,
    validated,
)
from esa_scheduler.strict_json import loads_strict

STATES = {"ALERT": "firing", "ALARM": "firing", "OK": "resolved", "INSUFFICIENT_DATA": None}
LEVELS: dict[str, Severity] = {"CRITICAL": "critical", "WARN": "warning", "INFO": "info"}
_TEXT_MAX = MAX_LABEL_VALUE
_JAVA_KEY = re.compile(r"(?:^|,\s*)([A-Za-z_][\w.:-]*)=")
_JAVA_MAP = "a Java map like {userId=1, instanceId=i-x}"
_LABEL_FIELDS = ("metricName", "namespace", "regionId", "ruleId")

Text = Annotated[str, Field(max_length=_TEXT_MAX)] | None


class CloudMonitorFields(BaseModel):
    """The callback's fields this parser reads (others, ``signature`` among them, are ignored)."""

    model_config = ConfigDict(extra="ignore", frozen=True, defer_build=True)

    alertName: str = Field(min_length=1, max_length=MAX_NAME)
    alertState: str = Field(min_length=1, max_length=_TEXT_MAX)
    triggerLevel: Text = None
    preTriggerLevel: Text = None
    curValue: Text = None
    dimensions: str | dict[str, Any] | list[Any] | None = Field(default=None)
    expression: Text = None
    metricName: Text = None
    metricProject: Text = None
    namespace: Text = None
    ruleId: str | None = Field(default=None, max_length=MAX_KEY)
    regionId: Text = None
    instanceName: Text = None
    transId: str | None = Field(default=None, max_length=MAX_KEY)
    timestamp: Text = None

    @model_validator(mode="before")
    @classmethod
    def _as_form_strings(cls, data: Any) -> Any:
        """JSON values (EventBridge) read like the form's strings; ``"null"`` is a missing value."""
        if not isinstance(data, Mapping):
            return data
        return {name: scalar_text(value) for name, value in data.items()}


def parse_cloudmonitor(fields: Mapping[str, Any]) -> Alert | None:
    """One alert from the callback's fields; ``None`` for ``INSUFFICIENT_DATA`` (the caller logs and
    ignores it). ``EventError("FIELD: problem")`` for a malformed callback."""
    got = validated(CloudMonitorFields, fields)
    state = STATES.get(got.alertState.strip().upper(), "unknown")
    if state == "unknown":
        expected = ", ".join(STATES)
        raise EventError(f"alertState: {shown(got.alertState)} is not a CloudMonitor alert state ({expected})")
    if state is None:
        return None
    dimensions = dimension_labels(got.dimensions)
    level = got.triggerLevel if state == "firing" else got.preTriggerLevel or got.triggerLevel
    return normalized(
        "cloudmonitor",
        labels_from="dimensions",
        name=got.alertName,
        state=state,
        key=got.transId or composed_key(got.ruleId or got.alertName, dimensions),
        severity=LEVELS.get((level or "").strip().upper(), "unknown"),
        labels={**dimensions, **_rule_labels(got)},
        summary=summary(got.instanceName, f"{got.metricName} = {got.curValue}" if got.metricName else None),
        at=unix_instant(got.timestamp, "timestamp"),
    )


def no_data_line(fields: Mapping[str, Any]) -> dict[str, Any]:
    """The ``intake.alert`` log fields of an ``INSUFFICIENT_DATA`` callback, which ``parse_cloudmonitor``
    turns into ``None``: the callers log it with these, so every door logs it alike."""
    name = fields.get("alertName")
    return {
        "source": "cloudmonitor",
        "name": name[:MAX_NAME] if isinstance(name, str) else None,
        "state": "insufficient_data",
        "key": None,
        "severity": "unknown",
        "rule": None,
    }


def dimension_labels(value: str | dict[str, Any] | list[Any] | None) -> dict[str, str]:
    """``{userId=1, instanceId=i-x}`` (a Java map), or older callbacks' JSON, as string labels. The JSON
    is read as strictly as a body (``loads_strict``): a sender's deep nesting, repeated key or ``NaN``
    is the same one-line problem as any text that is not JSON, never a ``RecursionError``."""
    if value is None:
        return {}
    if isinstance(value, str):
        text = value.strip()
        if text.startswith(("[", '{"')):
            try:
                value = loads_strict(text, "dimensions")
            except EventError as exc:
                raise EventError("dimensions: neither a Java map {k=v, ...} nor JSON") from exc
        else:
            return _java_map(text)
    if isinstance(value, list):
        if len(value) > 1 or not all(isinstance(item, dict) for item in value):
            raise EventError("dimensions: a JSON list must hold one object")
        value = value[0] if value else {}
    assert isinstance(value, dict)
    return {str(k): v if isinstance(v, str) else json.dumps(v) for k, v in value.items()}


def _java_map(text: str) -> dict[str, str]:
    """``{k=v, k2=v2}``: a value runs up to the next ``, key=`` (CloudMonitor quotes nothing)."""
    if not (text.startswith("{") and text.endswith("}")):
        raise EventError(f"dimensions: {shown(text)} is not {_JAVA_MAP}")
    inner = text[1:-1].strip()
    if not inner:
        return {}
    keys = list(_JAVA_KEY.finditer(inner))
    if not keys or keys[0].start() != 0:
        raise EventError(f"dimensions: {shown(text)} is not {_JAVA_MAP}")
    ends = [following.start() for following in keys[1:]] + [len(inner)]
    return {key.group(1): inner[key.end() : end].strip() for key, end in zip(keys, ends, strict=True)}


def _rule_labels(got: CloudMonitorFields) -> dict[str, str]:
    """``metricName``, ``namespace`` (else ``metricProject``, its older name), ``regionId`` and ``ruleId``."""
    values = {name: getattr(got, name) for name in _LABEL_FIELDS}
    values["namespace"] = values["namespace"] or got.metricProject
    return {name: value for name, value in values.items() if value}
