"""The FC function end to end: ``handler.handler`` / ``execute`` over real HTTP against the emulator.

Real YAML schedules and hold files live in ``tmp_path``; logs are captured (``stream=`` or capsys)
and parsed as JSON lines; the emulator's counters say exactly which ESA calls were made.

Holds are stamped with the real clock (``created_at`` = now), while the planner evaluates them at the
event's instant, so every test that involves a hold evaluates at or after the real now.
"""

from __future__ import annotations

import hashlib
import importlib.util
import io
import json
import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Any

import pytest
from helpers import clean_environment, endpoint_env, fc_context, parse_lines, set_env, updates

from esa_scheduler.edge.credentials import Credentials
from esa_scheduler.emulator import EMULATOR_ACCESS_KEY_ID, EMULATOR_ACCESS_KEY_SECRET, Emulator, Faults
from esa_scheduler.engine.schedule.load import load_schedule
from esa_scheduler.errors import ConfigError, EventError, ScheduleError, UserError
from esa_scheduler.invocation.events.reader import EventReader
from esa_scheduler.invocation.function import RunFailed, Target, execute, handle
from esa_scheduler.invocation.reconciler import ACTIONS, RunSummary
from esa_scheduler.timeutil import now_utc, parse_instant, utc_iso

REPO = Path(__file__).resolve().parents[1]
CREDS = Credentials(EMULATOR_ACCESS_KEY_ID, EMULATOR_ACCESS_KEY_SECRET)

NIGHT = "2026-11-28T02:30:00Z"
"""Inside the ``nightly`` window (02:00-03:00 UTC) of ``SCHEDULE``."""
DAY = "2026-11-28T12:00:00Z"
"""Outside every window of ``SCHEDULE``."""

SCHEDULE = """\
version: 1
timezone: UTC
default_status: online
tasks:
  - name: access-a
  - name: access-b
  - name: access-c
  - name: site-x
    site_id: 1001
windows:
  - name: nightly
    tasks: ["access-*"]
    status: offline
    cron: "0 2 * * *"
    duration: 1h
"""

SEED: list[dict[str, Any]] = [
    {"TaskName": "access-a", "Status": "online"},
    {"TaskName": "access-b", "Status": "offline"},
    {"TaskName": "access-c", "Status": "online"},
    {"TaskName": "unmanaged", "Status": "online"},
    {"TaskName": "site-x", "Status": "online", "SiteId": 1001},
    {"TaskName": "site-other", "Status": "offline", "SiteId": 1001},
]
"""Three managed account tasks, one managed site task, and two tasks the schedule does not manage."""

HOLD_SCHEDULE = """\
version: 1
timezone: UTC
default_status: online
tasks:
  - name: access-a
  - name: access-b
  - name: other-1
incidents:
  - name: origin-errors
    match: {type: "cms:CloudMonitor:*", data: {alertName: "origin-5xx*", alertState: ALERT}}
    tasks: ["access-*"]
    status: offline
    ttl: 2h
    release_on: {data: {alertState: OK}}
"""
"""No windows: the schedule says ``online`` at every real instant, so only holds take tasks offline."""

HOLD_SEED: list[dict[str, Any]] = [
    {"TaskName": "access-a", "Status": "online"},
    {"TaskName": "access-b", "Status": "online"},
    {"TaskName": "other-1", "Status": "online"},
]

ALARM = {
    "specversion": "1.0",
    "id": "evt-alarm-1",
    "source": "acs.cms",
    "type": "cms:CloudMonitor:AlarmStateChanged",
    "data": {"alertName": "origin-5xx-rate", "alertState": "ALERT"},
}
ALARM_OK = {**ALARM, "id": "evt-alarm-2", "data": {"alertName": "origin-5xx-rate", "alertState": "OK"}}

LINE_KEYS = ("ts", "level", "event", "run_id")
SUMMARY_KEYS = ("at", "dry_run", "mode", "counts", "api_calls", "duration_ms", "next_change")
TASK_KEYS = (
    "task",
    "site_id",
    "previous",
    "desired",
    "action",
    "source",
    "request_id",
    "attempts",
    "error_code",
    "error",
)


