"""Notifications end to end: real reconciles against the emulator, real HTTP to loopback receivers.

Each receiver plays one service and checks requests the way that service documents it, with an
implementation written here, independently of ``esa_scheduler.invocation.notify``: DingTalk's ``sign`` query
parameter, Feishu's ``sign`` body field, WeCom's URL key, and the webhook's CloudEvents envelope and
``X-Esa-Scheduler-Signature``. A request that fails a check gets the service's own error answer, so
a wrong signature shows up as ``notify.failed`` with the service's code.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import io
import json
import re
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from helpers import Answer, Received, Receiver, parse_lines, run_cli, write_schedule

from esa_scheduler.edge.credentials import Credentials
from esa_scheduler.emulator import EMULATOR_ACCESS_KEY_ID, EMULATOR_ACCESS_KEY_SECRET, Emulator
from esa_scheduler.engine.holds import Hold
from esa_scheduler.engine.schedule.load import load_schedule
from esa_scheduler.invocation.function import Target, execute
from esa_scheduler.invocation.holds import HoldStore
from esa_scheduler.invocation.notify.message import Section
from esa_scheduler.invocation.reconciler import RunSummary
from esa_scheduler.timeutil import now_to_the_second, now_utc, utc_iso

CREDS = Credentials(EMULATOR_ACCESS_KEY_ID, EMULATOR_ACCESS_KEY_SECRET)
KINDS = ("dingtalk", "feishu", "wecom", "webhook")
NIGHT = "2026-11-28T01:30:00Z"
"""Inside ``nightly`` (02:00-03:00 Europe/Berlin, that is 01:00-02:00Z in November)."""

SCHEDULE = """\
version: 1
timezone: Europe/Berlin
default_status: online
tasks:
  - name: access-a
  - name: access-b
  - name: access-c
  - name: other
{safety}
windows:
  - name: nightly
    tasks: ["access-*"]
    status: offline
    cron: "0 2 * * *"
    duration: 1h
notify:
{targets}
"""
SEED: list[dict[str, Any]] = [
    {"TaskName": "access-a", "Status": "online"},
    {"TaskName": "access-b", "Status": "offline"},
    {"TaskName": "access-c", "Status": "online"},
    {"TaskName": "other", "Status": "online"},
]
"""At NIGHT exactly access-a and access-c change (access-b is already offline, other is not in a window)."""


# --------------------------------------------------------------------------- the services, as documented


def _b64_hmac(key: str, message: bytes) -> str:
    return base64.b64encode(hmac.new(key.encode(), message, hashlib.sha256).digest()).decode()


def _fresh(timestamp: str, per_second: int) -> bool:
    return timestamp.isdigit() and abs(time.time() * per_second - int(timestamp)) <= 3600 * per_second


def dingtalk_service(token: str, secret: str | None) -> Callable[[Received], Answer]:
    def respond(request: Received) -> Answer:
        if request.path != "/robot/send" or request.query.get("access_token") != token:
            return 200, {"errcode": 300001, "errmsg": "token is not exist"}
        if secret is not None:
            stamp, sign = request.query.get("timestamp", ""), request.query.get("sign", "")
            expected = _b64_hmac(secret, f"{stamp}\n{secret}".encode())
            if not _fresh(stamp, 1000) or not hmac.compare_digest(sign, expected):
                return 200, {"errcode": 310000, "errmsg": "sign not match"}
        body = request.json()
        if body.get("msgtype") != "markdown" or not body["markdown"].get("title") or not body["markdown"].get("text"):
            return 200, {"errcode": 40035, "errmsg": "missing parameter"}
        if len(body["markdown"]["text"].encode()) > 20000:
            return 200, {"errcode": 460101, "errmsg": "message too long"}
        return 200, {"errcode": 0, "errmsg": "ok"}

    return respond


def feishu_service(token: str, secret: str | None) -> Callable[[Received], Answer]:
    def respond(request: Received) -> Answer:
        if request.path != f"/open-apis/bot/v2/hook/{token}":
            return 404, {"code": 19001, "msg": "param invalid: incoming webhook access token invalid"}
        body = request.json()
        if secret is not None:
            stamp = str(body.get("timestamp", ""))
            expected = _b64_hmac(f"{stamp}\n{secret}", b"")
            if not _fresh(stamp, 1) or not hmac.compare_digest(str(body.get("sign", "")), expected):
                return 200, {"code": 19021, "msg": "sign match fail or timestamp is not within one hour"}
        post = body.get("content", {}).get("post", {}).get("zh_cn", {})
        if body.get("msg_type") != "post" or not post.get("title") or not post.get("content"):
            return 200, {"code": 9499, "msg": "Bad Request"}
        if len(request.body) > 20000:
            return 200, {"code": 9499, "msg": "request body exceeds 20KB"}
        return 200, {"code": 0, "msg": "success", "data": {}}

    return respond


def wecom_service(token: str, secret: str | None) -> Callable[[Received], Answer]:
    del secret

    def respond(request: Received) -> Answer:
        if request.path != "/cgi-bin/webhook/send" or request.query.get("key") != token:
            return 200, {"errcode": 93000, "errmsg": "invalid webhook url"}
        body = request.json()
        content = body.get("markdown", {}).get("content", "")
        if body.get("msgtype") != "markdown" or not content or len(content.encode()) > 4096:
            return 200, {"errcode": 40058, "errmsg": "markdown.content exceed max length 4096"}
        return 200, {"errcode": 0, "errmsg": "ok"}

    return respond


def webhook_service(token: str, secret: str | None) -> Callable[[Received], Answer]:
    def respond(request: Received) -> Answer:
        if request.path != f"/esa/{token}":
            return 404, {"error": "unknown hook"}
        if not request.headers.get("content-type", "").startswith("application/cloudevents+json"):
            return 415, {"error": "structured mode expected"}
        if secret is not None:
            expected = "sha256=" + hmac.new(secret.encode(), request.body, hashlib.sha256).hexdigest()
            if not hmac.compare_digest(request.headers.get("x-esa-scheduler-signature", ""), expected):
                return 401, {"error": "bad signature"}
        event = request.json()
        if event.get("specversion") != "1.0" or not all(event.get(k) for k in ("id", "source", "type", "time")):
            return 400, {"error": "not a CloudEvent"}
        return 202, {}

    return respond


SERVICES = {"dingtalk": dingtalk_service, "feishu": feishu_service, "wecom": wecom_service, "webhook": webhook_service}


def service_url(kind: str, base: str, token: str) -> str:
    return {
        "dingtalk": f"{base}/robot/send?access_token={token}",
        "feishu": f"{base}/open-apis/bot/v2/hook/{token}",
        "wecom": f"{base}/cgi-bin/webhook/send?key={token}",
        "webhook": f"{base}/esa/{token}",
    }[kind]


def text_of(kind: str, request: Received) -> str:
    """The human-readable message as the group would see it (webhooks: the event JSON)."""
    body = request.json()
    if kind == "dingtalk":
        return str(body["markdown"]["title"] + "\n" + body["markdown"]["text"])
    if kind == "wecom":
        return str(body["markdown"]["content"])
    if kind == "feishu":
        post = body["content"]["post"]["zh_cn"]
        return "\n".join([post["title"], *(item["text"] for line in post["content"] for item in line)])
    return json.dumps(body)


# --------------------------------------------------------------------------- the rig


@dataclass
class Rig:
    """An emulator, a schedule with ``notify:`` targets, loopback receivers and the run's environment."""

    emulator: Emulator
    tmp: Path
    env: dict[str, str] = field(default_factory=lambda: {"ESA_MAX_RPS": "0"})
    receivers: dict[str, Receiver] = field(default_factory=dict)
    stack: list[Receiver] = field(default_factory=list)

    @property
    def state(self) -> Path:
        return self.tmp / "state"

    @property
    def schedule(self) -> Path:
        return self.tmp / "schedule" / "ops.yaml"

    def target(
        self,
        name: str,
        kind: str,
        *,
        signed: bool = True,
        respond: Callable[[Callable[[Received], Answer]], Callable[[Received], Answer]] | None = None,
        **extra: Any,
    ) -> str:
        """Start a receiver for one target, export its URL (and secret) and return its YAML entry."""
        token, secret = f"tok-{uuid.uuid4().hex}", f"SEC{uuid.uuid4().hex}" if signed and kind != "wecom" else None
        service = SERVICES[kind](token, secret)
        receiver = Receiver(respond(service) if respond else service).__enter__()
        self.stack.append(receiver)
        self.receivers[name] = receiver
        variable = name.upper().replace("-", "_")
        self.env[f"{variable}_URL"] = service_url(kind, receiver.base, token)
        entry: dict[str, Any] = {"name": name, "kind": kind, "url_env": f"{variable}_URL"}
        if secret is not None:
            self.env[f"{variable}_SECRET"] = secret
            entry["secret_env"] = f"{variable}_SECRET"
        entry.update(extra)
        return "  - " + json.dumps(entry)

    def write(self, *targets: str, safety: str = "") -> None:
        write_schedule(self.schedule.parent, SCHEDULE.format(targets="\n".join(targets), safety=safety))

    def run(self, body: Any, budget_s: float | None = None) -> tuple[RunSummary, list[dict[str, Any]]]:
        stream = io.StringIO()
        summary = execute(
            body,
            target=Target(self.emulator.url, CREDS),
            schedule_path=str(self.schedule.parent),
            state=str(self.state),
            budget_s=budget_s,
            stream=stream,
            environ=self.env,
        )
        return summary, parse_lines(stream.getvalue())


