"""``POST /alerts/{cloudmonitor,sls,alertmanager}``: an alert source's callback, authenticated by token.

Each body is read as its source sends it (CloudMonitor: a form, or the same fields as JSON; SLS: one
object, or an array when notifications are merged; Alertmanager: one group), every alert is
normalized by its source's parser and handed to ``apply_alerts``, the one place that turns alerts
into holds, which the handler's CloudEvents use too. An alert that no rule takes (or CloudMonitor's
``INSUFFICIENT_DATA``) is counted as ignored and still answered 200, so its sender does not retry.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar
from urllib.parse import parse_qsl

from esa_scheduler.engine.alerts import Alert
from esa_scheduler.errors import EventError
from esa_scheduler.invocation.holds import HoldStore
from esa_scheduler.invocation.intake.apply import apply_alerts
from esa_scheduler.invocation.intake.auth import token_ok
from esa_scheduler.invocation.intake.http import HttpProblem, Request
from esa_scheduler.invocation.intake.route import Answer, Call, disabled, unauthorized
from esa_scheduler.logs import RunLog
from esa_scheduler.strict_json import loads_strict

T = TypeVar("T")
FORM = "application/x-www-form-urlencoded"
MAX_FORM_FIELDS = 200


def form_fields(body: bytes) -> dict[str, str]:
    """A form body as CloudMonitor posts it: each field once (a repeated field means two things)."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise EventError(f"body: not UTF-8 text ({exc.reason} at byte {exc.start})") from exc
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


def _within(where: str, parse: Callable[[Any], T], value: Any) -> T:
    """A parser's ``FIELD: problem`` as the place in the body it is (``body.alerts.0.labels: ...``)."""
    try:
        return parse(value)
    except EventError as exc:
        raise EventError(f"{where}.{exc}") from exc


def _cloudmonitor(request: Request, log: RunLog) -> list[Alert | None]:
    from esa_scheduler.invocation.intake.sources.cloudmonitor import no_data_line, parse_cloudmonitor

    json_body = request.media_type == "application/json" or (
        request.media_type != FORM and request.body.lstrip()[:1] == b"{"
    )
    fields = loads_strict(request.body, "body") if json_body else form_fields(request.body)
    if not isinstance(fields, dict):
        raise EventError(f"body: expected one CloudMonitor alert as a JSON object, got {type(fields).__name__}")
    alert = _within("body", parse_cloudmonitor, fields)
    if alert is None:
        log.info("intake.alert", **no_data_line(fields))
    return [alert]


def _sls(request: Request, log: RunLog) -> list[Alert | None]:
    from esa_scheduler.invocation.intake.sources.sls import parse_sls

    body = loads_strict(request.body, "body")
    if not isinstance(body, list):
        return [_within("body", parse_sls, body)]
    if not body:
        raise EventError("body: an empty list holds no alert")
    return [_within(f"body[{index}]", parse_sls, item) for index, item in enumerate(body)]


def _alertmanager(request: Request, log: RunLog) -> list[Alert | None]:
    from esa_scheduler.invocation.intake.sources.alertmanager import parse_alertmanager

    return list(_within("body", parse_alertmanager, loads_strict(request.body, "body")))


READERS: dict[str, Callable[[Request, RunLog], list[Alert | None]]] = {
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
        alerts = READERS[source](call.request, call.log)
    except EventError as exc:
        raise HttpProblem(400, str(exc), "malformed") from exc
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
