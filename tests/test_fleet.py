"""Fleets (issue 13): targets in the schedule, each reconciled on its own, over loopback emulators."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from helpers import clean_environment, parse_lines, run_cli, updates, write_schedule

from esa_scheduler.edge.credentials import Credentials
from esa_scheduler.emulator import EMULATOR_ACCESS_KEY_ID, EMULATOR_ACCESS_KEY_SECRET, Emulator
from esa_scheduler.engine.schedule.load import load_schedule
from esa_scheduler.errors import EventError, ScheduleError
from esa_scheduler.invocation.function import Target, execute
from esa_scheduler.invocation.reconciler import RunSummary

NIGHT = "2026-11-28T02:30:00Z"
DAY = "2026-11-28T12:00:00Z"
CREDS = Credentials(EMULATOR_ACCESS_KEY_ID, EMULATOR_ACCESS_KEY_SECRET)
SEED: list[dict[str, Any]] = [
    {"TaskName": "access-a", "Status": "online"},
    {"TaskName": "cn-only", "Status": "online"},
    {"TaskName": "site-x", "Status": "online", "SiteId": 1001},
]
FLEET = """\
version: 1
timezone: UTC
targets:
  - name: cn
    region: cn-hangzhou
    endpoint: {cn}
  - name: intl
    region: ap-southeast-1
    endpoint: {intl}
tasks:
  - name: access-a
  - name: cn-only
    targets: [cn]
  - name: site-x
    site_id: 1001
windows:
  - name: nightly
    tasks: [access-a, cn-only]
    cron: "0 2 * * *"
    duration: 1h
  - name: intl-sites
    targets: ["int*"]
    tasks: [site-x]
    cron: "0 2 * * *"
    duration: 1h
