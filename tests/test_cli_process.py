"""The CLI as a process among others: a reader that stops early, a stdout closed from the start, and
the ``emulator`` command whose ``export`` lines an operator pastes into another shell.

Every command runs as a real process (``python -m esa_scheduler``) with real pipes, in an environment
without ALIBABA_CLOUD_*/ESA_*/FC_* settings and with a HOME of its own.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from helpers import ONE_NIGHTLY_TASK, write_schedule

from esa_scheduler.edge.credentials import Credentials
from esa_scheduler.edge.signer import AcsV3Auth
from esa_scheduler.emulator import API_VERSION, EMULATOR_ACCESS_KEY_ID, EMULATOR_ACCESS_KEY_SECRET
from esa_scheduler.invocation.statefile import LOCK_FILE

REPO = Path(__file__).resolve().parents[1]
SAMPLE = str(REPO / "schedule" / "sample.yaml")
ESA = [sys.executable, "-m", "esa_scheduler"]
NIGHT = "2026-11-28T02:30:00Z"
SCHEDULE = ONE_NIGHTLY_TASK


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    """The test process's environment (faketime's variables included) without any ESA configuration."""
    home = tmp_path / "home"
    home.mkdir()
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("ALIBABA_CLOUD_", "ESA_", "FC_"))}
    clean.pop("PYTHONUNBUFFERED", None)  # buffered, as a terminal user runs it
    return {**clean, "HOME": str(home), "ESA_STATE_DIR": str(tmp_path / "state")}


def esa(env: dict[str, str], cwd: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    return shell(env, cwd, '"$@"', *ESA, *argv)


def shell(env: dict[str, str], cwd: Path, script: str, *argv: str) -> subprocess.CompletedProcess[str]:
    """``script`` run by bash, as an operator's shell runs a line, with ``argv`` as ``"$@"``."""
    command = ["bash", "-c", script, "esa-scheduler", *argv]
    return subprocess.run(command, env=env, cwd=cwd, capture_output=True, text=True, timeout=120, check=False)


# --- a reader that stops early --------------------------------------------------------------------

QUIET = {
    "schema": ["schema"],
    "plan": ["plan", "--schedule", SAMPLE, "--at", NIGHT, "--horizon", "30d"],
    "plan-json": ["plan", "--schedule", SAMPLE, "--at", NIGHT, "--json"],
    "hold-list": ["hold", "list", "--schedule", SAMPLE],
    "help": ["--help"],
}