@contextmanager
def make_rig(tmp_path: Path, seed: list[dict[str, Any]]) -> Iterator[Rig]:
    with Emulator(tasks=seed) as emulator:
        made = Rig(emulator, tmp_path)
        try:
            yield made
        finally:
            for receiver in made.stack:
                receiver.__exit__(None, None, None)


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[Rig]:
    with make_rig(tmp_path, SEED) as made:
        yield made


def reconcile(at: str, **extra: Any) -> dict[str, Any]:
    return {"action": "reconcile", "at": at, **extra}


def timer(at: str) -> bytes:
    return json.dumps({"triggerTime": at, "triggerName": "every-minute", "payload": ""}).encode()


def named(lines: list[dict[str, Any]], event: str) -> list[dict[str, Any]]:
    return [line for line in lines if line["event"] == event]


def always(answer: Answer) -> Callable[[Callable[[Received], Answer]], Callable[[Received], Answer]]:
    """A service that checks each request as usual, then answers ``answer`` instead of success."""

    def wrap(service: Callable[[Received], Answer]) -> Callable[[Received], Answer]:
        def respond(request: Received) -> Answer:
            status, verdict = service(request)
            assert status < 300 and verdict.get("errcode", verdict.get("code", 0)) == 0, verdict
            return answer

        return respond

    return wrap


# --------------------------------------------------------------------------- what is sent, and when


@pytest.mark.parametrize("kind", KINDS)
def test_each_kind_sends_one_signed_message_with_exactly_the_changed_tasks(rig: Rig, kind: str) -> None:
    rig.write(rig.target("ops", kind))
    summary, lines = rig.run(reconcile(NIGHT))

    assert summary.counts["updated"] == 2 and summary.notified == 1 and summary.notify_failed == 0
    (request,) = rig.receivers["ops"].received
    (sent,) = named(lines, "notify.sent")
    assert sent == {
        **sent,
        "target": "ops",
        "kind": kind,
        "attempts": 1,
        "http_status": 202 if kind == "webhook" else 200,
    }
    assert sent["code"] == (None if kind == "webhook" else "0")
    assert named(lines, "run.summary")[0]["notified"] == 1
    assert named(lines, "run.summary")[0]["notify_failed"] == 0
    text = text_of(kind, request)
    assert "access-a" in text and "access-c" in text
    assert "access-b" not in text and "other" not in text
    if kind == "webhook":
        event = request.json()
        assert event["type"] == "esa-scheduler.run.changed"
        assert event["time"] == NIGHT and event["id"].endswith(".ops")
        assert [r["task"] for r in event["data"]["results"]] == ["access-a", "access-c"]
        assert {r["previous"] + "->" + r["desired"] for r in event["data"]["results"]} == {"online->offline"}
        assert event["data"]["summary"]["counts"]["updated"] == 2
    else:
        assert "online -> offline (window:nightly)" in text
        assert "02:30 CET (01:30Z)" in text, "times in the file's zone with UTC beside them"


def test_a_quiet_run_sends_nothing(rig: Rig) -> None:
    rig.write(rig.target("ops", "dingtalk"), rig.target("hook", "webhook"))
    rig.run(reconcile(NIGHT))
    summary, lines = rig.run(timer(NIGHT))

    assert summary.counts["unchanged"] == 4
    assert [len(r.received) for r in rig.receivers.values()] == [1, 1]
    assert not [line for line in lines if line["event"].startswith("notify.")]
    assert (summary.notified, summary.notify_failed) == (0, 0)


