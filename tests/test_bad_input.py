"""Bad input: malformed schedules, malformed events and malformed ESA responses.

Every malformed schedule goes through ``validate``, ``run`` and ``invoke`` (and the FC handler),
every malformed event through ``invoke`` and the handler, with the environment pointing at a
running emulator. Each must give exit code 2 (or a ``UserError`` from the handler) with a message
that names the file / field / value, no traceback, no ESA call of any kind (the emulator's
counters stay at zero) and no hold file.

Malformed ESA answers are served by a tiny canned HTTP server on loopback (``asyncio.start_server``,
not a mock transport), so they cross the real keep-alive transport: each must become an
``EsaApiError`` whose text names the call.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
from helpers import clean_environment, endpoint_env, fc_context, set_env

from esa_scheduler import cli
from esa_scheduler.edge.client import ClientSettings, EsaApiError, EsaClient
from esa_scheduler.edge.credentials import Credentials
from esa_scheduler.emulator import EMULATOR_ACCESS_KEY_ID, EMULATOR_ACCESS_KEY_SECRET, Emulator
from esa_scheduler.errors import EventError, ScheduleError, UserError
from esa_scheduler.fc_context import load_context
from esa_scheduler.invocation.function import handle

SCHEDULE = """\
version: 1
timezone: UTC
default_status: online
tasks:
  - name: access-a
  - name: access-b
  - pattern: "waf-*"
  - name: site-x
    site_id: 1001
windows:
  - name: nightly
    tasks: ["access-*"]
    status: offline
    cron: "0 2 * * *"
    duration: 1h
incidents:
  - name: origin-errors
    match: {type: "cms:CloudMonitor:*", data: {alertName: "origin-5xx*", alertState: ALERT}}
    tasks: ["access-*"]
    status: offline
    ttl: 2h
    release_on: {data: {alertState: OK}}