"""


@pytest.fixture
def clean(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    return clean_environment(monkeypatch, tmp_path)


@pytest.fixture
def cn() -> Iterator[Emulator]:
    with Emulator(tasks=SEED) as running:
        yield running


@pytest.fixture
def intl() -> Iterator[Emulator]:
    with Emulator(tasks=SEED) as running:
        yield running


def fleet_schedule(clean: Path, cn: Emulator, intl: Emulator, text: str = FLEET) -> Path:
    return write_schedule(clean / "schedule", text.format(cn=cn.url, intl=intl.url))


def run(schedule: Path, body: Any, **env: str) -> tuple[RunSummary, list[dict[str, Any]]]:
    stream = io.StringIO()
    summary = execute(
        body,
        target=Target(credentials=CREDS),
        schedule_path=str(schedule),
        state=str(schedule.parent.parent / "state"),
        stream=stream,
        environ={"ESA_MAX_RPS": "0", **env},
    )
    return summary, parse_lines(stream.getvalue())


def reconcile(at: str, **extra: Any) -> dict[str, Any]:
    return {"action": "reconcile", "at": at, **extra}


def results(lines: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(line["target"], line["task"]): line for line in lines if line["event"] == "task.result"}


def test_each_target_gets_only_what_applies_to_it(clean: Path, cn: Emulator, intl: Emulator) -> None:
    summary, lines = run(fleet_schedule(clean, cn, intl), reconcile(NIGHT))
    assert not summary.failed
    by_task = results(lines)
    assert set(by_task) == {
        ("cn", "access-a"),
        ("cn", "cn-only"),
        ("cn", "site-x"),
        ("intl", "access-a"),
        ("intl", "site-x"),
    }
    # the nightly window is every target's; intl-sites only intl's; cn-only is managed on cn alone
    assert {k: v["action"] for k, v in by_task.items()} == {
        ("cn", "access-a"): "updated",
        ("cn", "cn-only"): "updated",
        ("cn", "site-x"): "unchanged",
        ("intl", "access-a"): "updated",
        ("intl", "site-x"): "updated",
    }
    assert (cn.status("access-a"), cn.status("cn-only"), cn.status("site-x", 1001)) == ("offline",) * 2 + ("online",)
    assert (intl.status("access-a"), intl.status("cn-only"), intl.status("site-x", 1001)) == (
        "offline",
        "online",
        "offline",
    )
    final = lines[-1]
    assert final["event"] == "run.summary" and final["ok"] is True
    assert set(final["targets"]) == {"cn", "intl"}
    assert final["targets"]["cn"]["counts"]["updated"] == 2 and final["targets"]["intl"]["counts"]["updated"] == 2
    assert [line["target"] for line in lines if line["event"] == "target.summary"] in (["cn", "intl"], ["intl", "cn"])
    assert summary.api_calls == cn.stats["total"] + intl.stats["total"]


def test_a_failing_target_fails_alone_and_is_named(clean: Path, cn: Emulator) -> None:
    with Emulator(tasks=SEED, access_key_id="another-account-key", access_key_secret="another-secret-value") as other:
        summary, lines = run(fleet_schedule(clean, cn, other), reconcile(NIGHT))
    assert summary.failed and summary.error == "1 of 2 target(s) failed: intl"
    assert summary.targets is not None
    assert summary.targets["cn"]["ok"] is True and summary.targets["intl"]["ok"] is False
    assert "InvalidAccessKeyId.NotFound" in summary.targets["intl"]["error"]
    assert cn.status("access-a") == "offline" and updates(other) == 0
    assert lines[-1]["event"] == "run.summary" and lines[-1]["ok"] is False


def test_an_event_for_one_target_reconciles_only_that_target(clean: Path, cn: Emulator, intl: Emulator) -> None:
    summary, _ = run(fleet_schedule(clean, cn, intl), reconcile(NIGHT, target="intl"))
    assert summary.targets is not None and set(summary.targets) == {"intl"}
    assert cn.stats["total"] == 0 and intl.status("access-a") == "offline"
    with pytest.raises(EventError, match="'mars' is not a target of the schedule"):
        run(fleet_schedule(clean, cn, intl), reconcile(NIGHT, target="mars"))


def test_a_hold_for_one_target_leaves_the_others_alone(clean: Path, cn: Emulator, intl: Emulator) -> None:
    schedule = fleet_schedule(clean, cn, intl)
    hold = {"action": "hold", "tasks": ["access-a"], "ttl": "2h", "reason": "incident 7", "targets": ["cn"]}
    summary, lines = run(schedule, hold)
    assert not summary.failed
    assert cn.status("access-a") == "offline" and intl.status("access-a") == "online"
    created = next(line for line in lines if line["event"] == "hold.created")
    assert created["targets"] == ["cn"]
    # a hold without targets is written exactly as before targets existed
    run(schedule, {"action": "hold", "tasks": ["access-a"], "ttl": "2h", "reason": "all", "id": "everywhere"})
    stored = json.loads((schedule.parent.parent / "state" / "everywhere.json").read_text())
    assert "targets" not in stored
    assert intl.status("access-a") == "offline"


def test_each_target_keeps_its_own_last_run(clean: Path, cn: Emulator) -> None:
    with Emulator(tasks=SEED, access_key_id="another-account-key", access_key_secret="another-secret-value") as other:
        run(fleet_schedule(clean, cn, other), reconcile(DAY))
    state = clean / "state"
    assert sorted(p.name for p in state.glob("last-run*")) == ["last-run.cn.state"]


def test_the_cli_table_and_plan_carry_the_target(
    clean: Path, cn: Emulator, intl: Emulator, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    schedule = fleet_schedule(clean, cn, intl)
    monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_ID", EMULATOR_ACCESS_KEY_ID)
    monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_SECRET", EMULATOR_ACCESS_KEY_SECRET)
    code, out, _ = run_cli(capsys, "run", "--schedule", str(schedule), "--at", NIGHT, "--log-format", "json")
    assert code == 0
    header = out.splitlines()[2].split()
    assert header[:2] == ["target", "task"]
    assert "target cn: ok" in out and "target intl: ok" in out
    code, out, _ = run_cli(capsys, "plan", "--schedule", str(schedule), "--at", NIGHT, "--json")
    assert code == 0
    rows = json.loads(out)["tasks"]
    assert [(r["target"], r["name"], r["desired"]) for r in rows] == [
        ("cn", "access-a", "offline"),
        ("cn", "cn-only", "offline"),
        ("cn", "site-x", "online"),
        ("intl", "access-a", "offline"),
        ("intl", "site-x", "offline"),
    ]


def test_without_targets_no_output_has_a_target_key(
    clean: Path, cn: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    single = "\n".join(line for line in FLEET.splitlines() if "targets" not in line)
    single = single.split("tasks:", 1)[1]
    schedule = write_schedule(clean / "single", "version: 1\ntimezone: UTC\ntasks:" + single)
    stream = io.StringIO()
    summary = execute(
        reconcile(NIGHT),
        target=Target(cn.url, CREDS),
        schedule_path=str(schedule),
        state=str(clean / "state"),
        stream=stream,
        environ={"ESA_MAX_RPS": "0"},
    )
    assert "target" not in stream.getvalue() and "targets" not in summary.to_json()
    code, out, _ = run_cli(capsys, "plan", "--schedule", str(schedule), "--at", NIGHT, "--json")
    assert code == 0 and "target" not in out


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            ("  - name: cn-only\n    targets: [cn]", "  - name: cn-only\n    targets: [mars]"),
            "'mars' is not a target of the schedule (targets: cn, intl)",
        ),
        (('targets: ["int*"]', 'targets: ["eu-*"]'), "'eu-*' matches no target (targets: cn, intl)"),
        (('targets: ["int*"]', "targets: []"), "empty list"),
        (("  - name: intl\n", "  - name: cn\n"), "duplicate name 'cn'"),
        (("region: ap-southeast-1", "region: Singapore"), "targets[1] (intl).region"),
        (("endpoint: {intl}", "endpoint: http://10.0.0.1"), "plain http on a non-loopback host"),
        (
            ("endpoint: {intl}", "role_arn: 'acs:ram::12:role/x'"),
            "targets[1] (intl).role_arn",
        ),
    ],
)
def test_bad_targets_are_named(
    clean: Path, cn: Emulator, intl: Emulator, change: tuple[str, str], message: str
) -> None:
    text = FLEET.replace(*change)
    path = write_schedule(clean / "schedule", text.format(cn=cn.url, intl=intl.url))
    with pytest.raises(ScheduleError) as info:
        load_schedule(str(path))
    assert any(message in problem and str(path) in problem for problem in info.value.problems), info.value.problems


def test_targets_on_an_entry_need_declared_targets(clean: Path) -> None:
    path = write_schedule(clean / "schedule", "version: 1\ntasks:\n  - name: a\n    targets: [cn]\n")
    with pytest.raises(ScheduleError, match=r"tasks\[0\] \(a\)\.targets: no targets are declared"):
        load_schedule(str(path))


FAR_FLEET = """\
version: 1
timezone: UTC
targets:
  - name: member
    role_arn: "acs:ram::1111222233334444:role/esa-scheduler-target"
    region: cn-hangzhou
    endpoint: https://esa.cn-hangzhou.aliyuncs.com
  - name: self
    region: ap-southeast-1