def test_a_dry_run_sends_nothing_and_records_no_reminder(rig: Rig) -> None:
    rig.write(rig.target("ops", "dingtalk", send_on=["changes", "reminders"], before="15m"))
    summary, lines = rig.run(reconcile("2026-11-28T00:50:00Z", dry_run=True))

    assert rig.receivers["ops"].received == []
    assert [line["reason"] for line in named(lines, "notify.skipped")] == ["dry run"]
    assert not named(lines, "notify.sent") and not named(lines, "notify.failed")
    assert not (rig.state / "notify" / "reminders.json").exists()
    summary, lines = rig.run(reconcile(NIGHT, dry_run=True))
    assert summary.counts["would_update"] == 2 and rig.receivers["ops"].received == []
    summary, _ = rig.run(timer("2026-11-28T00:50:00Z"))
    assert summary.notified == 1, "the dry run recorded nothing, so the real tick still announces"


def test_reminders_are_announced_once_across_consecutive_ticks(rig: Rig) -> None:
    rig.write(rig.target("ops", "feishu", send_on=["reminders"], before="15m", tasks=["access-a", "access-c"]))
    ticks = ["2026-11-28T00:44:00Z", "2026-11-28T00:45:00Z", "2026-11-28T00:46:00Z", "2026-11-28T00:47:00Z"]
    notified = [rig.run(timer(at))[0].notified for at in ticks]

    assert notified == [0, 1, 0, 0], "00:44 is 16 minutes ahead; 00:45 announces; later ticks stay quiet"
    (request,) = rig.receivers["ops"].received
    text = text_of("feishu", request)
    assert "access-a, access-c go offline at 02:00 CET (01:00Z) for window nightly" in text
    assert "access-b" not in text
    stored = json.loads((rig.state / "notify" / "reminders.json").read_text())
    assert list(stored["sent"].values()) == ["2026-11-28T01:00:00Z"]
    rig.run(timer("2026-11-28T01:01:00Z"))
    assert json.loads((rig.state / "notify" / "reminders.json").read_text())["sent"] == {}, (
        "passed reminders are dropped"
    )


def test_reminders_hidden_behind_and_n_more_go_out_at_the_next_tick(tmp_path: Path) -> None:
    """Twelve transitions are coming; WeCom shows ten and "and 2 more": only the ten are recorded."""
    windows = "".join(
        f"  - {{name: w{i:02d}, tasks: [r{i:02d}], status: offline, cron: '{i} 1 * * *', duration: 1h}}\n"
        for i in range(12)
    )
    tasks = "".join(f"  - name: r{i:02d}\n" for i in range(12))
    with make_rig(tmp_path, [{"TaskName": f"r{i:02d}", "Status": "online"} for i in range(12)]) as rig:
        entry = rig.target("ops", "wecom", send_on=["reminders"], before="1h")
        text = f"version: 1\ntimezone: UTC\ntasks:\n{tasks}windows:\n{windows}notify:\n{entry}\n"
        write_schedule(rig.schedule.parent, text)
        notified = [rig.run(timer(at))[0].notified for at in ("2026-11-28T00:30:00Z", "2026-11-28T00:31:00Z")]
        notified.append(rig.run(timer("2026-11-28T00:32:00Z"))[0].notified)
        first, second = (text_of("wecom", r) for r in rig.receivers["ops"].received)

    assert notified == [1, 1, 0]
    assert "Coming up (12)" in first and "- and 2 more" in first and "r09 goes offline" in first
    assert "r10" not in first and "Coming up (2)" in second
    assert "r10 goes offline at 01:10Z for window w10" in second and "r11 goes offline" in second


def test_failures_and_a_blocked_run_are_reported(rig: Rig) -> None:
    rig.write(rig.target("ops", "wecom"), rig.target("hook", "webhook"))
    rig.emulator.script_fault("access-a", "InvalidParameter", count=10)
    summary, _ = rig.run(reconcile(NIGHT))

    assert summary.counts["failed"] == 1 and summary.notified == 2
    text = text_of("wecom", rig.receivers["ops"].received[0])
    assert "access-a: online -> offline failed: InvalidParameter" in text
    assert "access-c: online -> offline" in text
    event = rig.receivers["hook"].received[0].json()
    assert event["type"] == "esa-scheduler.run.failed"
    assert {r["task"]: r["error_code"] for r in event["data"]["results"]} == {
        "access-a": "InvalidParameter",
        "access-c": None,
    }

    rig.emulator.set_status("access-c", "online")
    rig.write(rig.target("ops2", "dingtalk"), safety="safety: {max_changes: 0}")
    summary, _ = rig.run(reconcile(NIGHT))
    assert summary.blocked and summary.notified == 1
    text = text_of("dingtalk", rig.receivers["ops2"].received[0])
    assert "Blocked by safety" in text and "2 change(s) held back" in text


def test_an_alert_that_does_not_change_is_repeated_hourly_and_its_end_is_announced(rig: Rig) -> None:
    """A timer every minute must not repeat the same failure 60 times an hour; a different failure
    goes at once, and the first run without one says the alert is over."""
    rig.write(rig.target("ops", "wecom"))
    rig.emulator.set_status("other", "offline")  # the default is online: every run tries to change it
    rig.emulator.script_fault("other", "InvalidParameter", count=5)
    minutes = ["10:00", "10:01", "10:59", "11:00", "11:01", "11:02", "11:03"]
    notified, suppressed = [], []
    for index, minute in enumerate(minutes):
        if minute == "11:01":  # a second task fails too: another alert
            rig.emulator.set_status("access-c", "offline")
            rig.emulator.script_fault("access-c", "InvalidParameter", count=1)
        summary, lines = rig.run(timer(f"2026-11-28T{minute}:00Z"))
        notified.append(summary.notified)
        suppressed += [(index, line["target"], line["last_alert"]) for line in named(lines, "notify.suppressed")]
    texts = [text_of("wecom", request) for request in rig.receivers["ops"].received]

    assert notified == [1, 0, 0, 1, 1, 1, 0]
    assert suppressed == [(1, "ops", "2026-11-28T10:00:00Z"), (2, "ops", "2026-11-28T10:00:00Z")]
    assert ["other: offline -> online failed: InvalidParameter" in text for text in texts] == [True] * 3 + [False]
    assert "Failed (2)" in texts[2] and "access-c: offline -> online failed: InvalidParameter" in texts[2]
    assert "**Recovered**" in texts[3] and "no failure and no block since the alert of 12:01 CET (11:01Z)" in texts[3]
    assert "other: offline -> online (default)" in texts[3]
    assert json.loads((rig.state / "notify" / "alerts.json").read_text())["alerts"] == {}