"""
"""A valid schedule; the schedule cases below break one thing each."""

SEED: list[dict[str, Any]] = [
    {"TaskName": "access-a", "Status": "online"},
    {"TaskName": "access-b", "Status": "offline"},
    {"TaskName": "waf-1", "Status": "online"},
    {"TaskName": "site-x", "Status": "online", "SiteId": 1001},
]

HOLD = {"action": "hold", "tasks": ["access-a"], "reason": "INC-1", "ttl": "1h"}
"""A valid hold: what ``invoke`` sends when the schedule is the broken part."""

ALARM = {
    "specversion": "1.0",
    "id": "evt-1",
    "source": "acs.cms",
    "type": "cms:CloudMonitor:AlarmStateChanged",
    "data": {"alertName": "origin-5xx-rate", "alertState": "ALERT"},
}

WEBHOOK_ALERT: dict[str, Any] = {
    "specversion": "1.0",
    "id": "evt-2",
    "source": "acs.cms",
    "type": "cms:CloudMonitor:AlertWebHook",
    "data": {"alertName": "origin-5xx-rate", "alertState": "ALERT", "transId": "t-1", "dimensions": "{}"},
}
"""A CloudMonitor alert through EventBridge: the schedule's ``match:`` rule takes a good one, and one
it does not match is read as an alert."""


def replace_once(old: str, new: str, base: str = SCHEDULE) -> str:
    assert old in base, old
    return base.replace(old, new, 1)


def with_window(body: str) -> str:
    """The valid schedule plus one more window (``body`` is its YAML, indented by four)."""
    return replace_once("incidents:\n", f"  - name: extra\n{body}incidents:\n")


def with_incident(body: str) -> str:
    return SCHEDULE + body


RECURRING = '    tasks: [access-a]\n    cron: "0 4 * * *"\n'

# (id, file content, needles that must all be on one output line, together with the file name)
BAD_SCHEDULES: list[tuple[str, str | bytes, tuple[str, ...]]] = [
    # YAML itself
    ("yaml-unclosed-flow", "version: 1\ntasks: [\n", ("YAML syntax error", "line")),
    ("yaml-bad-indent", "version: 1\ntasks:\n  - name: a\n bad: 1\n", ("YAML syntax error", "line 4")),
    ("yaml-tab-indent", "version: 1\ntasks:\n\t- name: access-a\n", ("YAML syntax error", "line 3")),
    ("yaml-python-tag", "!!python/object/apply:os.system ['true']\n", ("YAML syntax error", "python/object")),
    ("yaml-nul-byte", "version: 1\ntasks:\n  - name: a\x00b\n", ("YAML syntax error", "#x0000")),
    ("yaml-deep-nesting", "version: 1\nwindows: " + "[" * 5000 + "]" * 5000 + "\n", ("YAML syntax error",)),
    ("yaml-unhashable-key", "version: 1\n? [a, b]\n: x\n", ("YAML syntax error", "unhashable")),
    ("yaml-empty-int-tag", "version: !!int\ntasks: []\n", ()),
    ("yaml-bad-timestamp-tag", "version: 1\ntasks: []\nx: !!timestamp 2027-02-30\n", ()),
    # the file as a whole
    ("not-utf8", b"version: 1\ntasks:\n  - name: caf\xe9\n", ("cannot read", "utf-8")),
    ("utf16", SCHEDULE.encode("utf-16"), ("cannot read",)),
    ("huge-file", SCHEDULE + ("# padding padding padding padding padding padding padding\n" * 20000), ("too large",)),
    ("empty-file", "", ("empty",)),
    ("comments-only", "# nothing here\n", ("empty",)),
    ("list-at-top", "- version: 1\n- tasks: []\n", ("top level", "mapping", "list")),
    ("scalar-at-top", "just words\n", ("top level", "mapping", "str")),
    # top-level fields
    ("version-2", replace_once("version: 1", "version: 2"), ("version", "2")),
    ("version-string", replace_once("version: 1", 'version: "one"'), ("version", "one")),
    ("version-bool", replace_once("version: 1", "version: true"), ("version", "(got true)")),
    ("unknown-top-key", replace_once("timezone: UTC", "timezone: UTC\ntimezon: UTC"), ("unknown key 'timezon'",)),
    ("non-string-key", replace_once("timezone: UTC", "timezone: UTC\n5: five"), ("5",)),
    ("bad-zone", replace_once("timezone: UTC", "timezone: Mars/Olympus_Mons"), ("timezone", "Mars/Olympus_Mons")),
    ("zone-path-traversal", replace_once("timezone: UTC", "timezone: ../../../etc/passwd"), ("timezone", "passwd")),
    ("zone-wrong-type", replace_once("timezone: UTC", "timezone: [UTC]"), ("timezone",)),
    ("bad-mode", replace_once("default_status: online", "default_status: online\nmode: sometimes"), ("mode",)),
    ("bad-tick", replace_once("timezone: UTC", "timezone: UTC\ntick: soon"), ("tick", "soon")),
    ("zero-tick", replace_once("timezone: UTC", "timezone: UTC\ntick: 0s"), ("tick", "0s")),
    (
        "safety-ratio-above-one",
        replace_once("timezone: UTC", "timezone: UTC\nsafety: {max_change_ratio: 1.5}"),
        ("max_change_ratio", "1.5"),
    ),
    (
        "tasks-not-a-list",
        replace_once(SCHEDULE[SCHEDULE.index("tasks:") : SCHEDULE.index("windows:")], "tasks: access-a\n"),
        ("tasks", "list"),
    ),
    ("windows-a-mapping", replace_once("windows:\n", "windows:\n  nightly:\n"), ("windows",)),
    (
        "targets-empty",
        replace_once("timezone: UTC", "timezone: UTC\ntargets: []"),
        ("targets: empty list; omit the key to use the function's own account",),
    ),
    # task entries
    ("task-entry-a-string", replace_once("  - name: access-b\n", "  - access-b\n"), ("tasks[1]",)),
    ("task-name-not-string", replace_once("  - name: access-b\n", "  - name: 12345\n"), ("tasks[1]", "name")),
    ("task-unknown-key", replace_once("    site_id: 1001\n", "    side_id: 1001\n"), ("side_id", "site_id")),
    ("task-site-id-word", replace_once("site_id: 1001", "site_id: abc"), ("site_id", "abc")),
    (
        "task-name-and-pattern",
        replace_once("  - name: access-b\n", "  - name: access-b\n    pattern: b-*\n"),
        ("name", "pattern"),
    ),
    ("task-name-with-glob", replace_once("  - name: access-b\n", "  - name: access-*\n"), ("access-*", "pattern")),
    # windows
    ("window-unknown-key", replace_once("    duration: 1h\n", "    duration: 1h\n    prority: 5\n"), ("prority",)),
    (
        "window-priority-word",
        replace_once("    duration: 1h\n", "    duration: 1h\n    priority: high\n"),
        ("priority", "high"),
    ),
    (
        "window-priority-inf",
        replace_once("    duration: 1h\n", "    duration: 1h\n    priority: .inf\n"),
        ("priority",),
    ),
    ("window-tasks-a-string", replace_once('tasks: ["access-*"]', "tasks: access-a"), ("nightly", "tasks")),
    ("window-empty-selector", replace_once('tasks: ["access-*"]', 'tasks: [""]'), ("nightly", "tasks[0]")),
    ("window-status-word", replace_once("status: offline\n    cron", "status: asleep\n    cron"), ("status", "asleep")),
    ("cron-hour-24", replace_once('cron: "0 2 * * *"', 'cron: "0 24 * * *"'), ("nightly", "cron", "0 24 * * *")),
    ("cron-day-0", replace_once('cron: "0 2 * * *"', 'cron: "0 2 0 * *"'), ("nightly", "cron", "0 2 0 * *")),
    ("cron-month-13", replace_once('cron: "0 2 * * *"', 'cron: "0 2 1 13 *"'), ("nightly", "cron", "0 2 1 13 *")),
    ("cron-step-0", replace_once('cron: "0 2 * * *"', 'cron: "*/0 2 * * *"'), ("nightly", "cron", "*/0")),
    ("cron-L-in-hours", replace_once('cron: "0 2 * * *"', 'cron: "0 L * * *"'), ("nightly", "cron")),
    ("cron-macro", replace_once('cron: "0 2 * * *"', 'cron: "@daily"'), ("nightly", "cron", "@daily")),
    ("cron-a-number", replace_once('cron: "0 2 * * *"', "cron: 5"), ("nightly", "cron", "5")),
    ("cron-empty", replace_once('cron: "0 2 * * *"', 'cron: ""'), ("nightly", "cron")),
    ("duration-unit", replace_once("duration: 1h", "duration: 1x"), ("nightly", "duration", "1x")),
    ("duration-years", replace_once("duration: 1h", "duration: P1Y"), ("nightly", "duration", "P1Y")),
    ("duration-zero", replace_once("duration: 1h", "duration: 0m"), ("nightly", "duration", "0m")),
    ("duration-number", replace_once("duration: 1h", "duration: 3600"), ("nightly", "duration", "3600")),
    (
        "duration-overflow",
        replace_once("duration: 1h", "duration: 99999999999999999999d"),
        ("nightly", "duration", "99999999999999999999d"),
    ),
    (
        "both-duration-and-end-cron",
        replace_once("duration: 1h", 'duration: 1h\n    end_cron: "0 3 * * *"'),
        ("nightly",),
    ),
    (
        "cron-and-start",
        replace_once("duration: 1h", 'duration: 1h\n    start: "2027-01-01T00:00:00Z"'),
        ("nightly", "cron", "start"),
    ),
    (
        "one-off-reversed",
        with_window('    tasks: [access-a]\n    start: "2027-05-01T10:00:00Z"\n    end: "2027-05-01T09:00:00Z"\n'),
        ("extra", "end", "not after start"),
    ),
    (
        "one-off-zero-length",
        with_window('    tasks: [access-a]\n    start: "2027-05-01T10:00:00Z"\n    end: "2027-05-01T10:00:00Z"\n'),
        ("extra", "end", "not after start"),
    ),
    (
        "one-off-without-end",
        with_window('    tasks: [access-a]\n    start: "2027-05-01T10:00:00Z"\n'),
        ("extra", "end"),
    ),
    (
        "one-off-not-a-date",
        with_window('    tasks: [access-a]\n    start: "next tuesday"\n    end: "2027-05-01T10:00:00Z"\n'),
        ("extra", "start", "next tuesday"),
    ),
    (
        "one-off-in-dst-gap",
        with_window(
            '    tasks: [access-a]\n    timezone: Europe/Berlin\n    start: "2027-03-28T02:30:00"\n'
            '    end: "2027-03-28T05:00:00"\n'
        ),
        ("extra", "start", "does not exist"),
    ),
    (
        "one-off-before-year-1",
        with_window(
            '    tasks: [access-a]\n    start: "0001-01-01T00:00:00+01:00"\n    end: "0001-01-01T05:00:00+01:00"\n'
        ),
        ("extra", "start", "0001-01-01"),
    ),
    (
        "window-zone-bad",
        with_window(RECURRING + "    duration: 1h\n    timezone: Europe/Atlantis\n"),
        ("extra", "Europe/Atlantis"),
    ),
    (
        "active-until-before-from",
        with_window(RECURRING + "    duration: 1h\n    active_from: 2027-06-01\n    active_until: 2027-05-01\n"),
        ("extra", "active_until"),
    ),
    ("active-from-feb-30", with_window(RECURRING + "    duration: 1h\n    active_from: 2027-02-30\n"), ("2027-02-30",)),
    (
        "skip-dates-datetime",
        with_window(RECURRING + "    duration: 1h\n    skip_dates: [2027-01-01T10:00:00]\n"),
        ("skip_dates",),
    ),
    (
        "duplicate-window-names",
        with_window(RECURRING + "    duration: 1h\n").replace("name: extra", "name: nightly"),
        ("nightly", "duplicate"),
    ),
    ("window-selects-unmanaged", replace_once('tasks: ["access-*"]', "tasks: [access-z]"), ("nightly", "access-z")),
    # incident rules
    ("incident-without-ttl", replace_once("    ttl: 2h\n", ""), ("origin-errors", "ttl")),
    ("incident-bad-ttl", replace_once("ttl: 2h", "ttl: forever"), ("origin-errors", "ttl", "forever")),
    ("incident-ttl-overflow", replace_once("ttl: 2h", "ttl: 99999999999999d"), ("origin-errors", "ttl")),
    (
        "incident-match-a-string",
        replace_once('match: {type: "cms:CloudMonitor:*", data', 'match: "cms"\n    x: {data'),
        ("origin-errors",),
    ),
    ("incident-unknown-key", replace_once("    ttl: 2h\n", "    ttl: 2h\n    severity: high\n"), ("severity",)),
    (
        "incident-selects-unmanaged",
        replace_once(
            'tasks: ["access-*"]\n    status: offline\n    ttl', "tasks: [billing]\n    status: offline\n    ttl"
        ),
        ("origin-errors", "billing"),
    ),
    (
        "duplicate-incident-names",
        with_incident("  - name: origin-errors\n    match: {type: other}\n    tasks: [access-a]\n    ttl: 1h\n"),
        ("origin-errors", "duplicate"),
    ),
]

# (id, raw event bytes, needles that must all appear in the error)
BAD_EVENTS: list[tuple[str, bytes, tuple[str, ...]]] = [
    ("empty-body", b"", ("empty",)),
    ("whitespace-body", b" \n\t ", ("empty",)),
    ("non-json-bytes", b"\x00\x01\x02 garbage", ("not valid JSON",)),
    ("truncated-json", b'{"action": "reconcile"', ("not valid JSON",)),
    ("invalid-utf8", b'{"action": "hold", "reason": "caf\xe9"}', ("UTF-8",)),
    ("utf16-json", json.dumps({"action": "reconcile"}).encode("utf-16"), ("UTF-8",)),
    ("json-null", b"null", ("expected a JSON object", "NoneType")),
    ("json-number", b"42", ("expected a JSON object", "int")),
    ("json-string", b'"reconcile"', ("expected a JSON object", "str")),
    ("empty-list", b"[]", ("empty list",)),
    ("list-with-a-number", b'[{"action": "reconcile"}, 7]', ("event[1]", "expected a JSON object")),
    ("no-known-shape", b'{"what": "ever"}', ("event[0]", "triggerTime", "action", "specversion")),
    ("unknown-action", b'{"action": "explode"}', ("event[0].action", "explode")),
    ("action-not-a-string", b'{"action": ["hold"]}', ("event[0].action", "hold")),
    ("unknown-field", b'{"action": "reconcile", "colour": "red"}', ("event[0].colour", "unknown field")),
    ("dry-run-wrong-type", b'{"action": "reconcile", "dry_run": "maybe"}', ("event[0].dry_run",)),
    ("at-not-an-instant", b'{"action": "reconcile", "at": "tomorrow"}', ("event[0].at", "tomorrow")),
    ("at-without-offset", b'{"action": "reconcile", "at": "2026-11-28T02:30:00"}', ("event[0].at", "offset")),
    ("at-before-year-1", b'{"action": "reconcile", "at": "0001-01-01T00:00:00+01:00"}', ("event[0].at",)),
    ("at-year-9999", b'{"action": "reconcile", "at": "9999-12-31T23:00:00Z"}', ("event[0].at", "9999")),
    ("timer-naive-trigger", b'{"triggerTime": "2026-11-28T02:30:00"}', ("event[0].triggerTime",)),
    ("timer-trigger-number", b'{"triggerTime": 1764297000}', ("event[0].triggerTime",)),
    ("timer-trigger-year-9999", b'{"triggerTime": "9999-12-31T23:59:59Z"}', ("event[0].triggerTime", "9999")),
    ("timer-payload-not-json", b'{"triggerTime": "2026-11-28T02:30:00Z", "payload": "{dry"}', ("payload",)),
    ("timer-payload-a-list", b'{"triggerTime": "2026-11-28T02:30:00Z", "payload": "[true]"}', ("payload",)),
    (
        "timer-payload-typo",
        b'{"triggerTime": "2026-11-28T02:30:00Z", "payload": "{\\"dryrun\\": 1}"}',
        ("payload", "dryrun"),
    ),
    ("hold-without-tasks", b'{"action": "hold", "reason": "x", "ttl": "1h"}', ("event[0].tasks", "required")),
    ("hold-without-reason", b'{"action": "hold", "tasks": ["access-a"], "ttl": "1h"}', ("event[0].reason",)),
    (
        "hold-tasks-a-string",
        b'{"action": "hold", "tasks": "access-a", "reason": "x", "ttl": "1h"}',
        ("event[0].tasks",),
    ),
    ("hold-no-ttl", b'{"action": "hold", "tasks": ["access-a"], "reason": "x"}', ("ttl", "until")),
    (
        "hold-ttl-and-until",
        b'{"action": "hold", "tasks": ["access-a"], "reason": "x", "ttl": "1h", "until": "2099-01-01T00:00:00Z"}',
        ("ttl", "until"),
    ),
    (
        "hold-until-in-the-past",
        b'{"action": "hold", "tasks": ["access-a"], "reason": "x", "until": "2020-01-01T00:00:00Z"}',
        ("event[0].until", "2020-01-01T00:00:00Z", "not in the future"),
    ),
    ("hold-ttl-zero", b'{"action": "hold", "tasks": ["access-a"], "reason": "x", "ttl": "0s"}', ("event[0].ttl", "0s")),
    ("hold-ttl-number", b'{"action": "hold", "tasks": ["access-a"], "reason": "x", "ttl": 3600}', ("event[0].ttl",)),
    (
        "hold-ttl-overflow",
        b'{"action": "hold", "tasks": ["access-a"], "reason": "x", "ttl": "99999999999999d"}',
        ("event[0].ttl", "99999999999999d"),
    ),
    (
        "hold-ttl-past-year-9999",
        b'{"action": "hold", "tasks": ["access-a"], "reason": "x", "ttl": "3000000d"}',
        ("event[0].ttl", "3000000d"),
    ),
    (
        "hold-status-word",
        b'{"action": "hold", "tasks": ["access-a"], "reason": "x", "ttl": "1h", "status": "paused"}',
        ("event[0].status",),
    ),
    (
        "hold-unmanaged-task",
        b'{"action": "hold", "tasks": ["billing"], "reason": "x", "ttl": "1h"}',
        ("event[0].tasks", "billing"),
    ),
    (
        "hold-id-traversal",
        b'{"action": "hold", "tasks": ["access-a"], "reason": "x", "ttl": "1h", "id": "../../x"}',
        ("event[0].id", "../../x"),
    ),
    ("release-without-selector", b'{"action": "release"}', ("event[0]", "id", "tasks")),
    ("release-id-a-number", b'{"action": "release", "id": 7}', ("event[0].id",)),
    (
        "cloudevent-no-rule",
        json.dumps({**ALARM, "type": "oss:ObjectCreated"}).encode(),
        ("event[0]", "oss:ObjectCreated", "no incident rule"),
    ),
    ("cloudevent-old-specversion", json.dumps({**ALARM, "specversion": "0.3"}).encode(), ("event[0].specversion",)),
    (
        "cloudevent-missing-source",
        json.dumps({k: v for k, v in ALARM.items() if k != "source"}).encode(),
        ("event[0].source",),
    ),
    (
        "cloudevent-batch-one-bad",
        json.dumps([ALARM, {**ALARM, "id": ""}]).encode(),
        ("event[1].id",),
    ),
    (
        "cloudevent-command-unknown-action",
        json.dumps({**ALARM, "data": {"action": "explode"}}).encode(),
        ("event[0].data.action", "explode"),
    ),
    ("deeply-nested-list", b"[" * 100_000 + b"]" * 100_000, ("event",)),
    (
        "alert-cloudevent-unknown-state",
        json.dumps({**WEBHOOK_ALERT, "data": {**WEBHOOK_ALERT["data"], "alertState": "ON_FIRE"}}).encode(),
        ("event[0].data.alertState", "'ON_FIRE' is not a CloudMonitor alert state"),
    ),
    (
        "alert-raw-data-bad-dimensions",
        json.dumps({**WEBHOOK_ALERT["data"], "dimensions": "instanceId=i-x"}).encode(),
        ("event[0].dimensions", "is not a Java map"),
    ),
    (
        "sls-alert-unknown-status",
        json.dumps({**WEBHOOK_ALERT, "type": "sls.alert", "data": {"alert_name": "a", "status": "ok"}}).encode(),
        ("event[0].data.status", "'firing' or 'resolved'"),
    ),
    (
        "deeply-nested-data",
        b'{"specversion": "1.0", "id": "1", "source": "s", "type": "t", "data": ' + b"[" * 5000 + b"]" * 5000 + b"}",
        ("event",),
    ),
    ("one-megabyte", b'{"action": "reconcile", "pad": "' + b"x" * 1_000_000 + b'"}', ("event", "bytes", "limit")),
    (
        "lone-surrogate",
        b'{"action": "hold", "tasks": ["access-a"], "reason": "\\ud800", "ttl": "1h"}',
        ("event[0].reason",),
    ),
]

assert len(BAD_SCHEDULES) >= 30 and len(BAD_EVENTS) >= 15
assert len({c[0] for c in BAD_SCHEDULES}) == len(BAD_SCHEDULES)
assert len({c[0] for c in BAD_EVENTS}) == len(BAD_EVENTS)


# --- configuration only a fleet reads --------------------------------------------------------------

FLEET = replace_once(
    "default_status: online\n",
    "default_status: online\n"
    "targets:\n"
    "  - {name: member, region: cn-hangzhou, role_arn: 'acs:ram::1111222233334444:role/esa-scheduler-target'}\n"
    "  - {name: self, region: cn-hangzhou}\n",
)
"""The valid schedule with a target reached through STS and one in the function's own account."""
ACCOUNT_CONTEXT = {"account_id": "1234567890123456", "region": "cn-hangzhou"}


