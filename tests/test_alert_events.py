"""Alerts reaching ``handler.handler`` through EventBridge, end to end against the emulator on loopback.

``cms:CloudMonitor:AlertWebHook`` and ``sls.alert`` CloudEvents (one object, a list, or the bare
``data`` of FC's raw-data delivery) go through the schedule's ``alert:`` rules and the intake's hold
lifecycle. ``execute`` runs with a pinned clock (``now``), so the cooldown is tested without waiting
and without depending on today's date; ``invoke`` runs the repository's example events on the real clock.
"""

from __future__ import annotations

import io
import json
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from helpers import (
    Receiver,
    clean_environment,
    endpoint_env,
    parse_lines,
    run_cli,
    set_env,
    updates,
    write_schedule,
)

from esa_scheduler.edge.credentials import Credentials
from esa_scheduler.emulator import EMULATOR_ACCESS_KEY_ID, EMULATOR_ACCESS_KEY_SECRET, Emulator
from esa_scheduler.engine.alerts import Alert, alert_hold_id
from esa_scheduler.engine.schedule.load import load_schedule
from esa_scheduler.errors import EventError
from esa_scheduler.invocation.function import Target, execute
from esa_scheduler.invocation.holds import HoldStore
from esa_scheduler.invocation.intake.apply import apply_alerts
from esa_scheduler.invocation.reconciler import RunSummary
from esa_scheduler.logs import RunLog

REPO = Path(__file__).resolve().parents[1]
UTC = timezone.utc
T0 = datetime(2026, 11, 28, 1, 30, tzinfo=UTC)
TRANS_ID = "0b7d5c2a-9f41-4c8e-8f0e-3e2b6d1a4c57"

SCHEDULE = """\
version: 1
timezone: UTC
tasks:
  - name: access-a
  - name: access-b
  - name: waf-1
incidents:
  - name: origin-errors
    alert: {source: cloudmonitor, name: "origin-5xx*", severity: [critical, warning]}
    tasks: ["access-*"]
    ttl: 2h
    cooldown: 10m
  - name: waf-logs
    alert: {source: sls, name: "WAF *"}
    tasks: [waf-1]
    ttl: 1h
"""
SEED = [{"TaskName": name, "Status": "online"} for name in ("access-a", "access-b", "waf-1")]


def cms_data(state: str = "ALERT", trans_id: str = TRANS_ID, **changes: Any) -> dict[str, Any]:
    """The callback's fields as an EventBridge event's JSON ``data`` (its layout is an assumption)."""
    recovered = state == "OK"
    return {
        "alertName": "origin-5xx-rate",
        "alertState": state,
        "triggerLevel": "OK" if recovered else "CRITICAL",
        "preTriggerLevel": "CRITICAL" if recovered else "OK",
        "curValue": "0.3" if recovered else "7.4",
        "dimensions": "{userId=1234567890123456, instanceId=esa-site-7a1f}",
        "metricName": "origin_5xx_ratio",
        "namespace": "acs_esa",
        "ruleId": "origin-5xx-rule",
        "regionId": "cn-hangzhou",
        "transId": trans_id,
        "timestamp": 1795829381000,
        **changes,
    }


def cloudevent(event_type: str, data: Any, event_id: str = "evt-1") -> dict[str, Any]:
    return {
        "specversion": "1.0",
        "id": event_id,
        "source": "acs.cms" if event_type.startswith("cms:") else "acs:sls",
        "type": event_type,
        "time": "2026-11-28T01:29:41Z",
        "datacontenttype": "application/json;charset=utf-8",
        "aliyunaccountid": "1234567890123456",
        "aliyunregionid": "cn-hangzhou",
        "aliyuneventbusname": "default",
        "data": data,
    }


def cms(state: str = "ALERT", trans_id: str = TRANS_ID, **changes: Any) -> dict[str, Any]:
    return cloudevent("cms:CloudMonitor:AlertWebHook", cms_data(state, trans_id, **changes), f"evt-{state}-{trans_id}")


def sls_data(status: str = "firing") -> dict[str, Any]:
    return {
        "alert_id": "waf-blocks",
        "alert_name": "WAF blocks spike",
        "status": status,
        "severity": 6,
        "labels": {"site": "example.com"},
        "annotations": {"title": "WAF blocks above baseline"},
        "fire_time": 1795829381,
        "resolve_time": 1795829981 if status == "resolved" else 0,
        "fingerprint": "9a8b7c6d5e4f3a2b",
    }