def test_a_blocked_run_alerts_once_within_the_hour(rig: Rig) -> None:
    rig.write(rig.target("hook", "webhook"), safety="safety: {max_changes: 0}")
    notified = [rig.run(timer(at))[0].notified for at in ("2026-11-28T01:30:00Z", "2026-11-28T01:31:00Z")]
    assert notified == [1, 0]
    (event,) = (request.json() for request in rig.receivers["hook"].received)
    assert event["type"] == "esa-scheduler.run.blocked"
    stored = json.loads((rig.state / "notify" / "alerts.json").read_text())["alerts"]
    assert list(stored) == ["hook"] and stored["hook"]["sent_at"] == "2026-11-28T01:30:00Z"


def test_holds_created_released_and_expired_are_reported(rig: Rig) -> None:
    rig.write(rig.target("ops", "dingtalk", send_on=["holds"], tasks=["access-*"]))
    now = now_to_the_second()  # what the runs below decide at (and record), so the timer is not before them
    hold = {"action": "hold", "tasks": ["access-a"], "reason": "INC-42 origin 5xx", "by": "oncall", "ttl": "2h"}
    summary, lines = rig.run(hold)
    hold_id = named(lines, "hold.created")[0]["id"]
    assert summary.notified == 1
    text = text_of("dingtalk", rig.receivers["ops"].received[0])
    assert f"created {hold_id}: access-a offline, reason: INC-42 origin 5xx, by oncall, expires" in text

    summary, _ = rig.run({"action": "release", "id": hold_id})
    assert summary.notified == 1
    assert f"released {hold_id}" in text_of("dingtalk", rig.receivers["ops"].received[1])

    ended = Hold(
        id="h-ended",
        tasks=("access-b",),
        status="offline",
        reason="maintenance",
        created_at=now - timedelta(hours=1),
        expires_at=now - timedelta(seconds=20),
    )
    HoldStore(rig.state).save(ended)
    summary, _ = rig.run(timer(utc_iso(now)))
    assert "expired h-ended: access-b offline, reason: maintenance" in text_of(
        "dingtalk", rig.receivers["ops"].received[2]
    )
    summary, _ = rig.run(timer(utc_iso(now + timedelta(minutes=1))))
    assert len(rig.receivers["ops"].received) == 3, "an expiry is reported by one tick only"


def test_holds_changed_from_the_cli_are_announced_once_by_the_next_run(
    rig: Rig, capsys: pytest.CaptureFixture[str]
) -> None:
    """``hold add|release`` only write the store (the operator's machine may not have the URLs): the
    next run announces what changed since the holds it announced last, and only once. Before any
    run has recorded them, holds created since the last completed run are the new ones."""
    rig.write(rig.target("ops", "dingtalk", send_on=["holds"]))
    where = ["--schedule", str(rig.schedule), "--state-dir", str(rig.state)]
    hold = ["--task", "access-a", "--ttl", "2h", "--reason", "CDN move", "--by", "alice", "--id", "h-cli"]
    code, _, err = run_cli(capsys, "hold", "add", *hold, *where)
    assert code == 0, err
    assert rig.receivers["ops"].received == [], "the CLI itself sends nothing"
    now = now_utc()
    ticks = [timer(utc_iso(now + timedelta(minutes=minute))) for minute in range(4)]

    assert [rig.run(ticks[0])[0].notified, rig.run(ticks[1])[0].notified] == [1, 0]
    code, _, err = run_cli(capsys, "hold", "release", "--id", "h-cli", *where)
    assert code == 0, err
    assert [rig.run(ticks[2])[0].notified, rig.run(ticks[3])[0].notified] == [1, 0]
    created, released = (text_of("dingtalk", r) for r in rig.receivers["ops"].received)
    assert "created h-cli: access-a offline, reason: CDN move, by alice, expires" in created
    assert "released h-cli: access-a offline, reason: CDN move, by alice" in released


def test_a_target_only_hears_about_its_tasks_and_long_lists_are_cut(tmp_path: Path) -> None:
    bulk = [{"TaskName": f"access-x{i:02d}", "Status": "online"} for i in range(30)]
    with make_rig(tmp_path, [*SEED, *bulk]) as rig:
        write_schedule(rig.schedule.parent, "version: 1\ntasks:\n  - pattern: access-x*\n", name="bulk.yaml")
        rig.write(rig.target("only-a", "dingtalk", tasks=["access-a"]), rig.target("all", "wecom"))
        summary, _ = rig.run(reconcile(NIGHT))

        assert summary.counts["updated"] == 32 and summary.notified == 2
        text = text_of("dingtalk", rig.receivers["only-a"].received[0])
        assert "access-a: online -> offline" in text and "access-c" not in text and "access-x" not in text
        text = text_of("wecom", rig.receivers["all"].received[0])
        assert "Changed (32)" in text and "- and 22 more" in text
        assert len([line for line in text.splitlines() if "online -> offline" in line]) == 10


def test_a_hold_on_many_tasks_fits_wecom(tmp_path: Path) -> None:
    """A hold lists its first tasks and "and N more", like every list; WeCom takes 4096 bytes."""
    names = [f"edge-logs-production-{'x' * 30}-{i:02d}" for i in range(80)]
    with make_rig(tmp_path, [*SEED, *({"TaskName": name, "Status": "online"} for name in names)]) as rig:
        write_schedule(rig.schedule.parent, "version: 1\ntasks:\n  - pattern: edge-logs-*\n", name="bulk.yaml")
        rig.write(rig.target("ops", "wecom"))
        summary, lines = rig.run(
            {"action": "hold", "tasks": names, "status": "offline", "ttl": "1h", "reason": "CDN move"}
        )

        assert summary.counts["updated"] == 81 and summary.notified == 1, named(lines, "notify.failed")
        text = text_of("wecom", rig.receivers["ops"].received[0])
    assert len(text.encode()) <= 4096
    assert f"{', '.join(names[:5])}, and 75 more offline" in text
    assert "Changed (81)" in text, "the 80 and access-b, offline outside the nightly window"


EVIL_REASON = (
    "INC-7 [verify your account](http://evil.example/login) **URGENT** "
    "\x1b[31mred\x1b[0m <font color=red>see</font> ![x](https://evil.example/x.png)"
)
"""A reason as a hostile sender writes it: a phishing link, bold text, a raw ESC, HTML and an image."""
INERT_REASON = (
    "INC-7 ［verify your account］(http[:]//evil[.]example/login) ∗∗URGENT∗∗ "
    "\\u001b［31mred\\u001b［0m ＜font color=red＞see＜/font＞ !［x］(https[:]//evil[.]example/x.png)"
)
LIVE_MARKUP = ("](", "http://", "https://", "**URGENT", "**boss", "<font", "\x1b")
"""What must not reach a chat message from a value: a link, a URL, emphasis, a tag, a control character."""