@pytest.mark.parametrize("entry", ["invoke", "handler"])
@pytest.mark.parametrize(
    ("env", "context", "needles"),
    [
        (
            {"ESA_STS_ENDPOINT": "http://10.0.0.1"},
            ACCOUNT_CONTEXT,
            ("ESA_STS_ENDPOINT='http://10.0.0.1' uses plain http on a non-loopback host; use https://",),
        ),
        (
            {"ESA_STS_ENDPOINT": "https://sts.aliyuncs.com/assume"},
            ACCOUNT_CONTEXT,
            ("ESA_STS_ENDPOINT='https://sts.aliyuncs.com/assume' must be scheme://host[:port]",),
        ),
        (
            {"ESA_FANOUT": "async"},
            {**ACCOUNT_CONTEXT, "account_id": "1234****3456"},
            ("account_id='1234****3456' is not an Alibaba Cloud account id", "ESA_FC_ENDPOINT"),
        ),
        ({"ESA_FANOUT": "async"}, {}, ("account_id=None is not an Alibaba Cloud account id", "ESA_FC_ENDPOINT")),
        (
            {"ESA_FANOUT": "async", "ESA_FC_ENDPOINT": "http://10.0.0.2"},
            ACCOUNT_CONTEXT,
            ("ESA_FC_ENDPOINT='http://10.0.0.2' uses plain http on a non-loopback host; use https://",),
        ),
        (
            {"ESA_FANOUT": "async"},
            {**ACCOUNT_CONTEXT, "function": {"name": "esa scheduler"}},
            ("function.name 'esa scheduler'", "FC"),
        ),
    ],
    ids=["sts-plain-http", "sts-path", "fc-masked-account", "fc-no-account", "fc-plain-http", "fc-function-name"],
)
def test_fleet_configuration_is_checked_before_a_hold_is_written(
    bench: Bench, entry: str, env: dict[str, str], context: dict[str, Any], needles: tuple[str, ...]
) -> None:
    schedule = bench.write("schedule.yaml", FLEET)
    bench.point_at_emulator(schedule)
    set_env(bench.monkeypatch, env)
    event = bench.write("hold.json", json.dumps(HOLD))
    context_file = bench.write("context.json", json.dumps(context))
    if entry == "handler":
        bench.capsys.readouterr()
        with pytest.raises(UserError) as caught:
            handle(event.read_bytes(), load_context(str(context_file)))
        assert all(needle in str(caught.value) for needle in needles), str(caught.value)
        logs = bench.capsys.readouterr().out
    else:
        result = bench.cli("invoke", str(event), "--context", str(context_file))
        assert result.out == ""
        assert_names_problem(result, *needles)
        logs = result.err
    rejected = [json.loads(line) for line in logs.splitlines() if line.startswith("{")]
    assert [line["event"] for line in rejected] == ["run.rejected"]
    assert all(needle in rejected[0]["error"] for needle in needles), rejected[0]
    bench.assert_nothing_happened()


