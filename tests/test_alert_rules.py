"""``alert:`` incident rules: the schedule's checks, which rule takes an alert, the hold id, and the
hold lifecycle as a pure function of (rule, alert, stored hold, now), then written through the real
``HoldStore`` by ``apply_alerts`` with a pinned clock.
"""

from __future__ import annotations

import hashlib
import io
import json
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from helpers import parse_lines, run_cli, write_schedule

from esa_scheduler.engine.alerts import Alert, alert_hold_id, alert_matches, hold_change, matching_rule
from esa_scheduler.engine.holds import Hold
from esa_scheduler.engine.schedule.load import load_schedule
from esa_scheduler.engine.schedule.model import IncidentRule, Schedule
from esa_scheduler.engine.schedule.spec import AlertSpec
from esa_scheduler.errors import ScheduleError
from esa_scheduler.invocation.holds import HoldStore
from esa_scheduler.invocation.intake.apply import apply_alerts
from esa_scheduler.logs import RunLog

UTC = timezone.utc
T0 = datetime(2026, 11, 28, 1, 30, tzinfo=UTC)

SCHEDULE = """\
version: 1
timezone: UTC
tasks:
  - name: access-a
  - name: access-b
  - pattern: "waf-*"
incidents:
  - name: origin-errors
    alert: {source: cloudmonitor, name: "origin-5xx*", severity: [critical, warning], labels: {instanceId: "esa-*"}}
    tasks: ["access-*"]
    ttl: 2h
    cooldown: 10m
  - name: any-waf
    alert: {name: "waf-*"}
    tasks: ["waf-*"]
    status: offline
    ttl: 1h
  - name: legacy
    match: {type: "custom.monitor:Alarm"}
    tasks: [access-b]
    ttl: 1h
"""


def firing(key: str = "t-1", **changes: Any) -> Alert:
    values: dict[str, Any] = {
        "source": "cloudmonitor",
        "name": "origin-5xx-rate",
        "state": "firing",
        "key": key,
        "severity": "critical",
        "labels": {"instanceId": "esa-site-1", "userId": "1"},
    }
    return Alert(**{**values, **changes})


def resolved(key: str = "t-1", **changes: Any) -> Alert:
    return firing(key, state="resolved", severity="unknown", **changes)


@pytest.fixture
def schedule(tmp_path: Path) -> Schedule:
    return load_schedule(write_schedule(tmp_path, SCHEDULE))


def rule(schedule: Schedule, name: str = "origin-errors") -> IncidentRule:
    return next(r for r in schedule.incidents if r.name == name)


# --- the schedule ---------------------------------------------------------------------------------


def test_alert_rules_resolve_with_their_cooldown(schedule: Schedule) -> None:
    origin = rule(schedule)
    assert origin.match is None and origin.alert is not None
    assert origin.alert.severity == ["critical", "warning"] and origin.alert.labels == {"instanceId": "esa-*"}
    assert (origin.ttl, origin.cooldown) == (timedelta(hours=2), timedelta(minutes=10))
    assert rule(schedule, "any-waf").cooldown is None
    assert rule(schedule, "legacy").alert is None


BAD_RULES: list[tuple[str, str, str]] = [
    (
        "both",
        '    match: {type: "x"}\n    alert: {name: "a*"}\n',
        "give exactly one of 'match' (a CloudEvent) or 'alert'",
    ),
    ("neither", "", "give exactly one of 'match' (a CloudEvent) or 'alert'"),
    (
        "release-on",
        '    alert: {name: "a*"}\n    release_on: {data: {s: OK}}\n',
        ".release_on: applies to 'match' rules",
    ),
    ("cooldown-on-match", '    match: {type: "x"}\n    cooldown: 5m\n', ".cooldown: applies to 'alert' rules only"),
    ("bad-cooldown", '    alert: {name: "a*"}\n    cooldown: soon\n', ".cooldown: invalid duration 'soon'"),
    (
        "bad-source",
        "    alert: {source: zabbix}\n",
        ".alert.source: Input should be 'cloudmonitor', 'sls' or 'alertmanager'",
    ),
    (
        "bad-severity",
        "    alert: {severity: [high]}\n",
        ".alert.severity[0]: Input should be 'critical', 'warning', 'info'",
    ),
    ("empty-severity", "    alert: {severity: []}\n", ".alert.severity: List should have at least 1 item"),
    ("catch-all", "    alert: {}\n", ".alert: give at least one of source, name, severity or labels"),
    (
        "typo",
        '    alert: {name: "a*", lables: {x: y}}\n',
        ".alert.lables: unknown key 'lables' (did you mean 'labels'?)",
    ),
    ("label-not-text", "    alert: {labels: {x: [1]}}\n", ".alert.labels.x: Input should be a valid string"),
]


