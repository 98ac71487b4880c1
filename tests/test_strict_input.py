"""Strict input wherever events enter (issue 19 section 4): a body that could mean two things, or a
flag that is not a JSON boolean, is refused in one line naming the place, and changes nothing.

Each bad body goes through ``esa-scheduler invoke`` and through FC's entry point ``handler.handler``,
against a running emulator: exit 2 (or ``EventError``), no ESA call of any kind (the emulator's
counters stay at zero), no hold file, every task as seeded. The same bodies with the flag written
as a JSON boolean do act, so each refusal is the strictness and not a broken setup. Files written by
someone else (hold files, the context file, emulator task files) are read as strictly.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from helpers import clean_environment, endpoint_env, fc_context, set_env, write_schedule

import handler as fc_handler
from esa_scheduler import cli
from esa_scheduler.emulator import Emulator, load_tasks
from esa_scheduler.errors import ConfigError, EventError
from esa_scheduler.strict_json import loads_strict

NIGHT = "2026-11-28T02:30:00Z"
"""Inside ``nightly``: a real reconcile at this instant takes access-a offline (two changes in all)."""
SCHEDULE = """\
version: 1
timezone: UTC
default_status: online
safety: {max_changes: 0}
tasks:
  - name: access-a
  - name: access-b
windows:
  - name: nightly
    tasks: ["access-*"]
    status: offline
    cron: "0 2 * * *"
    duration: 1h