# --- harness ----------------------------------------------------------------------------------


@dataclass
class Outcome:
    code: int
    out: str
    err: str

    @property
    def lines(self) -> list[str]:
        return [line for line in (self.out + self.err).splitlines() if line.strip()]


@dataclass
class Bench:
    """A clean environment (cwd, HOME), a running emulator and the paths one test writes to."""

    tmp: Path
    emulator: Emulator
    monkeypatch: pytest.MonkeyPatch
    capsys: pytest.CaptureFixture[str]
    state: Path = field(init=False)

    def __post_init__(self) -> None:
        self.state = self.tmp / "state"

    def point_at_emulator(self, schedule: Path) -> None:
        set_env(
            self.monkeypatch,
            {**endpoint_env(self.emulator.url), "ESA_SCHEDULE": str(schedule), "ESA_STATE_DIR": str(self.state)},
        )

    def write(self, name: str, content: str | bytes) -> Path:
        path = self.tmp / name
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")
        return path

    def cli(self, *argv: str) -> Outcome:
        self.capsys.readouterr()
        code = cli.main(list(argv))
        captured = self.capsys.readouterr()
        return Outcome(code, captured.out, captured.err)

    def assert_nothing_happened(self) -> None:
        stats = self.emulator.stats
        assert stats["total"] == 0, f"ESA was called: {stats['by_action']}"
        assert not self.state.exists() or list(self.state.iterdir()) == [], "a hold file was written"
        assert {key: task.Status for key, task in self.emulator.tasks.items()} == {
            (t.get("SiteId"), t["TaskName"]): t["Status"] for t in SEED
        }


