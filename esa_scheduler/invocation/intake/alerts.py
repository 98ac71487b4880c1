"""``POST /alerts/{cloudmonitor,sls,alertmanager}``: an alert source's callback, authenticated by token.

Each body is read as its source sends it (CloudMonitor: a form, or the same fields as JSON; SLS: one
object, or an array when notifications are merged; Alertmanager: one group), every alert is
normalized by its source's parser and handed to ``apply_alerts``, the one place that turns alerts
into holds, which the handler's CloudEvents use too. An alert that no rule takes (or CloudMonitor's
``INSUFFICIENT_DATA``) is counted as ignored and still answered 200, so its sender does not retry.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

from esa_scheduler.errors import EventError
from esa_scheduler.invocation.holds import HoldStore
from esa_scheduler.invocation.intake.apply import apply_alerts
from esa_scheduler.invocation.intake.auth import token_ok
from esa_scheduler.invocation.intake.http import HttpProblem, Request
from esa_scheduler.invocation.intake.route import Answer, Call, disabled, unauthorized
from esa_scheduler.strict_json import loads_strict, utf8_text

if TYPE_CHECKING:  # the parsers load with the first alert past the token, never for a refusal
    from esa_scheduler.invocation.intake.sources.read import AlertsRead

FORM = "application/x-www-form-urlencoded"
MAX_FORM_FIELDS = 200


def form_fields(body: bytes) -> dict[str, str]:
    """A form body as CloudMonitor posts it: each field once (a repeated field means two things)."""
    text = utf8_text(body, "body")
    try:
        pairs = parse_qsl(text, keep_blank_values=True, strict_parsing=bool(text), max_num_fields=MAX_FORM_FIELDS)
    except ValueError as exc:
        raise EventError(f"body: not a form ({exc})") from exc
    fields: dict[str, str] = {}
    for name, value in pairs:
        if name in fields:
            raise EventError(f"body.{name}: duplicate field {name!r}")
        fields[name] = value
    if not fields:
        raise EventError("body: the form is empty (expected CloudMonitor's alert fields)")
    return fields


def _cloudmonitor(request: Request) -> AlertsRead:
    """One alert, as a form or as a JSON object (a JSON list is another source's framing)."""
    from esa_scheduler.invocation.intake.sources.read import read_alerts

    json_body = request.media_type == "application/json" or (
        request.media_type != FORM and request.body.lstrip()[:1] == b"{"
    )
    fields = loads_strict(request.body, "body") if json_body else form_fields(request.body)
    if isinstance(fields, list):
        raise EventError("body: expected one CloudMonitor alert as a JSON object, got list")
    return read_alerts("cloudmonitor", fields, "body")


def _sls(request: Request) -> AlertsRead:
    """One alert, or a list of them when SLS merges its notifications."""
    from esa_scheduler.invocation.intake.sources.read import AlertsRead, read_alerts

    body = loads_strict(request.body, "body")
    if not isinstance(body, list):
        return read_alerts("sls", body, "body")
    if not body:
        raise EventError("body: an empty list holds no alert")
    reads = [read_alerts("sls", item, f"body[{index}]") for index, item in enumerate(body)]
    return AlertsRead(tuple(alert for read in reads for alert in read.alerts))


def _alertmanager(request: Request) -> AlertsRead:
    """One notification, the alerts of one group."""
    from esa_scheduler.invocation.intake.sources.read import read_alerts

    return read_alerts("alertmanager", loads_strict(request.body, "body"), "body")


READERS: dict[str, Callable[[Request], AlertsRead]] = {
    "cloudmonitor": _cloudmonitor,
    "sls": _sls,
    "alertmanager": _alertmanager,
}


def serve_alerts(call: Call, source: str) -> Answer:
    """Authenticate, parse and apply one callback; the answer counts the alerts and names the holds."""
    intake = call.schedule.intake
    if intake is None or intake.token_env is None:
        raise disabled("intake.token_env is not configured")
    if not token_ok(call.request, call.secret(intake.token_env)):
        raise unauthorized()
    try:
        read = READERS[source](call.request)
    except EventError as exc:
        raise HttpProblem(400, str(exc), "malformed") from exc
    for line in read.unstated:
        call.log.info("intake.alert", **line)
    alerts = [*read.alerts, *[None] * len(read.unstated)]
    outcome = apply_alerts(call.schedule, alerts, HoldStore(call.state), call.now, call.log)
    holds = {"created": list(outcome.created), "refreshed": list(outcome.refreshed), "released": list(outcome.released)}
    payload: dict[str, Any] = {
        "ok": True,
        "alerts": outcome.alerts,
        "matched": outcome.matched,
        "ignored": outcome.ignored,
        "holds": holds,
    }
    touched: Sequence[str] = [*outcome.created, *outcome.released]
    logged = {"source": source, "alerts": outcome.alerts, "matched": outcome.matched, "ignored": outcome.ignored}
    return Answer(200, payload, touched=list(touched), logged=logged)
