"""The CLI on a terminal: readable log lines on a TTY, JSON lines elsewhere, help for users, no secret.

The CLI runs as a real process (``python -m esa_scheduler``) whose stderr is either a pipe or a
pseudo-terminal from ``os.openpty``, against the ESA emulator on loopback.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import re
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest
from helpers import SETTING_PREFIXES, clean_environment, parse_lines, run_cli

from esa_scheduler import cli, logs
from esa_scheduler.emulator import Emulator, Faults

REPO = Path(__file__).resolve().parents[1]
NIGHT = "2026-11-28T02:30:00Z"
TEXT_LINE = re.compile(r"\d\d:\d\d:\d\dZ (DEBUG|INFO |WARN |ERROR) [a-z_]+\.[a-z_]+( \S.*)?")
SCHEDULE = """\
version: 1
timezone: UTC
tasks:
  - name: access-a
  - name: access-gone
  - pattern: "logs-*"
windows:
  - name: nightly
    tasks: ["access-*", "logs-*"]
    status: offline
    cron: "0 2 * * *"
    duration: 1h
"""


@dataclass(frozen=True)
class Output:
    code: int
    out: str
    err: str

    @property
    def both(self) -> str:
        return self.out + self.err


def run_process(command: list[str], env: dict[str, str], cwd: Path, terminal: str | None) -> Output:
    """Run ``command`` with stdout and stderr in files, except the one ``terminal`` names: a pseudo-terminal."""
    files = {name: cwd / f"{name}-{uuid.uuid4().hex}" for name in ("stdout", "stderr")}
    controller, device = os.openpty()
    with files["stdout"].open("wb") as stdout, files["stderr"].open("wb") as stderr:
        streams: dict[str, Any] = {"stdout": stdout, "stderr": stderr}
        if terminal is not None:
            streams[terminal] = device
        process = subprocess.Popen(command, stdin=subprocess.DEVNULL, env=env, cwd=cwd, **streams)
        os.close(device)
        chunks = []
        while True:
            try:
                chunk = os.read(controller, 65536)
            except OSError:  # EIO: the process closed the terminal's last descriptor
                break
            if not chunk:
                break
            chunks.append(chunk)
        os.close(controller)
        code = process.wait(timeout=60)
    seen = {name: path.read_text(encoding="utf-8") for name, path in files.items()}
    if terminal is not None:
        seen[terminal] = b"".join(chunks).decode().replace("\r\n", "\n")
    return Output(code, seen["stdout"], seen["stderr"])


@dataclass
class Operator:
    """A terminal user: a clean environment pointing at an emulator, running the real CLI process."""

    tmp: Path
    env: dict[str, str]

    @property
    def schedule(self) -> Path:
        return Path(self.env["ESA_SCHEDULE"])

    def __call__(self, *argv: str, tty: bool) -> Output:
        """Run ``esa-scheduler argv``; stderr is a pseudo-terminal when ``tty``, else a file."""
        command = [sys.executable, "-m", "esa_scheduler", *argv]
        return run_process(command, self.env, self.tmp, "stderr" if tty else None)


@dataclass(frozen=True)
class Keys:
    sts_id: str
    secret: str
    token: str


@pytest.fixture
def keys() -> Keys:
    tag = uuid.uuid4().hex
    return Keys(f"STS.term-{tag[:8]}", f"Sk{tag}Secret", f"CAIStoken{tag}")


@pytest.fixture
def emulator(keys: Keys) -> Iterator[Emulator]:
    """access-a online (goes offline at night), access-gone missing, and two tasks named after the secrets."""
    tasks = [
        {"TaskName": "access-a", "Status": "online"},
        {"TaskName": f"logs-{keys.secret}", "Status": "online"},
        {"TaskName": f"logs-{keys.token}", "Status": "online"},
    ]
    with Emulator(tasks=tasks, sts_credentials=[(keys.sts_id, keys.secret, keys.token)]) as running:
        yield running


def _operator_env(tmp_path: Path, emulator: Emulator, keys: Keys) -> dict[str, str]:
    env = {name: value for name, value in os.environ.items() if not name.startswith(SETTING_PREFIXES)}
    home = tmp_path / "home"
    home.mkdir()
    env.update(
        HOME=str(home),
        ESA_ENDPOINT=emulator.url,
        ESA_MAX_RPS="0",
        ESA_STATE_DIR=str(tmp_path / "state"),
        ESA_SCHEDULE=str(tmp_path / "schedule.yaml"),
        ALIBABA_CLOUD_ACCESS_KEY_ID=keys.sts_id,
        ALIBABA_CLOUD_ACCESS_KEY_SECRET=keys.secret,
        ALIBABA_CLOUD_SECURITY_TOKEN=keys.token,
    )
    (tmp_path / "schedule.yaml").write_text(SCHEDULE, encoding="utf-8")
    return env


@pytest.fixture
def operator(tmp_path: Path, emulator: Emulator, keys: Keys) -> Operator:
    return Operator(tmp_path, _operator_env(tmp_path, emulator, keys))


def assert_text_lines(err: str) -> list[str]:
    lines = [line for line in err.splitlines() if line.strip()]
    assert lines, "no log lines"
    for line in lines:
        assert TEXT_LINE.fullmatch(line), line
    return lines


def assert_no_secret(output: Output, keys: Keys) -> None:
    for name, hidden in (("secret", keys.secret), ("token", keys.token)):
        assert hidden not in output.both, f"the {name} was printed"


# --- --log-format ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("tty", "flag", "expected"),
    [(True, None, "text"), (False, None, "json"), (True, "json", "json"), (False, "text", "text")],
    ids=["tty-auto", "pipe-auto", "tty-json", "pipe-text"],
)
def test_log_format(
    operator: Operator, emulator: Emulator, keys: Keys, tty: bool, flag: str | None, expected: str
) -> None:
    """auto is text on a terminal and JSON lines on a pipe; the flag overrides both; stdout is the same table."""
    emulator.script_fault("access-a", "Throttling.User", count=1)
    chosen = ["--log-format", flag] if flag else []
    result = operator("run", "--schedule", str(operator.schedule), "--at", NIGHT, *chosen, tty=tty)
    assert result.code == 0, result.err
    assert "Traceback" not in result.err
    if expected == "json":
        events = parse_lines(result.err)
        assert {"level": "WARNING", "event": "api.retry"}.items() <= next(
            e for e in events if e["event"] == "api.retry"
        ).items()
        missing = next(e for e in events if e.get("action") == "missing")
        assert (missing["level"], missing["task"]) == ("WARNING", "access-gone")
        assert events[-1]["event"] == "run.summary"
    else:
        lines = assert_text_lines(result.err)
        assert any(line[10:].startswith("WARN  api.retry action=UpdateUserDeliveryTaskStatus") for line in lines), lines
        assert any(
            line[10:].startswith("WARN  task.result task=access-gone") and "action=missing" in line for line in lines
        )
        assert "ok=true" in lines[-1] and " run.summary " in lines[-1]
        assert "null" not in result.err and "run_id" not in result.err
    row = next(line for line in result.out.splitlines() if line.startswith("access-a "))
    assert row.split()[1:5] == ["-", "online", "offline", "updated"]
    assert emulator.status("access-a") == "offline"
    assert_no_secret(result, keys)


@pytest.mark.parametrize("tty", [True, False], ids=["tty", "pipe"])
def test_invoke_and_hold_follow_the_terminal_too(operator: Operator, keys: Keys, tty: bool) -> None:
    event = operator.tmp / "event.json"
    event.write_text(json.dumps({"action": "reconcile", "at": NIGHT, "dry_run": True}), encoding="utf-8")
    invoked = operator("invoke", str(event), tty=tty)
    held = operator("hold", "add", "--task", "access-a", "--ttl", "1h", "--reason", "INC-1", tty=tty)
    for result in (invoked, held):
        assert result.code == 0, result.err
        if tty:
            assert_text_lines(result.err)
        else:
            assert parse_lines(result.err)
        assert_no_secret(result, keys)
    assert json.loads(invoked.out)["counts"]["would_update"] >= 1
    assert "hold.created" in held.err


def test_the_function_compute_path_writes_json_lines_even_on_a_terminal(operator: Operator, keys: Keys) -> None:
    """FC's handler never asks for a format: JSON lines on stdout, whatever stdout is."""
    script = 'import handler; handler.handler(b\'{"action": "reconcile", "dry_run": true}\', None)'
    env = {**operator.env, "PYTHONPATH": str(REPO)}
    result = run_process([sys.executable, "-c", script], env, operator.tmp, "stdout")
    assert result.code == 0, result.err
    events = parse_lines(result.out)
    assert events[0]["event"] == "run.start" and events[-1]["event"] == "run.summary"
    assert_no_secret(result, keys)