@pytest.fixture
def bench(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Iterator[Bench]:
    clean_environment(monkeypatch, tmp_path)
    with Emulator(tasks=SEED) as emulator:
        yield Bench(tmp_path, emulator, monkeypatch, capsys)


def assert_names_problem(outcome: Outcome, *needles: str) -> None:
    """Exit 2, no traceback, and one output line that carries every needle."""
    text = outcome.out + outcome.err
    assert "Traceback" not in text
    assert outcome.code == 2, f"exit {outcome.code}:\n{text[-3000:]}"
    found = [line for line in outcome.lines if all(needle in line for needle in needles)]
    assert found, f"no output line contains all of {needles!r}:\n" + "\n".join(outcome.lines)[-3000:]


def test_the_base_schedule_and_events_are_valid(bench: Bench) -> None:
    """The cases below each break one thing in something that works."""
    schedule = bench.write("schedule.yaml", SCHEDULE)
    assert bench.cli("validate", "--schedule", str(schedule), "--at", "2027-01-10T12:00:00Z").code == 0
    bench.point_at_emulator(schedule)
    hold = bench.write("hold.json", json.dumps(HOLD))
    result = bench.cli("invoke", str(hold))
    assert result.code == 0, result.err
    assert bench.emulator.status("access-a") == "offline"
    alarm = bench.write("alarm.json", json.dumps([ALARM]))
    assert bench.cli("invoke", str(alarm)).code == 0


# --- malformed schedules ------------------------------------------------------------------------


@pytest.mark.parametrize("command", ["validate", "run", "invoke", "handler"])
@pytest.mark.parametrize(("content", "needles"), [c[1:] for c in BAD_SCHEDULES], ids=[c[0] for c in BAD_SCHEDULES])
def test_malformed_schedule(bench: Bench, command: str, content: str | bytes, needles: tuple[str, ...]) -> None:
    schedule = bench.write("bad-schedule.yaml", content)
    bench.point_at_emulator(schedule)
    if command == "handler":
        bench.capsys.readouterr()
        with pytest.raises(ScheduleError) as caught:
            handle(json.dumps(HOLD).encode(), fc_context("fc-req-bad-input"))
        message = "\n".join(caught.value.problems)
        assert any(schedule.name in line and all(n in line for n in needles) for line in message.splitlines()), message
        assert "Traceback" not in bench.capsys.readouterr().out
    else:
        if command == "validate":
            result = bench.cli("validate", "--schedule", str(schedule))
        elif command == "run":
            result = bench.cli("run", "--schedule", str(schedule), "--state-dir", str(bench.state), "--json")
            assert result.out == ""
        else:
            result = bench.cli("invoke", str(bench.write("hold.json", json.dumps(HOLD))))
            assert result.out == ""
        assert_names_problem(result, schedule.name, *needles)
    bench.assert_nothing_happened()


def test_a_bad_file_among_good_ones_is_named(bench: Bench) -> None:
    folder = bench.tmp / "schedule"
    folder.mkdir()
    (folder / "a-good.yaml").write_text(SCHEDULE, encoding="utf-8")
    (folder / "b-bad.yml").write_text("version: 1\nwindows:\n  - name: w\n    tasks: [access-a]\n    cron: nope\n")
    bench.point_at_emulator(folder)
    result = bench.cli("run", "--schedule", str(folder), "--state-dir", str(bench.state))
    assert_names_problem(result, "b-bad.yml", "windows[0] (w).cron", "nope")
    bench.assert_nothing_happened()


# --- malformed events ---------------------------------------------------------------------------


@pytest.mark.parametrize("entry", ["invoke", "handler"])
@pytest.mark.parametrize(("body", "needles"), [c[1:] for c in BAD_EVENTS], ids=[c[0] for c in BAD_EVENTS])
def test_malformed_event(bench: Bench, entry: str, body: bytes, needles: tuple[str, ...]) -> None:
    schedule = bench.write("schedule.yaml", SCHEDULE)
    bench.point_at_emulator(schedule)
    if entry == "handler":
        bench.capsys.readouterr()
        with pytest.raises(UserError) as caught:
            handle(body, fc_context("fc-req-bad-input"))
        assert isinstance(caught.value, EventError), type(caught.value)
        message = str(caught.value)
        assert "\n" not in message
        assert all(needle in message for needle in needles), message
        logged = [json.loads(line) for line in bench.capsys.readouterr().out.splitlines() if line.strip()]
        assert [line["event"] for line in logged] == ["run.rejected"]
    else:
        result = bench.cli("invoke", str(bench.write("event.json", body)))
        assert result.out == ""
        assert_names_problem(result, *needles)
    bench.assert_nothing_happened()


def test_an_unreadable_context_file_is_bad_input(bench: Bench) -> None:
    schedule = bench.write("schedule.yaml", SCHEDULE)
    bench.point_at_emulator(schedule)
    event = bench.write("event.json", json.dumps(HOLD))
    for name, content, needles in [
        ("ctx-not-json.json", "{", ("ctx-not-json.json", "not valid JSON")),
        ("ctx-typo.json", json.dumps({"fucntion": {}}), ("ctx-typo.json", "fucntion")),
        ("ctx-timeout-word.json", json.dumps({"function": {"timeout": "long"}}), ("ctx-timeout-word.json", "timeout")),
        ("ctx-deep.json", "[" * 100_000 + "]" * 100_000, ("ctx-deep.json",)),
    ]:
        result = bench.cli("invoke", str(event), "--context", str(bench.write(name, content)))
        assert_names_problem(result, *needles)
    bench.assert_nothing_happened()


@pytest.mark.parametrize(
    ("flags", "needles"),
    [
        (["--at", "9999-12-31T00:00:00Z"], ("9999-12-31T00:00:00Z",)),
        (["--at", "0001-01-01T00:00:00+01:00"], ("0001-01-01T00:00:00+01:00",)),
        (["--at", "2026-11-28 02:30"], ("2026-11-28 02:30", "offset")),
        (["--deadline", "nan"], ("deadline", "nan")),
        (["--deadline", "-5"], ("deadline", "-5")),
    ],
    ids=["at-9999", "at-before-year-1", "at-naive", "deadline-nan", "deadline-negative"],
)
def test_bad_run_flags(bench: Bench, flags: list[str], needles: tuple[str, ...]) -> None:
    schedule = bench.write("schedule.yaml", SCHEDULE)
    bench.point_at_emulator(schedule)
    result = bench.cli("run", "--schedule", str(schedule), "--state-dir", str(bench.state), *flags)
    assert_names_problem(result, *needles)
    bench.assert_nothing_happened()


@pytest.mark.parametrize(
    "command",
    [
        ["run"],
        ["invoke", "EVENT"],
        ["plan", "--at", "2026-11-28T02:30:00Z"],
        ["hold", "list"],
        ["hold", "add", "--task", "access-a", "--reason", "INC-1", "--ttl", "1h"],
        ["hold", "release", "--id", "h-1"],
    ],
    ids=lambda argv: "-".join(a for a in argv if not a.startswith(("-", "2026", "EVENT", "INC")))[:20],
)
def test_a_state_folder_through_a_file_is_refused_before_anything_happens(bench: Bench, command: list[str]) -> None:
    schedule = bench.write("schedule.yaml", SCHEDULE)
    bench.point_at_emulator(schedule)
    blocker = bench.write("not-a-folder", "")
    unusable = blocker / "state"
    event = str(bench.write("hold.json", json.dumps(HOLD)))
    argv = [event if arg == "EVENT" else arg for arg in command]
    if argv[0] != "invoke":
        argv += ["--schedule", str(schedule), "--state-dir", str(unusable)]
    else:
        bench.monkeypatch.setenv("ESA_STATE_DIR", str(unusable))
    assert_names_problem(bench.cli(*argv), str(unusable), f"{blocker} is a file")
    bench.assert_nothing_happened()


@pytest.mark.parametrize("command", [["run"], ["invoke", "EVENT"]], ids=["run", "invoke"])
def test_a_state_folder_that_refuses_files_stops_the_run_before_it_acts(bench: Bench, command: list[str]) -> None:
    """/proc refuses new entries even to root: found only when the last-run record is written, the
    run would already have changed ESA and then failed."""
    schedule = bench.write("schedule.yaml", SCHEDULE)
    bench.point_at_emulator(schedule)
    unwritable = f"/proc/esa-scheduler-test-{bench.tmp.name}"
    bench.monkeypatch.setenv("ESA_STATE_DIR", unwritable)
    argv = [str(bench.write("hold.json", json.dumps(HOLD))) if arg == "EVENT" else arg for arg in command]
    if argv[0] == "run":
        argv += ["--schedule", str(schedule), "--at", "2026-11-28T02:30:00Z"]
    assert_names_problem(bench.cli(*argv), f"state folder {unwritable} is not writable", "ESA_STATE_DIR")
    bench.assert_nothing_happened()


# --- malformed ESA responses, over a real loopback socket -----------------------------------------

Responder = Callable[[str, dict[str, str]], bytes]


def http_response(status: int, body: bytes, *, content_length: int | None = None, reason: str = "OK") -> bytes:
    length = len(body) if content_length is None else content_length
    head = (
        f"HTTP/1.1 {status} {reason}\r\nContent-Type: application/json;charset=utf-8\r\n"
        f"Content-Length: {length}\r\nx-acs-request-id: CANNED-REQ\r\nConnection: close\r\n\r\n"
    )
    return head.encode() + body


def json_response(document: Any, status: int = 200) -> bytes:
    return http_response(status, json.dumps(document).encode())


class CannedEsa:
    """An HTTP/1.1 server on 127.0.0.1 that answers each request with ``respond(action, query)``.

    It reads the request head, records the action, writes the canned bytes and hangs up. It does
    not check signatures: it only stands in for a server that answers badly.
    """

    def __init__(self, respond: Responder) -> None:
        self.respond = respond
        self.calls: list[tuple[str, dict[str, str]]] = []
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._server: asyncio.AbstractServer | None = None
        self.port = 0

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._server = self._loop.run_until_complete(asyncio.start_server(self._serve, "127.0.0.1", 0))
        self.port = self._server.sockets[0].getsockname()[1]
        self._ready.set()
        self._loop.run_forever()
        self._server.close()
        self._loop.run_until_complete(self._server.wait_closed())
        self._loop.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
            request_line, *header_lines = head.split("\r\n")
            target = request_line.split(" ")[1]
            headers = {k.strip().lower(): v.strip() for k, _, v in (h.partition(":") for h in header_lines if h)}
            action = headers.get("x-acs-action", "")
            query = dict(parse_qsl(urlsplit(target).query, keep_blank_values=True))
            self.calls.append((action, query))
            writer.write(self.respond(action, query))
            await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> CannedEsa:
        self._thread.start()
        self._ready.wait(5)
        return self

    def __exit__(self, *exc: object) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)


