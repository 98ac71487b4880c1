"""``plan --ics`` output a reader cannot be fooled by (issue 20, section 3): no control character goes
out raw, and the feed is bounded in size and events like the HTML page, with a note when cut.

Each feed is parsed back with ``icalendar``; the large ones are written by a real process under an
address-space limit, as the unbounded feed of the issue took 8.7 GB to build.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import icalendar
import pytest
from helpers import child_environment, run_cli

from esa_scheduler.views import ics as feed

AT = "2027-01-04T00:00:00Z"
INJECTED = "ATTENDEE:mailto:evil@example.com"
RUNNER = """
import resource, sys
resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))
from esa_scheduler.cli import main
sys.exit(main(sys.argv[1:]))
"""


def schedule_with(tmp: Path, tasks: list[str], window_name: str, cron: str, duration: str) -> Path:
    lines = ["version: 1", "timezone: UTC", "tasks:", '  - pattern: "waf-*"', *(f'  - name: "{n}"' for n in tasks)]
    lines += [
        "windows:",
        f'  - name: "{window_name}"',
        '    tasks: ["*"]',
        f'    cron: "{cron}"',
        f"    duration: {duration}",
    ]
    (tmp / "ops.yaml").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return tmp / "ops.yaml"


def parsed(path: Path) -> icalendar.Calendar:
    calendar = icalendar.Calendar.from_ical(path.read_bytes())
    assert isinstance(calendar, icalendar.Calendar)
    return calendar


def test_no_control_character_goes_out_raw(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A bare CR in a window name started a new property for a reader that splits on CR; a task named
    with a vertical tab, a NEL or U+2028 did the same for Python's ``splitlines``."""
    schedule = schedule_with(tmp_path, [], f"night\\r{INJECTED}", "0 2 * * *", "1h")
    path = tmp_path / "feed.ics"
    odd = ["waf-a\x0bBEGIN:VEVENT", "waf-b\x85" + INJECTED, "waf-c\u2028END:VCALENDAR", "waf-d\x1b[31m\x7f"]
    args = ["plan", "--schedule", str(schedule), "--at", AT, "--days", "2", "--ics", str(path)]
    code, _, err = run_cli(capsys, *args, *(f"--task={name}" for name in odd))
    assert code == 0, err
    raw = path.read_bytes()
    text = raw.decode("utf-8")
    assert text.endswith("\r\n")
    for line in text[:-2].split("\r\n"):
        bad = [c for c in line if (ord(c) < 0x20 and c != "\t") or 0x7F <= ord(c) <= 0x9F or c in "\u2028\u2029"]
        assert bad == [], (line, bad)
    assert not any(line.lstrip().startswith(("ATTENDEE", "END:VCALENDAR ")) for line in text.splitlines())
    assert [line for line in text.splitlines() if line.startswith(("BEGIN:VEVENT", "END:VCALENDAR"))] == [
        "BEGIN:VEVENT",
        "BEGIN:VEVENT",
        "END:VCALENDAR",
    ]
    events = list(parsed(path).walk("VEVENT"))
    assert len(events) == 2 and not any("ATTENDEE" in event for event in events)
    summary = str(events[0]["SUMMARY"])
    assert f"window night\n{INJECTED}" in summary
    description = str(events[0]["DESCRIPTION"])
    assert "waf-a\ufffdBEGIN:VEVENT" not in description  # a VT is a line break, not a replaced character
    assert "waf-a\nBEGIN:VEVENT" in description and "waf-d\ufffd[31m\ufffd" in description


def esa(tmp: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    env = child_environment({"HOME": str(tmp), "LANG": "C.UTF-8"})
    return subprocess.run(
        [sys.executable, "-c", RUNNER, *argv], cwd=tmp, env=env, capture_output=True, text=True, check=False
    )


def test_a_feed_of_long_names_stays_under_its_size_budget_with_a_note(tmp_path: Path) -> None:
    """300 tasks with 1,000-character names (a 300 KB schedule), an event an hour for 60 days: each
    event listed every name in full, 430 MB in all."""
    names = [f"access-{n:03d}-" + "x" * 990 for n in range(300)]
    schedule = schedule_with(tmp_path, names, "hourly", "0 * * * *", "30m")
    assert 300_000 < schedule.stat().st_size < 400_000
    path = tmp_path / "feed.ics"
    ran = esa(tmp_path, "plan", "--schedule", str(schedule), "--at", AT, "--days", "60", "--ics", str(path))
    assert ran.returncode == 0, ran.stderr[-3000:]
    assert path.stat().st_size <= feed.FEED_BUDGET
    calendar = parsed(path)
    events = list(calendar.walk("VEVENT"))
    note = str(calendar["X-WR-CALDESC"])
    assert note == (
        f"This feed holds the first {len(events)} of 1440 events: its events would take the feed over its 5 MB "
        "size limit (fewer --days or a --task leave room for the others)."
    )
    assert str(calendar["DESCRIPTION"]) == note
    assert 100 < len(events) < 1440
    first = events[0]
    assert first.decoded("DTSTART").isoformat() == "2027-01-04T00:00:00+00:00"
    assert len(str(first["SUMMARY"])) < 3 * feed.NAME_CHARS + 100
    assert str(first["DESCRIPTION"]).endswith(" and 251 more")  # with the waf-* pattern's row
    assert "x" * feed.NAME_CHARS not in str(first["DESCRIPTION"])


def test_a_feed_holds_at_most_max_events_with_a_note(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    schedule = schedule_with(tmp_path, ["access-a"], "every-five-minutes", "*/5 * * * *", "1m")
    path = tmp_path / "feed.ics"
    args = ["plan", "--schedule", str(schedule), "--at", AT, "--days", "8", "--ics", str(path)]
    code, _, err = run_cli(capsys, *args)
    assert code == 0, err
    calendar = parsed(path)
    assert len(list(calendar.walk("VEVENT"))) == feed.MAX_EVENTS
    assert str(calendar["X-WR-CALDESC"]).startswith(
        f"This feed holds the first {feed.MAX_EVENTS} of 2304 events: more than {feed.MAX_EVENTS} events"
    )