@pytest.mark.parametrize("argv", list(QUIET.values()), ids=list(QUIET))
def test_a_reader_gone_before_the_first_line_ends_the_command_quietly(
    env: dict[str, str], tmp_path: Path, argv: list[str]
) -> None:
    """The pipe's read end is closed before the command writes, so every write meets EPIPE."""
    if argv[0] == "hold":  # a hold to list
        added = esa(
            env, tmp_path, "hold", "add", "--schedule", SAMPLE, "--task", "waf-*", "--ttl", "1h", "--reason", "r"
        )
        assert added.returncode == 0, added.stderr
    process = subprocess.Popen([*ESA, *argv], env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert process.stdout is not None and process.stderr is not None
    process.stdout.close()
    err = process.stderr.read().decode()
    process.stderr.close()
    assert (process.wait(timeout=120), err) == (0, "")


def test_a_command_whose_reader_left_still_does_its_work(env: dict[str, str], tmp_path: Path) -> None:
    argv = ["hold", "add", "--schedule", SAMPLE, "--task", "waf-*", "--ttl", "1h", "--reason", "r", "--id", "h-1"]
    process = subprocess.Popen([*ESA, *argv], env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert process.stdout is not None and process.stderr is not None
    process.stdout.close()
    err = process.stderr.read().decode()
    process.stderr.close()
    assert process.wait(timeout=120) == 0
    assert [json.loads(line)["event"] for line in err.splitlines()] == ["hold.created"]
    assert [p.name for p in (tmp_path / "state").glob("*.json")] == ["h-1.json"]


@pytest.mark.parametrize(
    ("command", "lines"),
    [
        (f"{shlex.join(QUIET['schema'])} | head -2", 2),
        (f"{shlex.join(QUIET['plan'])} | head -1", 1),
        (f"{shlex.join(QUIET['plan-json'])} | head -c 10", 0),
    ],
    ids=["schema", "plan", "plan-json"],
)
def test_head_in_a_pipefail_pipeline(env: dict[str, str], tmp_path: Path, command: str, lines: int) -> None:
    """Whether ``head`` leaves before or after the last write, the pipeline succeeds and stderr stays empty."""
    done = shell(env, tmp_path, f"set -o pipefail; {shlex.join(ESA)} {command}")
    assert (done.returncode, done.stderr) == (0, "")
    assert done.stdout.count("\n") == lines


def test_a_stdout_closed_from_the_start_is_no_error(env: dict[str, str], tmp_path: Path) -> None:
    """``>&-``: Python gives no stdout at all; the command runs as if it wrote to /dev/null.

    Not under faketime: libfaketime opens the clock it shares with the whole suite on the first free
    descriptor, which here is the closed stdout, so the command would print into that clock and
    every process started after it would read a time beyond any date. Neither command reads the clock
    for what is checked here.
    """
    env = {name: value for name, value in env.items() if name != "LD_PRELOAD" and not name.startswith("FAKETIME")}
    schema = shell(env, tmp_path, '"$@" >&-', *ESA, "schema")
    assert (schema.returncode, schema.stderr) == (0, "")
    argv = ["hold", "add", "--schedule", SAMPLE, "--task", "waf-*", "--ttl", "1h", "--reason", "r", "--id", "h-2"]
    hold = shell(env, tmp_path, '"$@" >&-', *ESA, *argv)
    assert hold.returncode == 0, hold.stderr
    assert [p.name for p in (tmp_path / "state").iterdir() if p.name != LOCK_FILE] == ["h-2.json"]


# --- the emulator command ---------------------------------------------------------------------------


@contextmanager
def emulator_process(env: dict[str, str], *argv: str) -> Iterator[list[str]]:
    """``esa-scheduler emulator ARGV`` until the block ends; yields the lines it printed on starting."""
    process = subprocess.Popen(
        [*ESA, "emulator", "--port", "0", *argv], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    watchdog = threading.Timer(60, process.kill)
    watchdog.start()
    try:
        assert process.stdout is not None
        lines = [process.stdout.readline().rstrip("\n") for _ in range(5)]
        yield lines
    finally:
        watchdog.cancel()
        process.terminate()
        process.wait(timeout=30)
        for stream in (process.stdout, process.stderr):
            assert stream is not None
            stream.close()


def test_the_emulators_export_lines_work_when_pasted_into_a_shell(env: dict[str, str], tmp_path: Path) -> None:
    tasks = tmp_path / "tasks.json"
    tasks.write_text(json.dumps([{"TaskName": "access-a", "Status": "online"}]))
    schedule = write_schedule(tmp_path, SCHEDULE)
    # pasted once before: its own test secret in the environment is still printed, not masked
    with emulator_process(
        {**env, "ALIBABA_CLOUD_ACCESS_KEY_SECRET": EMULATOR_ACCESS_KEY_SECRET}, "--tasks", str(tasks)
    ) as lines:
        listening = re.fullmatch(r"listening on (http://127\.0\.0\.1:\d+)", lines[0])
        assert listening, lines
        url = listening.group(1)
        exports = lines[1:4]
        assert exports == [
            f"export ESA_ENDPOINT={url}",
            f"export ALIBABA_CLOUD_ACCESS_KEY_ID={EMULATOR_ACCESS_KEY_ID}",
            f"export ALIBABA_CLOUD_ACCESS_KEY_SECRET={EMULATOR_ACCESS_KEY_SECRET}",
        ]
        assert lines[4].startswith("# ")
        run = f"{shlex.join(ESA)} run --schedule {shlex.quote(str(schedule))} --at {NIGHT} --json"
        done = shell(env, tmp_path, "\n".join([*lines[1:], run]))  # the lines as pasted, then the command
        assert done.returncode == 0, done.stderr
        assert "emulator" not in done.stderr  # the live one, not an embedded stand-in
        summary = json.loads(done.stdout)
        assert (summary["counts"]["updated"], summary["api_calls"]) == (1, 2)
        with httpx.Client(trust_env=False) as client:
            stats = client.get(f"{url}/_emulator/stats").json()
        assert stats["by_action"]["UpdateUserDeliveryTaskStatus"] == 1


def test_the_emulator_never_prints_a_secret_it_was_given(env: dict[str, str]) -> None:
    secret = "operator-chosen-secret-0123"
    with emulator_process(env, "--access-key-id", "ops-key", "--access-key-secret", secret) as lines:
        assert lines[2:4] == [
            "export ALIBABA_CLOUD_ACCESS_KEY_ID=ops-key",
            "export ALIBABA_CLOUD_ACCESS_KEY_SECRET='<the value of --access-key-secret>'",
        ]
        assert not [line for line in lines if secret in line]


def test_the_error_rate_help_says_what_the_emulator_injects(env: dict[str, str], tmp_path: Path) -> None:
    helped = esa({**env, "COLUMNS": "1000"}, tmp_path, "emulator", "--help")  # one line per option
    described = {(code, int(status)) for code, status in re.findall(r"(\w+) \(HTTP (\d{3})", helped.stdout)}
    assert len(described) == 2, helped.stdout
    assert "signature check" in helped.stdout
    credentials = Credentials(EMULATOR_ACCESS_KEY_ID, EMULATOR_ACCESS_KEY_SECRET)
    seen: set[tuple[str, int]] = set()
    with emulator_process(env, "--error-rate", "1", "--seed", "7") as lines, httpx.Client(trust_env=False) as client:
        url = lines[0].removeprefix("listening on ")
        for _ in range(40):
            request = httpx.Request(
                "GET",
                f"{url}/",
                params={"TaskName": "any"},
                headers={"x-acs-action": "GetUserDeliveryTask", "x-acs-version": API_VERSION},
            )
            AcsV3Auth(credentials).sign(request)
            answer = client.send(request)
            seen.add((answer.json()["Code"], answer.status_code))
        unsigned = client.get(f"{url}/", headers={"x-acs-action": "GetUserDeliveryTask", "x-acs-version": API_VERSION})
    assert seen == described
    assert (unsigned.json()["Code"], unsigned.status_code) not in described
