"""``esa-scheduler run``, ``invoke`` and ``hold`` through ``cli.main``, against the emulator on loopback.

JSON log lines go to stderr and the result to stdout; exit codes are 0 ok, 1 a failed or blocked
run, 2 bad input or configuration (one clear line, no traceback).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from helpers import clean_environment, endpoint_env, parse_lines, set_env, updates

from esa_scheduler import cli, timeutil
from esa_scheduler.emulator import Emulator, Faults
from esa_scheduler.engine.schedule.load import load_schedule
from esa_scheduler.invocation.statefile import LOCK_FILE
from esa_scheduler.timeutil import parse_instant

REPO = Path(__file__).resolve().parents[1]
NIGHT = "2026-11-28T02:30:00Z"
DAY = "2026-11-28T12:00:00Z"

SCHEDULE = """\
version: 1
timezone: UTC
default_status: online
tasks:
  - name: access-a
  - name: access-b
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
    {"TaskName": "site-x", "Status": "online", "SiteId": 1001},
]


@dataclass
class Output:
    code: int
    out: str
    err: str

    def summary(self) -> dict[str, Any]:
        """stdout is exactly one JSON object: the run summary."""
        lines = [line for line in self.out.splitlines() if line.strip()]
        assert len(lines) == 1, self.out
        value = json.loads(lines[0])
        assert isinstance(value, dict)
        return value

    def logs(self) -> list[dict[str, Any]]:
        return parse_lines(self.err)


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    return clean_environment(monkeypatch, tmp_path)


@dataclass
class Cli:
    """Runs ``cli.main`` in-process and captures its exit code, stdout and stderr."""

    tmp: Path
    capsys: pytest.CaptureFixture[str]
    monkeypatch: pytest.MonkeyPatch

    @property
    def state(self) -> Path:
        return self.tmp / "state"

    def write(self, name: str, text: str) -> Path:
        path = self.tmp / name
        path.write_text(text, encoding="utf-8")
        return path

    def schedule(self, text: str = SCHEDULE) -> Path:
        return self.write("schedule.yaml", text)

    def point_at(self, emulator: Emulator, **extra: str) -> None:
        """ESA_ENDPOINT and an AccessKey pair in the environment, as an operator would set them."""
        set_env(self.monkeypatch, {**endpoint_env(emulator.url), **extra})

    def __call__(self, *argv: str) -> Output:
        self.capsys.readouterr()
        code = cli.main(list(argv))
        captured = self.capsys.readouterr()
        assert "Traceback" not in captured.err
        return Output(code, captured.out, captured.err)

    def run(self, schedule: Path, *flags: str) -> Output:
        return self("run", "--schedule", str(schedule), "--state-dir", str(self.state), *flags)


