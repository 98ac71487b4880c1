"""What the intake's tests share: FC HTTP trigger events, DingTalk signatures, a schedule with ``intake:``.

The token and app secret below are test values; the conftest's secret scan knows them (by their
variables, ``ESA_INTAKE_TOKEN`` and ``ESA_DINGTALK_APP_SECRET``) and fails a test whose output
carries either.
"""

from __future__ import annotations

import base64
import io
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from helpers import parse_lines, write_schedule

from esa_scheduler.invocation.intake.app import Intake
from esa_scheduler.invocation.intake.dispatch import Dispatched, Reconcile
from esa_scheduler.invocation.notify.dingtalk import sign
from esa_scheduler.logs import RunLog

TOKEN = "esa-intake-test-token"
APP_SECRET = "esa-dingtalk-test-app-secret"
STAFF = "manager4220"
CONVERSATION = "cid6KeBBLoveMJOGXoYKF5x7EeiodoA=="
NOW = datetime(2027, 1, 4, 3, 0, tzinfo=timezone.utc)
"""The instant the tests pin (a Monday, 04:00 in Berlin)."""
SCHEDULE = """\
version: 1
timezone: Europe/Berlin
tasks:
  - name: access-logs-prod
  - name: access-logs-dev
  - pattern: "waf-*"
windows:
  - name: nightly
    tasks: [access-logs-prod]
    cron: "30 2 * * *"
    duration: 3h
intake:
  token_env: ESA_INTAKE_TOKEN
  dingtalk:
    app_secret_env: ESA_DINGTALK_APP_SECRET
    allow_senders: ["manager4220"]
"""


ALERT_RULES = """\
incidents:
  - name: origin-errors
    alert:
      {source: cloudmonitor, name: "origin-5xx*", severity: [critical, warning], labels: {instanceId: "esa-site-*"}}
    tasks: ["access-logs-*"]
    ttl: 2h
    cooldown: 10m
  - name: sls-origin
    alert: {source: sls, name: "origin-5xx*"}
    tasks: [access-logs-dev]
    ttl: 1h
  - name: prom-origin
    alert: {source: alertmanager, name: "Origin5xx*"}
    tasks: ["waf-*"]
    ttl: 1h
"""
ALERTING = SCHEDULE + ALERT_RULES
EVENTS = Path(__file__).resolve().parents[1] / "events"


def fixture_request(name: str) -> tuple[str, bytes, dict[str, str], dict[str, str]]:
    """Path, decoded body, headers and query of an HTTP trigger fixture in ``events/``."""
    event = json.loads((EVENTS / name).read_text())
    body = base64.b64decode(event["body"]) if event["isBase64Encoded"] else event["body"].encode()
    return event["rawPath"], body, event["headers"], event["queryParameters"]


def http_event(
    method: str,
    path: str,
    body: bytes = b"",
    *,
    headers: Mapping[str, str] | None = None,
    query: Mapping[str, str] | None = None,
    encoded: bool = True,
) -> bytes:
    """The event FC's HTTP trigger delivers: capitalised header names, the body base64-encoded."""
    event = {
        "version": "v1",
        "rawPath": path,
        "body": base64.b64encode(body).decode() if encoded else body.decode(),
        "isBase64Encoded": encoded,
        "headers": {"-".join(w.capitalize() for w in k.split("-")): v for k, v in (headers or {}).items()},
        "queryParameters": dict(query or {}),
        "requestContext": {
            "accountId": "1234567890123456",
            "domainName": "intake-abc.cn-hangzhou.fcapp.run",
            "http": {"method": method, "path": path, "protocol": "HTTP/1.1", "sourceIp": "203.0.113.9"},
            "requestId": "1-6777d0c0-0123456789abcdef",
            "time": "2027-01-04T03:00:00Z",
            "timeEpoch": "1799031600000",
        },
    }
    return json.dumps(event).encode()


def signed(at: datetime = NOW, secret: str = APP_SECRET) -> dict[str, str]:
    """DingTalk's headers for a callback sent at ``at``."""
    timestamp = int(at.timestamp() * 1000)
    return {"timestamp": str(timestamp), "sign": sign(secret, timestamp), "content-type": "application/json"}


def chat_body(content: str, msg_id: str = "msg-1", sender: str = STAFF, conversation: str = CONVERSATION) -> bytes:
    """A DingTalk robot callback (HTTP mode) for a group message @mentioning the robot."""
    return json.dumps(
        {
            "msgtype": "text",
            "text": {"content": content},
            "msgId": msg_id,
            "createAt": 1799031600000,
            "conversationType": "2",
            "conversationId": conversation,
            "conversationTitle": "ops",
            "senderId": "$:LWCP_v1:$abc",
            "senderNick": "Manager",
            "senderStaffId": sender,
            "isAdmin": True,
            "robotCode": "dingrobot123",
            "sessionWebhook": "https://oapi.dingtalk.com/robot/sendBySession?session=abc",
            "chatbotUserId": "$:LWCP_v1:$robot",
            "atUsers": [{"dingtalkId": "$:LWCP_v1:$robot"}],
        }
    ).encode()


def form(**fields: str) -> bytes:
    """A form body, as CloudMonitor posts its callbacks."""
    return urlencode(fields).encode()


@dataclass
class Dispatches:
    """A dispatcher that records what it is asked, answering ``outcome``."""

    outcome: str = "dispatched"
    seen: list[Reconcile] = field(default_factory=list)

    def __call__(self, reconcile: Reconcile, log: RunLog) -> Dispatched:
        del log
        self.seen.append(reconcile)
        return Dispatched(self.outcome)  # type: ignore[arg-type]


@dataclass
class Harness:
    """The intake on a schedule and state folder of a test, at a pinned instant, logs kept."""

    schedule: Path
    state: Path
    environ: dict[str, str]
    now: datetime = NOW
    dispatches: Dispatches = field(default_factory=Dispatches)
    stream: io.StringIO = field(default_factory=io.StringIO)

    def __call__(
        self, method: str, path: str, body: bytes = b"", **options: Any
    ) -> tuple[int, dict[str, Any], dict[str, Any]]:
        """Status, JSON answer and the response struct for one request."""
        intake = Intake(
            str(self.schedule), str(self.state), self.environ, lambda: self.now, self.dispatches, self.stream
        )
        response = intake.handle(http_event(method, path, body, **options))
        payload = json.loads(response["body"])
        assert isinstance(payload, dict) and isinstance(payload.get("ok"), bool), response
        return response["statusCode"], payload, response

    def logs(self) -> list[dict[str, Any]]:
        return parse_lines(self.stream.getvalue())

    def holds(self) -> dict[str, dict[str, Any]]:
        """The hold files written so far, by id."""
        return {p.stem: json.loads(p.read_text()) for p in sorted(self.state.glob("*.json"))}


def harness(tmp_path: Path, schedule: str = SCHEDULE, **env: str) -> Harness:
    """A harness whose environment holds the test token and app secret (unless ``env`` overrides them)."""
    path = write_schedule(tmp_path / "schedule", schedule)
    environ = {"ESA_INTAKE_TOKEN": TOKEN, "ESA_DINGTALK_APP_SECRET": APP_SECRET, **env}
    return Harness(path, tmp_path / "state", {k: v for k, v in environ.items() if v})