FAST = ClientSettings(max_rps=None, max_attempts=2, base_delay=0.001, max_delay=0.002, read_timeout=2.0)
CREDS = Credentials(EMULATOR_ACCESS_KEY_ID, EMULATOR_ACCESS_KEY_SECRET)


def call_against(server: CannedEsa, action: str) -> EsaApiError:
    """Make one client call of ``action`` against the canned server; it must fail."""

    async def go() -> None:
        async with EsaClient(server.url, CREDS, FAST) as client:
            if action == "UpdateUserDeliveryTaskStatus":
                await client.update_user_delivery_task_status("access-a", "offline")
            elif action == "UpdateSiteDeliveryTaskStatus":
                await client.update_site_delivery_task_status(1001, "site-x", "offline")
            elif action == "GetUserDeliveryTask":
                await client.get_user_delivery_task("access-a")
            elif action == "ListSiteDeliveryTasks":
                await client.list_site_delivery_tasks(1001)
            else:
                await client.list_user_delivery_tasks()

    with pytest.raises(EsaApiError) as caught:
        asyncio.run(go())
    return caught.value


def task_item(name: str) -> dict[str, str]:
    return {"TaskName": name, "Status": "online", "BusinessType": "dcdn_log_access_l1"}


def truncated_listing(action: str, query: dict[str, str]) -> bytes:
    """Page 1 is full and says 250 tasks; page 2 comes back empty."""
    size = int(query.get("PageSize", "100"))
    number = int(query.get("PageNumber", "1"))
    tasks = [task_item(f"t-{i:03d}") for i in range(size)] if number == 1 else []
    return json_response({"RequestId": "R", "TotalCount": 250, "PageNumber": number, "PageSize": size, "Tasks": tasks})


