"""Fleets across accounts (issue 13): STS roles and both fan-out modes, all on one loopback emulator
that serves several accounts, STS ``AssumeRole`` and FC ``InvokeFunction``."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from helpers import Receiver, clean_environment, endpoint_env, fc_context, parse_lines, set_env, write_schedule

import handler as fc_handler
from esa_scheduler.edge.sts import RoleSessionCache
from esa_scheduler.emulator import (
    EMULATOR_ACCESS_KEY_ID,
    EMULATOR_ACCESS_KEY_SECRET,
    EMULATOR_ACCOUNT_ID,
    EmulatedAccount,
    EmulatedRole,
    Emulator,
    Faults,
)
from esa_scheduler.emulator.models import TOO_MANY_REQUESTS
from esa_scheduler.engine.holds import Hold
from esa_scheduler.engine.schedule.load import load_schedule
from esa_scheduler.invocation import fleet
from esa_scheduler.invocation.events.reader import EventReader
from esa_scheduler.invocation.function import RunFailed
from esa_scheduler.invocation.holds import HoldStore
from esa_scheduler.timeutil import parse_instant

NIGHT = "2026-11-28T02:30:00Z"
ACCOUNT_A, ACCOUNT_B = "1111222233334444", "5555666677778888"
ROLE_A = f"acs:ram::{ACCOUNT_A}:role/esa-scheduler-target"
ROLE_B = f"acs:ram::{ACCOUNT_B}:role/esa-scheduler-target"
TASKS = [{"TaskName": f"access-{i}", "Status": "online"} for i in range(3)]
SCHEDULE = f"""\
version: 1
timezone: UTC
targets:
  - name: prod-a
    role_arn: "{ROLE_A}"
    region: cn-hangzhou
  - name: prod-b
    role_arn: "{ROLE_B}"
    region: ap-southeast-1
  - name: self
    region: cn-hangzhou
tasks:
  - pattern: "access-*"
windows:
  - name: nightly
    tasks: ["access-*"]
    cron: "0 2 * * *"
    duration: 1h
"""
FUNCTION = "esa-scheduler"


def accounts(b_error: str | None = None) -> list[EmulatedAccount]:
    return [
        EmulatedAccount(
            id=ACCOUNT_A, access_key_id="ak-account-a", access_key_secret="secret-of-account-a", tasks=TASKS
        ),
        EmulatedAccount(
            id=ACCOUNT_B,
            access_key_id="ak-account-b",
            access_key_secret="secret-of-account-b",
            tasks=TASKS,
            error=b_error,
        ),
    ]


@pytest.fixture(autouse=True)
def fresh_sessions(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test starts with a cold instance: no STS credentials cached by an earlier test."""
    monkeypatch.setattr(fleet, "_sessions", None)