@pytest.fixture
def esa(clean_env: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Cli:
    return Cli(clean_env, capsys, monkeypatch)


@pytest.fixture
def emulator() -> Iterator[Emulator]:
    """The tasks ``SCHEDULE`` manages (this file's own, not conftest's shared one)."""
    with Emulator(tasks=SEED) as running:
        yield running


# --- run ----------------------------------------------------------------------------------------


def test_run_json_against_a_configured_endpoint(esa: Cli, emulator: Emulator) -> None:
    esa.point_at(emulator)
    result = esa.run(esa.schedule(), "--at", NIGHT, "--json")
    assert result.code == 0, result.err
    summary = result.summary()
    assert summary["ok"] is True
    assert summary["at"] == NIGHT
    assert summary["counts"]["updated"] == 1
    assert summary["counts"]["unchanged"] == 2
    assert summary["api_calls"] == 2 + 1
    assert emulator.status("access-a") == "offline"
    assert updates(emulator) == 1
    logs = result.logs()
    assert logs[-1]["event"] == "run.summary"
    assert {line["task"] for line in logs if line["event"] == "task.result"} == {"access-a", "access-b", "site-x"}
    assert "embedded" not in result.err

    again = esa.run(esa.schedule(), "--at", "2026-11-28T02:31:00Z", "--json")
    assert again.code == 0
    assert again.summary()["counts"]["updated"] == 0
    assert updates(emulator) == 1


def test_run_prints_a_readable_table(esa: Cli, emulator: Emulator) -> None:
    esa.point_at(emulator)
    result = esa.run(esa.schedule(), "--at", NIGHT)
    assert result.code == 0, result.err
    header = next(line for line in result.out.splitlines() if "previous" in line)
    for column in ("task", "previous", "desired", "action", "source"):
        assert column in header
    row = next(line for line in result.out.splitlines() if line.split()[:1] == ["access-a"])
    for cell in ("online", "offline", "updated", "window:nightly"):
        assert cell in row
    assert "API call" in result.out
    with pytest.raises(json.JSONDecodeError):
        json.loads(result.out)


def test_run_dry_run_changes_nothing(esa: Cli, emulator: Emulator) -> None:
    esa.point_at(emulator)
    result = esa.run(esa.schedule(), "--at", NIGHT, "--dry-run", "--json")
    assert result.code == 0
    summary = result.summary()
    assert summary["dry_run"] is True and summary["counts"]["would_update"] == 1
    assert updates(emulator) == 0
    assert emulator.status("access-a") == "online"


def test_run_without_endpoint_or_credentials_uses_the_embedded_emulator(esa: Cli) -> None:
    result = esa.run(esa.schedule(), "--at", NIGHT, "--json")
    assert result.code == 0, result.err
    prose = [line for line in result.err.splitlines() if line.strip() and not line.startswith("{")]
    assert len(prose) == 1, result.err
    assert "emulator" in prose[0] and "http://127.0.0.1:" in prose[0]
    summary = result.summary()
    # Seeded with the schedule's named tasks, all online: both access tasks go offline.
    assert summary["counts"]["updated"] == 2
    assert summary["counts"]["unchanged"] == 1
    assert summary["counts"]["missing"] == 0
    logs = [json.loads(line) for line in result.err.splitlines() if line.startswith("{")]
    assert logs[-1]["event"] == "run.summary"
    assert not esa.state.exists() or not list(esa.state.iterdir())


def test_embedded_emulator_run_in_table_form(esa: Cli) -> None:
    result = esa.run(esa.schedule(), "--at", DAY)
    assert result.code == 0, result.err
    assert "unchanged" in result.out and "access-a" in result.out


def test_run_with_a_failed_task_exits_1(esa: Cli, emulator: Emulator) -> None:
    esa.point_at(emulator)
    emulator.script_fault("access-a", "InvalidParameter", count=1)
    result = esa.run(esa.schedule(), "--at", NIGHT, "--json")
    assert result.code == 1
    summary = result.summary()
    assert summary["ok"] is False and summary["counts"]["failed"] == 1
    failed = [line for line in result.logs() if line.get("action") == "failed"]
    assert [(line["task"], line["error_code"]) for line in failed] == [("access-a", "InvalidParameter")]


def test_blocked_run_exits_1_and_force_overrides(esa: Cli, emulator: Emulator) -> None:
    esa.point_at(emulator)
    schedule = esa.schedule(
        SCHEDULE.replace("default_status: online", "default_status: online\nsafety: {max_changes: 0}")
    )
    blocked = esa.run(schedule, "--at", NIGHT, "--json")
    assert blocked.code == 1
    assert blocked.summary()["blocked"]
    assert any(line["event"] == "run.blocked" for line in blocked.logs())
    assert updates(emulator) == 0

    table = esa.run(schedule, "--at", NIGHT)
    assert table.code == 1 and "BLOCKED" in table.out and "--force" in table.out

    forced = esa.run(schedule, "--at", NIGHT, "--json", "--force")
    assert forced.code == 0
    assert forced.summary()["counts"]["updated"] == 1


def test_run_deadline_flag(esa: Cli) -> None:
    with Emulator(tasks=SEED, faults=Faults(latency_ms=50)) as emulator:
        esa.point_at(emulator)
        result = esa.run(esa.schedule(), "--at", NIGHT, "--json", "--deadline", "0.001")
        assert result.code == 1
        assert result.summary()["ok"] is False and "DeadlineExceeded" in result.summary()["error"]
        assert emulator.stats["total"] == 0


@pytest.mark.parametrize("configured", [True, False], ids=["endpoint", "embedded"])
def test_run_with_a_bad_schedule_exits_2_without_traceback(esa: Cli, emulator: Emulator, configured: bool) -> None:
    if configured:
        esa.point_at(emulator)
    schedule = esa.schedule(SCHEDULE.replace("duration: 1h", "duration: eventually"))
    result = esa.run(schedule, "--at", NIGHT, "--json")
    assert result.code == 2
    assert result.out == ""
    assert "schedule.yaml" in result.err and "duration" in result.err
    assert emulator.stats["total"] == 0
    assert "emulator" not in result.err.lower()


def test_run_with_bad_input_or_configuration_exits_2(esa: Cli, emulator: Emulator) -> None:
    schedule = esa.schedule()
    esa.point_at(emulator)
    bad_at = esa.run(schedule, "--at", "2026-11-28T02:30:00")  # no offset
    assert bad_at.code == 2 and "2026-11-28T02:30:00" in bad_at.err

    missing = esa.run(esa.tmp / "nowhere.yaml", "--at", NIGHT)
    assert missing.code == 2 and "nowhere.yaml" in missing.err

    esa.monkeypatch.delenv("ALIBABA_CLOUD_ACCESS_KEY_SECRET")
    half_key = esa.run(schedule, "--at", NIGHT)
    assert half_key.code == 2 and "ALIBABA_CLOUD_ACCESS_KEY_SECRET" in half_key.err

    esa.point_at(emulator, ESA_MAX_RPS="fast")
    bad_rps = esa.run(schedule, "--at", NIGHT)
    assert bad_rps.code == 2 and "ESA_MAX_RPS" in bad_rps.err
    assert emulator.stats["total"] == 0


# --- invoke -------------------------------------------------------------------------------------


def context_file(esa: Cli, **fields: Any) -> Path:
    document = {
        "request_id": "fc-req-invoke-1",
        "function": {"name": "esa-scheduler", "timeout": 60},
        "region": "cn-hangzhou",
        **fields,
    }
    return esa.write("context.json", json.dumps(document))


def test_invoke_runs_the_handler_like_fc(esa: Cli, emulator: Emulator) -> None:
    esa.point_at(emulator, ESA_SCHEDULE=str(esa.schedule()), ESA_STATE_DIR=str(esa.state))
    event = esa.write("timer.json", json.dumps({"triggerTime": NIGHT, "triggerName": "t", "payload": ""}))
    result = esa("invoke", str(event), "--context", str(context_file(esa)))
    assert result.code == 0, result.err
    summary = result.summary()
    assert summary["ok"] is True and summary["counts"]["updated"] == 1
    logs = result.logs()
    assert {line["fc_request_id"] for line in logs} == {"fc-req-invoke-1"}
    assert emulator.status("access-a") == "offline"

    # Without --context: a default context (fresh request id) is made up.
    result = esa("invoke", str(event))
    assert result.code == 0
    assert result.summary()["counts"]["unchanged"] == 3


def test_invoke_failed_run_exits_1_unless_fail_on_error_is_off(esa: Cli, emulator: Emulator) -> None:
    esa.point_at(emulator, ESA_SCHEDULE=str(esa.schedule()), ESA_STATE_DIR=str(esa.state))
    event = esa.write("timer.json", json.dumps({"triggerTime": NIGHT, "triggerName": "t", "payload": ""}))
    emulator.script_fault("access-a", "InvalidParameter", count=2)
    result = esa("invoke", str(event), "--context", str(context_file(esa)))
    assert result.code == 1
    assert result.summary()["counts"]["failed"] == 1
    assert "esa-scheduler run failed" in result.err

    esa.monkeypatch.setenv("ESA_FAIL_ON_ERROR", "false")
    result = esa("invoke", str(event), "--context", str(context_file(esa)))
    assert result.code == 0
    assert result.summary()["ok"] is False


def test_invoke_with_context_credentials(esa: Cli) -> None:
    """python3.10 runtimes hand STS credentials over on the context; they beat the environment."""
    sts = ("sts-id", "sts-secret-for-invoke", "sts-token-for-invoke")
    with Emulator(tasks=SEED, sts_credentials=[sts]) as emulator:
        esa.point_at(
            emulator,
            ALIBABA_CLOUD_ACCESS_KEY_SECRET="wrong-secret",
            ESA_SCHEDULE=str(esa.schedule()),
            ESA_STATE_DIR=str(esa.state),
        )
        credentials = {"access_key_id": sts[0], "access_key_secret": sts[1], "security_token": sts[2]}
        context = context_file(esa, credentials=credentials)
        event = esa.write("hold.json", json.dumps({"action": "hold", "tasks": ["site-x"], "reason": "I", "ttl": "1h"}))
        result = esa("invoke", str(event), "--context", str(context))
        assert result.code == 0, result.err
        assert emulator.status("site-x", 1001) == "offline"
        assert sts[1] not in result.out + result.err and sts[2] not in result.out + result.err


def test_invoke_with_bad_input_exits_2(esa: Cli, emulator: Emulator) -> None:
    esa.point_at(emulator, ESA_SCHEDULE=str(esa.schedule()), ESA_STATE_DIR=str(esa.state))
    bad_event = esa.write("bad.json", '{"action": "hold", "tasks": ["access-a"], "reason": "x"}')
    result = esa("invoke", str(bad_event))
    assert result.code == 2 and "ttl" in result.err and result.out == ""

    good_event = esa.write("ok.json", '{"action": "reconcile"}')
    typo = esa.write("ctx.json", json.dumps({"request_id": "r", "fucntion": {"timeout": 60}}))
    result = esa("invoke", str(good_event), "--context", str(typo))
    assert result.code == 2 and "ctx.json" in result.err and "fucntion" in result.err

    result = esa("invoke", str(esa.tmp / "absent.json"))
    assert result.code == 2 and "absent.json" in result.err
    assert emulator.stats["total"] == 0
    assert not esa.state.exists()


def test_invoke_example_events_with_the_sample_schedule(esa: Cli) -> None:
    """``events/timer.json`` + ``events/context.json`` against ``schedule/sample.yaml``."""
    sample = REPO / "schedule" / "sample.yaml"
    seed = [{"TaskName": t.name, "Status": "online", "SiteId": t.site_id} for t in load_schedule(sample).explicit_tasks]
    with Emulator(tasks=seed) as emulator:
        esa.point_at(emulator, ESA_SCHEDULE=str(sample), ESA_STATE_DIR=str(esa.state))
        result = esa("invoke", str(REPO / "events" / "timer.json"), "--context", str(REPO / "events" / "context.json"))
        assert result.code == 0, result.err
        summary = result.summary()
        timer = json.loads((REPO / "events" / "timer.json").read_text())
        assert parse_instant(summary["at"]) == parse_instant(timer["triggerTime"])
        context = json.loads((REPO / "events" / "context.json").read_text())
        assert {line["fc_request_id"] for line in result.logs()} == {context["request_id"]}


SAMPLE = REPO / "schedule" / "sample.yaml"
EVENTS = sorted((REPO / "events").glob("*.json"))
REFUSED = (
    "event[0]: not a timer event (triggerTime), a command (action), a CloudEvent (specversion) "
    "or an alert's data (alertName, alert_name)"
)
NOT_AN_EVENT = {"context.json": REFUSED, **{path.name: REFUSED for path in EVENTS if path.name.startswith("intake-")}}
"""The files of events/ that ``invoke`` refuses, and why: context.json is the FC context for ``--context``, and
``intake-*.json`` are HTTP trigger events for ``handler.intake`` (``invoke --handler intake``)."""


def test_invoke_without_endpoint_or_credentials_uses_the_embedded_emulator(esa: Cli) -> None:
    """A newcomer's ``invoke events/hold.json`` after ``make demo``: the embedded emulator, and the hold kept."""
    where = ["--schedule", str(SAMPLE), "--state-dir", str(esa.state)]
    result = esa("invoke", str(REPO / "events" / "hold.json"), *where)
    assert result.code == 0, result.err
    prose = [line for line in result.err.splitlines() if not line.startswith("{")]
    assert len(prose) == 1 and "no ESA endpoint or credentials configured" in prose[0], result.err
    assert "embedded ESA emulator at http://127.0.0.1:" in prose[0]
    assert result.summary()["ok"] is True
    logs = parse_lines("\n".join(line for line in result.err.splitlines() if line.startswith("{")))
    results = {line["task"]: line for line in logs if line["event"] == "task.result"}
    assert (results["access-logs-prod"]["action"], results["access-logs-prod"]["source"]) == (
        "updated",
        "hold:inc-4211",
    )
    # the hold outlives the emulator (the next run or tick applies it); nothing is recorded about the emulator
    assert sorted(p.name for p in esa.state.iterdir() if p.name != LOCK_FILE) == ["inc-4211.json"]
    listed = esa("hold", "list", "--json", *where)
    assert [h["id"] for h in json.loads(listed.out)] == ["inc-4211"]


def test_invoke_with_the_emulator_flag_leaves_the_configured_esa_alone(esa: Cli, emulator: Emulator) -> None:
    esa.point_at(emulator)
    timer = esa.write("timer.json", json.dumps({"triggerTime": NIGHT, "triggerName": "t", "payload": ""}))
    result = esa("invoke", str(timer), "--schedule", str(esa.schedule()), "--state-dir", str(esa.state), "--emulator")
    assert result.code == 0, result.err
    assert "--emulator: using the embedded ESA emulator at http://127.0.0.1:" in result.err
    assert result.summary()["counts"]["updated"] == 2  # the embedded one is seeded all online
    assert emulator.stats["total"] == 0


def test_invoke_with_credentials_in_the_context_does_not_fall_back(esa: Cli) -> None:
    """FC's context counts as credentials: the run goes to the ESA ``ESA_REGION`` names, here refused
    at once for its bad name, and never quietly to an emulator."""
    esa.monkeypatch.setenv("ESA_REGION", "no such region")
    context = context_file(esa, credentials={"access_key_id": "ctx-id", "access_key_secret": "ctx-secret-value"})
    timer = esa.write("timer.json", json.dumps({"triggerTime": NIGHT}))
    with_context = esa("invoke", str(timer), "--schedule", str(esa.schedule()), "--context", str(context))
    assert with_context.code == 2 and "no such region" in with_context.err
    assert "emulator" not in with_context.err
    without = esa("invoke", str(timer), "--schedule", str(esa.schedule()), "--state-dir", str(esa.state))
    assert without.code == 0 and "embedded ESA emulator" in without.err


@pytest.mark.parametrize("event", EVENTS, ids=[path.name for path in EVENTS])
def test_every_example_event_runs_on_the_embedded_emulator(esa: Cli, event: Path) -> None:
    result = esa("invoke", str(event), "--schedule", str(SAMPLE), "--state-dir", str(esa.state))
    if event.name in NOT_AN_EVENT:
        assert (result.code, result.out) == (2, ""), result.err
        assert NOT_AN_EVENT[event.name] in result.err
    else:
        assert result.code == 0, result.err
        assert result.summary()["ok"] is True


# --- now ----------------------------------------------------------------------------------------

PINNED = datetime(2026, 12, 7, 7, 54, 23, 918273, tzinfo=timezone.utc)
"""The clock the test below injects: a fraction of a second that must never be printed or used."""


def test_instants_that_default_to_now_are_printed_to_the_second(esa: Cli) -> None:
    """Without ``--at`` the command decides at now without its fraction, so what it prints is what it used."""
    esa.monkeypatch.setattr(timeutil, "now_utc", lambda: PINNED)
    where = ["--schedule", str(esa.schedule()), "--state-dir", str(esa.state)]
    assert esa("plan", *where).out.splitlines()[0] == "plan at 2026-12-07T07:54:23Z"
    assert json.loads(esa("plan", "--json", *where).out)["at"] == "2026-12-07T07:54:23Z"
    assert esa("run", "--dry-run", *where).out.splitlines()[0] == "run at 2026-12-07T07:54:23Z (dry run)"
    assert esa("run", "--dry-run", "--json", *where).summary()["at"] == "2026-12-07T07:54:23Z"
    held = esa("hold", "add", "--task", "access-a", "--ttl", "90m", "--reason", "r", "--id", "h-now", *where)
    assert held.out.startswith("hold h-now: access-a offline until 2026-12-07T09:24:23Z "), held.out
    stored = json.loads((esa.state / "h-now.json").read_text())
    assert (stored["created_at"], stored["expires_at"]) == ("2026-12-07T07:54:23Z", "2026-12-07T09:24:23Z")


# --- hold ---------------------------------------------------------------------------------------


def test_hold_add_list_release_round_trip(esa: Cli, emulator: Emulator) -> None:
    schedule = str(esa.schedule())
    where = ["--schedule", schedule, "--state-dir", str(esa.state)]

    empty = esa("hold", "list", *where)
    assert empty.code == 0 and "no holds" in empty.out

    added = esa(
        "hold", "add", "--task", "access-*", "--reason", "INC-7 origin 5xx", "--ttl", "2h", "--id", "inc-7", *where
    )
    assert added.code == 0, added.err
    assert "inc-7" in added.out and "offline" in added.out
    assert [line["event"] for line in added.logs()] == ["hold.created"]
    assert sorted(p.name for p in esa.state.iterdir() if p.name != LOCK_FILE) == ["inc-7.json"]

    listed = esa("hold", "list", "--json", *where)
    holds = json.loads(listed.out)
    assert [(h["id"], h["tasks"], h["status"], h["reason"]) for h in holds] == [
        ("inc-7", ["access-*"], "offline", "INC-7 origin 5xx")
    ]
    table = esa("hold", "list", *where)
    assert "inc-7" in table.out and "INC-7 origin 5xx" in table.out

    # `run` applies the hold at once.
    esa.point_at(emulator)
    run = esa.run(Path(schedule), "--json")  # now: the hold was stamped with the real clock
    assert run.code == 0
    results = {line["task"]: line for line in run.logs() if line["event"] == "task.result"}
    assert results["access-a"]["source"] == "hold:inc-7"
    assert emulator.status("access-a") == "offline"

    plan = esa("plan", "--json", *where)
    assert plan.code == 0
    planned = {t["name"]: t for t in json.loads(plan.out)["tasks"]}
    assert planned["access-a"]["source"] == planned["access-b"]["source"] == "hold:inc-7"
    assert planned["site-x"]["source"] == "default"

    released = esa("hold", "release", "--id", "inc-7", *where)
    assert released.code == 0 and "inc-7" in released.out
    assert list(esa.state.glob("*.json")) == []
    assert json.loads(esa("hold", "list", "--json", *where).out) == []


def test_hold_release_by_task_and_errors(esa: Cli) -> None:
    where = ["--schedule", str(esa.schedule()), "--state-dir", str(esa.state)]
    assert esa("hold", "add", "--task", "access-a", "--reason", "r", "--ttl", "1h", "--id", "h-a", *where).code == 0
    assert esa("hold", "add", "--task", "site-x", "--reason", "r", "--ttl", "1h", "--id", "h-s", *where).code == 0
    until = esa("hold", "add", "--task", "access-b", "--reason", "r", "--until", "2099-01-01T00:00:00Z", *where)
    assert until.code == 0

    released = esa("hold", "release", "--task", "access-a", *where)
    assert released.code == 0 and "h-a" in released.out
    assert sorted(h["id"] for h in json.loads(esa("hold", "list", "--json", *where).out))[-1] == "h-s"
    assert len(json.loads(esa("hold", "list", "--json", *where).out)) == 2

    unmanaged = esa("hold", "add", "--task", "nothing-*", "--reason", "r", "--ttl", "1h", *where)
    assert unmanaged.code == 2 and "nothing-*" in unmanaged.err
    past = esa("hold", "add", "--task", "access-a", "--reason", "r", "--until", "2020-01-01T00:00:00Z", *where)
    assert past.code == 2 and "until" in past.err
    unknown = esa("hold", "release", "--id", "no-such-hold", *where)
    assert unknown.code == 2 and "no-such-hold" in unknown.err
    none = esa("hold", "release", "--task", "access-a", *where)
    assert none.code == 0 and "no hold" in none.out
    assert len(list(esa.state.glob("*.json"))) == 2


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        (["--task", "acess-a"], "--task: 'acess-a' select(s) no managed task (close matches: access-a, access-b)"),
        (["--task", "access-a", "nothing-*"], "--task: 'nothing-*' select(s) no managed task"),
        (["--ttl", "0s"], "--ttl: duration '0s' must be greater than zero"),
        (["--until", "2020-01-01T00:00:00Z"], "--until: 2020-01-01T00:00:00Z is not in the future"),
        (["--reason", ""], "--reason: String should have at least 1 character"),
        (["--id", "no spaces"], "--id: hold id 'no spaces' is invalid"),
    ],
    ids=["task-typo", "task-glob", "ttl", "until", "reason", "id"],
)
def test_hold_add_names_the_flag_the_event_reader_refused(esa: Cli, flags: list[str], expected: str) -> None:
    """``hold add`` builds a hold event; its problems name the flag the operator typed, not the event's field."""
    given = {"--task": ["access-a"], "--ttl": ["1h"], "--reason": ["r"]}
    if "--until" in flags:
        del given["--ttl"]
    given[flags[0]] = flags[1:]
    argv = [part for flag, values in given.items() for part in (flag, *values)]
    result = esa("hold", "add", *argv, "--schedule", str(esa.schedule()), "--state-dir", str(esa.state))
    assert (result.code, result.out) == (2, "")
    assert result.err.startswith(expected) and result.err.count("\n") == 1, result.err
    assert "event" not in result.err
    assert not esa.state.exists()


def test_hold_add_with_a_bad_schedule_writes_nothing(esa: Cli) -> None:
    schedule = esa.schedule(SCHEDULE.replace("timezone: UTC", "timezone: Nowhere/Land"))
    where = ["--schedule", str(schedule), "--state-dir", str(esa.state)]
    result = esa("hold", "add", "--task", "access-a", "--reason", "r", "--ttl", "1h", *where)
    assert result.code == 2 and "Nowhere/Land" in result.err
    assert not esa.state.exists()
