"""End to end through ``serve``: HTTP on loopback, the intake's routes, and the reconcile run in process
after each answer against the ESA emulator; the CLI's ``serve`` and ``invoke --handler intake`` as an
operator runs them.

The in-process server takes an injected clock (the DingTalk timestamps and the holds' instants are
pinned); the ``serve`` process signs with the real clock, as DingTalk would.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from helpers import run_cli, write_schedule
from intake_support import ALERTING, APP_SECRET, NOW, SCHEDULE, TOKEN, chat_body, fixture_request, signed

from esa_scheduler.edge.credentials import Credentials
from esa_scheduler.emulator import EMULATOR_ACCESS_KEY_ID, EMULATOR_ACCESS_KEY_SECRET, Emulator
from esa_scheduler.invocation.connection import Target
from esa_scheduler.invocation.function import execute
from esa_scheduler.invocation.holds import HoldStore
from esa_scheduler.invocation.intake.app import Intake
from esa_scheduler.invocation.intake.dispatch import reconcile_for
from esa_scheduler.invocation.intake.server import IntakeHttpServer, Reconciles, ServingIntake, in_process
from esa_scheduler.logs import RunLog

REPO = Path(__file__).resolve().parents[1]
EMULATED = Credentials(EMULATOR_ACCESS_KEY_ID, EMULATOR_ACCESS_KEY_SECRET)
TASKS = [
    {"TaskName": "access-logs-prod", "Status": "online"},
    {"TaskName": "access-logs-dev", "Status": "online"},
    {"TaskName": "waf-edge", "Status": "online"},
]


@dataclass
class Served:
    """A running intake on loopback, the emulator it reconciles, and the clock it reads."""

    url: str
    emulator: Emulator
    serving: ServingIntake
    state: Path
    clock: list[datetime]
    schedule: str

    def post(self, path: str, body: bytes, headers: dict[str, str] | None = None, **params: str) -> httpx.Response:
        response = httpx.post(self.url + path, content=body, headers=headers or {}, params=params, timeout=30)
        self.serving.wait_idle()
        return response

    def fixture(self, name: str, change: Callable[[bytes], bytes] = lambda body: body) -> dict[str, Any]:
        """Send an ``events/`` fixture's request (its body changed by ``change``) as its sender would."""
        path, body, headers, query = fixture_request(name)
        response = self.post(path, change(body), headers, **query)
        assert response.status_code == 200, response.text
        payload: dict[str, Any] = response.json()
        return payload

    def at(self, minutes: float) -> None:
        """Move the clock to ``minutes`` after ``NOW``."""
        self.clock[0] = NOW + timedelta(minutes=minutes)

    def tick(self) -> None:
        """The scheduler's timer at the clock's instant: what ends a hold whose cooldown ran out."""
        target = Target(
            self.emulator.url, Credentials(EMULATOR_ACCESS_KEY_ID, EMULATOR_ACCESS_KEY_SECRET), ephemeral=True
        )
        event = {"triggerTime": self.clock[0].strftime("%Y-%m-%dT%H:%M:%SZ"), "triggerName": "tick"}
        execute(
            event,
            target=target,
            schedule_path=self.schedule,
            state=str(self.state),
            stream=sys.stderr,
            now=self.clock[0],
        )

    def chat(self, text: str, msg_id: str) -> dict[str, Any]:
        response = self.post("/chat/dingtalk", chat_body(text, msg_id), signed(self.clock[0]))
        assert response.status_code == 200, response.text
        payload: dict[str, Any] = response.json()
        return payload


@pytest.fixture
def served(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Served]:
    monkeypatch.setenv("ESA_INTAKE_TOKEN", TOKEN)
    monkeypatch.setenv("ESA_DINGTALK_APP_SECRET", APP_SECRET)
    schedule = str(write_schedule(tmp_path / "schedule", ALERTING))
    state = str(tmp_path / "state")
    clock = [NOW]
    now: Callable[[], datetime] = lambda: clock[0]  # noqa: E731 - the clock the test moves
    with Emulator(tasks=TASKS) as emu:
        target = Target(emu.url, EMULATED, ephemeral=True)
        reconciles = Reconciles(in_process(target, schedule, state, now, sys.stderr))
        intake = Intake(schedule, state, None, now, reconciles.dispatch, sys.stderr)
        with ServingIntake(IntakeHttpServer(("127.0.0.1", 0), intake, reconciles)) as serving:
            yield Served(serving.url, emu, serving, tmp_path / "state", clock, schedule)