def test_a_hold_reason_with_a_phishing_link_bold_text_and_an_escape_arrives_inert(rig: Rig) -> None:
    """Each chat service gets the reason and the author with no link, emphasis, tag or control character
    left; the webhook, whose data is JSON and no markup, gets them exactly as sent, like the hold file."""
    rig.write(*(rig.target(kind, kind, send_on=["holds"]) for kind in KINDS))
    hold = {"action": "hold", "tasks": ["access-a"], "reason": EVIL_REASON, "ttl": "2h", "id": "inc-evil"}
    summary, lines = rig.run({**hold, "by": "**boss** http://evil.example"})

    assert summary.notified == 4, named(lines, "notify.failed")
    for kind in ("dingtalk", "feishu", "wecom"):
        (request,) = rig.receivers[kind].received
        text = text_of(kind, request)
        (line,) = [line for line in text.splitlines() if "inc-evil" in line]
        inert = f"created inc-evil: access-a offline, reason: {INERT_REASON}, by ∗∗boss∗∗ http[:]//evil[.]example"
        assert inert in line, line
        assert not [live for live in LIVE_MARKUP if live in text], text
    event = rig.receivers["webhook"].received[0].json()
    assert event["data"]["holds"]["created"][0]["reason"] == EVIL_REASON
    assert json.loads((rig.state / "inc-evil.json").read_text())["reason"] == EVIL_REASON


def test_task_names_and_error_codes_from_the_server_arrive_inert(tmp_path: Path) -> None:
    """ESA names the tasks and the errors: a task named like a link and a code like bold text are
    shown as text in the changed and failed lines."""
    evil_task = "access-[pay](https://evil.example)"
    evil_code = "**Denied** <@all>"
    with make_rig(tmp_path, [*SEED, {"TaskName": evil_task, "Status": "online"}]) as rig:
        write_schedule(rig.schedule.parent, "version: 1\ntasks:\n  - pattern: access-?pay*\n", name="more.yaml")
        rig.write(*(rig.target(kind, kind) for kind in ("dingtalk", "feishu", "wecom")))
        rig.emulator.script_fault("access-a", evil_code, count=10)
        summary, lines = rig.run(reconcile(NIGHT))

        assert summary.counts["updated"] == 2 and summary.counts["failed"] == 1
        assert summary.notified == 3, named(lines, "notify.failed")
        for kind in ("dingtalk", "feishu", "wecom"):
            text = text_of(kind, rig.receivers[kind].received[0])
            assert "access-a: online -> offline failed: ∗∗Denied∗∗ ＜@all＞" in text
            assert "access-［pay］(https[:]//evil[.]example): online -> offline (window:nightly)" in text
            assert "](" not in text and "https://" not in text and "<@all>" not in text and "**Denied" not in text


@pytest.mark.parametrize(
    ("answer", "code"),
    [({"errcode": "0", "errmsg": "ok"}, "0"), ({"errcode": False, "errmsg": "ok"}, "false"), ({"errmsg": "ok"}, None)],
    ids=["zero-as-a-string", "false", "no-code"],
)
def test_only_the_number_0_is_a_delivered_message(rig: Rig, answer: dict[str, Any], code: str | None) -> None:
    """An answer whose code is not DingTalk's number 0 comes from something else (a proxy, a stub):
    the message is not counted as delivered, so nothing is recorded as announced."""
    rig.write(rig.target("ops", "dingtalk", respond=always((200, answer))))
    summary, lines = rig.run(reconcile(NIGHT))

    (failed,) = named(lines, "notify.failed")
    assert failed["code"] == code
    assert (summary.notified, summary.notify_failed) == (0, 1)


def test_an_answer_that_gives_its_code_twice_is_not_a_success() -> None:
    """JSON readers disagree on which of two equal keys wins; the sender does not guess."""
    from esa_scheduler.invocation.notify import dingtalk, feishu

    twice = dingtalk.answer(200, b'{"errcode": 310000, "errmsg": "sign not match", "errcode": 0}')
    assert (twice.ok, twice.code) == (False, None)
    assert dingtalk.answer(200, b'{"errcode": 0, "errmsg": "ok"}').ok
    assert not feishu.answer(200, b'{"code": 0, "code": 0, "msg": "success"}').ok


def _sections(line: str, count: int) -> tuple[Section, ...]:
    return tuple(Section(f"第{n}节 ({count})", tuple(f"{n}-{i} {line}" for i in range(count))) for n in range(8))


@pytest.mark.parametrize(("kind", "limit"), [("dingtalk", 20000), ("feishu", 20000), ("wecom", 4096)])
def test_each_chat_service_gets_at_most_its_byte_limit_even_of_multibyte_text(rig: Rig, kind: str, limit: int) -> None:
    """Eight sections of 1,000 Chinese characters a line are too big even at one line each: the last
    lines are cut, whole, and a note says so."""
    from esa_scheduler.invocation.notify.dispatch import send_all
    from esa_scheduler.invocation.notify.message import Message
    from esa_scheduler.logs import RunLog

    rig.write(rig.target("ops", kind))
    target = load_schedule(str(rig.schedule)).notify[0]
    message = Message("esa-scheduler.run.failed", now_utc(), "esa-scheduler 测试", _sections("失败" * 500, 40), {})
    (delivery,) = asyncio.run(
        send_all([(target, message)], rig.env, time.monotonic() + 10, RunLog(stream=io.StringIO()))
    )

    assert delivery.ok, delivery.detail
    request = rig.receivers["ops"].received[0]
    text = text_of(kind, request)
    assert text.endswith(f"… (cut to fit {kind}'s limit)")
    markdown = request.json().get("markdown", {})
    measured = request.body if kind == "feishu" else str(markdown.get("text") or markdown["content"]).encode()
    assert limit // 2 < len(measured) <= limit
    shown = [line for line in text.splitlines() if "失败" in line]
    assert shown and all(line.endswith("失败" * 500) for line in shown), "lines are dropped whole"
    assert "第7节" not in text


# --------------------------------------------------------------------------- never in the way