def hold_of(rule: str, source: str, key: str) -> str:
    return alert_hold_id(rule, Alert.model_validate({"source": source, "name": "x", "state": "firing", "key": key}))


ORIGIN = hold_of("origin-errors", "cloudmonitor", TRANS_ID)
WAF = hold_of("waf-logs", "sls", "9a8b7c6d5e4f3a2b")


@dataclass
class Bench:
    """One emulator, one schedule, one hold folder; ``run`` is one invocation at a pinned instant."""

    emulator: Emulator
    schedule: Path
    state: Path
    environ: dict[str, str] = field(default_factory=dict)

    def run(self, body: Any, at: datetime) -> tuple[RunSummary, list[dict[str, Any]]]:
        stream = io.StringIO()
        summary = execute(
            json.dumps(body).encode(),
            target=Target(self.emulator.url, Credentials(EMULATOR_ACCESS_KEY_ID, EMULATOR_ACCESS_KEY_SECRET)),
            schedule_path=str(self.schedule),
            state=str(self.state),
            stream=stream,
            environ={"ESA_MAX_RPS": "0", **self.environ},
            now=at,
        )
        return summary, parse_lines(stream.getvalue())

    def status(self) -> dict[str, str]:
        return {name: self.emulator.status(name) for name in ("access-a", "access-b", "waf-1")}

    def holds(self, at: datetime) -> list[str]:
        return [hold.id for hold in HoldStore(self.state).active(at, prune=False)]


@pytest.fixture
def bench(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Bench]:
    clean_environment(monkeypatch, tmp_path)
    emulator = Emulator(tasks=SEED).start()
    try:
        yield Bench(emulator, write_schedule(tmp_path, SCHEDULE), tmp_path / "state")
    finally:
        emulator.stop()


def named(lines: list[dict[str, Any]], event: str) -> list[dict[str, Any]]:
    return [line for line in lines if line["event"] == event]


OFFLINE = {"access-a": "offline", "access-b": "offline", "waf-1": "online"}
ONLINE = {"access-a": "online", "access-b": "online", "waf-1": "online"}


# --- CloudMonitor through EventBridge -------------------------------------------------------------


def test_cloudmonitor_alert_takes_tasks_offline_and_its_recovery_after_the_cooldown_brings_them_back(
    bench: Bench,
) -> None:
    summary, lines = bench.run(cms("ALERT"), T0)
    assert bench.status() == OFFLINE and summary.counts["updated"] == 2
    assert named(lines, "run.start")[0]["sources"] == [f"incident:{ORIGIN}"]
    (alert,) = named(lines, "intake.alert")
    assert (alert["state"], alert["key"], alert["severity"], alert["rule"]) == (
        "firing",
        TRANS_ID,
        "critical",
        "origin-errors",
    )
    assert named(lines, "hold.created")[0]["by"] == "intake:cloudmonitor"

    resolve_at = T0 + timedelta(minutes=20)
    summary, lines = bench.run(cms("OK"), resolve_at)
    assert bench.status() == OFFLINE and summary.counts["updated"] == 0
    assert named(lines, "hold.cooling")[0]["expires_at"] == "2026-11-28T02:00:00Z"
    assert summary.next_change == resolve_at + timedelta(minutes=10)

    summary, _ = bench.run({"action": "reconcile"}, resolve_at + timedelta(minutes=9))
    assert bench.status() == OFFLINE
    summary, _ = bench.run({"action": "reconcile"}, resolve_at + timedelta(minutes=10))
    assert bench.status() == ONLINE and summary.counts["updated"] == 2


def test_a_new_firing_during_the_cooldown_holds_again(bench: Bench) -> None:
    bench.run(cms("ALERT"), T0)
    bench.run(cms("OK"), T0 + timedelta(minutes=20))
    _, lines = bench.run(cms("ALERT"), T0 + timedelta(minutes=25))
    assert named(lines, "hold.refreshed")[0]["expires_at"] == "2026-11-28T03:55:00Z"
    bench.run({"action": "reconcile"}, T0 + timedelta(minutes=40))
    assert bench.status() == OFFLINE and bench.holds(T0 + timedelta(minutes=40)) == [ORIGIN]