MALFORMED: list[tuple[str, str, Responder, tuple[str, ...]]] = [
    (
        "update-not-json",
        "UpdateUserDeliveryTaskStatus",
        lambda a, q: http_response(200, b"<html>gateway says hi</html>"),
        ("body is not JSON",),
    ),
    (
        "update-json-list",
        "UpdateUserDeliveryTaskStatus",
        lambda a, q: json_response([{"Status": "offline"}]),
        ("not an object",),
    ),
    (
        "update-missing-status",
        "UpdateUserDeliveryTaskStatus",
        lambda a, q: json_response({"RequestId": "R", "TaskName": "access-a"}),
        ("missing Status",),
    ),
    (
        "update-status-not-a-string",
        "UpdateUserDeliveryTaskStatus",
        lambda a, q: json_response({"RequestId": "R", "TaskName": "access-a", "Status": ["offline"]}),
        ("Status",),
    ),
    (
        "update-200-with-error-body",
        "UpdateUserDeliveryTaskStatus",
        lambda a, q: json_response({"RequestId": "R", "Code": "Forbidden.RAM", "Message": "no permission"}),
        ("HTTP 200 carried an error body", "Forbidden.RAM"),
    ),
    (
        "update-truncated-json",
        "UpdateUserDeliveryTaskStatus",
        lambda a, q: http_response(200, b'{"RequestId": "R", "TaskName": "access-a", "Sta'),
        ("body is not JSON",),
    ),
    (
        "site-update-missing-status",
        "UpdateSiteDeliveryTaskStatus",
        lambda a, q: json_response({"RequestId": "R", "TaskName": "site-x"}),
        ("missing Status",),
    ),
    (
        "get-missing-task-name",
        "GetUserDeliveryTask",
        lambda a, q: json_response({"RequestId": "R", "Status": "online"}),
        ("missing TaskName",),
    ),
    (
        "list-missing-total-count",
        "ListUserDeliveryTasks",
        lambda a, q: json_response({"RequestId": "R", "Tasks": []}),
        ("missing TotalCount",),
    ),
    (
        "list-negative-total-count",
        "ListUserDeliveryTasks",
        lambda a, q: json_response({"RequestId": "R", "TotalCount": -1, "Tasks": []}),
        ("TotalCount",),
    ),
    (
        "list-total-count-a-boolean",
        "ListUserDeliveryTasks",
        lambda a, q: json_response({"RequestId": "R", "TotalCount": True, "Tasks": []}),
        ("TotalCount", "valid integer"),
    ),
    (
        "list-page-size-a-string",
        "ListUserDeliveryTasks",
        lambda a, q: json_response({"RequestId": "R", "TotalCount": 0, "PageSize": "20", "Tasks": []}),
        ("PageSize", "valid integer"),
    ),
    (
        "list-item-without-status",
        "ListUserDeliveryTasks",
        lambda a, q: json_response({"RequestId": "R", "TotalCount": 1, "Tasks": [{"TaskName": "a"}]}),
        ("Tasks.0.Status",),
    ),
    (
        "list-200-with-error-body",
        "ListUserDeliveryTasks",
        lambda a, q: json_response({"RequestId": "R", "Code": "EsaService.NotOpen", "Message": "not opened"}),
        ("HTTP 200 carried an error body", "EsaService.NotOpen"),
    ),
    ("list-truncated-page", "ListUserDeliveryTasks", truncated_listing, ("incomplete", "TotalCount is 250")),
    ("site-list-truncated-page", "ListSiteDeliveryTasks", truncated_listing, ("incomplete", "TotalCount is 250")),
]