@pytest.mark.parametrize(("body", "expected"), [c[1:] for c in BAD_RULES], ids=[c[0] for c in BAD_RULES])
def test_bad_alert_rules_are_one_line_naming_the_file_and_entry(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], body: str, expected: str
) -> None:
    text = (
        "version: 1\ntasks:\n  - name: access-a\nincidents:\n  - name: r1\n"
        + body
        + "    tasks: [access-a]\n    ttl: 1h\n"
    )
    path = write_schedule(tmp_path, text)
    with pytest.raises(ScheduleError):
        load_schedule(path)
    code, out, err = run_cli(capsys, "validate", "--schedule", str(path))
    assert code == 2 and "Traceback" not in out + err
    lines = (out + err).splitlines()
    assert [line for line in lines if expected in line and line.startswith(f"{path}: incidents[0] (r1)")], lines
    assert len(lines) == 1, lines  # a bad alert field is not also told it gave no alert


# --- matching -------------------------------------------------------------------------------------


def test_every_given_field_must_match(schedule: Schedule) -> None:
    spec = rule(schedule).alert
    assert spec is not None
    assert alert_matches(spec, firing())
    assert alert_matches(spec, firing(severity="warning"))
    assert not alert_matches(spec, firing(severity="info"))
    assert not alert_matches(spec, firing(source="sls"))
    assert not alert_matches(spec, firing(name="Origin-5xx-rate"))  # globs are case-sensitive
    assert not alert_matches(spec, firing(labels={"instanceId": "i-123"}))
    assert not alert_matches(spec, firing(labels={"userId": "1"}))  # a label the rule names must be there
    # a resolve is not held to the rule's severity (CloudMonitor's recovery has none), but to the rest
    assert alert_matches(spec, resolved())
    assert not alert_matches(spec, resolved(labels={"instanceId": "i-123"}))
    assert alert_matches(AlertSpec(labels={"instanceId": "esa-site-?"}), firing(source="alertmanager"))


def test_the_first_alert_rule_that_matches_takes_the_alert(schedule: Schedule) -> None:
    assert matching_rule(schedule.incidents, firing()) == rule(schedule)
    assert matching_rule(schedule.incidents, firing(name="waf-blocks", source="sls")) == rule(schedule, "any-waf")
    assert matching_rule(schedule.incidents, firing(name="disk-full")) is None


def test_of_two_rules_that_match_the_first_in_the_file_holds(tmp_path: Path) -> None:
    two = SCHEDULE.replace(
        "  - name: any-waf\n",
        '  - name: site-1\n    alert: {labels: {instanceId: "esa-site-1"}}\n    tasks: [waf-*]\n    ttl: 1h\n'
        "  - name: any-waf\n",
    )
    schedule = load_schedule(write_schedule(tmp_path, two))
    assert matching_rule(schedule.incidents, firing()) == rule(schedule, "origin-errors")
    assert matching_rule(schedule.incidents, firing(name="disk-full")) == rule(schedule, "site-1")
    assert matching_rule(schedule.incidents, firing(name="waf-x", labels={})) == rule(schedule, "any-waf")


def test_hold_ids_are_per_rule_and_key() -> None:
    alert = firing("0b7d5c2a")
    digest = hashlib.sha256(b"cloudmonitor\n0b7d5c2a").hexdigest()[:8]
    assert alert_hold_id("origin-errors", alert) == f"inc-origin-errors-{digest}"
    assert alert_hold_id("origin-errors", firing("other")) != alert_hold_id("origin-errors", alert)
    assert alert_hold_id("origin-errors", alert.model_copy(update={"source": "sls"})) != f"inc-origin-errors-{digest}"
    long = alert_hold_id("a rule/with spaces" * 20, alert)
    assert len(long) <= 128 and long.startswith("inc-a-rule-with-spaces") and long.endswith(f"-{digest}")