"""
"""``max_changes: 0``: only a forced run may change anything, so ``force`` is worth forging."""
SEED: list[dict[str, Any]] = [
    {"TaskName": "access-a", "Status": "online"},
    {"TaskName": "access-b", "Status": "online"},
]
HOLD = '"action": "hold", "tasks": ["access-a"], "reason": "INC-9", "ttl": "1h"'


def envelope(data: str) -> str:
    """A CloudEvent from a runbook carrying a command in ``data`` (JSON text, so keys may repeat)."""
    return f'{{"specversion": "1.0", "id": "evt-1", "source": "runbook", "type": "ops.command", "data": {data}}}'


def timer(payload: dict[str, Any] | str) -> str:
    text = payload if isinstance(payload, str) else json.dumps(payload)
    return json.dumps({"triggerTime": NIGHT, "triggerName": "every-minute", "payload": text})


# (id, body that must be refused, the one line's start, the same body made valid: it must act, and
# how many tasks that one updates, None where a hold acts at the real now and the count depends on it)
REFUSED: list[tuple[str, str, str, str, int | None]] = [
    (
        "release-then-hold",
        f'{{"action": "release", "id": "inc-1", {HOLD}, "action": "hold"}}',
        "event[0]: duplicate key 'action'",
        f'{{"id": "inc-1", {HOLD}, "force": true}}',
        None,
    ),
    (
        "tasks-twice-in-a-batch",
        f'[{{"action": "reconcile", "at": "{NIGHT}", "force": true}}, {{{HOLD}, "tasks": ["access-b"]}}]',
        "event[1]: duplicate key 'tasks'",
        f'[{{"action": "reconcile", "at": "{NIGHT}", "force": true}}, {{{HOLD}}}]',
        2,
    ),
    (
        "ttl-twice-in-cloudevent-data",
        envelope(f'{{{HOLD}, "ttl": "90d"}}'),
        "event[0].data: duplicate key 'ttl'",
        envelope(f'{{{HOLD}, "force": true}}'),
        None,
    ),
    (
        "dry-run-twice-in-timer-payload",
        timer('{"dry_run": true, "dry_run": false}'),
        "timer payload: duplicate key 'dry_run'",
        timer({"dry_run": False, "force": True}),
        2,
    ),
    (
        "force-on",
        f'{{"action": "reconcile", "at": "{NIGHT}", "force": "on"}}',
        'event[0].force: expected true or false (a JSON boolean), got "on"',
        f'{{"action": "reconcile", "at": "{NIGHT}", "force": true}}',
        2,
    ),
    (
        "force-1",
        f'{{"action": "reconcile", "at": "{NIGHT}", "force": 1}}',
        "event[0].force: expected true or false (a JSON boolean), got 1",
        f'{{"action": "reconcile", "at": "{NIGHT}", "force": true}}',
        2,
    ),
    (
        "dry-run-yes",
        f'{{"action": "reconcile", "at": "{NIGHT}", "force": true, "dry_run": "yes"}}',
        'event[0].dry_run: expected true or false (a JSON boolean), got "yes"',
        f'{{"action": "reconcile", "at": "{NIGHT}", "force": true, "dry_run": false}}',
        2,
    ),
    (
        "dry-run-0",
        f'{{"action": "reconcile", "at": "{NIGHT}", "force": true, "dry_run": 0}}',
        "event[0].dry_run: expected true or false (a JSON boolean), got 0",
        f'{{"action": "reconcile", "at": "{NIGHT}", "force": true, "dry_run": false}}',
        2,
    ),
    (
        "hold-force-string",
        f'{{{HOLD}, "force": "true"}}',
        'event[0].force: expected true or false (a JSON boolean), got "true"',
        f'{{{HOLD}, "force": true}}',
        None,
    ),
    (
        "timer-payload-force-1",
        timer({"force": 1}),
        "timer payload: force: expected true or false (a JSON boolean), got 1",
        timer({"force": True}),
        2,
    ),
    (
        "cloudevent-command-force-yes",
        envelope(f'{{"action": "reconcile", "at": "{NIGHT}", "force": "yes"}}'),
        'event[0].data.force: expected true or false (a JSON boolean), got "yes"',
        envelope(f'{{"action": "reconcile", "at": "{NIGHT}", "force": true}}'),
        2,
    ),
    (
        "not-a-number",
        f'{{"action": "reconcile", "at": "{NIGHT}", "force": true, "pad": NaN}}',
        "event: not valid JSON (NaN is not a JSON number)",
        f'{{"action": "reconcile", "at": "{NIGHT}", "force": true}}',
        2,
    ),
]


@dataclass
class Door:
    """A clean environment pointing at a running emulator, and the state folder a run would write."""

    tmp: Path
    emulator: Emulator
    capsys: pytest.CaptureFixture[str]

    @property
    def state(self) -> Path:
        return self.tmp / "state"

    def file(self, name: str, content: str) -> Path:
        path = self.tmp / name
        path.write_text(content, encoding="utf-8")
        return path

    def invoke(self, body: str, *extra: str) -> tuple[int, str, str]:
        self.capsys.readouterr()
        code = cli.main(["invoke", str(self.file("event.json", body)), *extra])
        out, err = self.capsys.readouterr()
        return code, out, err

    def assert_nothing_happened(self) -> None:
        assert self.emulator.stats["total"] == 0, f"ESA was called: {self.emulator.stats['by_action']}"
        assert not self.state.exists() or list(self.state.iterdir()) == [], "something was written"
        assert {key[1]: task.Status for key, task in self.emulator.tasks.items()} == {
            t["TaskName"]: t["Status"] for t in SEED
        }


@pytest.fixture
def door(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Iterator[Door]:
    clean_environment(monkeypatch, tmp_path)
    schedule = write_schedule(tmp_path / "schedule", SCHEDULE)
    with Emulator(tasks=SEED) as emulator:
        set_env(
            monkeypatch,
            {**endpoint_env(emulator.url), "ESA_SCHEDULE": str(schedule), "ESA_STATE_DIR": str(tmp_path / "state")},
        )
        yield Door(tmp_path, emulator, capsys)


def assert_one_line(text: str, start: str) -> None:
    """Exactly one line for the operator, starting with ``start`` (besides JSON log lines, which
    must say the same)."""
    assert "Traceback" not in text
    lines = [line for line in text.splitlines() if line.strip()]
    told = [line for line in lines if not line.startswith("{")]
    assert len(told) == 1 and told[0].startswith(start), text
    rejected = [json.loads(line) for line in lines if line.startswith('{"') and '"run.rejected"' in line]
    assert all(line["error"] == told[0] for line in rejected), rejected


CASES = [case[1:4] for case in REFUSED]
IDS = [case[0] for case in REFUSED]


@pytest.mark.parametrize(("body", "problem", "valid"), CASES, ids=IDS)
def test_invoke_refuses_it_and_changes_nothing(door: Door, body: str, problem: str, valid: str) -> None:
    code, out, err = door.invoke(body)
    assert (code, out) == (2, "")
    assert_one_line(err, f"{problem}")
    door.assert_nothing_happened()


@pytest.mark.parametrize(("body", "problem", "valid"), CASES, ids=IDS)
def test_the_fc_handler_refuses_it_and_changes_nothing(door: Door, body: str, problem: str, valid: str) -> None:
    door.capsys.readouterr()
    with pytest.raises(EventError) as caught:
        fc_handler.handler(body.encode(), fc_context("fc-req-strict"))
    assert str(caught.value) == problem or str(caught.value).startswith(problem), str(caught.value)
    logged = [json.loads(line) for line in door.capsys.readouterr().out.splitlines() if line.strip()]
    assert [(line["event"], line["error"]) for line in logged] == [("run.rejected", str(caught.value))]
    door.assert_nothing_happened()


@pytest.mark.parametrize(("valid", "updates"), [case[3:] for case in REFUSED], ids=IDS)
def test_the_same_body_written_strictly_acts(door: Door, valid: str, updates: int | None) -> None:
    """The control: with JSON booleans and each key once, the body is understood and ESA is called."""
    result = fc_handler.handler(valid.encode(), fc_context("fc-req-strict-ok"))
    assert door.emulator.stats["total"] > 0
    if updates is not None:
        assert result["counts"]["updated"] == updates, "forced past max_changes: 0"
    if '"tasks": ["access-a"]' in valid:
        assert list(door.state.glob("*.json")), "the hold was written"


def test_a_hold_file_with_an_instant_without_offset_stops_the_run_naming_it(door: Door) -> None:
    """A wall time without an offset used to become a naive instant, and the first comparison with
    the clock raised a TypeError; a number was taken as Unix seconds. Both name the file and field."""
    door.state.mkdir()
    hold = {"id": "h-hand", "tasks": ["access-a"], "status": "offline", "created_at": "2026-11-28T00:00:00Z"}
    for expires, shown in [("2026-11-29T00:00:00", "timezone"), (1795910400, "valid datetime")]:
        written = door.state / "h-hand.json"
        written.write_text(json.dumps({**hold, "expires_at": expires}), encoding="utf-8")
        code, out, err = door.invoke(f'{{"action": "reconcile", "at": "{NIGHT}"}}')
        assert (code, out) == (2, "")
        assert_one_line(err, f"{written}: unreadable hold file: expires_at: ")
        assert shown in err
        assert door.emulator.stats["total"] == 0
        assert written.read_text() == json.dumps({**hold, "expires_at": expires}), "left as it was"


@pytest.mark.parametrize(
    ("context", "problem"),
    [
        ('{"function": {"timeout": true}}', "function.timeout: Input should be a valid number"),
        ('{"function": {"timeout": "300"}}', "function.timeout: Input should be a valid number"),
        ('{"function": {"timeout": NaN}}', "not valid JSON (NaN is not a JSON number)"),
        ('{"function": {"timeout": 0}}', "function.timeout: Input should be greater than 0"),
        ('{"function": {"memory": 512, "timeout": 60, "timeout": 1}}', ".function: duplicate key 'timeout'"),
        ('{"region": "cn-hangzhou", "credentials": {"access_key_id": 7}}', "credentials.access_key_id: "),
    ],
    ids=["timeout-true", "timeout-string", "timeout-nan", "timeout-zero", "timeout-twice", "key-id-a-number"],
)
def test_the_context_file_is_read_strictly(door: Door, context: str, problem: str) -> None:
    path = door.file("context.json", context)
    code, out, err = door.invoke(f'{{"action": "reconcile", "at": "{NIGHT}"}}', "--context", str(path))
    assert (code, out) == (2, "")
    assert_one_line(err, f"{path}")
    assert problem in err
    door.assert_nothing_happened()


@pytest.mark.parametrize(
    ("tasks", "problem"),
    [
        ('[{"TaskName": "a", "Status": "online", "SiteId": "1001"}]', "[0].SiteId: Input should be a valid integer"),
        ('[{"TaskName": "a", "Status": "online", "SiteId": true}]', "[0].SiteId: Input should be a valid integer"),
        ('[{"TaskName": "a", "Status": "online", "Status": "offline"}]', "[0]: duplicate key 'Status'"),
        ('[{"TaskName": "a", "Status": "online", "SiteId": 1001.0}]', "[0].SiteId: Input should be a valid integer"),
    ],
    ids=["site-id-string", "site-id-true", "status-twice", "site-id-float"],
)
def test_an_emulator_tasks_file_is_read_strictly(tmp_path: Path, tasks: str, problem: str) -> None:
    path = tmp_path / "tasks.json"
    path.write_text(tasks, encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_tasks(path)
    assert str(caught.value).startswith(str(path)) and problem in str(caught.value), str(caught.value)
    path.write_text('[{"TaskName": "a", "Status": "online", "SiteId": 1001}]', encoding="utf-8")
    assert [task.SiteId for task in load_tasks(path)] == [1001]


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        (b'{"a": {"b": [{"c": 1, "c": 2}]}}', "doc.a.b[0]: duplicate key 'c'"),
        (b'{"odd key": {"x": 1, "x": 1}}', "doc['odd key']: duplicate key 'x'"),
        (b'{"k": "\\udc00"}', "doc.k: lone surrogate \\udc00 is not text"),
        (b'{"k": Infinity}', "doc: not valid JSON (Infinity is not a JSON number)"),
        (b"[" * 33 + b"]" * 33, "doc: JSON nested deeper than 32 levels"),
        (b"[" * 32 + b"1" + b"]" * 32, "doc: JSON nested deeper than 32 levels"),
        (b"\xef\xbb\xbf{}", "doc: not valid JSON (Unexpected UTF-8 BOM"),
        (b"  ", "doc: the body is empty (expected JSON)"),
        (b'"' + b"x" * (256 * 1024) + b'"', "doc: 262146 bytes is larger than the 262144-byte limit"),
    ],
    ids=[
        "nested-duplicate",
        "quoted-key-path",
        "lone-surrogate",
        "infinity",
        "too-deep",
        "a-number-too-deep",
        "bom",
        "empty",
        "too-large",
    ],
)
def test_loads_strict_names_the_place(raw: bytes, problem: str) -> None:
    with pytest.raises(EventError) as caught:
        loads_strict(raw, "doc")
    assert str(caught.value).startswith(problem), str(caught.value)


def test_loads_strict_keeps_what_json_allows() -> None:
    """Equal values under different keys, the same key in sibling objects, 32 levels, escapes."""
    text = '{"a": {"k": 1}, "b": {"k": 1}, "c": "\\u00e9\\ud83d\\ude00", "d": [1.5e3, null, true]}'
    assert loads_strict(text, "doc") == {"a": {"k": 1}, "b": {"k": 1}, "c": "é😀", "d": [1500.0, None, True]}
    assert loads_strict("[" * 31 + "1" + "]" * 31, "doc") is not None
    assert loads_strict("[" * 32 + "]" * 32, "doc") is not None


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ("safety: {max_change_ratio: yes}", "safety.max_change_ratio: Input should be a valid number (got true)"),
        ("safety: {max_changes: on}", "safety.max_changes: Input should be a valid integer (got true)"),
        ('safety: {max_changes: "5"}', "safety.max_changes: Input should be a valid integer (got '5')"),
    ],
    ids=["ratio-yes", "max-changes-on", "max-changes-string"],
)
def test_a_safety_limit_is_a_number_not_a_yaml_boolean(door: Door, line: str, problem: str) -> None:
    """YAML 1.1 reads ``yes`` and ``on`` as true; taken as 1 or 1.0 it would quietly lift the limit."""
    schedule = door.tmp / "schedule" / "ops.yaml"
    schedule.write_text(SCHEDULE.replace("safety: {max_changes: 0}", line), encoding="utf-8")
    code, out, err = door.invoke(f'{{"action": "reconcile", "at": "{NIGHT}"}}')
    assert (code, out) == (2, "")
    assert_one_line(err, f"{schedule}: {problem}")
    door.assert_nothing_happened()