@pytest.mark.parametrize(("action", "respond", "needles"), [m[1:] for m in MALFORMED], ids=[m[0] for m in MALFORMED])
def test_malformed_response_names_the_call(action: str, respond: Responder, needles: tuple[str, ...]) -> None:
    with CannedEsa(respond) as server:
        err = call_against(server, action)
    listing = respond is truncated_listing
    code, what = ("IncompleteListing", "listing") if listing else ("MalformedResponse", "response")
    assert err.code == code
    assert err.action == action
    assert not err.retryable
    text = str(err)
    assert text.startswith(f"{action} failed: {code}")
    assert f"{'incomplete' if listing else 'malformed'} {action} {what}" in text
    for needle in needles:
        assert needle in text, text
    assert "\n" not in text
    # A truncated listing is found after pages 2 and 3 were fetched (concurrently); nothing is retried.
    pages = 3 if listing else 1
    assert [call[0] for call in server.calls] == [action] * pages, "a malformed 2xx answer is not retried"


@pytest.mark.parametrize(
    ("respond", "code"),
    [
        (lambda a, q: http_response(200, b'{"RequestId": "R"}', content_length=500), "ConnectionError"),
        (lambda a, q: b"HTTP/1.1 200 OK\r\nContent-Length: nonsense\r\n\r\n{}", "ConnectionError"),
        (lambda a, q: b"this is not HTTP at all\r\n\r\n", "ConnectionError"),
        (lambda a, q: b"", "ConnectionError"),
        (lambda a, q: http_response(502, b"<html>Bad Gateway</html>", reason="Bad Gateway"), "HTTPError"),
    ],
    ids=["body-cut-short", "bad-content-length", "not-http", "hang-up", "html-502"],
)
def test_broken_http_names_the_call(respond: Responder, code: str) -> None:
    with CannedEsa(respond) as server:
        err = call_against(server, "UpdateUserDeliveryTaskStatus")
    assert err.code == code
    assert str(err).startswith(f"UpdateUserDeliveryTaskStatus failed after 2 attempts: {code}")
    assert "\n" not in str(err)
    assert len(server.calls) == 2, "transient failures are retried within the budget"


def test_a_run_against_a_malformed_listing_fails_naming_the_call(bench: Bench) -> None:
    """Through the CLI: the inventory call's malformed answer fails the run (exit 1), changes nothing."""
    schedule = bench.write("schedule.yaml", SCHEDULE)
    with CannedEsa(lambda a, q: json_response({"RequestId": "R", "Tasks": []})) as server:
        bench.point_at_emulator(schedule)
        bench.monkeypatch.setenv("ESA_ENDPOINT", server.url)
        result = bench.cli("run", "--schedule", str(schedule), "--state-dir", str(bench.state), "--json")
    assert "Traceback" not in result.err
    assert result.code == 1, result.err
    summary = json.loads(result.out)
    assert summary["ok"] is False
    assert "ListUserDeliveryTasks failed: MalformedResponse" in summary["error"]
    assert "missing TotalCount" in summary["error"]
    assert {call[0] for call in server.calls} <= {"ListUserDeliveryTasks", "ListSiteDeliveryTasks"}


def test_an_update_answered_with_an_error_body_fails_that_task(bench: Bench) -> None:
    schedule = bench.write("schedule.yaml", SCHEDULE)

    def respond(action: str, query: dict[str, str]) -> bytes:
        if action.startswith("List"):
            site = action == "ListSiteDeliveryTasks"
            tasks = [task_item("site-x")] if site else [task_item("access-a"), task_item("access-b")]
            return json_response({"RequestId": "R", "TotalCount": len(tasks), "Tasks": tasks})
        return json_response({"RequestId": "R", "Code": "Forbidden.RAM", "Message": "denied"})

    with CannedEsa(respond) as server:
        bench.point_at_emulator(schedule)
        bench.monkeypatch.setenv("ESA_ENDPOINT", server.url)
        result = bench.cli(
            "run", "--schedule", str(schedule), "--state-dir", str(bench.state), "--at", "2026-11-28T02:30:00Z"
        )
    assert "Traceback" not in result.err
    assert result.code == 1
    failed = [json.loads(line) for line in result.err.splitlines() if '"task.result"' in line]
    failed = [line for line in failed if line["action"] == "failed"]
    assert {line["task"] for line in failed} == {"access-a", "access-b"}
    for line in failed:
        assert line["error_code"] == "MalformedResponse"
        assert line["error"].startswith("UpdateUserDeliveryTaskStatus failed: MalformedResponse")
        assert "Forbidden.RAM" in line["error"]