def test_the_format_chosen_by_the_cli_ends_with_the_command(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """An in-process ``main`` with text logs leaves later library runs on JSON lines."""
    clean_environment(monkeypatch, tmp_path)
    schedule = tmp_path / "schedule.yaml"
    schedule.write_text(SCHEDULE, encoding="utf-8")
    code, _, err = run_cli(
        capsys,
        "run",
        "--emulator",
        "--schedule",
        str(schedule),
        "--at",
        NIGHT,
        "--state-dir",
        str(tmp_path / "s"),
        "--log-format",
        "text",
    )
    assert code == 0, err
    assert_text_lines("\n".join(line for line in err.splitlines() if not line.startswith("--emulator")))
    stream = io.StringIO()
    logs.RunLog(stream=stream).info("after.cli", value=1)
    assert json.loads(stream.getvalue())["event"] == "after.cli"


# --- text lines -------------------------------------------------------------------------------


def test_a_terminal_hears_what_happened_and_json_keeps_every_decision(operator: Operator, keys: Keys) -> None:
    """At night all three tasks would change (and access-gone is missing); at noon they are all as
    they should be: the terminal hears only of the missing one, JSON lines still have all three."""
    noon = "2026-11-28T12:00:00Z"
    text = operator("run", "--schedule", str(operator.schedule), "--at", NIGHT, "--dry-run", tty=True)
    json_lines = operator("run", "--schedule", str(operator.schedule), "--at", noon, "--dry-run", tty=False)
    quiet = operator("run", "--schedule", str(operator.schedule), "--at", noon, "--dry-run", tty=True)
    results = [line for line in assert_text_lines(text.err) if " task.result " in line]
    assert {line.split()[3] for line in results} == {"task=access-gone", "task=access-a", f"task=logs-{logs.MASK}"}
    quiet_results = [line for line in assert_text_lines(quiet.err) if " task.result " in line]
    assert [line.split()[3] for line in quiet_results] == ["task=access-gone"], "only the missing task is news"
    assert "unchanged" in quiet.out, "the table still lists every task"
    unchanged = [e for e in parse_lines(json_lines.err) if e["event"] == "task.result" and e["action"] == "unchanged"]
    assert len(unchanged) == 3


def test_text_lines_are_masked_exactly_like_json_lines() -> None:
    secret = f"text-secret-{uuid.uuid4().hex}"
    logs.register_secret(secret)
    fields: dict[str, Any] = {
        "error": f"denied: key {secret}\nsecond line",
        "tasks": ["a", f"b-{secret}"],
        "at": datetime(2027, 3, 28, 1, 0, tzinfo=timezone.utc),
        "site_id": None,
        "attempt": 2,
        "note": "ok\u202e\x9b[2J",
    }
    rendered = {}
    for choice in ("text", "json"):
        stream = io.StringIO()
        with logs.log_format(choice):
            logs.RunLog(stream=stream).warning("api.retry", **fields)
        rendered[choice] = stream.getvalue()
        assert secret not in rendered[choice]
        assert rendered[choice].count(logs.MASK) == 2
        assert rendered[choice].count("\n") == 1
    text = rendered["text"].rstrip("\n")
    assert TEXT_LINE.fullmatch(text), text
    assert " WARN  api.retry error=" in text
    assert "at=2027-03-28T01:00:00Z attempt=2" in text
    assert "site_id" not in text
    assert 'note="ok\\u202e\\u009b[2J"' in text
    assert json.loads(rendered["json"])["error"] == "denied: key ***\nsecond line"


# --- no credential on any output ----------------------------------------------------------------


def test_secrets_in_task_names_never_reach_stdout_or_stderr(operator: Operator, keys: Keys) -> None:
    """Tasks named after the secret and the token: table, JSON summary, text and JSON logs, plan, holds."""
    tty = True
    outputs = [
        operator("run", "--schedule", str(operator.schedule), "--at", NIGHT, "--dry-run", tty=tty),
        operator("run", "--schedule", str(operator.schedule), "--at", NIGHT, "--json", "--log-format", "json", tty=tty),
        operator(
            "plan",
            "--schedule",
            str(operator.schedule),
            "--at",
            NIGHT,
            "--task",
            f"logs-{keys.secret}",
            "--json",
            tty=tty,
        ),
        operator("plan", "--schedule", str(operator.schedule), "--at", NIGHT, "--task", f"logs-{keys.token}", tty=tty),
        operator("hold", "add", "--task", "access-a", "--ttl", "1h", "--reason", f"leaked {keys.secret}", tty=tty),
        operator("hold", "list", tty=tty),
        operator("hold", "list", "--json", tty=tty),
    ]
    for result in outputs:
        assert result.code == 0, result.err
        assert_no_secret(result, keys)
    table, summary, plan_json, plan_text, _, holds, holds_json = outputs
    assert f"logs-{logs.MASK}" in table.out
    assert json.loads(summary.out)["counts"]["updated"] == 3
    masked_names = {line["task"] for line in parse_lines(summary.err) if line["event"] == "task.result"}
    assert masked_names == {"access-a", "access-gone", f"logs-{logs.MASK}"}
    assert [t["name"] for t in json.loads(plan_json.out)["tasks"]] == ["access-a", "access-gone", f"logs-{logs.MASK}"]
    assert f"logs-{logs.MASK}" in plan_text.out
    assert f"leaked {logs.MASK}" in holds.out
    assert json.loads(holds_json.out)[0]["reason"] == f"leaked {logs.MASK}"


@pytest.mark.parametrize("tty", [True, False], ids=["tty", "pipe"])
def test_secrets_in_error_messages_are_masked(operator: Operator, keys: Keys, tty: bool) -> None:
    """Bad input that quotes the secret (a path, an instant) still gets its one-line error, masked; so
    does the message of a state folder that cannot be created."""
    missing = operator("run", "--schedule", str(operator.tmp / keys.secret / "schedule.yaml"), tty=tty)
    bad_at = operator("plan", "--schedule", str(operator.schedule), "--at", keys.token, tty=tty)
    for result in (missing, bad_at):
        assert result.code == 2
        assert result.out == ""
        problems = [line for line in result.err.splitlines() if not line.startswith("{") and not TEXT_LINE.match(line)]
        assert len(problems) == 1 and logs.MASK in problems[0], result.err
        assert "Traceback" not in result.err
        assert_no_secret(result, keys)
    not_a_folder = operator.tmp / keys.secret
    not_a_folder.write_text("a file where the state folder should be", encoding="utf-8")
    state = str(not_a_folder / "state")
    refused = operator(
        "hold", "add", "--task", "access-a", "--ttl", "1h", "--reason", "x", "--state-dir", state, tty=tty
    )
    assert refused.code == 2 and "Traceback" not in refused.err
    assert refused.err.splitlines() == [
        f"state folder {state} is unusable: {not_a_folder} is a file (--state-dir or ESA_STATE_DIR)".replace(
            keys.secret, logs.MASK
        )
    ]
    assert_no_secret(refused, keys)


def test_a_secret_written_in_pieces_is_still_masked() -> None:
    secret = f"piece-secret-{uuid.uuid4().hex}"
    logs.register_secret(secret)
    inner = io.StringIO()
    stream = logs.MaskedStream(inner)
    stream.write(f"key={secret[:7]}")
    stream.write(f"{secret[7:]}\nnext {secret[:3]}")
    assert inner.getvalue() == f"key={logs.MASK}\n"
    stream.write(secret[3:])
    stream.flush()
    assert inner.getvalue() == f"key={logs.MASK}\nnext {logs.MASK}"


# --- help and packaging -----------------------------------------------------------------------


def _parsers(
    parser: argparse.ArgumentParser, name: str = "esa-scheduler"
) -> Iterator[tuple[str, argparse.ArgumentParser]]:
    yield name, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub_name, sub in action.choices.items():
                yield from _parsers(sub, f"{name} {sub_name}")


def _module_docstrings() -> list[str]:
    sentences = []
    for path in (REPO / "esa_scheduler").rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        docstring = text.split('"""')[1] if text.startswith('"""') else ""
        sentences += [s.strip() for s in re.split(r"[.:;]\s", " ".join(docstring.split())) if len(s.strip()) > 25]
    return sentences


def test_help_speaks_to_users(capsys: pytest.CaptureFixture[str]) -> None:
    """Every command's --help has a description and help for every option, and quotes no docstring."""
    internal = _module_docstrings()
    assert internal
    commands = list(_parsers(cli.build_parser()))
    assert len(commands) == 14
    for name, parser in commands:
        code, out, _ = run_cli(capsys, *name.split()[1:], "--help")
        assert code == 0, name
        assert parser.description, f"{name} has no description"
        flat = " ".join(out.split())
        for sentence in internal:
            assert sentence not in flat, f"{name} --help quotes a docstring: {sentence!r}"
        for marker in ("``", "UserError", "esa_scheduler.", "docstring"):
            assert marker not in out, f"{name} --help mentions {marker!r}"
        undocumented = [
            a.option_strings or a.dest
            for a in parser._actions
            if not a.help and not isinstance(a, argparse._SubParsersAction)
        ]
        assert undocumented == [], f"{name}: {undocumented}"
    logs_flag = [name for name, parser in commands if any("--log-format" in a.option_strings for a in parser._actions)]
    assert logs_flag == [
        "esa-scheduler run",
        "esa-scheduler invoke",
        "esa-scheduler serve",
        "esa-scheduler hold add",
        "esa-scheduler hold release",
    ]


def test_the_installed_package_declares_an_spdx_license() -> None:
    """The SPDX string form (core metadata 2.4), not the deprecated table that makes setuptools warn."""
    meta = metadata.metadata("esa-scheduler")
    assert meta["License-Expression"] == "Apache-2.0"
    assert meta.get_all("License") is None


def test_server_text_cannot_drive_the_terminal(tmp_path: Path, keys: Keys) -> None:
    """A task name with escape sequences and a line break (any server or file may send one) is
    shown escaped in the table, the plan and the text log: the terminal receives no control byte."""
    hostile = "logs-\x1b]0;owned\x07\x1b[2J\nfake row"
    with Emulator(
        tasks=[{"TaskName": hostile, "Status": "online"}], sts_credentials=[(keys.sts_id, keys.secret, keys.token)]
    ) as running:
        operator = Operator(tmp_path, _operator_env(tmp_path, running, keys))
        ran = operator("run", "--schedule", str(operator.schedule), "--at", NIGHT, tty=True)
        planned = operator("plan", "--schedule", str(operator.schedule), "--at", NIGHT, "--task", hostile, tty=True)
        assert running.status(hostile) == "offline"
    escaped = "logs-\\u001b]0;owned\\u0007\\u001b[2J\\u000afake row"
    for result in (ran, planned):
        assert result.code == 0, result.err
        assert not any((ord(c) < 32 and c != "\n") or c == "\x7f" for c in result.both), repr(result.both)
        assert not any(line.startswith("fake row") for line in result.out.splitlines())
    assert any(line.startswith(escaped) and "updated" in line for line in ran.out.splitlines()), ran.out
    assert escaped in planned.out
    assert '"logs-\\u001b]0;owned\\u0007\\u001b[2J\\nfake row"' in ran.err, "the text log quotes it as JSON"


@pytest.mark.parametrize("tty", [True, False], ids=["tty", "pipe"])
def test_errors_that_echo_credentials_reach_no_output(
    operator: Operator, emulator: Emulator, keys: Keys, tty: bool
) -> None:
    """A server whose errors quote the secret and the token, failing every call one way or another:
    the table, the --json summary and both log forms carry neither."""
    emulator.faults = Faults(
        echo_credentials=True, internal_error_rate=0.5, too_many_requests_rate=0.3, unavailable_rate=0.2, seed=7
    )
    schedule = str(operator.schedule)
    table = operator("run", "--schedule", schedule, "--at", NIGHT, "--deadline", "8", tty=tty)
    summary = operator("run", "--schedule", schedule, "--at", NIGHT, "--deadline", "8", "--json", tty=tty)
    for result in (table, summary):
        assert result.code == 1 and "Traceback" not in result.both
        assert_no_secret(result, keys)
        assert logs.MASK in result.both, "the echoed credentials were there to be masked"
    assert "FAILED" in table.out
    assert json.loads(summary.out)["ok"] is False
