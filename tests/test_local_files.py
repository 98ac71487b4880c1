"""Every local file the function reads is a regular file read within a byte limit (issue 20, section 2).

The crafted files are made by each test: devices (``/dev/zero``, ``/dev/urandom``) and symlinks to
them, FIFOs that no one writes to, sparse files of hundreds of megabytes (no disk used), folders
named like files. Whatever could hang or exhaust memory runs as a real ``esa-scheduler`` process
with a timeout and an address-space limit, and reports its peak memory, so a regression fails the
test instead of the machine.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from helpers import ONE_NIGHTLY_TASK, child_environment, endpoint_env, write_schedule

from esa_scheduler.edge.credentials import resolve_credentials
from esa_scheduler.emulator import Emulator
from esa_scheduler.errors import ConfigError

RUNNER = """
import resource, sys
limit = 1 << 30  # a reader that does not stop at its limit fails here, not on the machine
resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
from esa_scheduler.cli import main
code = main(sys.argv[1:])
# VmHWM, not ru_maxrss: the latter keeps the peak of the forking parent (pytest) across exec
peak = [line.split()[1] for line in open("/proc/self/status") if line.startswith("VmHWM:")]
sys.stderr.write(f"\\npeak-kb {peak[0]}\\n")
sys.exit(code)
"""
PEAK_KB = 150 * 1024
"""Far above what a refusal needs (about 40 MB), far below a 200 MB file read whole."""
SCHEDULE = ONE_NIGHTLY_TASK
AT = "2026-11-28T02:30:00Z"


@dataclass(frozen=True)
class Ran:
    code: int
    out: str
    err: str
    peak_kb: int

    @property
    def lines(self) -> list[str]:
        return [line for line in (self.out + self.err).splitlines() if line.strip() and not line.startswith("peak-kb")]


def esa(tmp: Path, *argv: str, env: dict[str, str] | None = None) -> Ran:
    """``esa-scheduler ARGV`` as a process in ``tmp`` with a clean environment (HOME there too)."""
    home = tmp / "home"
    home.mkdir(exist_ok=True)
    done = subprocess.run(
        [sys.executable, "-c", RUNNER, *argv],
        check=False,
        cwd=tmp,
        env=child_environment({"HOME": str(home), "LANG": "C.UTF-8", **(env or {})}),
        capture_output=True,
        text=True,
        timeout=60,
    )
    peak = [int(line.split()[1]) for line in done.stderr.splitlines() if line.startswith("peak-kb ")]
    return Ran(done.returncode, done.stdout, done.stderr, peak[0] if peak else -1)


def assert_refused(ran: Ran, *needles: str) -> None:
    """Exit 2 with one line naming the file and the problem, no traceback, little memory."""
    text = ran.out + ran.err
    assert "Traceback" not in text and "MemoryError" not in text, text[-3000:]
    assert ran.code == 2, f"exit {ran.code}:\n{text[-3000:]}"
    assert any(all(needle in line for needle in needles) for line in ran.lines), (needles, ran.lines)
    assert 0 < ran.peak_kb < PEAK_KB, f"peak memory {ran.peak_kb} KB"


def special(tmp: Path, kind: str, name: str) -> Path:
    """A file that is not a regular file, at ``tmp/name``."""
    path = tmp / name
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "symlink to a fifo":
        os.mkfifo(tmp / f"{name}.fifo")
        path.symlink_to(tmp / f"{name}.fifo")
    elif kind == "directory":
        path.mkdir()
    else:
        path.symlink_to(kind)  # a device
    return path


SPECIAL = ["/dev/zero", "/dev/urandom", "fifo", "symlink to a fifo"]
WORDS = {
    "/dev/zero": "a character device",
    "/dev/urandom": "a character device",
    "fifo": "a FIFO",
    "symlink to a fifo": "a FIFO",
    "directory": "a directory",
}


# --- schedule and ICS files ----------------------------------------------------------------------


def calendar_schedule(tmp: Path, ics: str) -> Path:
    return write_schedule(
        tmp,
        f"""\
        version: 1
        timezone: UTC
        tasks:
          - name: access-a
        calendars:
          ops: {{ics: {json.dumps(ics)}}}
        windows:
          - name: maintenance
            tasks: [access-a]
            calendar: ops
        """,
    )


@pytest.mark.parametrize("command", ["validate", "plan"])
@pytest.mark.parametrize("kind", SPECIAL)
def test_an_ics_that_is_no_regular_file_is_refused_in_one_line(tmp_path: Path, kind: str, command: str) -> None:
    ics = special(tmp_path, kind, "ops.ics")
    schedule = calendar_schedule(tmp_path, "ops.ics")
    ran = esa(tmp_path, command, "--schedule", str(schedule), *(["--at", AT] if command == "plan" else []))
    assert_refused(ran, "calendars.ops.ics", str(ics), WORDS[kind], "not a regular file")


def test_the_ics_as_written_directly_to_a_device_is_refused(tmp_path: Path) -> None:
    schedule = calendar_schedule(tmp_path, "/dev/zero")
    assert_refused(esa(tmp_path, "validate", "--schedule", str(schedule)), "/dev/zero", "a character device")


def test_an_ics_over_the_limit_is_refused_by_its_size(tmp_path: Path) -> None:
    (tmp_path / "ops.ics").touch()
    os.truncate(tmp_path / "ops.ics", 200 * 1024 * 1024)  # sparse: no disk, no memory
    schedule = calendar_schedule(tmp_path, "ops.ics")
    ran = esa(tmp_path, "validate", "--schedule", str(schedule))
    assert_refused(ran, "ops.ics", "file too large", "the ICS file limit is 16 MiB")


@pytest.mark.parametrize("kind", ["/dev/urandom", "fifo"])
def test_a_schedule_that_is_no_regular_file_is_refused(tmp_path: Path, kind: str) -> None:
    folder = tmp_path / "schedule"
    folder.mkdir()
    (folder / "base.yaml").write_text(SCHEDULE, encoding="utf-8")
    path = special(folder, kind, "more.yaml")  # in a folder: read (and refused), not skipped
    assert_refused(esa(tmp_path, "validate", "--schedule", str(folder)), str(path), WORDS[kind])
    assert_refused(esa(tmp_path, "validate", "--schedule", str(path)), str(path), WORDS[kind])


def test_an_event_file_that_is_a_fifo_is_refused(tmp_path: Path) -> None:
    schedule = write_schedule(tmp_path, SCHEDULE)
    event = special(tmp_path, "fifo", "event.json")
    ran = esa(tmp_path, "invoke", "--emulator", "--schedule", str(schedule), str(event))
    assert_refused(ran, str(event), "a FIFO")


def test_a_credentials_file_that_is_a_fifo_is_named_not_taken_for_missing(tmp_path: Path) -> None:
    (tmp_path / ".aliyun").mkdir()
    special(tmp_path / ".aliyun", "fifo", "config.json")
    with pytest.raises(ConfigError, match=r"^~/\.aliyun/config\.json: a FIFO \(named pipe\), not a regular file"):
        resolve_credentials(environ={}, home=tmp_path)


# --- the state folder ----------------------------------------------------------------------------


@pytest.fixture
def emulator() -> Iterator[Emulator]:
    with Emulator(tasks=[{"TaskName": "access-a", "Status": "online"}]) as running:
        yield running


def state_commands(tmp: Path, emulator: Emulator) -> dict[str, Ran]:
    """``hold list`` and ``run`` on the folder ``tmp/state``, ``run`` against the emulator."""
    schedule = write_schedule(tmp, SCHEDULE)
    where = ["--schedule", str(schedule), "--state-dir", str(tmp / "state")]
    return {
        "hold list": esa(tmp, "hold", "list", *where),
        "run": esa(tmp, "run", *where, "--at", AT, env=endpoint_env(emulator.url)),
    }


@pytest.mark.parametrize("kind", [*SPECIAL, "directory"])
def test_a_hold_file_that_is_no_regular_file_stops_reads_in_one_line(
    tmp_path: Path, emulator: Emulator, kind: str
) -> None:
    (tmp_path / "state").mkdir()
    path = special(tmp_path / "state", kind, "h-odd.json")
    for ran in state_commands(tmp_path, emulator).values():
        assert_refused(ran, str(path), WORDS[kind], f"remove it with: rm {path}")
    assert emulator.stats["total"] == 0, "the run acted on ESA"


def test_a_200_mb_hold_file_is_refused_without_reading_it(tmp_path: Path, emulator: Emulator) -> None:
    (tmp_path / "state").mkdir()
    path = tmp_path / "state" / "h-big.json"
    path.touch()
    os.truncate(path, 200 * 1024 * 1024)
    for ran in state_commands(tmp_path, emulator).values():
        assert_refused(ran, str(path), "file too large", "the hold file limit is 1 MiB", "rm ")
    assert emulator.stats["total"] == 0


def test_a_last_run_record_that_is_a_device_stops_the_run(tmp_path: Path, emulator: Emulator) -> None:
    (tmp_path / "state").mkdir()
    path = special(tmp_path / "state", "/dev/zero", "last-run.state")
    assert_refused(state_commands(tmp_path, emulator)["run"], str(path), "a character device", "rm ")
    assert emulator.stats["total"] == 0


def test_a_corrupt_hold_file_stops_the_run_naming_the_command_that_removes_it(
    tmp_path: Path, emulator: Emulator
) -> None:
    """Fail closed: the file may be an incident hold that keeps a task offline."""
    state = tmp_path / "state"
    state.mkdir()
    (state / "inc-7.json").write_text('{"id": "inc-7", "tasks": ["access-a"], "status": "offl', encoding="utf-8")
    for ran in state_commands(tmp_path, emulator).values():
        assert_refused(ran, f"{state / 'inc-7.json'}: unreadable hold file", f"rm {state / 'inc-7.json'}")
    assert emulator.stats["total"] == 0
    os.remove(state / "inc-7.json")  # what the line says to do
    assert state_commands(tmp_path, emulator)["run"].code == 0


def test_notification_state_that_is_a_fifo_is_a_warning_and_replaced(tmp_path: Path, emulator: Emulator) -> None:
    """Notifications come after the run has acted: a FIFO there must neither hang nor fail the run."""
    notify = "notify:\n  - name: ops\n    kind: webhook\n    url_env: OPS_HOOK\n"
    schedule = write_schedule(tmp_path, SCHEDULE + notify)
    (tmp_path / "state" / "notify").mkdir(parents=True)
    path = special(tmp_path / "state" / "notify", "fifo", "alerts.json")
    where = ["--schedule", str(schedule), "--state-dir", str(tmp_path / "state")]
    env = {**endpoint_env(emulator.url), "OPS_HOOK": "http://127.0.0.1:9/hook"}
    ran = esa(tmp_path, "run", *where, "--at", AT, "--log-format", "json", env=env)
    assert ran.code == 0 and "Traceback" not in ran.err, ran.err[-3000:]
    warned = [json.loads(line) for line in ran.err.splitlines() if "notify.state_unreadable" in line]
    assert warned and "a FIFO" in warned[0]["error"] and str(path) in warned[0]["error"], ran.err[-2000:]
    assert path.is_file() and not path.is_symlink(), "the next save did not replace the FIFO"


def test_the_reader_stops_at_its_limit(tmp_path: Path) -> None:
    from esa_scheduler.files import FileRefused, read_bounded

    regular = tmp_path / "small.txt"
    regular.write_bytes(b"x" * 10)
    assert read_bounded(regular, 10, "test file") == b"x" * 10
    with pytest.raises(FileRefused, match=r"small.txt: file too large \(10 bytes; the test file limit is 9 bytes\)"):
        read_bounded(regular, 9, "test file")
    status = Path("/proc/self/status")  # a regular file whose size says 0: only the read can stop it
    assert status.stat().st_size == 0
    with pytest.raises(FileRefused, match=r"file too large \(over 100 bytes"):
        read_bounded(status, 100, "test file")