tasks:
  - name: access-a
windows:
  - name: nightly
    tasks: [access-a]
    cron: "0 2 * * *"
    duration: 1h
"""
"""Role targets and an endpoint far away."""


def test_the_embedded_emulator_serves_a_fleet_on_loopback_only(clean: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # with nothing configured, every call goes to the embedded emulator (one account per role, STS
    # included), never to a real host
    schedule = write_schedule(clean / "schedule", FAR_FLEET)
    code, out, err = run_cli(
        capsys, "run", "--schedule", str(schedule), "--at", NIGHT, "--json", "--log-format", "json"
    )
    assert code == 0, err
    summary = json.loads(out)
    assert {name: t["counts"]["updated"] for name, t in summary["targets"].items()} == {"member": 1, "self": 1}
    assert "embedded ESA emulator at http://127.0.0.1:" in err
    assert not list((clean / ".esa-scheduler").glob("last-run*")), "nothing is recorded about an embedded run"


def test_invoke_on_the_embedded_emulator_reconciles_an_async_fleet_itself(
    clean: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """With ESA_FANOUT=async the handler would invoke FC once per target; the embedded emulator plays
    ESA and STS, not FC, so ``invoke`` reconciles every target inline, on loopback."""
    monkeypatch.setenv("ESA_FANOUT", "async")
    schedule = write_schedule(clean / "schedule", FAR_FLEET)
    timer = write_schedule(clean, json.dumps({"triggerTime": NIGHT}), name="timer.json")
    code, out, err = run_cli(capsys, "invoke", str(timer), "--schedule", str(schedule), "--log-format", "json")
    assert code == 0, err
    assert "embedded ESA emulator at http://127.0.0.1:" in err
    summary = json.loads(out)
    assert {name: t["counts"]["updated"] for name, t in summary["targets"].items()} == {"member": 1, "self": 1}


def test_a_fleet_run_sends_one_message_per_notify_entry(clean: Path, cn: Emulator, intl: Emulator) -> None:
    """Not one per fleet target: the chat services throttle at about 20 messages a minute. Task lines
    and reminders name their target, failures are per target, and ``run.summary`` counts the messages."""
    from helpers import Receiver

    notify = (
        "notify:\n"
        '  - {"name": "hook", "kind": "webhook", "url_env": "HOOK_URL"}\n'
        '  - {"name": "ops", "kind": "dingtalk", "url_env": "OPS_URL",'
        ' "send_on": ["changes", "failures", "reminders"], "before": "15m"}\n'
    )
    intl.script_fault("access-a", "InvalidParameter", count=10)
    with (
        Receiver(lambda request: (202, {})) as hook,
        Receiver(lambda request: (200, {"errcode": 0, "errmsg": "ok"})) as ops,
    ):
        schedule = write_schedule(clean / "schedule", FLEET.format(cn=cn.url, intl=intl.url) + notify)
        env = {"HOOK_URL": f"{hook.base}/hook", "OPS_URL": f"{ops.base}/robot/send?access_token=tok"}
        early, _ = run(schedule, reconcile("2026-11-28T01:50:00Z"), **env)
        again, _ = run(schedule, reconcile("2026-11-28T01:51:00Z"), **env)
        stored = json.loads((clean / "state" / "notify" / "reminders.json").read_text())
        summary, lines = run(schedule, reconcile(NIGHT), **env)
        events = [r.json() for r in hook.received]
        texts = [r.json()["markdown"]["text"] for r in ops.received]

    assert (early.notified, again.notified) == (1, 0), "reminders: one message for both targets, then quiet"
    reminders = texts[0]
    assert "cn/access-a, cn/cn-only go offline at 02:00Z for window nightly" in reminders
    assert "intl/access-a goes offline at 02:00Z for window nightly" in reminders
    assert "intl/site-x goes offline at 02:00Z for window intl-sites" in reminders
    assert sorted(key.split("|")[:2] for key in stored["sent"]) == [["ops", "cn"], ["ops", "intl"], ["ops", "intl"]]

    assert summary.failed and (summary.notified, summary.notify_failed) == (2, 0)
    assert len(events) == 1 and len(texts) == 2
    night = texts[1]
    assert "cn/access-a: online -> offline (window:nightly)" in night
    assert "cn/cn-only: online -> offline (window:nightly)" in night
    assert "intl/site-x (site 1001): online -> offline (window:intl-sites)" in night
    assert "intl/access-a: online -> offline failed: InvalidParameter" in night
    (event,) = events
    assert event["type"] == "esa-scheduler.run.failed" and "target" not in event["data"]
    assert event["id"] == f"{lines[0]['run_id']}.hook"
    assert sorted((r["target"], r["task"], r["action"]) for r in event["data"]["results"]) == [
        ("cn", "access-a", "updated"),
        ("cn", "cn-only", "updated"),
        ("intl", "access-a", "failed"),
        ("intl", "site-x", "updated"),
    ]
    assert set(event["data"]["summary"]["targets"]) == {"cn", "intl"}
    events_in_order = [line["event"] for line in lines]
    assert events_in_order[-3:] == ["notify.sent", "notify.sent", "run.summary"], "sent once every target is done"
    assert events_in_order.count("target.summary") == 2
    assert events_in_order.index("notify.sent") > max(i for i, e in enumerate(events_in_order) if e == "target.summary")
    assert not [line for line in lines if "fleet_target" in line]
    assert lines[-1]["notified"] == 2 and lines[-1]["notify_failed"] == 0


def test_plan_shows_one_target_and_views_need_one(
    clean: Path, cn: Emulator, intl: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    schedule = fleet_schedule(clean, cn, intl)
    code, out, _ = run_cli(capsys, "plan", "--schedule", str(schedule), "--at", NIGHT, "--json", "--target", "intl")
    assert code == 0
    assert [(r["target"], r["name"], r["source"]) for r in json.loads(out)["tasks"]] == [
        ("intl", "access-a", "window:nightly"),
        ("intl", "site-x", "window:intl-sites"),
    ]
    page = clean / "week.html"
    code, _, err = run_cli(capsys, "plan", "--schedule", str(schedule), "--at", NIGHT, "--html", str(page))
    assert code == 2 and "choose one with --target (cn, intl)" in err and not page.exists()
    code, _, err = run_cli(capsys, "plan", "--schedule", str(schedule), "--at", NIGHT, "--target", "mars", "--json")
    assert code == 2 and "--target: 'mars' is not a target" in err
    code, _, err = run_cli(
        capsys, "plan", "--schedule", str(schedule), "--at", NIGHT, "--target", "cn", "--html", str(page)
    )
    assert code == 0, err
    html = page.read_text(encoding="utf-8")
    assert 'data-task="cn-only"' in html and "intl-sites" not in html


def test_the_embedded_emulator_seeds_a_task_named_for_several_targets_once(
    clean: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # one entry per target for the same task is valid; the embedded emulator holds each task once
    fleet = """\