def test_two_alert_keys_under_one_rule_keep_two_holds(bench: Bench) -> None:
    other = hold_of("origin-errors", "cloudmonitor", "trans-2")
    bench.run([cms("ALERT"), cms("ALERT", "trans-2")], T0)
    assert sorted(bench.holds(T0)) == sorted([ORIGIN, other])
    bench.run(cms("OK"), T0 + timedelta(minutes=5))
    later = T0 + timedelta(minutes=16)  # the first alert's cooldown is over
    bench.run({"action": "reconcile"}, later)
    assert bench.status() == OFFLINE and bench.holds(later) == [other]
    bench.run(cms("OK", "trans-2"), later)
    bench.run({"action": "reconcile"}, later + timedelta(minutes=10))
    assert bench.status() == ONLINE


def test_insufficient_data_and_unmatched_alerts_are_logged_and_ignored(bench: Bench) -> None:
    quiet = cms("INSUFFICIENT_DATA")
    info = cms("ALERT", "trans-3", triggerLevel="INFO")  # the rule takes critical and warning only
    summary, lines = bench.run([quiet, info], T0)
    assert bench.holds(T0) == [] and bench.status() == ONLINE and summary.counts["updated"] == 0
    assert [(line["state"], line["rule"]) for line in named(lines, "intake.alert")] == [
        ("insufficient_data", None),
        ("firing", None),
    ]
    assert named(lines, "run.start")[0]["sources"] == ["alert:cloudmonitor", "alert:cloudmonitor"]


# --- SLS, raw data and lists ----------------------------------------------------------------------


def test_sls_alert_cloudevent_holds_and_its_resolve_releases(bench: Bench) -> None:
    bench.run(cloudevent("sls.alert", sls_data("firing")), T0)
    assert bench.status()["waf-1"] == "offline" and bench.holds(T0) == [WAF]
    _, lines = bench.run(cloudevent("sls.alert", sls_data("resolved")), T0 + timedelta(minutes=7))
    assert bench.status()["waf-1"] == "online" and bench.holds(T0 + timedelta(minutes=7)) == []
    assert [line["hold_id"] for line in named(lines, "hold.released")] == [WAF]


def test_fc_raw_data_delivery_is_the_bare_data_and_takes_the_same_hold(bench: Bench) -> None:
    """An EventBridge trigger set to deliver raw data sends the event's ``data`` alone, or a list of them."""
    bench.run([cms_data("ALERT"), sls_data("firing")], T0)
    assert bench.status() == {**OFFLINE, "waf-1": "offline"}
    assert sorted(bench.holds(T0)) == sorted([ORIGIN, WAF])
    bench.run(cloudevent("sls.alert", sls_data("resolved")), T0 + timedelta(minutes=1))
    assert bench.holds(T0 + timedelta(minutes=1)) == [ORIGIN]


MALFORMED: list[tuple[str, Any, str]] = [
    ("cms-state", cms("ALERT", alertState="ON_FIRE"), "event[0].data.alertState: 'ON_FIRE' is not a CloudMonitor"),
    ("cms-data-a-string", {**cms(), "data": "alertState=ALERT"}, "event[0].data: expected a JSON object"),
    ("sls-severity", cloudevent("sls.alert", {**sls_data(), "severity": 9}), "event[0].data.severity: 9 is not"),
    ("raw-cms-dimensions", cms_data(dimensions="i-x"), "event[0].dimensions: 'i-x' is not a Java map"),
    ("cms-dimensions-deep", cms(dimensions="[" * 100_000), "event[0].data.dimensions: neither a Java map"),
    ("second-of-two", [cms(), cms("ALERT", alertName="")], "event[1].data.alertName:"),
]


@pytest.mark.parametrize(("body", "expected"), [c[1:] for c in MALFORMED], ids=[c[0] for c in MALFORMED])
def test_malformed_alert_events_change_nothing(bench: Bench, body: Any, expected: str) -> None:
    with pytest.raises(EventError) as caught:
        bench.run(body, T0)
    assert str(caught.value).startswith(expected) and "\n" not in str(caught.value)
    assert bench.emulator.stats["total"] == 0 and not bench.state.exists()