@pytest.mark.parametrize(
    ("kind", "answer", "field_name", "value"),
    [
        ("dingtalk", (200, {"errcode": 130101, "errmsg": "send too fast"}), "code", "130101"),
        ("webhook", (429, {"error": "slow down"}), "http_status", 429),
    ],
)
def test_throttling_is_retried_then_given_up_within_the_deadline(
    rig: Rig, kind: str, answer: Answer, field_name: str, value: Any
) -> None:
    rig.write(rig.target("ops", kind, respond=always(answer)))
    summary, lines = rig.run(reconcile(NIGHT), budget_s=6)

    assert summary.counts["updated"] == 2 and not summary.failed, "the reconcile is unaffected"
    assert rig.emulator.status("access-a") == "offline"
    (failed,) = named(lines, "notify.failed")
    attempts = len(rig.receivers["ops"].received)
    assert attempts >= 2 and failed["attempts"] == attempts
    assert failed[field_name] == value and "deadline" in failed["error"]
    assert failed["error"].startswith("gave up"), "no retry is started that could only be cut off"
    assert (summary.notified, summary.notify_failed) == (0, 1)
    assert named(lines, "run.summary")[0]["notify_failed"] == 1


def test_throttling_then_acceptance_is_one_message(rig: Rig) -> None:
    answers = iter([(200, {"errcode": 130101, "errmsg": "send too fast"})])

    def first_throttled(service: Callable[[Received], Answer]) -> Callable[[Received], Answer]:
        return lambda request: next(answers, None) or service(request)

    rig.write(rig.target("ops", "dingtalk", respond=first_throttled))
    summary, lines = rig.run(reconcile(NIGHT))
    assert summary.notified == 1
    assert named(lines, "notify.sent")[0]["attempts"] == 2 == len(rig.receivers["ops"].received)


def test_a_receiver_that_never_answers_does_not_hold_the_run(rig: Rig) -> None:
    def silent(service: Callable[[Received], Answer]) -> Callable[[Received], Answer]:
        def respond(request: Received) -> Answer:
            rig.receivers["silent"].release.wait(60)
            return service(request)

        return respond

    rig.write(rig.target("silent", "webhook", respond=silent), rig.target("ops", "dingtalk"))
    summary, lines = rig.run(reconcile(NIGHT), budget_s=6)

    assert not rig.receivers["silent"].release.is_set(), "the run returned while the receiver still held the request"
    assert summary.counts["updated"] == 2
    (failed,) = named(lines, "notify.failed")
    assert failed["target"] == "silent" and "deadline" in failed["error"]
    assert [line["target"] for line in named(lines, "notify.sent")] == ["ops"]
    assert (summary.notified, summary.notify_failed) == (1, 1)


def test_missing_variables_and_plain_http_fail_the_target_not_the_run(rig: Rig) -> None:
    rig.write(
        rig.target("ops", "dingtalk"),
        "  - {name: unset, kind: webhook, url_env: NOT_SET_URL}",
        "  - {name: plain, kind: wecom, url_env: PLAIN_URL}",
    )
    rig.env["PLAIN_URL"] = "http://192.0.2.1/cgi-bin/webhook/send?key=plain-http-key-1234"
    summary, lines = rig.run(reconcile(NIGHT))

    assert summary.counts["updated"] == 2 and not summary.failed
    errors = {line["target"]: line["error"] for line in named(lines, "notify.failed")}
    assert errors == {
        "unset": "NOT_SET_URL is not set (the URL of notify target unset)",
        "plain": "the URL in PLAIN_URL must start with https:// (http:// only on loopback)",
    }
    assert all(line["attempts"] == 0 for line in named(lines, "notify.failed"))
    assert (summary.notified, summary.notify_failed) == (1, 2)


def test_only_token_like_parts_of_a_url_are_masked(rig: Rig) -> None:
    """``async=true`` in a URL must not make the masker turn every ``true`` in the logs into ``***``,
    while the token in the path is masked: the receiver echoes the path and query it was called on."""

    def echo(service: Callable[[Received], Answer]) -> Callable[[Received], Answer]:
        def respond(request: Received) -> Answer:
            assert service(request)[0] == 202
            return 202, {"called": f"{request.path}?{urlencode(request.query)}"}

        return respond

    rig.write(rig.target("hook", "webhook", respond=echo))
    rig.env["HOOK_URL"] += "?async=true"
    token = rig.env["HOOK_URL"].split("/esa/")[1].split("?")[0]
    summary, lines = rig.run(reconcile(NIGHT))

    assert summary.notified == 1
    assert rig.receivers["hook"].received[0].query == {"async": "true"}
    (sent,) = named(lines, "notify.sent")
    assert json.loads(sent["detail"]) == {"called": "/esa/***?async=true"}
    assert token not in json.dumps(lines)


def test_a_malformed_url_fails_its_target_alone(rig: Rig) -> None:
    rig.write(
        rig.target("ops", "dingtalk"),
        "  - {name: letters, kind: webhook, url_env: LETTERS_PORT_URL}",
        "  - {name: huge, kind: webhook, url_env: HUGE_PORT_URL}",
        "  - {name: spaced, kind: webhook, url_env: SPACED_URL}",
    )
    rig.env.update(
        LETTERS_PORT_URL="https://example.com:abc/hook",
        HUGE_PORT_URL="https://example.com:99999/hook",
        SPACED_URL="https://exa mple.com/hook",
    )
    summary, lines = rig.run(reconcile(NIGHT))

    assert [line["target"] for line in named(lines, "notify.sent")] == ["ops"]
    errors = {line["target"]: (line["error"], line["attempts"]) for line in named(lines, "notify.failed")}
    assert errors == {
        "letters": ("the URL in LETTERS_PORT_URL is not a valid URL", 0),
        "huge": ("the URL in HUGE_PORT_URL has a port outside 1-65535", 0),
        "spaced": ("the URL in SPACED_URL is not a valid URL", 0),
    }
    assert (summary.notified, summary.notify_failed) == (1, 3)


def test_an_unforeseen_error_in_one_delivery_fails_that_target_alone(rig: Rig, monkeypatch: pytest.MonkeyPatch) -> None:
    """Only the exception's type is reported: its text may quote the URL."""
    from esa_scheduler.invocation.notify import webhook

    def broken(url: str, *args: Any) -> Any:
        raise RuntimeError(f"cannot prepare {url}")

    monkeypatch.setattr(webhook, "prepare", broken)
    rig.write(rig.target("ops", "dingtalk"), rig.target("hook", "webhook"))
    summary, lines = rig.run(reconcile(NIGHT))

    assert len(rig.receivers["ops"].received) == 1 and rig.receivers["hook"].received == []
    assert [line["target"] for line in named(lines, "notify.sent")] == ["ops"]
    (failed,) = named(lines, "notify.failed")
    assert failed["target"] == "hook" and failed["error"] == "unexpected error: RuntimeError"
    assert "stage" not in failed
    assert (summary.notified, summary.notify_failed) == (1, 1)