def test_a_chat_hold_takes_its_tasks_offline_and_its_release_brings_them_back(served: Served) -> None:
    payload = served.chat("hold access-logs-dev,waf-* 2h INC-4211 origin 5xx", "m1")
    assert payload["ok"] is True and payload["reconcile"] == "dispatched"
    assert (served.emulator.status("access-logs-dev"), served.emulator.status("waf-edge")) == ("offline", "offline")
    (hold,) = HoldStore(served.state).active(NOW)
    served.clock[0] = NOW + timedelta(minutes=20)
    payload = served.chat(f"release {hold.id}", "m2")
    assert payload["ok"] is True and payload["reconcile"] == "dispatched"
    assert (served.emulator.status("access-logs-dev"), served.emulator.status("waf-edge")) == ("online", "online")
    # the nightly window (02:30-05:30 Berlin) kept access-logs-prod offline throughout
    assert served.emulator.status("access-logs-prod") == "offline"


def test_serve_answers_http_as_the_trigger_would(served: Served) -> None:
    assert httpx.get(served.url + "/healthz").json() == {"ok": True}
    assert httpx.get(served.url + "/nowhere").status_code == 404
    assert httpx.get(served.url + "/chat/dingtalk").headers["allow"] == "POST"
    unauthorized = served.post("/alerts/sls", b"{}", {"Authorization": "Bearer nope"})
    assert (unauthorized.status_code, unauthorized.json()) == (401, {"ok": False, "error": "unauthorized"})
    big = served.post("/chat/dingtalk", b"x" * (300 * 1024), signed(NOW))
    assert (big.status_code, big.json()["ok"]) == (413, False)
    assert served.emulator.stats["by_action"] == {}  # nothing reached ESA


def test_the_in_process_queue_refuses_a_task_id_it_has_seen_and_merges_what_waits() -> None:
    """As FC refuses a repeated async task id, so does serve's queue; reconciles queued while one runs
    are merged into the next run."""
    ran: list[tuple[str, ...]] = []
    reconciles = Reconciles(lambda reconcile: ran.append(reconcile.hold_ids), sys.stderr)
    log = RunLog(stream=sys.stderr)
    first = reconcile_for("/alerts/sls", b"one", ["inc-a-00000001"])
    assert reconciles.dispatch(first, log).outcome == "dispatched"
    assert reconciles.dispatch(first, log).outcome == "already dispatched"
    assert reconciles.dispatch(reconcile_for("/alerts/sls", b"two", ["inc-b-00000002"]), log).outcome == "dispatched"
    reconciles.release()
    reconciles.stop()
    reconciles.work()
    assert ran == [("inc-a-00000001", "inc-b-00000002")]
    reconciles.wait_idle(1)


# --- alerts ---------------------------------------------------------------------------------------------


def offline(served: Served, *names: str) -> list[str]:
    return [name for name in names if served.emulator.status(name) == "offline"]


def test_a_cloudmonitor_alert_holds_until_its_recovery_has_cooled_down(served: Served) -> None:
    """ALERT takes access-logs-* offline; OK starts the 10-minute cooldown; a new ALERT within it keeps
    the hold; after the next OK's cooldown the timer's tick brings the tasks back."""
    fired = served.fixture("intake-cloudmonitor-alert.json")
    (hold_id,) = fired["holds"]["created"]
    assert offline(served, "access-logs-dev") == ["access-logs-dev"]
    served.at(45)
    recovered = served.fixture("intake-cloudmonitor-ok.json")
    assert recovered["holds"]["refreshed"] == [hold_id] and recovered["reconcile"] == "not needed"
    served.at(50)
    again = served.fixture(
        "intake-cloudmonitor-alert.json", lambda body: body.replace(b"curValue=7.4", b"curValue=9.1")
    )
    assert again["holds"]["refreshed"] == [hold_id]
    served.at(58)  # past the first cooldown's end (55): the new firing kept the hold
    served.tick()
    assert offline(served, "access-logs-dev") == ["access-logs-dev"]
    served.at(60)
    served.fixture("intake-cloudmonitor-ok.json")
    served.at(69)
    served.tick()
    assert offline(served, "access-logs-dev") == ["access-logs-dev"]
    served.at(70)
    served.tick()
    assert offline(served, "access-logs-dev") == []