# --- the lifecycle, pure --------------------------------------------------------------------------


def test_firing_creates_then_refreshes_keeping_its_start(schedule: Schedule) -> None:
    origin = rule(schedule)
    created = hold_change(origin, firing(), None, T0)
    assert created is not None and created.kind == "created" and created.previous is None
    hold = created.hold
    assert hold.id == alert_hold_id("origin-errors", firing())
    assert (hold.tasks, hold.status, hold.by) == (("access-*",), "offline", "intake:cloudmonitor")
    assert hold.reason == "cloudmonitor alert origin-5xx-rate (critical)"
    assert (hold.created_at, hold.expires_at) == (T0, T0 + timedelta(hours=2))
    later = T0 + timedelta(minutes=30)
    refreshed = hold_change(origin, firing(severity="warning"), hold, later)
    assert refreshed is not None and refreshed.kind == "refreshed" and refreshed.previous == hold
    assert (refreshed.hold.created_at, refreshed.hold.expires_at) == (T0, later + timedelta(hours=2))
    assert refreshed.hold.reason == "cloudmonitor alert origin-5xx-rate (warning)"
    # a stored hold that has already ended is replaced by a new one
    again = hold_change(origin, firing(), hold, T0 + timedelta(hours=3))
    assert again is not None and again.kind == "created" and again.hold.created_at == T0 + timedelta(hours=3)


def test_resolve_releases_now_or_after_the_cooldown_and_a_new_firing_extends_again(schedule: Schedule) -> None:
    plain, cooled = rule(schedule, "any-waf"), rule(schedule)
    waf = firing(name="waf-blocks")
    held = hold_change(plain, waf, None, T0)
    assert held is not None
    end = T0 + timedelta(minutes=5)
    released = hold_change(plain, resolved(name="waf-blocks"), held.hold, end)
    assert released is not None and released.kind == "released" and released.hold.expires_at == end
    assert not released.hold.active_at(end) and released.previous == held.hold

    hold = hold_change(cooled, firing(), None, T0)
    assert hold is not None
    resolve_at = T0 + timedelta(minutes=20)
    cooling = hold_change(cooled, resolved(), hold.hold, resolve_at)
    assert cooling is not None and cooling.kind == "cooling"
    assert cooling.hold.expires_at == resolve_at + timedelta(minutes=10) and cooling.hold.created_at == T0
    # a second resolve does not push the end of the cooldown out
    assert hold_change(cooled, resolved(), cooling.hold, resolve_at + timedelta(minutes=5)) is None
    # a new firing during the cooldown holds again for the full ttl
    refire = resolve_at + timedelta(minutes=8)
    extended = hold_change(cooled, firing(), cooling.hold, refire)
    assert extended is not None and extended.kind == "refreshed"
    assert extended.hold.expires_at == refire + timedelta(hours=2)


def test_resolve_never_lengthens_and_needs_a_hold_in_force(schedule: Schedule) -> None:
    cooled = rule(schedule)
    hold = hold_change(cooled, firing(), None, T0)
    assert hold is not None
    near_end = T0 + timedelta(hours=2) - timedelta(minutes=3)
    assert hold_change(cooled, resolved(), hold.hold, near_end) is None  # ends sooner than the cooldown would
    assert hold_change(cooled, resolved(), None, T0) is None
    assert hold_change(cooled, resolved(), hold.hold, T0 + timedelta(hours=2)) is None  # already over


# --- apply_alerts: the store, the log -------------------------------------------------------------


class Applied:
    """``apply_alerts`` on one schedule and one real hold folder, at pinned instants."""

    def __init__(self, schedule: Schedule, root: Path) -> None:
        self.schedule = schedule
        self.store = HoldStore(root)
        self.root = root
        self.lines: list[dict[str, Any]] = []

    def __call__(self, alerts: list[Alert | None], at: datetime, dry_run: bool = False) -> Any:
        stream = io.StringIO()
        outcome = apply_alerts(self.schedule, alerts, self.store, at, RunLog(stream=stream), dry_run=dry_run)
        self.lines = parse_lines(stream.getvalue())
        return outcome

    def stored(self, hold_id: str) -> Hold:
        return Hold.model_validate_json((self.root / f"{hold_id}.json").read_bytes())

    def events(self) -> list[str]:
        return [line["event"] for line in self.lines]