@pytest.mark.parametrize("padding", [0, 190], ids=["whole", "across-the-detail-cut"])
def test_every_credential_in_a_url_is_masked_even_when_the_service_echoes_it(rig: Rig, padding: int) -> None:
    """A short token (15 characters), a shorter ``key``, any long query value and the userinfo
    password: a service that echoes the request must not put any of them into the logs, not even
    the part of one that the 200-character detail keeps."""
    token, key, label = uuid.uuid4().hex[:15], uuid.uuid4().hex[:5], uuid.uuid4().hex[:9]
    password = "pw-" + uuid.uuid4().hex[:7]

    def echo(request: Received) -> Answer:
        auth = base64.b64decode(request.headers["authorization"].removeprefix("Basic ")).decode()
        return 200, {
            "errcode": 300001,
            "errmsg": "x" * padding + f"{request.query['access_token']} {request.query} {auth}",
        }

    with Receiver(echo) as receiver:
        rig.write("  - {name: echo, kind: dingtalk, url_env: ECHO_URL}")
        host = receiver.base.removeprefix("http://")
        query = f"access_token={token}&key={key}&label={label}&async=true"
        rig.env["ECHO_URL"] = f"http://robot:{password}@{host}/robot/send?{query}"
        summary, lines = rig.run(reconcile(NIGHT))

    assert summary.notify_failed == 1 and len(receiver.received) == 1
    (failed,) = named(lines, "notify.failed")
    assert failed["code"] == "300001" and "***" in failed["error"]
    logged = json.dumps(lines)
    assert not [value for value in (token, token[:8], key, label, password) if value in logged]
    if not padding:
        assert "'async': 'true'" in failed["error"], "short values of ordinary keys stay readable"


# --------------------------------------------------------------------------- notify test, validate