def test_an_sls_alert_and_its_resolve(served: Served) -> None:
    fired = served.fixture("intake-sls-firing.json")
    assert fired["holds"]["created"] and offline(served, "access-logs-dev", "waf-edge") == ["access-logs-dev"]
    served.at(44)
    resolved = served.fixture("intake-sls-resolved.json")
    assert resolved["holds"]["released"] == fired["holds"]["created"] and resolved["reconcile"] == "dispatched"
    assert offline(served, "access-logs-dev") == []


def test_an_alertmanager_group_and_its_resolve(served: Served) -> None:
    fired = served.fixture("intake-alertmanager.json")
    assert (fired["alerts"], len(fired["holds"]["created"])) == (2, 1)
    assert offline(served, "waf-edge", "access-logs-dev") == ["waf-edge"]
    served.at(30)
    resolved = served.fixture(
        "intake-alertmanager.json", lambda body: body.replace(b'"status": "firing"', b'"status": "resolved"')
    )
    assert resolved["holds"]["released"] == fired["holds"]["created"]
    assert offline(served, "waf-edge") == []


def test_two_alert_keys_one_rule_and_one_resolve_lifts_only_its_own_hold(served: Served) -> None:
    other = lambda body: body.replace(b"transId=0b7d5c2a", b"transId=77777777")  # noqa: E731
    first = served.fixture("intake-cloudmonitor-alert.json")["holds"]["created"]
    second = served.fixture("intake-cloudmonitor-alert.json", other)["holds"]["created"]
    assert first != second
    served.at(20)
    served.fixture("intake-cloudmonitor-ok.json")
    served.at(31)
    served.tick()
    assert offline(served, "access-logs-dev") == ["access-logs-dev"]  # the other key still holds it
    served.fixture("intake-cloudmonitor-ok.json", other)
    served.at(42)
    served.tick()
    assert offline(served, "access-logs-dev") == []


def test_a_wrong_token_through_serve_writes_nothing(served: Served) -> None:
    path, body, headers, _ = fixture_request("intake-cloudmonitor-alert.json")
    for query in ({}, {"token": "esa-intake-test-tokem"}):
        response = served.post(path, body, headers, **query)
        assert (response.status_code, response.json()) == (401, {"ok": False, "error": "unauthorized"})
    assert not list(served.state.glob("*.json")) and offline(served, "access-logs-dev") == []


# --- the CLI --------------------------------------------------------------------------------------------


def child_env(tmp_path: Path) -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("ALIBABA_CLOUD_", "ESA_", "FC_"))}
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    return {**clean, "HOME": str(home), "ESA_INTAKE_TOKEN": TOKEN, "ESA_DINGTALK_APP_SECRET": APP_SECRET}


def test_the_serve_command_listens_answers_reconciles_and_stops_on_ctrl_c(
    tmp_path: Path, scanned: Callable[[str, str], None]
) -> None:
    schedule = write_schedule(tmp_path / "schedule", SCHEDULE)
    argv = [sys.executable, "-m", "esa_scheduler", "serve", "--port", "0", "--emulator"]
    argv += ["--schedule", str(schedule), "--state-dir", str(tmp_path / "state"), "--log-format", "json"]
    with subprocess.Popen(
        argv, env=child_env(tmp_path), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    ) as child:
        assert child.stdout is not None and child.stderr is not None
        first = child.stdout.readline().strip()
        assert first.startswith("listening on http://127.0.0.1:"), first
        url = first.removeprefix("listening on ")
        assert httpx.get(url + "/healthz").json() == {"ok": True}
        now = datetime.now(NOW.tzinfo)  # the child's clock is the real one: sign as DingTalk would, now
        answer = httpx.post(
            url + "/chat/dingtalk", content=chat_body("hold access-logs-dev 1h INC-1", "m1"), headers=signed(now)
        )
        assert answer.status_code == 200 and answer.json()["reconcile"] == "dispatched", answer.text
        child.send_signal(signal.SIGINT)
        out, err = child.communicate(timeout=60)
    scanned("serve stdout", first + out)
    scanned("serve stderr", err)
    assert child.returncode == 0, err
    lines = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
    results = [(line["task"], line["action"]) for line in lines if line["event"] == "task.result"]
    assert ("access-logs-dev", "updated") in results
    assert "Traceback" not in err


