"""Writers of one state folder take its lock; readers take a hold file that vanished as released
(issue 20, section 2): concurrent ``hold add`` and ``hold release`` processes all do their work."""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from helpers import run_cli, write_schedule

from esa_scheduler.engine.holds import Hold
from esa_scheduler.errors import ConfigError
from esa_scheduler.invocation import holds as hold_store
from esa_scheduler.invocation import statefile
from esa_scheduler.invocation.holds import HoldStore
from esa_scheduler.invocation.statefile import write_atomic
from esa_scheduler.timeutil import now_to_the_second

SCHEDULE = """\
version: 1
timezone: UTC
tasks:
  - name: access-a
  - name: access-b
"""


def hold(hold_id: str, task: str = "access-a") -> Hold:
    now = now_to_the_second()
    return Hold(id=hold_id, tasks=(task,), status="offline", created_at=now, expires_at=now + timedelta(hours=1))


@pytest.fixture
def schedule(tmp_path: Path) -> Path:
    return write_schedule(tmp_path, SCHEDULE)


def lock_is_held(root: Path) -> bool:
    """Whether someone holds the folder's lock: a second descriptor cannot take it."""
    fd = os.open(root / statefile.LOCK_FILE, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


def test_a_hold_file_that_vanished_after_the_listing_counts_as_released(
    tmp_path: Path, schedule: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A name the listing saw whose file is gone by the time it is read (here for good: a dangling link)."""
    state = tmp_path / "state"
    HoldStore(state).save(hold("h-kept"))
    (state / "h-gone.json").symlink_to(state / "released-meanwhile.json")
    assert [h.id for h in HoldStore(state).active(now_to_the_second())] == ["h-kept"]
    code, out, err = run_cli(capsys, "hold", "list", "--schedule", str(schedule), "--state-dir", str(state))
    assert (code, err) == (0, "")
    assert "h-kept" in out and "h-gone" not in out


def test_writers_hold_the_folder_lock_while_they_read_and_write(
    tmp_path: Path, schedule: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    state = tmp_path / "state"
    HoldStore(state).save(hold("h-old", "access-b"))
    seen: list[tuple[str, bool]] = []
    active = HoldStore.active

    def checked_active(self: HoldStore, *args: object, **kwargs: object) -> list[Hold]:
        seen.append(("read", lock_is_held(state)))
        return active(self, *args, **kwargs)  # type: ignore[arg-type]

    def checked_write(path: Path, data: bytes) -> None:
        seen.append(("write", lock_is_held(state)))
        write_atomic(path, data)

    monkeypatch.setattr(HoldStore, "active", checked_active)
    monkeypatch.setattr(hold_store, "write_atomic", checked_write)
    where = ["--schedule", str(schedule), "--state-dir", str(state)]
    code, _, err = run_cli(
        capsys, "hold", "add", *where, "--task", "access-a", "--ttl", "1h", "--reason", "r", "--id", "h-new"
    )
    assert code == 0, err
    assert seen == [("read", True), ("write", True)]
    seen.clear()
    code, out, err = run_cli(capsys, "hold", "release", *where, "--id", "h-old")
    assert code == 0, err
    assert "released 1 hold(s): h-old" in out
    # release's own look at the holds (is the id there?) reads without the lock; its change reads under it
    assert seen == [("read", False), ("read", True)]
    assert not lock_is_held(state)
    assert [h.id for h in HoldStore(state).active(now_to_the_second())] == ["h-new"]


def test_a_writer_that_waits_too_long_for_the_lock_says_so_in_one_line(
    tmp_path: Path, schedule: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    state = tmp_path / "state"
    state.mkdir()
    monkeypatch.setattr(statefile, "LOCK_WAIT_S", 0.05)
    fd = os.open(state / statefile.LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX)  # another writer, stuck
    try:
        where = ["--schedule", str(schedule), "--state-dir", str(state)]
        code, out, err = run_cli(capsys, "hold", "add", *where, "--task", "access-a", "--ttl", "1h", "--reason", "r")
    finally:
        os.close(fd)
    assert (code, out) == (2, "")
    assert err.strip().splitlines()[-1] == (
        f"state folder {state}: another writer has held {state / statefile.LOCK_FILE} for over 0.05 s; "
        "try again once it has finished"
    )
    assert list(state.glob("*.json")) == []


def test_the_lock_is_reentrant_in_a_thread_and_exclusive_across_threads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A writer calling a writer (a run saving holds) takes it once; a ``serve`` thread waits its turn."""
    monkeypatch.setattr(statefile, "LOCK_WAIT_S", 0.05)
    refused: list[BaseException] = []

    def other_thread() -> None:
        try:
            with statefile.folder_lock(tmp_path):
                pass
        except ConfigError as exc:
            refused.append(exc)

    with statefile.folder_lock(tmp_path):
        with statefile.folder_lock(tmp_path):
            assert lock_is_held(tmp_path)
        assert lock_is_held(tmp_path)
        thread = threading.Thread(target=other_thread)
        thread.start()
        thread.join()
    assert len(refused) == 1 and "another writer" in str(refused[0])
    assert not lock_is_held(tmp_path)
    other_thread()
    assert len(refused) == 1


@pytest.fixture
def processes() -> Iterator[list[subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for process in started:
        if process.poll() is None:
            process.kill()
            process.wait()


@pytest.mark.slow
def test_forty_adds_and_ten_releases_at_once_all_happen(
    tmp_path: Path, schedule: Path, processes: list[subprocess.Popen[bytes]]
) -> None:
    """Real processes on one folder, as operators and an alerting hook would run them."""
    state = tmp_path / "state"
    store = HoldStore(state)
    for n in range(10):
        store.save(hold(f"rel-{n}", "access-b"))
    where = ["--schedule", str(schedule), "--state-dir", str(state)]
    esa = [sys.executable, "-m", "esa_scheduler"]
    commands = [
        [*esa, "hold", "add", *where, "--task", "access-a", "--ttl", "1h", "--reason", f"r{n}", "--id", f"add-{n}"]
        for n in range(40)
    ]
    for n in range(10):  # a release among every five processes started
        commands.insert(n * 5, [*esa, "hold", "release", *where, "--id", f"rel-{n}"])
    for command in commands:
        processes.append(subprocess.Popen(command, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE))
    outcomes = []
    for process in processes:
        out, err = process.communicate(timeout=300)
        outcomes.append((process.args, process.returncode, out.decode(), err.decode()))
    failed = [(args, code, err) for args, code, _, err in outcomes if code != 0 or "error" in err.lower()]
    assert failed == []
    released = [out for args, _, out, _ in outcomes if "release" in args]  # type: ignore[operator]
    assert sorted(released) == sorted(f"released 1 hold(s): rel-{n}\n" for n in range(10))
    assert sorted(h.id for h in store.active(now_to_the_second())) == sorted(f"add-{n}" for n in range(40))