def test_notify_test_prints_the_services_answer(
    rig: Rig, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    rig.write(
        rig.target("ops", "dingtalk"),
        rig.target("refused", "dingtalk", respond=always((200, {"errcode": 310000, "errmsg": "sign not match"}))),
    )
    for name, value in rig.env.items():
        monkeypatch.setenv(name, value)

    code, out, _ = run_cli(capsys, "notify", "test", "ops", "--schedule", str(rig.schedule))
    assert code == 0 and out.strip() == "ops (dingtalk): accepted after 1 attempt(s): HTTP 200, code 0: ok"
    assert "Test message for target ops" in text_of("dingtalk", rig.receivers["ops"].received[0])
    code, out, _ = run_cli(capsys, "notify", "test", "refused", "--schedule", str(rig.schedule))
    assert (
        code == 1
        and out.strip() == "refused (dingtalk): FAILED after 1 attempt(s): HTTP 200, code 310000: sign not match"
    )
    code, _, err = run_cli(capsys, "notify", "test", "nope", "--schedule", str(rig.schedule))
    assert code == 2 and err.strip() == "notify test: no notify target named 'nope' (targets: ops, refused)"


def test_notify_test_without_a_name_tests_every_target(
    rig: Rig, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    refused = always((200, {"errcode": 310000, "errmsg": "sign not match"}))
    rig.write(
        rig.target("ops", "dingtalk"), rig.target("hook", "webhook"), rig.target("refused", "dingtalk", respond=refused)
    )
    for name, value in rig.env.items():
        monkeypatch.setenv(name, value)

    code, out, _ = run_cli(capsys, "notify", "test", "--schedule", str(rig.schedule))
    assert code == 1, "one target refused"
    assert out.splitlines() == [
        "ops (dingtalk): accepted after 1 attempt(s): HTTP 200, code 0: ok",
        "hook (webhook): accepted after 1 attempt(s): HTTP 202: {}",
        "refused (dingtalk): FAILED after 1 attempt(s): HTTP 200, code 310000: sign not match",
    ]
    assert [len(receiver.received) for receiver in rig.receivers.values()] == [1, 1, 1]
    (event,) = (request.json() for request in rig.receivers["hook"].received)
    assert event["type"] == "esa-scheduler.test" and re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", event["time"])

    rig.write(rig.target("ops", "dingtalk"), rig.target("hook", "webhook"))
    for name, value in rig.env.items():
        monkeypatch.setenv(name, value)
    code, out, _ = run_cli(capsys, "notify", "test", "--schedule", str(rig.schedule))
    assert code == 0 and [line.split(":")[1] for line in out.splitlines()] == [" accepted after 1 attempt(s)"] * 2


def test_notify_test_with_no_targets_says_how_to_add_one(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    schedule = write_schedule(tmp_path, "version: 1\ntasks:\n  - name: access-a\n")
    code, out, err = run_cli(capsys, "notify", "test", "--schedule", str(schedule))
    assert (code, err) == (0, ""), "nothing to test is not a failure"
    assert (
        out
        == f"{schedule}: no notify targets to test; add a notify: entry to the schedule (see docs/notifications.md)\n"
    )
    code, _, err = run_cli(capsys, "notify", "test", "ops", "--schedule", str(schedule))
    assert code == 2 and err == "notify test: no notify target named 'ops' (targets: none)\n"


def test_notify_test_with_a_malformed_url_prints_one_line(
    rig: Rig, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    rig.write("  - {name: ops, kind: dingtalk, url_env: OPS_URL}")
    monkeypatch.setenv("OPS_URL", "https://oapi.dingtalk.com:abc/robot/send?access_token=0123456789abcdef")
    code, out, err = run_cli(capsys, "notify", "test", "ops", "--schedule", str(rig.schedule))
    assert code == 1 and "Traceback" not in err
    assert out == "ops (dingtalk): FAILED after 0 attempt(s): no HTTP answer: the URL in OPS_URL is not a valid URL\n"


NOTIFY_BASE = """\
version: 1
tasks:
  - name: access-a
notify:
"""


@pytest.mark.parametrize(
    ("entry", "problem"),
    [
        (
            "{name: x, kind: slack, url_env: X}",
            "notify[0] (x).kind: Input should be 'dingtalk', 'feishu', 'wecom' or 'webhook'",
        ),
        (
            "{name: x, kind: dingtalk, url_env: X, before: 15m}",
            "notify[0] (x): before only applies with 'reminders' in send_on",
        ),
        ("{name: x, kind: dingtalk, url_env: X, send_on: [reminders]}", "'reminders' in send_on needs before"),
        ("{name: x, kind: dingtalk, url_env: X, send_on: [reminders], before: soon}", "invalid duration 'soon'"),
        (
            "{name: x, kind: dingtalk, url_env: X, send_on: [changes, weekly]}",
            "notify[0] (x).send_on[1]: Input should be 'changes', 'failures', 'blocked', 'holds' or 'reminders' "
            "(got 'weekly')",
        ),
        (
            "{name: x, kind: dingtalk, url_env: X, tasks: [waf-*]}",
            "notify[0] (x).tasks[0]: 'waf-*' matches no managed task",
        ),
        ("{name: x, kind: dingtalk, url_env: X, tasks: [access-b]}", "'access-b' is not a managed task"),
        ("{name: x, kind: wecom, url_env: X, secret_env: Y}", "secret_env does not apply to wecom"),
        (
            "{name: x, kind: dingtalk, url: 'https://h/robot/send?access_token=abc'}",
            "notify[0] (x).url: unknown key 'url' (did you mean 'url_env'?)",
        ),
        (
            "{name: x, kind: dingtalk, url_env: X, on: [changes]}",
            "notify[0] (x): YAML 1.1 reads a bare 'on' key as true: write send_on",
        ),
    ],
)
def test_validate_checks_the_structure_without_the_variables(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], entry: str, problem: str
) -> None:
    path = write_schedule(tmp_path, NOTIFY_BASE + f"  - {entry}\n")
    code, out, err = run_cli(capsys, "validate", "--schedule", str(path))
    assert code == 2 and out == ""
    assert problem in err and "Traceback" not in err


PASTED = uuid.uuid4().hex + uuid.uuid4().hex


@pytest.mark.parametrize(
    ("field_name", "value", "shown"),
    [
        ("url_env", f"https://oapi.dingtalk.com/robot/send?access_token={PASTED}", PASTED),
        ("secret_env", f"SEC{PASTED}", PASTED),
        ("secret_env", f"SEC{PASTED[:12]}", PASTED[:12]),
        ("secret_env", f"SEC{PASTED.upper()}", PASTED.upper()),
        ("url_env", "12345678901234567890", "12345678901234567890"),
        ("url_env", "ops_dingtalk_url", "ops_dingtalk_url"),
        ("url_env", "", None),
    ],
    ids=["url", "secret", "short-secret", "secret-over-64-chars", "number", "lower-case", "empty"],
)
def test_a_value_pasted_where_a_variable_name_belongs_is_refused_and_never_echoed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], field_name: str, value: str, shown: str | None
) -> None:
    """A variable name is what FC accepts (A-Z, 0-9, _; at most 64): a token or a secret never passes."""
    extra = f", {field_name}: {json.dumps(value)}" if field_name == "secret_env" else ""
    url_env = json.dumps(value) if field_name == "url_env" else "OPS_URL"
    path = write_schedule(tmp_path, NOTIFY_BASE + f"  - {{name: x, kind: dingtalk, url_env: {url_env}{extra}}}\n")
    code, out, err = run_cli(capsys, "validate", "--schedule", str(path))
    assert code == 2 and out == ""
    (line,) = err.splitlines()
    assert line.endswith(
        f"notify[0] (x): {field_name} must name an environment variable "
        "(A-Z, 0-9 and _, not starting with a digit, at most 64 characters), not hold its value"
    )
    assert shown is None or shown not in err


def test_a_valid_notify_section_validates_without_its_variables(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    targets = textwrap.dedent(
        """\
          - name: ops-dingtalk
            kind: dingtalk
            url_env: OPS_DINGTALK_URL
            secret_env: OPS_DINGTALK_SECRET
            send_on: [changes, failures, blocked, holds, reminders]
            before: 15m
            tasks: ["access-*"]
        """
    )
    path = write_schedule(tmp_path, NOTIFY_BASE + textwrap.indent(targets, ""))
    code, out, err = run_cli(capsys, "validate", "--schedule", str(path), "--at", "2027-01-10T12:00:00Z")
    assert code == 0 and "valid" in out, err


LOADED_NOTIFY_MODULES = """\
import io, json, sys
from esa_scheduler.edge.credentials import Credentials
from esa_scheduler.emulator import EMULATOR_ACCESS_KEY_ID, EMULATOR_ACCESS_KEY_SECRET, Emulator
from esa_scheduler.engine.schedule.load import load_schedule
from esa_scheduler.invocation.function import Target, execute
with Emulator(tasks=[{"TaskName": "access-a", "Status": "online"}]) as emulator:
    target = Target(emulator.url, Credentials(EMULATOR_ACCESS_KEY_ID, EMULATOR_ACCESS_KEY_SECRET))
    execute({"action": "reconcile"}, target=target, schedule_path=sys.argv[1], state=sys.argv[2],
            environ={"ESA_MAX_RPS": "0"}, stream=io.StringIO())
print(json.dumps(sorted(name for name in sys.modules if name.startswith("esa_scheduler.invocation.notify"))))
"""


@pytest.mark.parametrize(
    ("notify", "loaded"),
    [
        ("", []),
        (
            "notify:\n  - {name: ops, kind: webhook, url_env: UNSET_HOOK_URL}\n",
            ["esa_scheduler.invocation.notify.dispatch"],
        ),
    ],
    ids=["without-notify", "with-notify"],
)
def test_the_sender_is_imported_only_for_schedules_with_targets(tmp_path: Path, notify: str, loaded: list[str]) -> None:
    """The timer's cold start loads nothing under ``invocation/notify/`` (the ``notify:`` model is the
    schedule's), unless the schedule has targets."""
    schedule = write_schedule(tmp_path, "version: 1\ntasks:\n  - name: access-a\n" + notify)
    command = [sys.executable, "-c", LOADED_NOTIFY_MODULES, str(schedule), str(tmp_path / "state")]
    found = json.loads(subprocess.run(command, check=True, capture_output=True, text=True).stdout)
    if notify:
        assert set(loaded) <= set(found)
    else:
        assert found == loaded


def test_a_bug_in_the_notification_code_never_costs_the_run_its_summary(
    rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    from esa_scheduler.invocation.notify import dispatch

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("composer exploded")

    monkeypatch.setattr(dispatch, "compose", broken)
    rig.write(rig.target("ops", "webhook"))
    summary, lines = rig.run(reconcile(NIGHT))
    assert summary.counts["updated"] == 2 and summary.notify_failed == 1
    assert rig.emulator.status("access-a") == "offline"
    (failed,) = named(lines, "notify.failed")
    assert failed["error"] == "RuntimeError: composer exploded"
    assert lines[-1]["event"] == "run.summary" and lines[-1]["notify_failed"] == 1