def test_serve_refuses_a_host_that_is_not_loopback(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_cli(
        capsys, "serve", "--host", "0.0.0.0", "--schedule", str(write_schedule(tmp_path, SCHEDULE))
    )
    assert (code, out) == (2, "")
    assert err.strip() == "--host '0.0.0.0' is not loopback: use 127.0.0.1 (127.0.0.0/8), ::1 or localhost"


def test_invoke_runs_one_http_event_through_the_intake_and_then_its_reconcile(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in [n for n in os.environ if n.startswith(("ALIBABA_CLOUD_", "ESA_", "FC_"))]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("ESA_DINGTALK_APP_SECRET", APP_SECRET)
    sample = str(REPO / "schedule" / "sample.yaml")
    argv = ["invoke", "--handler", "intake", str(REPO / "events" / "intake-dingtalk-hold.json")]
    argv += ["--schedule", sample, "--state-dir", str(tmp_path / "state"), "--log-format", "json"]
    code, out, err = run_cli(capsys, *argv, "--at", "2027-01-04T03:00:20Z")
    assert code == 0, err
    response = json.loads(out)
    assert response["statusCode"] == 200 and json.loads(response["body"])["reconcile"] == "dispatched"
    results = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
    assert ("access-logs-prod", "updated") in [(r["task"], r["action"]) for r in results if r["event"] == "task.result"]
    code, out, _ = run_cli(capsys, *argv, "--at", "2027-01-04T03:10:00Z")
    assert code == 0 and json.loads(json.loads(out)["body"]) == {"ok": True, "duplicate": True}
    code, out, _ = run_cli(capsys, *argv)  # now: the fixture's signature is long past its hour
    assert code == 1 and json.loads(out)["statusCode"] == 401


def test_invoke_intake_refuses_what_is_no_http_event(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    timer = str(REPO / "events" / "timer.json")
    code, out, err = run_cli(capsys, "invoke", "--handler", "intake", timer, "--state-dir", str(tmp_path))
    assert (code, out) == (2, "")
    assert err.strip() == f"{timer}: event.rawPath: Field required"
    code, _, err = run_cli(capsys, "invoke", timer, "--at", "2027-01-04T03:00:00Z")
    assert code == 2 and err.strip().startswith("--at: only with --handler intake")


def test_duplicate_keys_and_non_boolean_flags_are_refused_by_both_handlers(
    served: Served, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The intake through serve, and the scheduler's handler through invoke: a body that means two
    things, or a flag that is not a JSON boolean, changes nothing."""
    bearer = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
    twice = b'{"alert_name": "origin-5xx", "status": "resolved", "status": "firing", "fingerprint": "f1"}'
    refused = served.post("/alerts/sls", twice, bearer)
    assert (refused.status_code, refused.json()["error"]) == (400, "body: duplicate key 'status'")
    chat = served.post(
        "/chat/dingtalk", chat_body("status", "m1").replace(b'"msgId"', b'"msgId": "m0", "msgId"'), signed(NOW)
    )
    assert (chat.status_code, chat.json()["error"]) == (400, "body: duplicate key 'msgId'")
    assert not list(served.state.glob("*.json"))
    schedule = str(write_schedule(tmp_path / "handler", ALERTING))
    for name, body in [
        (
            "twice.json",
            '{"action": "release", "id": "x", "action": "hold", "tasks": ["waf-*"], "ttl": "1h", "reason": "r"}',
        ),
        ("force.json", '{"action": "reconcile", "force": "on"}'),
        ("dry.json", '{"action": "reconcile", "dry_run": 1}'),
    ]:
        (tmp_path / name).write_text(body)
        code, out, err = run_cli(capsys, "invoke", str(tmp_path / name), "--schedule", schedule, "--emulator")
        assert (code, out) == (2, ""), (name, err)
    assert served.emulator.stats["by_action"] == {}