def test_match_rules_keep_working_and_go_first(bench: Bench) -> None:
    """A ``match:`` rule written for the alert CloudEvent before ``alert:`` rules existed still takes it."""
    legacy = SCHEDULE.replace(
        "incidents:\n",
        "incidents:\n  - name: legacy\n"
        '    match: {type: "cms:CloudMonitor:AlertWebHook", data: {alertState: ALERT}}\n'
        "    tasks: [waf-1]\n    ttl: 1h\n"
        "    release_on: {data: {alertState: OK}}\n",
    )
    bench.schedule.write_text(legacy)
    bench.run(cms("ALERT"), T0)
    assert bench.holds(T0) == ["inc-legacy"] and bench.status()["waf-1"] == "offline"
    bench.run(cms("OK"), T0 + timedelta(minutes=1))
    assert bench.holds(T0 + timedelta(minutes=1)) == [] and bench.status() == ONLINE


def test_a_released_alert_hold_is_announced_as_released(bench: Bench) -> None:
    """Even by the first run that notifies at all (no record of the holds announced before it)."""
    bench.run(cloudevent("sls.alert", sls_data("firing")), T0)
    with Receiver(lambda request: (202, {})) as receiver:
        entry = "  - {name: ops, kind: webhook, url_env: OPS_URL, send_on: [holds]}\n"
        bench.schedule.write_text(SCHEDULE + "notify:\n" + entry)
        bench.environ = {"OPS_URL": f"{receiver.base}/esa/hook"}
        summary, _ = bench.run(cloudevent("sls.alert", sls_data("resolved")), T0 + timedelta(minutes=3))
        (request,) = receiver.received
    holds = request.json()["data"]["holds"]
    assert summary.notified == 1
    assert [h["id"] for h in holds["released"]] == [WAF] and holds["created"] == holds["expired"] == []


# --- a reconcile naming hold ids ------------------------------------------------------------------


def test_touched_hold_ids_stand_for_their_tasks(bench: Bench) -> None:
    """What the intake dispatches after writing holds: ``touched`` names hold ids, and in transitions
    mode the reconcile acts on those holds' tasks even when the schedule has no edge."""
    bench.schedule.write_text(SCHEDULE.replace("timezone: UTC\n", "timezone: UTC\nmode: transitions\n"))
    schedule = load_schedule(bench.schedule)
    alert = Alert(source="cloudmonitor", name="origin-5xx-rate", state="firing", key=TRANS_ID, severity="critical")
    apply_alerts(schedule, [alert], HoldStore(bench.state), T0, RunLog(stream=io.StringIO()))
    bench.run({"action": "reconcile", "touched": [ORIGIN]}, T0 + timedelta(seconds=10))
    assert bench.status() == OFFLINE
    bench.emulator.set_status("access-a", "online")  # a deliberate manual change survives until the next edge
    summary, _ = bench.run({"action": "reconcile", "touched": ["inc-other"]}, T0 + timedelta(seconds=20))
    assert bench.status()["access-a"] == "online" and summary.counts["skipped"] == 1
    summary, _ = bench.run({"action": "reconcile", "touched": [ORIGIN]}, T0 + timedelta(seconds=30))
    assert bench.status() == OFFLINE and summary.counts["updated"] == 1


# --- the example events through `invoke` ----------------------------------------------------------