@pytest.fixture
def schedule(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    clean_environment(monkeypatch, tmp_path)
    return write_schedule(tmp_path / "schedule", SCHEDULE)


def use_env(monkeypatch: pytest.MonkeyPatch, emulator: Emulator, schedule: Path, **extra: str) -> None:
    """The scheduler's own account (the emulator's default) calls ESA, STS and FC on the emulator."""
    set_env(
        monkeypatch,
        {
            **endpoint_env(emulator.url, EMULATOR_ACCESS_KEY_ID, EMULATOR_ACCESS_KEY_SECRET),
            "ESA_STS_ENDPOINT": emulator.url,
            "ESA_FC_ENDPOINT": emulator.url,
            "ESA_SCHEDULE": str(schedule),
            "ESA_STATE_DIR": str(schedule.parent.parent / "state"),
            **extra,
        },
    )


def context(request_id: str = "fc-req-coordinator") -> Any:
    ctx = fc_context(request_id=request_id, timeout=120)
    ctx.account_id = EMULATOR_ACCOUNT_ID
    return ctx


def async_fleet() -> Emulator:
    """Two member accounts with their roles and this account; FC runs each dispatched target
    invocation through the real handler, as a target invocation of its own."""
    roles = [EmulatedRole(arn=ROLE_A), EmulatedRole(arn=ROLE_B)]
    target_run = {FUNCTION: lambda body: fc_handler.handler(body, context("fc-req-target"))}
    return Emulator(tasks=TASKS, accounts=accounts(), roles=roles, functions=target_run)


def timer(at: str = NIGHT) -> bytes:
    return json.dumps({"triggerTime": at, "triggerName": "schedule-tick", "payload": ""}).encode()


def statuses(emulator: Emulator, account: str | None) -> set[str]:
    return {emulator.status(t["TaskName"], account=account) for t in TASKS}


def assume_calls(emulator: Emulator) -> int:
    return int(emulator.stats["by_action"].get("AssumeRole", 0))


def test_inline_fleet_converges_every_account(
    schedule: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    roles = [EmulatedRole(arn=ROLE_A), EmulatedRole(arn=ROLE_B)]
    with Emulator(tasks=TASKS, accounts=accounts(), roles=roles) as emulator:
        use_env(monkeypatch, emulator, schedule)
        result = fc_handler.handler(timer(), context())
        assert result["ok"] is True
        assert {name: t["counts"]["updated"] for name, t in result["targets"].items()} == {
            "prod-a": 3,
            "prod-b": 3,
            "self": 3,
        }
        for account in (ACCOUNT_A, ACCOUNT_B, None):
            assert statuses(emulator, account) == {"offline"}
        # the minimum: one list page and three updates per target, plus one AssumeRole per role
        assert assume_calls(emulator) == 2
        assert result["api_calls"] == emulator.stats["total"] == 3 * (1 + 3) + 2
        # a second run within the credentials' lifetime assumes nothing again
        emulator.reset_stats()
        fc_handler.handler(timer("2026-11-28T02:31:00Z"), context())
        assert assume_calls(emulator) == 0
    lines = parse_lines(capsys.readouterr().out)
    assert {line["target"] for line in lines if line["event"] == "task.result"} == {"prod-a", "prod-b", "self"}


def test_sts_credentials_are_refreshed_shortly_before_they_expire(
    schedule: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    now = [datetime.now(timezone.utc)]
    monkeypatch.setattr(fleet, "_sessions", RoleSessionCache(clock=lambda: now[0]))
    roles = [EmulatedRole(arn=ROLE_A), EmulatedRole(arn=ROLE_B)]
    with Emulator(tasks=TASKS, accounts=accounts(), roles=roles) as emulator:
        use_env(monkeypatch, emulator, schedule)
        fc_handler.handler(timer(), context())
        assert assume_calls(emulator) == 2
        now[0] += timedelta(minutes=54)  # an hour's credentials, refreshed 5 minutes early: not yet
        fc_handler.handler(timer("2026-11-28T02:31:00Z"), context())
        assert assume_calls(emulator) == 2
        now[0] += timedelta(minutes=2)
        fc_handler.handler(timer("2026-11-28T02:32:00Z"), context())
        assert assume_calls(emulator) == 4


@pytest.mark.parametrize(
    ("roles", "b_error", "code"),
    [
        ([EmulatedRole(arn=ROLE_A), EmulatedRole(arn=ROLE_B, deny=True)], None, "NoPermission"),
        ([EmulatedRole(arn=ROLE_A)], None, "EntityNotExist.Role"),
        ([EmulatedRole(arn=ROLE_A), EmulatedRole(arn=ROLE_B)], "EsaService.NotOpen", "EsaService.NotOpen"),
    ],
    ids=["denied", "no-such-role", "esa-not-open"],
)
def test_one_failing_target_leaves_the_others_untouched(
    schedule: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    roles: list[EmulatedRole],
    b_error: str | None,
    code: str,
) -> None:
    with Emulator(tasks=TASKS, accounts=accounts(b_error), roles=roles) as emulator:
        use_env(monkeypatch, emulator, schedule)
        with pytest.raises(RunFailed, match="1 of 3 target"):
            fc_handler.handler(timer(), context())
        assert statuses(emulator, ACCOUNT_A) == {"offline"} and statuses(emulator, None) == {"offline"}
        assert statuses(emulator, ACCOUNT_B) == {"online"}
    lines = parse_lines(capsys.readouterr().out)
    failed = [line for line in lines if line["event"] == "target.summary" and line["ok"] is False]
    assert [line["target"] for line in failed] == ["prod-b"]
    assert code in json.dumps(failed[0])
    summary = lines[-1]
    assert summary["event"] == "run.summary" and summary["error"] == "1 of 3 target(s) failed: prod-b"


def test_async_fanout_dispatches_once_per_target_and_never_twice(
    schedule: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    roles = [EmulatedRole(arn=ROLE_A), EmulatedRole(arn=ROLE_B)]
    runs: list[dict[str, Any]] = []

    def function(event: bytes) -> object:
        result = fc_handler.handler(event, context(f"fc-req-{len(runs)}"))
        runs.append(result)
        return result

    with Emulator(tasks=TASKS, accounts=accounts(), roles=roles, functions={FUNCTION: function}) as emulator:
        use_env(monkeypatch, emulator, schedule, ESA_FANOUT="async")
        coordinator = fc_handler.handler(timer(), context())
        assert coordinator["ok"] is True and coordinator["tasks"] == 0
        assert set(coordinator["targets"]) == {"prod-a", "prod-b", "self"}
        invocations = emulator.wait_for_invocations(3)
        events = sorted((json.loads(i.event) for i in invocations), key=lambda event: event["target"])
        assert events == [{"action": "reconcile", "at": NIGHT, "target": name} for name in ("prod-a", "prod-b", "self")]
        assert [(i.outcome, i.error) for i in emulator.wait_for_invocations(3)] == [("ok", None)] * 3
        for account in (ACCOUNT_A, ACCOUNT_B, None):
            assert statuses(emulator, account) == {"offline"}
        # FC retries the coordinator (same trigger): FC refuses every duplicate, nothing runs twice
        again = fc_handler.handler(timer(), context())
        assert again["ok"] is True
        assert len(emulator.invocations) == 3
    out = capsys.readouterr().out
    lines = parse_lines(out)
    dispatched = [line for line in lines if line["event"] == "fanout.dispatched"]
    assert len(dispatched) == 6 and sum(1 for line in dispatched if line.get("duplicate")) == 3
    assert sorted(r["targets"].popitem()[0] for r in runs) == ["prod-a", "prod-b", "self"]


INCIDENT = """\
incidents:
  - name: origin-errors
    match: {type: "cms:*"}
    tasks: ["access-1"]
    ttl: 1h
"""
HOLD_EVENT = {"action": "hold", "tasks": ["access-1"], "ttl": "1h", "reason": "INC-7"}
"""No ``id``: the hold gets a fresh id each time it is read, so the dispatch key cannot rest on it."""
ALARM = {"specversion": "1.0", "id": "evt-1", "source": "acs.cms", "type": "cms:alarm", "data": {"state": "ALERT"}}


def identity(schedule: Path, body: bytes, now: str = NIGHT) -> tuple[str, ...]:
    return EventReader(load_schedule(str(schedule)), parse_instant(now)).read(body).delivery


def test_a_delivered_event_is_identified_by_what_was_delivered_not_by_when_it_is_read(schedule: Path) -> None:
    later = "2026-11-28T02:34:59Z"

    def tick(name: str = "schedule-tick", at: str = NIGHT, payload: str = "") -> bytes:
        return json.dumps({"triggerTime": at, "triggerName": name, "payload": payload}).encode()

    # the same trigger firing: whatever the payload's spelling of "no options" or the instant's offset
    same = {
        identity(schedule, tick()),
        identity(schedule, tick(), later),
        identity(schedule, tick(payload='{"dry_run": false}')),
        identity(schedule, tick(at="2026-11-28T10:30:00+08:00")),
        identity(schedule, json.dumps([json.loads(tick())]).encode()),
    }
    assert same == {("timer", "schedule-tick", NIGHT)}
    different = {
        identity(schedule, tick(payload='{"dry_run": true}')),
        identity(schedule, tick(payload='{"force": true}')),
        identity(schedule, tick(name="preview-tick")),
        identity(schedule, tick(at="2026-11-28T02:31:00Z")),
        identity(schedule, json.dumps([json.loads(tick()), json.loads(tick(name="preview-tick"))]).encode()),
    }
    assert len(different) == 5 and not same & different
    # any other event: its body as delivered, read at any instant
    hold = json.dumps(HOLD_EVENT).encode()
    assert identity(schedule, hold) == identity(schedule, hold, later)
    assert identity(schedule, hold) != identity(schedule, json.dumps({**HOLD_EVENT, "reason": "INC-8"}).encode())
    assert identity(schedule, json.dumps({**HOLD_EVENT, "id": "inc-7"}).encode())[:2] == ("command", "inc-7")
    reconcile = json.dumps({"action": "reconcile", "at": "2026-11-28T10:30:00+08:00"}).encode()
    assert identity(schedule, reconcile)[:2] == ("command", NIGHT)


@pytest.mark.parametrize("event", [HOLD_EVENT, ALARM], ids=["hold", "cloudevent"])
def test_a_retried_event_dispatches_no_target_twice(
    schedule: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], event: dict[str, Any]
) -> None:
    schedule.write_text(SCHEDULE + INCIDENT, encoding="utf-8")
    with async_fleet() as emulator:
        use_env(monkeypatch, emulator, schedule, ESA_FANOUT="async")
        body = json.dumps(event).encode()
        first = fc_handler.handler(body, context())
        emulator.wait_for_invocations(3)
        # FC retries the coordinator a moment later: the same bytes, a later "now"
        again = fc_handler.handler(body, context("fc-req-coordinator-retry"))
        assert emulator.stats["by_action_outcome"]["InvokeFunction"] == {"ok": 3, "AsyncTaskAlreadyExists": 3}
        assert [(i.outcome, i.error) for i in emulator.wait_for_invocations(3)] == [("ok", None)] * 3
        for account in (ACCOUNT_A, ACCOUNT_B, None):
            assert emulator.status("access-1", account=account) == "offline"
    assert first["ok"] is True and {t["duplicate"] for t in first["targets"].values()} == {False}
    assert again["ok"] is True and {t["duplicate"] for t in again["targets"].values()} == {True}
    assert {t["task_id"] for t in again["targets"].values()} == {t["task_id"] for t in first["targets"].values()}
    refused = [line for line in parse_lines(capsys.readouterr().out) if line.get("duplicate") is True]
    assert [line["event"] for line in refused] == ["fanout.dispatched"] * 3


def test_a_dry_run_preview_at_the_same_instant_does_not_suppress_the_real_run(
    schedule: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    preview = {"triggerTime": NIGHT, "triggerName": "preview-tick", "payload": '{"dry_run": true}'}
    with async_fleet() as emulator:
        use_env(monkeypatch, emulator, schedule, ESA_FANOUT="async")
        fc_handler.handler(json.dumps(preview).encode(), context())
        emulator.wait_for_invocations(3)
        for account in (ACCOUNT_A, ACCOUNT_B, None):
            assert statuses(emulator, account) == {"online"}
        real = fc_handler.handler(timer(), context())
        assert real["ok"] is True and {t["duplicate"] for t in real["targets"].values()} == {False}
        assert [(i.outcome, i.error) for i in emulator.wait_for_invocations(6)] == [("ok", None)] * 6
        for account in (ACCOUNT_A, ACCOUNT_B, None):
            assert statuses(emulator, account) == {"offline"}


def test_async_fanout_target_invocations_each_send_their_own_message(
    schedule: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Each dispatched invocation is a run of its own: its message names its target, in the title and
    in the CloudEvents id, so that ids never collide; the coordinator, which changed nothing, is silent."""
    write_schedule(
        schedule.parent, SCHEDULE + 'notify:\n  - {"name": "hook", "kind": "webhook", "url_env": "HOOK_URL"}\n'
    )
    with Receiver(lambda request: (202, {})) as hook:
        with async_fleet() as emulator:
            use_env(monkeypatch, emulator, schedule, ESA_FANOUT="async", HOOK_URL=f"{hook.base}/hook")
            coordinator = fc_handler.handler(timer(), context())
            assert [(i.outcome, i.error) for i in emulator.wait_for_invocations(3)] == [("ok", None)] * 3
        events = sorted((r.json() for r in hook.received), key=lambda event: event["data"]["target"])
    assert coordinator["notified"] == 0
    assert [e["data"]["target"] for e in events] == ["prod-a", "prod-b", "self"]
    lines = parse_lines(capsys.readouterr().out)
    run_ids = {line["target"]: line["run_id"] for line in lines if line["event"] == "target.summary"}
    assert [e["id"] for e in events] == [f"{run_ids[name]}.{name}.hook" for name in ("prod-a", "prod-b", "self")]
    assert all(
        len(e["data"]["results"]) == 3 and {r["target"] for r in e["data"]["results"]} == {e["data"]["target"]}
        for e in events
    )
    summaries = [line for line in lines if line["event"] == "run.summary" and line.get("mode") != "fanout"]
    assert sorted(line["notified"] for line in summaries) == [1, 1, 1]


def test_async_fanout_announces_hold_changes_once_from_the_coordinator(
    schedule: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The coordinator writes the holds, so it announces them (created, and later expired); the
    target invocations it dispatches must not announce them again."""
    hook_entry = 'notify:\n  - {"name": "hook", "kind": "webhook", "url_env": "HOOK_URL", "send_on": ["holds"]}\n'
    write_schedule(schedule.parent, SCHEDULE + hook_entry)
    now = datetime.now(timezone.utc)
    with Receiver(lambda request: (202, {})) as hook:
        with async_fleet() as emulator:
            use_env(monkeypatch, emulator, schedule, ESA_FANOUT="async", HOOK_URL=f"{hook.base}/hook")
            hold = {"action": "hold", "tasks": ["access-1"], "ttl": "1h", "reason": "incident", "targets": ["prod-a"]}
            coordinator = fc_handler.handler(json.dumps(hold).encode(), context())
            assert [(i.outcome, i.error) for i in emulator.wait_for_invocations(3)] == [("ok", None)] * 3
            ended = Hold(
                id="h-ended",
                tasks=("access-0",),
                status="offline",
                reason="maintenance",
                created_at=now - timedelta(hours=1),
                expires_at=now - timedelta(seconds=20),
            )
            HoldStore(schedule.parent.parent / "state").save(ended)
            ticked = fc_handler.handler(timer(now.strftime("%Y-%m-%dT%H:%M:%SZ")), context())
            assert [(i.outcome, i.error) for i in emulator.wait_for_invocations(6)] == [("ok", None)] * 6
        events = [r.json() for r in hook.received]
    assert (coordinator["notified"], ticked["notified"]) == (1, 1)
    assert [e["type"] for e in events] == ["esa-scheduler.holds.changed"] * 2
    assert [[h["targets"] for h in e["data"]["holds"]["created"]] for e in events] == [[["prod-a"]], []]
    assert [[h["id"] for h in e["data"]["holds"]["expired"]] for e in events] == [[], ["h-ended"]]
    assert all("target" not in e["data"] for e in events)


def test_async_fanout_carries_hold_events_to_the_targets_they_touch(
    schedule: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with async_fleet() as emulator:
        use_env(monkeypatch, emulator, schedule, ESA_FANOUT="async")
        hold = {"action": "hold", "tasks": ["access-1"], "ttl": "1h", "reason": "incident", "targets": ["prod-a"]}
        fc_handler.handler(json.dumps(hold).encode(), context())
        emulator.wait_for_invocations(3)
        assert emulator.status("access-1", account=ACCOUNT_A) == "offline"
        assert emulator.status("access-1", account=ACCOUNT_B) == "online"
        assert emulator.status("access-0", account=ACCOUNT_A) == "online"


def test_credentials_esa_no_longer_accepts_are_replaced_once(
    schedule: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from esa_scheduler.edge.credentials import Credentials
    from esa_scheduler.edge.sts import AssumedRole

    cache = RoleSessionCache()
    monkeypatch.setattr(fleet, "_sessions", cache)
    roles = [EmulatedRole(arn=ROLE_A), EmulatedRole(arn=ROLE_B)]
    with Emulator(tasks=TASKS, accounts=accounts(), roles=roles) as emulator:
        use_env(monkeypatch, emulator, schedule)
        # a warm instance holds credentials for ROLE_A that this STS never issued (or has revoked)
        revoked = Credentials("STS.revoked-key-id", "revoked-secret-value", "revoked-security-token")
        far = datetime.now(timezone.utc) + timedelta(hours=1)
        cache._sessions[(emulator.url, EMULATOR_ACCESS_KEY_ID, ROLE_A)] = AssumedRole(revoked, far)
        result = fc_handler.handler(timer(), context())
        assert result["ok"] is True
        assert statuses(emulator, ACCOUNT_A) == {"offline"}
        assert assume_calls(emulator) == 2  # ROLE_B, and ROLE_A once more after the refusal
    lines = parse_lines(capsys.readouterr().out)
    refreshed = [line for line in lines if line["event"] == "target.credentials_refreshed"]
    assert [(line["target"], line["error_code"]) for line in refreshed] == [("prod-a", "InvalidAccessKeyId.NotFound")]


def test_a_throttled_role_logs_its_retries_and_fails_with_stss_own_code(
    schedule: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # STS answers Throttling.User with a one-second Retry-After; a 4 s function timeout leaves a
    # 2 s deadline: one retry fits, the next wait would cross the deadline
    roles = [EmulatedRole(arn=ROLE_A), EmulatedRole(arn=ROLE_B, throttle=True)]
    with Emulator(tasks=TASKS, accounts=accounts(), roles=roles) as emulator:
        use_env(monkeypatch, emulator, schedule)
        short = context()
        short.function.timeout = 4
        with pytest.raises(RunFailed, match="1 of 3 target"):
            fc_handler.handler(timer(), short)
        assert statuses(emulator, ACCOUNT_A) == {"offline"} and statuses(emulator, ACCOUNT_B) == {"online"}
    lines = parse_lines(capsys.readouterr().out)
    retries = [line for line in lines if line["event"] == "api.retry"]
    assert [(line["action"], line["error_code"], line["attempt"]) for line in retries] == [
        ("AssumeRole", "Throttling.User", 1)
    ]
    (failed,) = [line for line in lines if line["event"] == "target.summary" and line["ok"] is False]
    assert (failed["target"], failed["error_code"], failed["role_arn"]) == ("prod-b", "Throttling.User", ROLE_B)
    assert failed["error"].startswith("AssumeRole failed after 2 attempts: DeadlineExceeded")
    assert failed["error"].count("AssumeRole failed") == 1 and "last error Throttling.User" in failed["error"]
    assert lines[-1]["targets"]["prod-b"]["error"] == failed["error"]


def test_the_coordinator_logs_its_invoke_function_retries(
    schedule: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    received: list[bytes] = []
    faults = Faults(too_many_requests_rate=0.5, retry_after_s=0, seed=7)
    with Emulator(tasks=TASKS, faults=faults, functions={FUNCTION: received.append}) as emulator:
        use_env(monkeypatch, emulator, schedule, ESA_FANOUT="async")
        coordinator = fc_handler.handler(timer(), context())
        emulator.wait_for_invocations(3)
        refused = emulator.stats["by_outcome"].get(TOO_MANY_REQUESTS, 0)
    assert coordinator["ok"] is True and len(received) == 3
    retries = [line for line in parse_lines(capsys.readouterr().out) if line["event"] == "api.retry"]
    assert refused > 0 and len(retries) == refused
    assert {(line["action"], line["error_code"]) for line in retries} == {("InvokeFunction", "HTTPError")}