version: 1
timezone: UTC
targets:
  - name: prod-cn
    role_arn: "acs:ram::1111222233334444:role/esa-scheduler-target"
    region: cn-hangzhou
  - name: prod-intl
    role_arn: "acs:ram::5555666677778888:role/esa-scheduler-target"
    region: ap-southeast-1
tasks:
  - name: a
    targets: [prod-cn]
  - name: a
    targets: [prod-intl]
  - name: s
    site_id: 1001
    targets: [prod-cn]
  - name: s
    site_id: 1001
    targets: [prod-intl]
windows:
  - name: nightly
    tasks: [a, s]
    cron: "0 2 * * *"
    duration: 1h
"""
    schedule = write_schedule(clean / "schedule", fleet)
    code, out, err = run_cli(
        capsys, "run", "--emulator", "--schedule", str(schedule), "--at", NIGHT, "--json", "--log-format", "json"
    )
    assert code == 0, err
    assert "seeded with 2 task(s)" in err
    summary = json.loads(out)
    assert {name: t["counts"]["updated"] for name, t in summary["targets"].items()} == {"prod-cn": 2, "prod-intl": 2}


def test_cli_holds_can_be_scoped_to_targets(
    clean: Path, cn: Emulator, intl: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    schedule = fleet_schedule(clean, cn, intl)
    state = clean / "state"
    where = ["--schedule", str(schedule), "--state-dir", str(state)]
    hold = ["hold", "add", "--ttl", "2h", "--reason", "INC-9", *where]

    for selector, problem in [
        ("mars", "--target: 'mars' is not a target of the schedule (targets: cn, intl)"),
        ("eu-*", "--target: 'eu-*' matches no target (targets: cn, intl)"),
    ]:
        code, out, err = run_cli(capsys, *hold, "--task", "site-x", "--target", "cn", selector)
        assert (code, out, err.strip()) == (2, "", problem)
        assert not state.exists()

    code, out, err = run_cli(capsys, *hold, "--task", "site-x", "--id", "cn-only", "--target", "cn")
    assert code == 0, err
    assert "hold cn-only: site-x offline on cn until" in out
    code, _, err = run_cli(capsys, *hold, "--task", "access-a", "--id", "everywhere", "--status", "online")
    assert code == 0, err

    code, out, _ = run_cli(capsys, "hold", "list", "--json", *where)
    listed = {h["id"]: h for h in json.loads(out)}
    assert listed["cn-only"]["targets"] == ["cn"] and "targets" not in listed["everywhere"]
    code, out, _ = run_cli(capsys, "hold", "list", *where)
    header, _, *rows = out.splitlines()
    assert header.split()[:4] == ["id", "tasks", "targets", "status"]
    assert sorted(row.split()[:4] for row in rows) == [
        ["cn-only", "site-x", "cn", "offline"],
        ["everywhere", "access-a", "*", "online"],
    ]

    # the hold reaches cn's plan only (an instant after it was made)
    soon = (datetime.now(timezone.utc) + timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    code, out, _ = run_cli(capsys, "plan", "--json", "--at", soon, *where)
    planned = {(r["target"], r["name"]): r["source"] for r in json.loads(out)["tasks"]}
    assert planned[("cn", "site-x")] == "hold:cn-only" and not planned[("intl", "site-x")].startswith("hold:")
    assert planned[("cn", "access-a")] == planned[("intl", "access-a")] == "hold:everywhere"


def test_hold_list_has_no_targets_column_without_a_fleet(clean: Path, capsys: pytest.CaptureFixture[str]) -> None:
    schedule = write_schedule(clean / "single", "version: 1\ntasks:\n  - name: a\n")
    where = ["--schedule", str(schedule), "--state-dir", str(clean / "state")]
    code, _, err = run_cli(capsys, "hold", "add", "--task", "a", "--ttl", "1h", "--reason", "r", *where)
    assert code == 0, err
    code, out, _ = run_cli(capsys, "hold", "list", *where)
    assert out.splitlines()[0].split() == ["id", "tasks", "status", "created", "expires", "by", "reason"]
    code, _, err = run_cli(
        capsys, "hold", "add", "--task", "a", "--ttl", "1h", "--reason", "r", "--target", "x", *where
    )
    assert (code, err.strip()) == (2, "--target: 'x' is not a target of the schedule (targets: none are declared)")