def _load_handler_module() -> ModuleType:
    """``handler.py`` sits at the repo root (FC's code root), outside the installed package."""
    spec = importlib.util.spec_from_file_location("fc_handler_under_test", REPO / "handler.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


fc_handler = _load_handler_module()


# --- helpers ------------------------------------------------------------------------------------


def events_named(lines: Sequence[dict[str, Any]], event: str) -> list[dict[str, Any]]:
    return [line for line in lines if line.get("event") == event]


def results_by_task(lines: Sequence[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for line in events_named(lines, "task.result"):
        assert line["task"] not in found, f"two task.result lines for {line['task']}"
        found[line["task"]] = line
    return found


def list_calls(emulator: Emulator) -> int:
    by_action = emulator.stats["by_action"]
    return int(by_action.get("ListUserDeliveryTasks", 0) + by_action.get("ListSiteDeliveryTasks", 0))


def timer(at: str, payload: str = "", name: str = "t") -> bytes:
    return json.dumps({"triggerTime": at, "triggerName": name, "payload": payload}).encode()


def soon(minutes: float) -> str:
    """An instant relative to the real clock (holds are stamped with it)."""
    return utc_iso(now_utc() + timedelta(minutes=minutes))


def assert_line_shape(lines: Sequence[dict[str, Any]], fc_request_id: str | None = None) -> None:
    assert lines, "no log lines"
    run_ids = set()
    for line in lines:
        for key in LINE_KEYS:
            assert key in line, f"log line without {key!r}: {line}"
        assert line["ts"].endswith("Z"), line
        parse_instant(line["ts"])
        assert line["level"] in ("DEBUG", "INFO", "WARNING", "ERROR"), line
        run_ids.add(line["run_id"])
        if fc_request_id is not None:
            assert line.get("fc_request_id") == fc_request_id, line
    assert len(run_ids) == 1, f"one run, one run_id: {run_ids}"


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    return clean_environment(monkeypatch, tmp_path)


@dataclass
class Rig:
    """One emulator, one schedule file, one hold folder; runs go through ``execute`` or the handler."""

    emulator: Emulator
    schedule: Path
    state: Path
    monkeypatch: pytest.MonkeyPatch
    capsys: pytest.CaptureFixture[str]
    raw: list[str] = field(default_factory=list)
    """Everything the runs wrote (stdout and stderr), unparsed."""

    def execute(
        self,
        body: Any,
        *,
        context: Any = None,
        budget_s: float | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> tuple[RunSummary, list[dict[str, Any]]]:
        """``execute`` with the emulator as target; returns the summary and the parsed log lines."""
        stream = io.StringIO()
        summary = execute(
            body,
            context,
            target=Target(self.emulator.url, CREDS),
            schedule_path=str(self.schedule),
            state=str(self.state),
            budget_s=budget_s,
            stream=stream,
            environ={"ESA_MAX_RPS": "0", **(environ or {})},
        )
        self.raw.append(stream.getvalue())
        return summary, parse_lines(stream.getvalue())

    def use_env(self, **extra: str) -> None:
        """Configure the process environment as the FC template would, pointing at the emulator."""
        values = {
            **endpoint_env(self.emulator.url),
            "ESA_SCHEDULE": str(self.schedule),
            "ESA_STATE_DIR": str(self.state),
            **extra,
        }
        set_env(self.monkeypatch, values)

    def handler(self, body: bytes, context: Any = None, **env: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """``handler.handler`` as FC calls it (``env`` overrides the template's settings); logs from stdout."""
        self.use_env(**env)
        self.capsys.readouterr()
        result = fc_handler.handler(body, context if context is not None else fc_context())
        assert isinstance(result, dict)
        return result, parse_lines(self._output())

    def handler_failing(self, body: bytes, context: Any = None, **env: str) -> tuple[RunFailed, list[dict[str, Any]]]:
        """``handler.handler`` that must raise ``RunFailed`` after logging."""
        self.use_env(**env)
        self.capsys.readouterr()
        with pytest.raises(RunFailed) as caught:
            fc_handler.handler(body, context if context is not None else fc_context())
        return caught.value, parse_lines(self._output())

    def _output(self) -> str:
        captured = self.capsys.readouterr()
        self.raw += [captured.out, captured.err]
        return captured.out

    def holds(self) -> list[str]:
        return sorted(p.name for p in self.state.glob("*.json")) if self.state.is_dir() else []


RigFactory = Callable[..., Rig]


@pytest.fixture
def make_rig(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Iterator[RigFactory]:
    """Start an emulator with ``tasks`` and write ``schedule`` to a YAML file; stopped after the test."""
    started: list[Emulator] = []

    def factory(
        schedule: str = SCHEDULE,
        tasks: Sequence[Mapping[str, Any]] = SEED,
        faults: Faults | None = None,
        **emulator_kwargs: Any,
    ) -> Rig:
        path = clean_env / f"schedule-{len(started)}.yaml"
        path.write_text(schedule, encoding="utf-8")
        emulator = Emulator(tasks=tasks, faults=faults, **emulator_kwargs).start()
        started.append(emulator)
        return Rig(emulator, path, clean_env / "state", monkeypatch, capsys)

    yield factory
    for emulator in started:
        emulator.stop()


# --- timer runs ---------------------------------------------------------------------------------


def test_timer_run_applies_only_the_differences(make_rig: RigFactory) -> None:
    rig = make_rig()
    context = fc_context(request_id="fc-req-timer-1")
    result, lines = rig.handler(timer(NIGHT), context)

    # access-a and access-c go offline; access-b already is; site-x stays online; unmanaged untouched.
    assert updates(rig.emulator) == 2
    assert rig.emulator.stats["by_action_outcome"]["UpdateUserDeliveryTaskStatus"] == {"ok": 2}
    assert "UpdateSiteDeliveryTaskStatus" not in rig.emulator.stats["by_action"]
    assert rig.emulator.status("access-a") == "offline"
    assert rig.emulator.status("access-b") == "offline"
    assert rig.emulator.status("access-c") == "offline"
    assert rig.emulator.status("site-x", 1001) == "online"
    assert rig.emulator.status("unmanaged") == "online"
    assert rig.emulator.status("site-other", 1001) == "offline"

    assert result["counts"] == {**dict.fromkeys(ACTIONS, 0), "updated": 2, "unchanged": 2}
    assert result["ok"] is True
    assert result["at"] == NIGHT
    assert result["dry_run"] is False
    assert result["mode"] == "enforce"
    assert result["next_change"] == "2026-11-28T03:00:00Z"
    # API calls = list pages (one user page, one page for site 1001) + changed tasks, nothing more.
    assert list_calls(rig.emulator) == 2
    assert result["api_calls"] == 2 + 2 == rig.emulator.stats["total"]
    json.dumps(result)  # the handler's return value is JSON-serialisable

    assert_line_shape(lines, fc_request_id="fc-req-timer-1")
    results = results_by_task(lines)
    assert set(results) == {"access-a", "access-b", "access-c", "site-x"}
    for line in results.values():
        for key in TASK_KEYS:
            assert key in line, f"task.result without {key!r}: {line}"
    a = results["access-a"]
    assert (a["previous"], a["desired"], a["action"], a["source"]) == ("online", "offline", "updated", "window:nightly")
    assert a["site_id"] is None and a["attempts"] == 1 and a["error_code"] is None and a["error"] is None
    assert isinstance(a["request_id"], str) and a["request_id"]
    b = results["access-b"]
    assert (b["previous"], b["desired"], b["action"]) == ("offline", "offline", "unchanged")
    x = results["site-x"]
    assert (x["site_id"], x["previous"], x["desired"], x["action"], x["source"]) == (
        1001,
        "online",
        "online",
        "unchanged",
        "default",
    )

    summary = lines[-1]
    assert summary["event"] == "run.summary"
    assert len(events_named(lines, "run.summary")) == 1
    for key in SUMMARY_KEYS:
        assert key in summary, f"run.summary without {key!r}"
    assert summary["counts"] == result["counts"]
    assert summary["api_calls"] == result["api_calls"]
    assert summary["next_change"] == result["next_change"]
    assert isinstance(summary["duration_ms"], int) and summary["duration_ms"] >= 0


def test_second_run_makes_zero_update_calls(make_rig: RigFactory) -> None:
    rig = make_rig()
    rig.handler(timer(NIGHT))
    assert updates(rig.emulator) == 2
    rig.emulator.reset_stats()

    result, lines = rig.handler(timer("2026-11-28T02:31:00Z"))
    assert updates(rig.emulator) == 0
    assert result["counts"]["unchanged"] == 4
    assert result["counts"]["updated"] == 0
    assert result["api_calls"] == 2 == list_calls(rig.emulator)
    assert {r["action"] for r in results_by_task(lines).values()} == {"unchanged"}


def test_api_calls_are_list_pages_plus_changes_over_several_pages(make_rig: RigFactory) -> None:
    schedule = """\
version: 1
timezone: UTC
tasks:
  - pattern: "bulk-*"
windows:
  - name: nightly
    tasks: ["bulk-*"]
    cron: "0 2 * * *"
    duration: 1h
"""
    seed = [{"TaskName": f"bulk-{i:03d}", "Status": "online" if i < 5 else "offline"} for i in range(150)]
    rig = make_rig(schedule, seed)
    summary, lines = rig.execute(timer(NIGHT))
    assert summary.counts["updated"] == 5
    assert summary.counts["unchanged"] == 145
    assert list_calls(rig.emulator) == 2  # 150 tasks at 100 per page
    assert updates(rig.emulator) == 5
    assert summary.api_calls == 2 + 5 == rig.emulator.stats["total"]
    assert len(events_named(lines, "task.result")) == 150


def test_updates_run_concurrently(make_rig: RigFactory) -> None:
    """Sixteen changes at 150 ms each: sequential would take 2.5 s; concurrent is a few round trips."""
    seed = [{"TaskName": f"c-{i:02d}", "Status": "online"} for i in range(16)]
    schedule = "version: 1\ntimezone: UTC\ndefault_status: offline\ntasks:\n  - pattern: 'c-*'\n"
    rig = make_rig(schedule, seed, faults=Faults(latency_ms=150))
    summary, _ = rig.execute(timer(DAY))
    assert summary.counts["updated"] == 16
    assert summary.duration_ms < 1500, summary.duration_ms


def test_timer_payload_options(make_rig: RigFactory) -> None:
    rig = make_rig()
    result, lines = rig.handler(timer(NIGHT, payload='{"dry_run": true}', name="every-minute"))
    assert result["dry_run"] is True
    assert result["counts"]["would_update"] == 2
    assert updates(rig.emulator) == 0
    assert events_named(lines, "run.start")[0]["sources"] == ["timer:every-minute"]


def test_handler_never_falls_back_to_the_emulator(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """No endpoint, no credentials anywhere: the handler refuses (the CLI's fallback is not FC's)."""
    schedule = clean_env / "s.yaml"
    schedule.write_text(SCHEDULE, encoding="utf-8")
    monkeypatch.setenv("ESA_SCHEDULE", str(schedule))
    monkeypatch.setenv("ESA_STATE_DIR", str(clean_env / "state"))
    with pytest.raises(ConfigError) as caught:
        fc_handler.handler(timer(NIGHT), fc_context())
    assert "emulator" not in str(caught.value).lower()
    lines = parse_lines(capsys.readouterr().out)
    assert [line["event"] for line in lines] == ["run.rejected"]


def test_logger_does_not_propagate_to_the_root_logger(make_rig: RigFactory, caplog: pytest.LogCaptureFixture) -> None:
    rig = make_rig()
    with caplog.at_level(logging.DEBUG):
        rig.handler(timer(NIGHT))
    ours = [r for r in caplog.records if r.name.startswith("esa_scheduler")]
    assert ours == [], "records reached FC's root logger"


# --- holds --------------------------------------------------------------------------------------


def test_hold_offlines_at_once_and_survives_the_next_tick(make_rig: RigFactory) -> None:
    rig = make_rig(HOLD_SCHEDULE, HOLD_SEED)
    hold = {"action": "hold", "tasks": ["access-a"], "status": "offline", "reason": "INC-1", "ttl": "2h"}
    result, lines = rig.handler(json.dumps(hold).encode())

    assert rig.emulator.status("access-a") == "offline"
    assert rig.emulator.status("access-b") == "online"
    assert updates(rig.emulator) == 1
    assert result["counts"]["updated"] == 1
    created = events_named(lines, "hold.created")
    assert len(created) == 1
    hold_id = created[0]["id"]
    assert created[0]["reason"] == "INC-1" and created[0]["tasks"] == ["access-a"]
    assert results_by_task(lines)["access-a"]["source"] == f"hold:{hold_id}"

    stored = json.loads((rig.state / f"{hold_id}.json").read_text())
    assert set(stored) == {"id", "tasks", "status", "reason", "by", "created_at", "expires_at"}
    assert stored["status"] == "offline"
    assert parse_instant(stored["expires_at"]) - parse_instant(stored["created_at"]) == timedelta(hours=2)
    assert rig.holds() == [f"{hold_id}.json"]  # no temporary files left behind

    # The next tick: the schedule says online, the hold keeps the task offline.
    rig.emulator.reset_stats()
    result, lines = rig.handler(timer(soon(1)))
    assert updates(rig.emulator) == 0
    assert rig.emulator.status("access-a") == "offline"
    line = results_by_task(lines)["access-a"]
    assert (line["desired"], line["action"], line["source"]) == ("offline", "unchanged", f"hold:{hold_id}")
    assert result["next_change"] is not None
    # A manual change while held is reverted by the next tick (enforce mode).
    rig.emulator.set_status("access-a", "online")
    result, lines = rig.handler(timer(soon(2)))
    assert rig.emulator.status("access-a") == "offline"
    assert results_by_task(lines)["access-a"]["action"] == "updated"


def test_release_by_id_returns_the_task_to_its_schedule(make_rig: RigFactory) -> None:
    rig = make_rig(HOLD_SCHEDULE, HOLD_SEED)
    hold = {"action": "hold", "id": "inc-1", "tasks": ["access-*"], "reason": "INC-1", "ttl": "2h", "by": "oncall"}
    rig.handler(json.dumps(hold).encode())
    assert rig.emulator.status("access-a") == rig.emulator.status("access-b") == "offline"
    assert rig.holds() == ["inc-1.json"]

    result, lines = rig.handler(b'{"action": "release", "id": "inc-1"}')
    assert rig.holds() == []
    released = events_named(lines, "hold.released")
    assert [(r["hold_id"], r["tasks"]) for r in released] == [("inc-1", ["access-*"])]
    assert rig.emulator.status("access-a") == rig.emulator.status("access-b") == "online"
    assert result["counts"]["updated"] == 2

    rig.emulator.reset_stats()
    result, lines = rig.handler(timer(soon(1)))
    assert updates(rig.emulator) == 0
    assert {r["source"] for r in results_by_task(lines).values()} == {"default"}
    assert rig.emulator.status("access-a") == "online"


def test_release_by_tasks_removes_every_hold_that_applies(make_rig: RigFactory) -> None:
    rig = make_rig(HOLD_SCHEDULE, HOLD_SEED)
    rig.handler(
        json.dumps({"action": "hold", "id": "h-glob", "tasks": ["access-*"], "reason": "a", "ttl": "1h"}).encode()
    )
    rig.handler(
        json.dumps({"action": "hold", "id": "h-exact", "tasks": ["access-b"], "reason": "b", "ttl": "1h"}).encode()
    )
    rig.handler(
        json.dumps({"action": "hold", "id": "h-other", "tasks": ["other-1"], "reason": "c", "ttl": "1h"}).encode()
    )
    assert rig.holds() == ["h-exact.json", "h-glob.json", "h-other.json"]
    assert rig.emulator.status("other-1") == "offline"

    _, lines = rig.handler(b'{"action": "release", "tasks": ["access-b"]}')
    assert rig.holds() == ["h-other.json"]
    assert sorted(r["hold_id"] for r in events_named(lines, "hold.released")) == ["h-exact", "h-glob"]
    assert rig.emulator.status("access-a") == rig.emulator.status("access-b") == "online"
    assert rig.emulator.status("other-1") == "offline"

    rig.emulator.reset_stats()
    _, lines = rig.handler(timer(soon(1)))
    assert updates(rig.emulator) == 0
    results = results_by_task(lines)
    assert results["access-a"]["source"] == results["access-b"]["source"] == "default"
    assert results["other-1"]["source"] == "hold:h-other"


def test_task_returns_to_schedule_after_the_hold_expires(make_rig: RigFactory) -> None:
    """``until`` 30 s ahead of the real clock; the next tick is 5 minutes ahead: expired there."""
    rig = make_rig(HOLD_SCHEDULE, HOLD_SEED)
    until = utc_iso(now_utc() + timedelta(seconds=30))
    hold = {"action": "hold", "id": "short", "tasks": ["access-a"], "reason": "blip", "until": until}
    result, lines = rig.handler(json.dumps(hold).encode())
    assert rig.emulator.status("access-a") == "offline"
    assert result["next_change"] == until

    result, lines = rig.handler(timer(soon(5)))
    line = results_by_task(lines)["access-a"]
    assert (line["desired"], line["action"], line["source"]) == ("online", "updated", "default")
    assert rig.emulator.status("access-a") == "online"


def test_expired_hold_files_are_ignored_and_pruned(make_rig: RigFactory) -> None:
    rig = make_rig(HOLD_SCHEDULE, [{**t, "Status": "offline"} for t in HOLD_SEED])
    rig.state.mkdir()
    old = {
        "id": "old",
        "tasks": ["access-a"],
        "status": "offline",
        "reason": "long gone",
        "by": "",
        "created_at": "2026-01-01T00:00:00Z",
        "expires_at": "2026-01-01T02:00:00Z",
    }
    (rig.state / "old.json").write_text(json.dumps(old))
    result, lines = rig.handler(timer(soon(1)))
    assert rig.holds() == []
    assert results_by_task(lines)["access-a"]["source"] == "default"
    assert rig.emulator.status("access-a") == "online"
    assert result["counts"]["updated"] == 3


def test_newest_hold_wins(make_rig: RigFactory) -> None:
    rig = make_rig(HOLD_SCHEDULE, HOLD_SEED)
    rig.handler(json.dumps({"action": "hold", "id": "h1", "tasks": ["access-*"], "reason": "x", "ttl": "1h"}).encode())
    assert rig.emulator.status("access-a") == "offline"
    newer = {"action": "hold", "id": "h2", "tasks": ["access-a"], "status": "online", "reason": "y", "ttl": "1h"}
    _, lines = rig.handler(json.dumps(newer).encode())
    results = results_by_task(lines)
    assert (results["access-a"]["desired"], results["access-a"]["source"]) == ("online", "hold:h2")
    assert (results["access-b"]["desired"], results["access-b"]["source"]) == ("offline", "hold:h1")
    assert rig.emulator.status("access-a") == "online"


def test_release_of_an_unknown_hold_is_a_warning(make_rig: RigFactory) -> None:
    rig = make_rig(HOLD_SCHEDULE, HOLD_SEED)
    summary, lines = rig.execute({"action": "release", "id": "never-made"})
    warnings = events_named(lines, "hold.release_missing")
    assert [(w["level"], w["hold_id"]) for w in warnings] == [("WARNING", "never-made")]
    assert not summary.failed


def test_dry_run_hold_writes_no_file_and_calls_no_update(make_rig: RigFactory) -> None:
    rig = make_rig(HOLD_SCHEDULE, HOLD_SEED)
    hold = {"action": "hold", "tasks": ["access-a"], "reason": "try", "ttl": "1h", "dry_run": True}
    summary, lines = rig.execute(hold)
    assert rig.holds() == []
    assert updates(rig.emulator) == 0
    assert summary.counts["would_update"] == 1
    assert events_named(lines, "hold.created")[0]["dry_run"] is True


# --- CloudEvents and incident rules -------------------------------------------------------------


def test_incident_cloudevent_creates_a_hold_and_release_on_ends_it(make_rig: RigFactory) -> None:
    rig = make_rig(HOLD_SCHEDULE, HOLD_SEED)
    result, lines = rig.handler(json.dumps(ALARM).encode())
    assert rig.holds() == ["inc-origin-errors.json"]
    stored = json.loads((rig.state / "inc-origin-errors.json").read_text())
    assert stored["by"] == "acs.cms" and stored["tasks"] == ["access-*"]
    assert parse_instant(stored["expires_at"]) - parse_instant(stored["created_at"]) == timedelta(hours=2)
    assert rig.emulator.status("access-a") == rig.emulator.status("access-b") == "offline"
    assert rig.emulator.status("other-1") == "online"
    assert result["counts"]["updated"] == 2
    assert events_named(lines, "run.start")[0]["sources"] == ["incident:inc-origin-errors"]

    # The same alarm again refreshes the one hold instead of stacking copies.
    rig.emulator.reset_stats()
    rig.handler(json.dumps({**ALARM, "id": "evt-alarm-1b"}).encode())
    assert rig.holds() == ["inc-origin-errors.json"]
    assert updates(rig.emulator) == 0

    result, lines = rig.handler(json.dumps(ALARM_OK).encode())
    assert rig.holds() == []
    assert [r["hold_id"] for r in events_named(lines, "hold.released")] == ["inc-origin-errors"]
    assert rig.emulator.status("access-a") == rig.emulator.status("access-b") == "online"


def test_cloudevent_carrying_a_command(make_rig: RigFactory) -> None:
    rig = make_rig(HOLD_SCHEDULE, HOLD_SEED)
    envelope = {
        "specversion": "1.0",
        "id": "cmd-1",
        "source": "ops.runbook",
        "type": "esa-scheduler.command",
        "data": {"action": "hold", "id": "chg-1", "tasks": ["other-1"], "reason": "CHG-1", "ttl": "30m"},
    }
    rig.handler(json.dumps(envelope).encode())
    assert rig.holds() == ["chg-1.json"]
    assert rig.emulator.status("other-1") == "offline"


def test_cloudevent_batch_is_all_or_nothing(make_rig: RigFactory) -> None:
    rig = make_rig(HOLD_SCHEDULE, HOLD_SEED)
    rig.use_env()
    unknown = {"specversion": "1.0", "id": "x-1", "source": "acs.ecs", "type": "ecs:Instance:Stopped", "data": {}}
    with pytest.raises(EventError) as caught:
        handle(json.dumps([ALARM, unknown]).encode(), fc_context())
    assert isinstance(caught.value, UserError)
    assert "event[1]" in str(caught.value) and "ecs:Instance:Stopped" in str(caught.value)
    assert rig.emulator.stats["total"] == 0
    assert rig.holds() == []

    malformed = {"specversion": "1.0", "source": "acs.cms", "type": "cms:CloudMonitor:X", "data": {}}
    with pytest.raises(EventError, match=r"event\[1\]\.id"):
        handle(json.dumps([ALARM, malformed]).encode(), fc_context())
    assert rig.emulator.stats["total"] == 0
    assert rig.holds() == []


def test_valid_cloudevent_batch_applies_every_element(make_rig: RigFactory) -> None:
    rig = make_rig(HOLD_SCHEDULE, HOLD_SEED)
    command = {
        "specversion": "1.0",
        "id": "cmd-2",
        "source": "ops",
        "type": "esa-scheduler.command",
        "data": {"action": "hold", "id": "chg-2", "tasks": ["other-1"], "reason": "CHG-2", "ttl": "30m"},
    }
    rig.handler(json.dumps([ALARM, command]).encode())
    assert rig.holds() == ["chg-2.json", "inc-origin-errors.json"]
    assert {rig.emulator.status(n) for n in ("access-a", "access-b", "other-1")} == {"offline"}
    assert updates(rig.emulator) == 3


# --- modes --------------------------------------------------------------------------------------

TRANSITIONS = """\
version: 1
timezone: UTC
mode: {mode}
tick: 1m
tasks:
  - name: tr-a
  - name: tr-b
windows:
  - name: nightly
    tasks: [tr-a]
    cron: "0 2 * * *"
    duration: 1h
"""
TRANSITIONS_SEED = [{"TaskName": "tr-a", "Status": "online"}, {"TaskName": "tr-b", "Status": "online"}]


def test_transitions_mode_leaves_a_manual_change_until_the_next_edge(make_rig: RigFactory) -> None:
    rig = make_rig(TRANSITIONS.format(mode="transitions"), TRANSITIONS_SEED)
    summary, _ = rig.execute(timer("2026-11-28T01:50:00Z"))
    assert summary.mode == "transitions"
    assert summary.counts["unchanged"] == 2

    rig.emulator.set_status("tr-a", "offline")  # an operator, in the console
    rig.emulator.reset_stats()
    summary, lines = rig.execute(timer("2026-11-28T01:51:00Z"))
    line = results_by_task(lines)["tr-a"]
    assert (line["previous"], line["desired"], line["action"]) == ("offline", "online", "skipped")
    assert "transitions" in line["error"]
    assert updates(rig.emulator) == 0
    assert rig.emulator.status("tr-a") == "offline"
    assert not summary.failed

    # 02:00 is an edge to offline: it agrees with the manual change.
    summary, lines = rig.execute(timer("2026-11-28T02:00:00Z"))
    assert results_by_task(lines)["tr-a"]["action"] == "unchanged"
    # 03:00 is the edge back to online: the task follows the schedule again.
    summary, lines = rig.execute(timer("2026-11-28T03:00:00Z"))
    assert results_by_task(lines)["tr-a"]["action"] == "updated"
    assert rig.emulator.status("tr-a") == "online"
    assert updates(rig.emulator) == 1

    # A manual change during the window survives the ticks inside it.
    rig.execute(timer("2026-11-29T02:00:00Z"))
    assert rig.emulator.status("tr-a") == "offline"
    rig.emulator.set_status("tr-a", "online")
    _, lines = rig.execute(timer("2026-11-29T02:10:00Z"))
    assert results_by_task(lines)["tr-a"]["action"] == "skipped"
    assert rig.emulator.status("tr-a") == "online"


def test_transitions_mode_survives_a_missed_tick(make_rig: RigFactory) -> None:
    rig = make_rig(TRANSITIONS.format(mode="transitions"), TRANSITIONS_SEED)
    rig.execute(timer("2026-11-28T01:58:00Z"))
    # 01:59, 02:00 and 02:01 never ran (an FC outage): the 02:00 edge must not be lost
    summary, lines = rig.execute(timer("2026-11-28T02:02:00Z"))
    line = results_by_task(lines)["tr-a"]
    assert (line["previous"], line["desired"], line["action"]) == ("online", "offline", "updated")
    assert rig.emulator.status("tr-a") == "offline" and not summary.failed
    # the record moved on: the next tick finds no edge and leaves a manual change alone
    rig.emulator.set_status("tr-a", "online")
    _, lines = rig.execute(timer("2026-11-28T02:03:00Z"))
    assert results_by_task(lines)["tr-a"]["action"] == "skipped"


def test_transitions_mode_acts_on_a_window_that_opened_and_closed_while_runs_were_missed(
    make_rig: RigFactory,
) -> None:
    rig = make_rig(TRANSITIONS.format(mode="transitions"), TRANSITIONS_SEED)
    rig.execute(timer("2026-11-28T01:58:00Z"))
    rig.emulator.set_status("tr-a", "offline")  # by hand, before the window
    # nothing ran from 01:59 to 03:04: the window opened at 02:00 and closed at 03:00, both edges
    # since the last completed run, so the task follows the schedule again (online)
    _, lines = rig.execute(timer("2026-11-28T03:05:00Z"))
    assert results_by_task(lines)["tr-a"]["action"] == "updated"
    assert rig.emulator.status("tr-a") == "online"


def test_transitions_catch_up_is_bounded_to_a_day(make_rig: RigFactory) -> None:
    weekly = TRANSITIONS.format(mode="transitions").replace('"0 2 * * *"', '"0 2 * * sat"')
    rig = make_rig(weekly, TRANSITIONS_SEED)
    rig.execute(timer("2026-11-27T23:00:00Z"))  # Friday night
    rig.emulator.set_status("tr-a", "offline")  # by hand
    # Saturday's window came and went (02:00-03:00) over two days with no completed run; looking
    # back at most 24 h from Monday 01:00 finds no edge, so the manual change is left alone
    _, lines = rig.execute(timer("2026-11-30T01:00:00Z"))
    assert results_by_task(lines)["tr-a"]["action"] == "skipped"
    assert rig.emulator.status("tr-a") == "offline"


def test_a_failed_run_does_not_move_the_transitions_record(make_rig: RigFactory) -> None:
    rig = make_rig(TRANSITIONS.format(mode="transitions"), TRANSITIONS_SEED)
    rig.execute(timer("2026-11-28T01:58:00Z"))
    rig.emulator.script_fault("tr-a", "InvalidParameter", count=1)
    summary, _ = rig.execute(timer("2026-11-28T02:00:00Z"))
    assert summary.failed and rig.emulator.status("tr-a") == "online"
    # the next tick retries the 02:00 edge, because the failed run was not recorded as completed
    summary, lines = rig.execute(timer("2026-11-28T02:01:00Z"))
    assert results_by_task(lines)["tr-a"]["action"] == "updated" and not summary.failed


def test_enforce_mode_reverts_a_manual_change_at_once(make_rig: RigFactory) -> None:
    rig = make_rig(TRANSITIONS.format(mode="enforce"), TRANSITIONS_SEED)
    rig.execute(timer("2026-11-28T01:50:00Z"))
    rig.emulator.set_status("tr-a", "offline")
    summary, lines = rig.execute(timer("2026-11-28T01:51:00Z"))
    line = results_by_task(lines)["tr-a"]
    assert (line["previous"], line["desired"], line["action"]) == ("offline", "online", "updated")
    assert rig.emulator.status("tr-a") == "online"
    assert summary.mode == "enforce"


def test_transitions_mode_acts_on_a_hold_made_or_released_by_this_event(make_rig: RigFactory) -> None:
    rig = make_rig(TRANSITIONS.format(mode="transitions"), TRANSITIONS_SEED)
    hold = {"action": "hold", "id": "tr-hold", "tasks": ["tr-b"], "reason": "INC", "ttl": "1h"}
    _, lines = rig.execute(hold)
    assert results_by_task(lines)["tr-b"]["action"] == "updated"
    assert rig.emulator.status("tr-b") == "offline"
    _, lines = rig.execute({"action": "release", "id": "tr-hold"})
    assert results_by_task(lines)["tr-b"]["action"] == "updated"
    assert rig.emulator.status("tr-b") == "online"


def test_transitions_mode_acts_when_a_hold_expires_within_the_tick(make_rig: RigFactory) -> None:
    """A hold that ended 5 s before this tick changed the desired state within the last tick.

    (The hold file is written as the earlier hold event left it; the tick is the real now, as on FC.)
    """
    rig = make_rig(TRANSITIONS.format(mode="transitions"), [{"TaskName": "tr-b", "Status": "offline"}])
    now = now_utc()
    rig.state.mkdir()
    held = {
        "id": "ended",
        "tasks": ["tr-b"],
        "status": "offline",
        "reason": "INC",
        "by": "",
        "created_at": utc_iso(now - timedelta(hours=1)),
        "expires_at": utc_iso(now - timedelta(seconds=5)),
    }
    (rig.state / "ended.json").write_text(json.dumps(held))
    _, lines = rig.execute(timer(utc_iso(now)))
    line = results_by_task(lines)["tr-b"]
    assert (line["previous"], line["desired"]) == ("offline", "online")
    assert line["action"] == "updated", line
    assert rig.emulator.status("tr-b") == "online"


def test_per_task_mode_gives_a_mixed_run(make_rig: RigFactory) -> None:
    schedule = TRANSITIONS.format(mode="enforce").replace("  - name: tr-b\n", "  - name: tr-b\n    mode: transitions\n")
    rig = make_rig(schedule, TRANSITIONS_SEED)
    rig.emulator.set_status("tr-a", "offline")
    rig.emulator.set_status("tr-b", "offline")
    summary, lines = rig.execute(timer("2026-11-28T01:51:00Z"))
    assert summary.mode == "mixed"
    results = results_by_task(lines)
    assert (results["tr-a"]["action"], results["tr-a"]["mode"]) == ("updated", "enforce")
    assert (results["tr-b"]["action"], results["tr-b"]["mode"]) == ("skipped", "transitions")


# --- safety, dry run, failures ------------------------------------------------------------------

SAFETY = """\
version: 1
timezone: UTC
safety: {limits}
tasks:
  - name: s-1
  - name: s-2
  - name: s-3
"""
SAFETY_SEED = [{"TaskName": f"s-{i}", "Status": "offline"} for i in (1, 2, 3)]


def test_safety_limit_blocks_the_whole_run(make_rig: RigFactory) -> None:
    rig = make_rig(SAFETY.format(limits="{max_changes: 1}"), SAFETY_SEED)
    error, lines = rig.handler_failing(timer(DAY))
    assert updates(rig.emulator) == 0
    assert {rig.emulator.status(f"s-{i}") for i in (1, 2, 3)} == {"offline"}
    summary = error.summary
    assert summary.blocked is not None and "max_changes" in summary.blocked
    assert "max_changes" in str(error)
    assert summary.counts["skipped"] == 3
    blocked = events_named(lines, "run.blocked")
    assert len(blocked) == 1 and blocked[0]["level"] == "ERROR"
    assert blocked[0]["changes"] == 3
    assert "max_changes" in blocked[0]["reason"]
    assert lines[-1]["event"] == "run.summary" and lines[-1]["blocked"] == summary.blocked
    assert all("safety" in r["error"] for r in results_by_task(lines).values())

    result, lines = rig.handler(b'{"action": "reconcile", "force": true}')
    assert updates(rig.emulator) == 3
    assert result["counts"]["updated"] == 3 and result["blocked"] is None
    assert {rig.emulator.status(f"s-{i}") for i in (1, 2, 3)} == {"online"}


def test_safety_ratio_and_force_in_timer_payload(make_rig: RigFactory) -> None:
    rig = make_rig(SAFETY.format(limits="{max_change_ratio: 0.5}"), SAFETY_SEED)
    error, _ = rig.handler_failing(timer(DAY))
    assert error.summary.blocked is not None and "max_change_ratio" in error.summary.blocked
    assert updates(rig.emulator) == 0
    result, _ = rig.handler(timer(DAY, payload='{"force": true}'))
    assert result["counts"]["updated"] == 3


def test_dry_run_makes_no_update_call(make_rig: RigFactory) -> None:
    rig = make_rig()
    summary, lines = rig.execute({"action": "reconcile", "at": NIGHT, "dry_run": True})
    assert updates(rig.emulator) == 0
    assert summary.dry_run is True
    assert summary.counts["would_update"] == 2
    assert summary.counts["unchanged"] == 2
    assert summary.api_calls == list_calls(rig.emulator) == 2
    results = results_by_task(lines)
    assert results["access-a"]["action"] == results["access-c"]["action"] == "would_update"
    assert lines[-1]["dry_run"] is True
    assert rig.emulator.status("access-a") == "online"


def test_partial_failure_applies_the_others_and_fails_the_run(make_rig: RigFactory) -> None:
    rig = make_rig(SAFETY.format(limits="{}"), SAFETY_SEED)
    rig.emulator.script_fault("s-2", "InvalidParameter", count=1)
    error, lines = rig.handler_failing(timer(DAY))
    assert rig.emulator.status("s-1") == rig.emulator.status("s-3") == "online"
    assert rig.emulator.status("s-2") == "offline"
    results = results_by_task(lines)
    assert results["s-2"]["action"] == "failed"
    assert results["s-2"]["error_code"] == "InvalidParameter"
    assert results["s-2"]["level"] == "ERROR"
    assert results["s-2"]["attempts"] == 1  # not retryable
    assert results["s-1"]["action"] == results["s-3"]["action"] == "updated"
    assert error.summary.counts["failed"] == 1
    assert error.summary.counts["updated"] == 2
    assert lines[-1]["event"] == "run.summary" and lines[-1]["ok"] is False


def test_fail_on_error_false_returns_the_summary(make_rig: RigFactory) -> None:
    rig = make_rig(SAFETY.format(limits="{}"), SAFETY_SEED)
    rig.emulator.script_fault("s-2", "InvalidParameter", count=1)
    result, lines = rig.handler(timer(DAY), ESA_FAIL_ON_ERROR="false")
    assert result["ok"] is False
    assert result["counts"]["failed"] == 1 and result["counts"]["updated"] == 2
    assert lines[-1]["event"] == "run.summary" and lines[-1]["level"] == "ERROR"


def test_missing_task_is_reported_not_failed(make_rig: RigFactory) -> None:
    schedule = SCHEDULE.replace("  - name: access-c\n", "  - name: access-c\n  - name: access-ghost\n")
    rig = make_rig(schedule)
    result, lines = rig.handler(timer(NIGHT))
    ghost = results_by_task(lines)["access-ghost"]
    assert ghost["action"] == "missing" and ghost["level"] == "WARNING"
    assert ghost["previous"] is None
    assert result["ok"] is True
    assert result["counts"]["missing"] == 1
    assert updates(rig.emulator) == 2  # never created, never updated


def test_a_deadline_before_the_listing_changes_nothing_and_fails(make_rig: RigFactory) -> None:
    rig = make_rig(faults=Faults(latency_ms=50))
    summary, lines = rig.execute(timer(NIGHT), budget_s=0.001)
    assert rig.emulator.stats["total"] == 0
    assert summary.failed and summary.results == []
    assert summary.error is not None and "DeadlineExceeded" in summary.error
    assert events_named(lines, "run.summary")[0]["ok"] is False
    assert rig.emulator.status("access-a") == "online"


def test_deadline_follows_the_fc_timeout(make_rig: RigFactory) -> None:
    rig = make_rig(faults=Faults(latency_ms=50))
    failure, _ = rig.handler_failing(timer(NIGHT), fc_context(timeout=0.001))
    assert "DeadlineExceeded" in str(failure)
    assert rig.emulator.stats["total"] == 0
    # ESA_FAIL_ON_ERROR=false returns the failed summary instead of raising
    result, _ = rig.handler(timer(NIGHT), fc_context(timeout=0.001), ESA_FAIL_ON_ERROR="false")
    assert result["ok"] is False and "deadline" in result["error"]
    # A realistic timeout leaves plenty of room: the same run goes through.
    result, _ = rig.handler(timer(NIGHT), fc_context(timeout=60))
    assert result["counts"]["updated"] == 2


# --- retries ------------------------------------------------------------------------------------


def test_retries_under_scripted_throttling_converge(make_rig: RigFactory) -> None:
    rig = make_rig(SAFETY.format(limits="{}"), SAFETY_SEED)
    rig.emulator.script_fault("s-1", "Throttling.User", count=1)
    rig.emulator.script_fault("s-2", "ServiceUnavailable", count=2)
    rig.emulator.script_fault("s-3", "InternalError", count=1)
    summary, lines = rig.execute(timer(DAY))
    assert summary.counts["updated"] == 3 and not summary.failed
    assert {rig.emulator.status(f"s-{i}") for i in (1, 2, 3)} == {"online"}
    attempts = {r["task"]: r["attempts"] for r in events_named(lines, "task.result")}
    assert attempts == {"s-1": 2, "s-2": 3, "s-3": 2}
    assert summary.api_calls == rig.emulator.stats["total"] == 1 + 3 + 4


def test_retries_under_a_throttled_account_converge(make_rig: RigFactory) -> None:
    """ESA throttles at 8 requests/s; the client runs with its default pacing (ESA_MAX_RPS unset,
    20/s), so it is throttled and must settle: sixteen changes, every task ends in its desired state.
    """
    seed = [{"TaskName": f"s-{i:02d}", "Status": "offline"} for i in range(16)]
    schedule = "version: 1\ntimezone: UTC\ntasks:\n  - pattern: 's-*'\n"
    rig = make_rig(schedule, seed, faults=Faults(throttle_rps=8))
    stream = io.StringIO()
    summary = execute(
        timer(DAY),
        target=Target(rig.emulator.url, CREDS),
        schedule_path=str(rig.schedule),
        state=str(rig.state),
        stream=stream,
        environ={},
    )
    lines = parse_lines(stream.getvalue())
    throttled = rig.emulator.stats["by_outcome"].get("Throttling.User", 0)
    assert throttled > 0, "the emulator never throttled: the test proves nothing"
    failed = {r["task"]: r["error"] for r in events_named(lines, "task.result") if r["action"] != "updated"}
    assert failed == {}, f"not converged: {failed}"
    assert {t.Status for t in rig.emulator.tasks.values()} == {"online"}
    assert max(r["attempts"] for r in events_named(lines, "task.result")) > 1
    assert not summary.failed


def test_log_lines_stay_structured_while_retrying(make_rig: RigFactory) -> None:
    """Every line, including the client's retry notices, has ts/level/event/run_id."""
    rig = make_rig(SAFETY.format(limits="{}"), SAFETY_SEED)
    rig.emulator.script_fault("s-1", "ServiceUnavailable", count=1)
    _, lines = rig.execute(timer(DAY), context=fc_context(request_id="fc-req-retry"))
    assert_line_shape(lines, fc_request_id="fc-req-retry")


# --- bad input changes nothing ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("schedule", "fragments"),
    [
        (SCHEDULE.replace("status: offline", "status: sideways"), ["windows[0]", "status"]),
        (SCHEDULE.replace("duration: 1h", "duration: soon"), ["windows[0]", "duration"]),
        (SCHEDULE.replace("timezone: UTC", "timezone: Mars/Olympus"), ["timezone"]),
        (SCHEDULE + "bogus: 1\n", ["bogus"]),
        ("tasks: [\n", []),
    ],
    ids=["status", "duration", "timezone", "unknown-key", "yaml"],
)
def test_invalid_schedule_changes_nothing(make_rig: RigFactory, schedule: str, fragments: list[str]) -> None:
    rig = make_rig(schedule)
    hold = {"action": "hold", "tasks": ["access-a"], "reason": "INC", "ttl": "1h"}
    for body in (timer(NIGHT), json.dumps(hold).encode()):
        with pytest.raises(ScheduleError) as caught:
            rig.execute(body)
        message = "\n".join(caught.value.problems)
        assert rig.schedule.name in message
        for fragment in fragments:
            assert fragment in message
    assert rig.emulator.stats["total"] == 0
    assert rig.holds() == []


def test_invalid_schedule_through_the_handler_is_logged_and_raised(make_rig: RigFactory) -> None:
    rig = make_rig(SCHEDULE.replace("status: offline", "status: sideways"))
    rig.use_env()
    rig.capsys.readouterr()
    with pytest.raises(UserError):
        fc_handler.handler(timer(NIGHT), fc_context(request_id="fc-bad"))
    lines = parse_lines(rig.capsys.readouterr().out)
    assert [line["event"] for line in lines] == ["run.rejected"]
    assert_line_shape(lines, fc_request_id="fc-bad")
    assert rig.schedule.name in lines[0]["error"]
    assert rig.emulator.stats["total"] == 0


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (b"", "empty"),
        (b"{not json", "not valid JSON"),
        (b"[]", "empty list"),
        (b"42", "expected a JSON object"),
        (b'{"what": "ever"}', "not a timer event"),
        (b'{"triggerTime": "yesterday"}', "triggerTime"),
        (b'{"triggerTime": "2026-11-28T02:30:00"}', "triggerTime"),
        (b'{"triggerTime": "2026-11-28T02:30:00Z", "payload": "{\\"dryrun\\": true}"}', "dryrun"),
        (b'{"action": "explode"}', "action"),
        (b'{"action": "reconcile", "extra": 1}', "extra"),
        (b'{"action": "hold", "tasks": ["access-a"], "reason": "x"}', "ttl"),
        (
            b'{"action": "hold", "tasks": ["access-a"], "reason": "x", "ttl": "2h", "until": "2030-01-01T00:00:00Z"}',
            "ttl",
        ),
        (b'{"action": "hold", "tasks": ["access-a"], "reason": "x", "ttl": "forever"}', "ttl"),
        (b'{"action": "hold", "tasks": ["access-a"], "reason": "x", "until": "2020-01-01T00:00:00Z"}', "until"),
        (b'{"action": "hold", "tasks": ["access-a"], "reason": "x", "ttl": "1h", "status": "paused"}', "status"),
        (b'{"action": "hold", "tasks": ["nothing-*"], "reason": "x", "ttl": "1h"}', "nothing-*"),
        (b'{"action": "hold", "tasks": [], "reason": "x", "ttl": "1h"}', "tasks"),
        (b'{"action": "hold", "tasks": ["access-a"], "reason": "x", "ttl": "1h", "id": "../etc"}', "id"),
        (b'{"action": "release"}', "id"),
        (b'{"action": "release", "id": "a", "tasks": ["access-a"]}', "id"),
        (b'{"specversion": "1.0", "id": "1", "source": "s", "type": "unknown.type", "data": {}}', "unknown.type"),
        (b'{"specversion": "0.3", "id": "1", "source": "s", "type": "t"}', "specversion"),
    ],
)
def test_invalid_event_changes_nothing(make_rig: RigFactory, body: bytes, fragment: str) -> None:
    rig = make_rig()
    valid_hold = {"action": "hold", "tasks": ["access-a"], "reason": "x", "ttl": "1h"}
    for payload in (body, b"[" + json.dumps(valid_hold).encode() + b"," + body + b"]"):
        if payload.startswith(b"[") and body in (b"", b"{not json", b"[]"):
            continue  # not a valid element to embed in a list
        with pytest.raises(UserError) as caught:
            rig.execute(payload)
        assert fragment in str(caught.value)
    assert rig.emulator.stats["total"] == 0
    assert rig.holds() == []


@pytest.mark.parametrize(
    "bad",
    [
        {"action": "hold", "tasks": ["access-a"], "reason": "x", "ttl": "1h", "id": "../etc"},
        {"action": "release", "id": "../etc"},
    ],
    ids=["hold", "release"],
)
def test_bad_hold_id_is_an_event_error_naming_its_element(make_rig: RigFactory, bad: dict[str, Any]) -> None:
    """Like every other malformed field: an ``EventError`` that says which element and field."""
    rig = make_rig()
    valid = {"action": "hold", "tasks": ["access-a"], "reason": "x", "ttl": "1h"}
    with pytest.raises(EventError, match=r"event\[1\]\.id"):
        rig.execute([valid, bad])
    assert rig.emulator.stats["total"] == 0
    assert rig.holds() == []


def test_rejected_event_is_logged_once_with_its_reason(make_rig: RigFactory) -> None:
    rig = make_rig()
    stream = io.StringIO()
    with pytest.raises(EventError):
        execute(
            b'{"action": "hold", "tasks": ["access-a"], "reason": "x"}',
            target=Target(rig.emulator.url, CREDS),
            schedule_path=str(rig.schedule),
            state=str(rig.state),
            stream=stream,
            environ={},
        )
    lines = parse_lines(stream.getvalue())
    assert [line["event"] for line in lines] == ["run.rejected"]
    assert lines[0]["level"] == "ERROR" and "ttl" in lines[0]["error"]


# --- secrets ------------------------------------------------------------------------------------

AK_SECRET = "AKsecret-7f3a9c1e5b2d8406-do-not-log"
STS_SECRET = "STSsecret-2b4d6f8a0c1e3579-do-not-log"
STS_TOKEN = "CAIS-sts-token-91ab73cd55ef2a40-do-not-log"


def test_logs_contain_no_secret(make_rig: RigFactory) -> None:
    rig = make_rig(
        SAFETY.format(limits="{}"),
        SAFETY_SEED,
        access_key_id="ak-for-test",
        access_key_secret=AK_SECRET,
        sts_credentials=[("sts-id-for-test", STS_SECRET, STS_TOKEN)],
    )
    captured: list[str] = []

    creds = {"ALIBABA_CLOUD_ACCESS_KEY_ID": "ak-for-test", "ALIBABA_CLOUD_ACCESS_KEY_SECRET": AK_SECRET}

    # 1) AccessKey pair from the environment, with a failed task and a retried one.
    rig.emulator.script_fault("s-1", "InvalidParameter", count=1)
    rig.emulator.script_fault("s-2", "InternalError", count=1)
    failed, lines = rig.handler_failing(timer(DAY), **creds)
    captured.append(str(failed))
    assert results_by_task(lines)["s-1"]["action"] == "failed"
    assert results_by_task(lines)["s-2"]["action"] == "updated"

    # 2) STS credentials handed over on FC's context (python3.10 runtimes), with a hold.
    sts = SimpleNamespace(access_key_id="sts-id-for-test", access_key_secret=STS_SECRET, security_token=STS_TOKEN)
    for name in ("s-1", "s-2", "s-3"):
        rig.emulator.set_status(name, "offline")
    hold = {"action": "hold", "tasks": ["s-3"], "reason": "INC", "ttl": "1h"}
    wrong_env = {**creds, "ALIBABA_CLOUD_ACCESS_KEY_SECRET": "not-the-secret"}  # context credentials come first
    result, lines = rig.handler(json.dumps(hold).encode(), fc_context(credentials=sts), **wrong_env)
    captured.append(json.dumps(result))
    assert result["counts"]["updated"] == 2 and result["counts"]["unchanged"] == 1

    # 3) A wrong secret: ESA's refusal is logged, the secret is not.
    refused, lines = rig.handler_failing(
        timer(DAY), **{**creds, "ALIBABA_CLOUD_ACCESS_KEY_SECRET": AK_SECRET + "-wrong"}
    )
    captured.append(str(refused))
    assert "SignatureDoesNotMatch" in json.dumps(lines)

    captured += rig.raw
    captured += [path.read_text() for path in rig.state.glob("*.json")]
    for text in captured:
        for secret in (AK_SECRET, STS_SECRET, STS_TOKEN):
            assert secret not in text


# --- example events -----------------------------------------------------------------------------


def test_example_events_parse_with_the_sample_schedule() -> None:
    schedule = load_schedule(str(REPO / "schedule" / "sample.yaml"))
    examples = sorted(p for p in (REPO / "events").glob("*.json") if p.name != "context.json")
    examples = [p for p in examples if not p.name.startswith("intake-")]  # handler.intake's HTTP events
    names = {p.name for p in examples}
    assert {"timer.json", "hold.json", "release.json", "cloudevent-cms-alert.json", "cloudevent-cms-ok.json"} <= names
    for path in examples:
        intent = EventReader(schedule, now_utc()).read(path.read_bytes())
        assert intent.sources, path.name
    # the sample's alert rule keeps one hold per CloudMonitor transId: inc-<rule>-<sha256(source, key)>
    trans_id = json.loads((REPO / "events" / "cloudevent-cms-alert.json").read_text())["data"]["transId"]
    hold_id = "inc-origin-errors-" + hashlib.sha256(f"cloudmonitor\n{trans_id}".encode()).hexdigest()[:8]
    for name, state in (("cloudevent-cms-alert.json", "firing"), ("cloudevent-cms-ok.json", "resolved")):
        intent = EventReader(schedule, now_utc()).read((REPO / "events" / name).read_bytes())
        assert [(a.state, a.key) for a in intent.alerts] == [(state, trans_id)], name
        assert intent.sources == (f"incident:{hold_id}",), name