@pytest.fixture
def applied(schedule: Schedule, tmp_path: Path) -> Applied:
    return Applied(schedule, tmp_path / "state")


def test_apply_alerts_writes_and_logs_the_lifecycle(applied: Applied) -> None:
    hold_id = alert_hold_id("origin-errors", firing())
    outcome = applied([firing()], T0)
    assert (outcome.alerts, outcome.matched, outcome.ignored) == (1, 1, 0)
    assert (outcome.created, outcome.refreshed, outcome.released) == ((hold_id,), (), ())
    assert applied.stored(hold_id).expires_at == T0 + timedelta(hours=2)
    assert applied.events() == ["intake.alert", "hold.created"]
    alert_line = {k: applied.lines[0][k] for k in ("source", "name", "state", "key", "severity", "rule")}
    assert alert_line == {
        "source": "cloudmonitor",
        "name": "origin-5xx-rate",
        "state": "firing",
        "key": "t-1",
        "severity": "critical",
        "rule": "origin-errors",
    }
    assert applied.lines[1]["id"] == hold_id and applied.lines[1]["by"] == "intake:cloudmonitor"

    resolve_at = T0 + timedelta(minutes=40)
    outcome = applied([resolved()], resolve_at)
    assert (outcome.created, outcome.refreshed, outcome.released) == ((), (hold_id,), ())
    assert applied.events() == ["intake.alert", "hold.cooling"]
    assert applied.lines[1]["expires_at"] == "2026-11-28T02:20:00Z"
    assert applied.stored(hold_id).expires_at == resolve_at + timedelta(minutes=10)
    assert [h.id for h in applied.store.active(resolve_at + timedelta(minutes=9))] == [hold_id]
    assert applied.store.active(resolve_at + timedelta(minutes=10)) == []
    # the ended hold's file stays (a reconcile naming it still finds its tasks) until it is a day old
    assert (applied.root / f"{hold_id}.json").exists()


def test_two_keys_under_one_rule_keep_two_holds(applied: Applied) -> None:
    one, two = firing("t-1"), firing("t-2", labels={"instanceId": "esa-site-2"})
    outcome = applied([one, two], T0)
    ids = (alert_hold_id("origin-errors", one), alert_hold_id("origin-errors", two))
    assert outcome.created == ids and len(set(ids)) == 2
    applied([resolved("t-1")], T0 + timedelta(minutes=5))
    after_cooldown = T0 + timedelta(minutes=16)
    assert [h.id for h in applied.store.active(after_cooldown)] == [ids[1]]


def test_unmatched_and_stateless_alerts_are_ignored(applied: Applied) -> None:
    outcome = applied([firing(name="disk-full"), None, resolved("never-fired")], T0)
    assert (outcome.alerts, outcome.matched, outcome.ignored) == (3, 1, 2)
    assert (outcome.created, outcome.refreshed, outcome.released, outcome.changes) == ((), (), (), ())
    assert [line["rule"] for line in applied.lines] == [None, "origin-errors"]
    assert not applied.root.exists()


def test_one_body_firing_then_resolving_writes_the_hold_once_as_it_ends(applied: Applied) -> None:
    waf, hold_id = firing(name="waf-blocks"), alert_hold_id("any-waf", firing(name="waf-blocks"))
    outcome = applied([waf, resolved(name="waf-blocks")], T0)
    assert (outcome.created, outcome.released) == ((hold_id,), (hold_id,))
    assert applied.events() == ["intake.alert", "intake.alert", "hold.created", "hold.released"]
    assert applied.stored(hold_id).expires_at == T0 and applied.store.active(T0) == []


def test_a_dry_run_writes_nothing(applied: Applied) -> None:
    outcome = applied([firing()], T0, dry_run=True)
    assert outcome.created and not applied.root.exists()
    assert [line.get("dry_run") for line in applied.lines if line["event"] == "hold.created"] == [True]


def test_hold_files_are_the_stores_own_format(applied: Applied) -> None:
    applied([firing()], T0)
    (path,) = applied.root.glob("*.json")
    stored = json.loads(path.read_text())
    assert set(stored) == {"id", "tasks", "status", "reason", "by", "created_at", "expires_at"}
    assert stored["created_at"] == "2026-11-28T01:30:00Z"