def test_example_cloudevents_through_invoke(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``events/cloudevent-cms-*.json`` through ``esa-scheduler invoke``, on the real clock: with the
    sample's incident rule less its cooldown (and none of its windows, which follow the clock), the
    alert takes access-logs-prod offline and the OK brings it back."""
    clean_environment(monkeypatch, tmp_path)
    sample = (REPO / "schedule" / "sample.yaml").read_text()
    rules = sample[sample.index("incidents:") : sample.index("expect:")]
    assert "    cooldown: 10m" in rules
    text = "version: 1\ntasks:\n  - name: access-logs-prod\n" + rules.replace("    cooldown: 10m", "")
    schedule = write_schedule(tmp_path, text)
    emulator = Emulator(tasks=[{"TaskName": "access-logs-prod", "Status": "online"}]).start()
    try:
        set_env(monkeypatch, {**endpoint_env(emulator.url), "ESA_STATE_DIR": str(tmp_path / "state")})
        for name in ("cloudevent-cms-alert.json", "cloudevent-cms-ok.json"):
            shutil.copy(REPO / "events" / name, tmp_path / name)
        code, out, err = run_cli(capsys, "invoke", "--schedule", str(schedule), "cloudevent-cms-alert.json")
        assert code == 0, err
        assert emulator.status("access-logs-prod") == "offline" and updates(emulator) == 1
        assert [line["rule"] for line in named(parse_lines(err), "intake.alert")] == ["origin-errors"]
        code, out, err = run_cli(capsys, "invoke", "--schedule", str(schedule), "cloudevent-cms-ok.json")
        assert code == 0, err
        assert emulator.status("access-logs-prod") == "online" and updates(emulator) == 2
        assert json.loads(out)["counts"]["updated"] == 1
        assert len(named(parse_lines(err), "hold.released")) == 1
    finally:
        emulator.stop()


# --- what notifications say about an alert's hold -------------------------------------------------


def announced(bench: Bench, body: Any, at: datetime) -> dict[str, list[tuple[str, str]]] | None:
    """One invocation with a ``holds`` webhook: the hold facts it announced (id, expiry), or None
    when it sent nothing."""
    entry = "  - {name: ops, kind: webhook, url_env: OPS_URL, send_on: [holds]}\n"
    bench.schedule.write_text(bench.schedule.read_text().split("notify:\n")[0] + "notify:\n" + entry)
    with Receiver(lambda request: (202, {})) as receiver:
        bench.environ = {"OPS_URL": f"{receiver.base}/esa/hook"}
        bench.run(body, at)
    if not receiver.received:
        return None
    (request,) = receiver.received
    holds = request.json()["data"]["holds"]
    return {verb: [(h["id"], h["expires_at"]) for h in found] for verb, found in holds.items()}


def test_an_alert_hold_is_created_once_released_when_its_cooldown_starts_and_expired_at_its_end(
    bench: Bench,
) -> None:
    """A refresh (the alert posted again while it fires, as Alertmanager re-sends a group) is not
    news; a resolve that starts the cooldown is the hold's release, announced with when it ends."""
    assert announced(bench, cms("ALERT"), T0) == {
        "created": [(ORIGIN, "2026-11-28T03:30:00Z")],
        "released": [],
        "expired": [],
    }
    assert announced(bench, cms("ALERT"), T0 + timedelta(minutes=5)) is None
    assert announced(bench, cms("OK"), T0 + timedelta(minutes=20)) == {
        "created": [],
        "released": [(ORIGIN, "2026-11-28T02:00:00Z")],
        "expired": [],
    }
    assert announced(bench, {"action": "reconcile"}, T0 + timedelta(minutes=25)) is None
    assert announced(bench, {"action": "reconcile"}, T0 + timedelta(minutes=30)) == {
        "created": [],
        "released": [],
        "expired": [(ORIGIN, "2026-11-28T02:00:00Z")],
    }


def test_a_firing_during_the_cooldown_is_announced_as_holding_again(bench: Bench) -> None:
    announced(bench, cms("ALERT"), T0)
    announced(bench, cms("OK"), T0 + timedelta(minutes=20))
    assert announced(bench, cms("ALERT"), T0 + timedelta(minutes=25)) == {
        "created": [(ORIGIN, "2026-11-28T03:55:00Z")],
        "released": [],
        "expired": [],
    }
    assert announced(bench, cms("ALERT"), T0 + timedelta(minutes=26)) is None


def test_holds_the_intake_writes_are_announced_once_by_the_reconcile_it_dispatches(bench: Bench) -> None:
    """The intake writes the hold (a resolve keeps it, ending at once) and the scheduler's reconcile,
    another invocation, announces it: created, then released, not released and expired as well."""
    schedule = load_schedule(bench.schedule)
    firing = Alert(source="sls", name="WAF blocks spike", state="firing", key="9a8b7c6d5e4f3a2b", severity="warning")
    apply_alerts(schedule, [firing], HoldStore(bench.state), T0, RunLog(stream=io.StringIO()))
    assert announced(bench, {"action": "reconcile", "touched": [WAF]}, T0 + timedelta(seconds=5)) == {
        "created": [(WAF, "2026-11-28T02:30:00Z")],
        "released": [],
        "expired": [],
    }
    resolved = [firing.model_copy(update={"state": "resolved"})]
    later = T0 + timedelta(minutes=7)
    apply_alerts(schedule, resolved, HoldStore(bench.state), later, RunLog(stream=io.StringIO()))
    assert announced(bench, {"action": "reconcile", "touched": [WAF]}, later + timedelta(seconds=5)) == {
        "created": [],
        "released": [(WAF, "2026-11-28T01:37:00Z")],
        "expired": [],
    }
    assert announced(bench, {"action": "reconcile"}, later + timedelta(minutes=1)) is None
