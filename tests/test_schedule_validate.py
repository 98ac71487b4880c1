"""``esa-scheduler validate``: every error of the issue exits 2 with one line per problem naming the
file, ``windows[i] (name).field`` where it applies, and the bad value; warnings exit 0."""

from __future__ import annotations

import re
import textwrap
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from helpers import iso, run_cli, write_schedule

# --------------------------------------------------------------------------- helpers


AT = "2027-01-10T12:00:00Z"
"""The instant validate's warnings look ahead from, unless a test says otherwise: never the real clock."""


def validate(capsys: pytest.CaptureFixture[str], schedule: Path) -> tuple[int, list[str]]:
    code, out, err = run_cli(capsys, "validate", "--schedule", str(schedule), "--at", AT)
    text = out + err
    assert "Traceback" not in text
    return code, [line for line in text.splitlines() if line.strip()]


def line_with(lines: list[str], *needles: str) -> str:
    """The one output line that contains every needle (problems are one line each)."""
    found = [line for line in lines if all(needle in line for needle in needles)]
    assert found, f"no line contains all of {needles!r}:\n" + "\n".join(lines)
    return found[0]


# A valid file; the cases below change one thing each.
BASE = textwrap.dedent(
    """
    version: 1
    timezone: Europe/Berlin
    default_status: online
    tasks:
      - name: access-logs-prod
      - pattern: "waf-*"
      - name: site-logs
        site_id: 1234567890
        default_status: offline
    windows:
      - name: early
        tasks: [access-logs-prod]
        cron: "0 1 * * *"
        duration: 30m
      - name: nightly
        tasks: [access-logs-prod, "waf-*"]
        status: offline
        priority: 0
        cron: "30 2 * * *"
        duration: 1h
"""
).lstrip()


def mutate(old: str, new: str) -> str:
    assert old in BASE, old
    return BASE.replace(old, new, 1)


# --------------------------------------------------------------------------- valid schedules


def test_valid_schedule_exits_0_with_one_line_summary(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_schedule(tmp_path, BASE)
    code, lines = validate(capsys, tmp_path)
    assert code == 0
    assert len(lines) == 1, lines


def test_issue_example_schedule_is_valid(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_schedule(
        tmp_path,
        """
        version: 1
        timezone: Europe/Berlin          # IANA name, default for this file's windows; default UTC
        default_status: online           # managed task outside every window; default online
        tasks:                           # the managed delivery tasks; nothing else is ever touched
          - name: access-logs-prod       # exact task name
          - pattern: "waf-*"             # shell-style glob over the task names ESA lists
          - name: site-logs
            site_id: 1234567890          # a site-level delivery task (optional)
            default_status: offline      # per-task override (optional)
        windows:
          - name: nightly                # unique across all files
            tasks: [access-logs-prod, "waf-*"]   # exact names or globs
            status: offline              # state during the window; default offline
            priority: 0                  # higher wins where windows overlap; default 0
            cron: "30 2 * * *"           # 5-field cron
            duration: 1h                 # elapsed time
            timezone: Europe/Berlin      # optional; else the file's
            skip_dates: [2026-12-25]     # optional
            active_from: 2026-12-01      # optional local date bounds (inclusive)
            active_until: 2027-06-30
          - name: weekend-freeze
            tasks: ["waf-*"]
            cron: "0 22 * * fri"
            end_cron: "0 6 * * mon"      # instead of duration
          - name: migration
            tasks: ["*"]
            start: "2026-12-05T01:00:00"             # one-off window; naive = wall clock
            end: "2026-12-05T05:00:00+00:00"         # an explicit offset or Z is also accepted
        """,
    )
    code, lines = validate(capsys, tmp_path)
    assert code == 0, lines
    assert lines


@pytest.mark.parametrize("duration", ["1h30m", "90s", "2d", "PT1H30M", "P1D", "1d12h"])
def test_valid_duration_spellings(tmp_path: Path, capsys: pytest.CaptureFixture[str], duration: str) -> None:
    write_schedule(tmp_path, mutate("duration: 1h", f"duration: {duration}"))
    code, lines = validate(capsys, tmp_path)
    assert code == 0, lines


@pytest.mark.parametrize(
    "cron",
    ["0 12 L * *", "0 12 * * 5#2", "0 12 * * L5", "*/15 8-18 * * mon-fri", "0 0 1 jan,jul *", "30 2 * * sun"],
)
def test_valid_cron_syntax(tmp_path: Path, capsys: pytest.CaptureFixture[str], cron: str) -> None:
    write_schedule(tmp_path, mutate('cron: "30 2 * * *"', f'cron: "{cron}"'))
    code, lines = validate(capsys, tmp_path)
    assert code == 0, lines


# --------------------------------------------------------------------------- errors (exit 2)

# (description, yaml, needles that must all appear on one output line besides the file name)
ERRORS: list[tuple[str, str, tuple[str, ...]]] = [
    (
        "unknown window key",
        mutate("duration: 1h", "duration: 1h\n    durtion: 2h"),
        ("windows[1] (nightly)", "durtion"),
    ),
    ("unknown top-level key", mutate("default_status: online", "default_status: online\ntimezon: UTC"), ("timezon",)),
    (
        "unknown task key",
        mutate("default_status: offline\n", "default_status: offline\n    side_id: 1\n"),
        ("side_id",),
    ),
    ("bad cron value", mutate('cron: "30 2 * * *"', 'cron: "61 * * * *"'), ("windows[1] (nightly).cron", "61 * * * *")),
    ("cron with 4 fields", mutate('cron: "30 2 * * *"', 'cron: "30 2 * *"'), ("windows[1] (nightly).cron", "30 2 * *")),
    (
        "cron with 6 fields",
        mutate('cron: "30 2 * * *"', 'cron: "0 30 2 * * *"'),
        ("windows[1] (nightly).cron", "0 30 2 * * *"),
    ),
    ("bad day name", mutate('cron: "30 2 * * *"', 'cron: "30 2 * * funday"'), ("windows[1] (nightly).cron", "funday")),
    ("bad end_cron", mutate("duration: 1h", 'end_cron: "0 25 * * *"'), ("windows[1] (nightly).end_cron", "0 25 * * *")),
    (
        "unknown file time zone",
        mutate("timezone: Europe/Berlin", "timezone: Europe/Berlinn"),
        ("timezone", "Europe/Berlinn"),
    ),
    (
        "unknown window time zone",
        mutate("duration: 1h", "duration: 1h\n    timezone: Mars/Olympus"),
        ("windows[1] (nightly).timezone", "Mars/Olympus"),
    ),
    (
        "both duration and end_cron",
        mutate("duration: 1h", 'duration: 1h\n    end_cron: "0 6 * * *"'),
        ("windows[1] (nightly)", "duration", "end_cron"),
    ),
    (
        "neither duration nor end_cron",
        mutate("    duration: 1h\n", ""),
        ("windows[1] (nightly)", "duration", "end_cron"),
    ),
    ("zero duration", mutate("duration: 1h", "duration: 0s"), ("windows[1] (nightly).duration", "0s")),
    ("zero ISO duration", mutate("duration: 1h", "duration: PT0S"), ("windows[1] (nightly).duration", "PT0S")),
    ("negative duration", mutate("duration: 1h", 'duration: "-1h"'), ("windows[1] (nightly).duration", "-1h")),
    ("garbage duration", mutate("duration: 1h", "duration: soon"), ("windows[1] (nightly).duration", "soon")),
    (
        "one-off end equal to start",
        mutate(
            '    cron: "30 2 * * *"\n    duration: 1h\n',
            '    start: "2027-05-01T10:00:00"\n    end: "2027-05-01T10:00:00"\n',
        ),
        ("windows[1] (nightly)", "end"),
    ),
    (
        "one-off end before start (aware end)",
        mutate(
            '    cron: "30 2 * * *"\n    duration: 1h\n',
            # 10:00 CEST = 08:00Z; the end 07:00Z is before it
            '    start: "2027-05-01T10:00:00"\n    end: "2027-05-01T07:00:00Z"\n',
        ),
        ("windows[1] (nightly)", "end"),
    ),
    (
        "one-off without end",
        mutate('    cron: "30 2 * * *"\n    duration: 1h\n', '    start: "2027-05-01T10:00:00"\n'),
        ("windows[1] (nightly)", "end"),
    ),
    (
        # "naive vs aware mix that cannot be resolved": a naive wall-clock start that does not
        # exist in the window's zone (02:30 on the Berlin spring-forward day)
        "naive one-off start in a gap",
        mutate(
            '    cron: "30 2 * * *"\n    duration: 1h\n',
            '    start: "2027-03-28T02:30:00"\n    end: "2027-03-28T05:00:00Z"\n',
        ),
        ("windows[1] (nightly).start", "2027-03-28T02:30"),
    ),
    (
        # ... or that is ambiguous (02:30 happens twice on the fall-back day)
        "naive one-off end in a fold",
        mutate(
            '    cron: "30 2 * * *"\n    duration: 1h\n',
            '    start: "2027-10-30T23:00:00Z"\n    end: "2027-10-31T02:30:00"\n',
        ),
        ("windows[1] (nightly).end", "2027-10-31T02:30"),
    ),
    (
        "exact task name not managed",
        mutate("tasks: [access-logs-prod, ", "tasks: [acess-logs-prod, "),
        ("windows[1] (nightly).tasks", "acess-logs-prod"),
    ),
    (
        "bad window status",
        mutate("\n    status: offline", "\n    status: paused"),
        ("windows[1] (nightly).status", "paused"),
    ),
    ("bad file default_status", mutate("default_status: online", "default_status: maybe"), ("default_status", "maybe")),
    (
        "bad task default_status",
        mutate("default_status: offline", "default_status: sleeping"),
        ("default_status", "sleeping"),
    ),
    (
        "task with both name and pattern",
        mutate('  - pattern: "waf-*"', '  - pattern: "waf-*"\n    name: waf-main'),
        ("name", "pattern"),
    ),
    (
        "duplicate window names in one file",
        mutate("  - name: early\n", "  - name: nightly\n"),
        ("nightly",),
    ),
    (
        "a window that is not a mapping",
        mutate("windows:\n", "windows:\n  - null\n"),
        ("windows[0]: must be a mapping with name, tasks (got null)",),
    ),
    (
        "a date-time where a date belongs",
        mutate("duration: 30m", "duration: 30m\n    active_from: 2027-05-01T10:00:00"),
        ("windows[0] (early).active_from", "'2027-05-01T10:00:00'"),
    ),
]


@pytest.mark.parametrize(("text", "needles"), [(c[1], c[2]) for c in ERRORS], ids=[c[0] for c in ERRORS])
def test_validation_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, needles: tuple[str, ...]
) -> None:
    write_schedule(tmp_path, text)
    code, lines = validate(capsys, tmp_path)
    assert code == 2, lines
    line_with(lines, "ops.yaml", *needles)


def test_yaml_syntax_error_names_file_and_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_schedule(
        tmp_path,
        """
        version: 1
        timezone: UTC
        tasks:
          - name: a
            bad: x: y
        """,
    )
    code, lines = validate(capsys, tmp_path)
    assert code == 2
    line = line_with(lines, "ops.yaml")
    # the mistake is on line 5 (1-based)
    assert re.search(r"(line\s*5\b|:5(:\d+)?\b)", line), line


def test_duplicate_window_names_across_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_schedule(tmp_path, BASE, name="a.yaml")
    write_schedule(
        tmp_path,
        """
        version: 1
        windows:
          - name: nightly
            tasks: [access-logs-prod]
            cron: "0 3 * * *"
            duration: 1h
        """,
        name="b.yml",
    )
    code, lines = validate(capsys, tmp_path)
    assert code == 2, lines
    line = line_with(lines, "nightly")
    assert "a.yaml" in line or "b.yml" in line
    # the window reference names index and name
    assert re.search(r"windows\[[01]\] \(nightly\)", line), line


def test_window_in_one_file_may_select_task_declared_in_another(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_schedule(tmp_path, BASE, name="a.yaml")
    write_schedule(
        tmp_path,
        """
        version: 1
        windows:
          - name: other
            tasks: [site-logs]
            cron: "0 3 * * *"
            duration: 1h
        """,
        name="b.yml",
    )
    code, lines = validate(capsys, tmp_path)
    assert code == 0, lines


def _second_file(directory: Path) -> None:
    write_schedule(
        directory,
        """
        version: 1
        timezone: Nowhere/Special
        tasks:
          - name: other
        """,
        name="second.yaml",
    )


def test_one_line_per_problem(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = mutate('cron: "30 2 * * *"', 'cron: "61 * * * *"').replace("duration: 30m", "duration: 0s")
    write_schedule(tmp_path, text)
    _second_file(tmp_path)
    code, lines = validate(capsys, tmp_path)
    assert code == 2
    problem_lines = {
        line_with(lines, "ops.yaml", "windows[1] (nightly).cron", "61 * * * *"),
        line_with(lines, "ops.yaml", "windows[0] (early).duration", "0s"),
        line_with(lines, "second.yaml", "timezone", "Nowhere/Special"),
    }
    assert len(problem_lines) == 3


@pytest.mark.parametrize(
    ("old", "new", "needles"),
    [
        ("\n    status: offline", "\n    status: paused", ("windows[1] (nightly).status", "paused")),
        ("\n    priority: 0", "\n    priority: 0\n    durtion: 1h", ("windows[1] (nightly)", "durtion")),
    ],
    ids=["bad-status", "unknown-key"],
)
def test_a_field_error_does_not_hide_the_other_problems(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], old: str, new: str, needles: tuple[str, ...]
) -> None:
    text = mutate('cron: "30 2 * * *"', 'cron: "61 * * * *"').replace("duration: 30m", "duration: 0s")
    assert old in text
    write_schedule(tmp_path, text.replace(old, new))
    _second_file(tmp_path)
    code, lines = validate(capsys, tmp_path)
    assert code == 2
    problem_lines = {
        line_with(lines, "ops.yaml", *needles),
        line_with(lines, "ops.yaml", "windows[1] (nightly).cron", "61 * * * *"),
        line_with(lines, "ops.yaml", "windows[0] (early).duration", "0s"),
        line_with(lines, "second.yaml", "timezone", "Nowhere/Special"),
    }
    assert len(problem_lines) == 4


def test_file_argument_validates_only_that_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_schedule(tmp_path, BASE, name="good.yaml")
    write_schedule(tmp_path, mutate('cron: "30 2 * * *"', 'cron: "61 * * * *"'), name="bad.yaml")
    code, lines = validate(capsys, tmp_path / "good.yaml")
    assert code == 0, lines
    code, lines = validate(capsys, tmp_path)
    assert code == 2
    line_with(lines, "bad.yaml", "61 * * * *")


def test_validate_uses_esa_schedule_env(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    write_schedule(tmp_path / "custom", mutate("\n    status: offline", "\n    status: paused"))
    monkeypatch.setenv("ESA_SCHEDULE", str(tmp_path / "custom"))
    monkeypatch.chdir(tmp_path)
    code, out, err = run_cli(capsys, "validate")
    assert code == 2
    assert "Traceback" not in out + err
    line_with((out + err).splitlines(), "ops.yaml", "paused")


def test_missing_schedule_path_is_an_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, lines = validate(capsys, tmp_path / "does-not-exist")
    assert code == 2
    assert lines


# --------------------------------------------------------------------------- warnings (exit 0)


def test_warning_window_never_occurs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_schedule(
        tmp_path,
        """
        version: 1
        tasks:
          - name: a
        windows:
          - name: feb30
            tasks: [a]
            cron: "0 0 30 2 *"
            duration: 1h
          - name: long-gone
            tasks: [a]
            cron: "0 3 * * *"
            duration: 1h
            active_until: 2020-01-01
          - name: past-one-off
            tasks: [a]
            start: "2020-01-01T00:00:00Z"
            end: "2020-01-02T00:00:00Z"
          - name: steady-4am
            tasks: [a]
            cron: "0 4 * * *"
            duration: 1h
        """,
    )
    code, lines = validate(capsys, tmp_path)
    assert code == 0, lines
    line_with(lines, "feb30")
    line_with(lines, "long-gone")
    line_with(lines, "past-one-off")
    assert not [line for line in lines if "steady-4am" in line], lines


def test_warning_different_status_overlap_at_equal_priority(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_schedule(
        tmp_path,
        """
        version: 1
        tasks:
          - name: a
        windows:
          - name: off-window
            tasks: [a]
            cron: "0 2 * * *"
            duration: 1h
          - name: on-window
            tasks: [a]
            status: online
            cron: "30 2 * * *"
            duration: 1h
        """,
    )
    code, lines = validate(capsys, tmp_path)
    assert code == 0, lines
    warning = line_with(lines, "off-window", "on-window")
    assert warning.endswith("(from 2027-01-11T02:30:00Z); offline wins the tie"), warning


ONE_OFFS = """
version: 1
tasks:
  - name: a
windows:
  - name: spring-2031
    tasks: [a]
    start: "2031-03-01T00:00:00Z"
    end: "2031-03-02T00:00:00Z"
  - name: daily
    tasks: [a]
    cron: "0 4 * * *"
    duration: 1h
"""


@pytest.mark.parametrize(
    ("at", "warned"),
    [
        ("2031-01-01T00:00:00Z", False),
        ("2031-03-01T23:59:59+01:00", False),  # 22:59:59Z, inside the window
        ("2029-12-01T00:00:00Z", True),  # the window starts 455 days later
        ("2031-03-02T00:00:00Z", True),  # it has just ended
    ],
)
def test_warnings_look_ahead_from_at(tmp_path: Path, capsys: pytest.CaptureFixture[str], at: str, warned: bool) -> None:
    schedule = write_schedule(tmp_path, ONE_OFFS)
    code, out, err = run_cli(capsys, "validate", "--schedule", str(tmp_path), "--at", at)
    assert (code, out.startswith(f"{tmp_path}: valid: 1 file(s)")) == (0, True), out + err
    never = f"{schedule}: window 'spring-2031': warning: never active in the next 400 days"
    assert err.splitlines() == ([never] if warned else [])


def test_at_defaults_to_now(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Without --at the look-ahead starts at the real clock: the windows are placed from it, an hour
    either side of the 400 days' ends, so a default off by more than an hour changes the warnings."""
    now = datetime.now(timezone.utc)
    horizon = now + timedelta(days=400)
    windows = {
        "just-ended": (now - timedelta(hours=2), now - timedelta(hours=1)),
        "last-hour": (horizon - timedelta(hours=1), horizon),
        "just-beyond": (horizon + timedelta(hours=1), horizon + timedelta(hours=2)),
    }
    text = "version: 1\ntasks:\n  - name: a\nwindows:\n" + "".join(
        f"  - {{name: {name}, tasks: [a], start: '{iso(start)}', end: '{iso(end)}'}}\n"
        for name, (start, end) in windows.items()
    )
    schedule = write_schedule(tmp_path, text)
    code, _, err = run_cli(capsys, "validate", "--schedule", str(schedule))
    assert code == 0, err
    assert err.splitlines() == [
        f"{schedule}: window '{name}': warning: never active in the next 400 days"
        for name in ("just-ended", "just-beyond")
    ]


@pytest.mark.parametrize(
    ("at", "problem"),
    [
        ("tomorrow", "invalid ISO 8601 date-time 'tomorrow'"),
        ("2027-01-10T12:00:00", "date-time '2027-01-10T12:00:00' needs an offset or Z"),
        ("0900-01-01T00:00:00Z", "date-time '0900-01-01T00:00:00Z' is outside the supported years 1970-9000"),
    ],
)
def test_a_bad_at_is_one_line_naming_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], at: str, problem: str
) -> None:
    write_schedule(tmp_path, ONE_OFFS)
    code, out, err = run_cli(capsys, "validate", "--schedule", str(tmp_path), "--at", at)
    assert (code, out, err) == (2, "", f"--at: {problem}\n")


FLEET_OVERLAP = """
version: 1
targets:
  - {name: prod-cn, region: cn-hangzhou}
  - {name: prod-intl, region: ap-southeast-1}
tasks:
  - name: a
windows:
  - name: off-window
    tasks: [a]
    targets: [prod-cn]
    cron: "0 2 * * *"
    duration: 1h
  - name: on-window
    tasks: [a]
    targets: [%s]
    status: online
    cron: "30 2 * * *"
    duration: 1h
"""


@pytest.mark.parametrize(("targets", "warned"), [("prod-intl", False), ("prod-cn", True), ('"prod-*"', True)])
def test_overlap_warning_only_where_the_windows_share_a_target(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], targets: str, warned: bool
) -> None:
    """Windows on disjoint targets never meet in one target's plan, so their overlap is no tie."""
    write_schedule(tmp_path, FLEET_OVERLAP % targets)
    code, lines = validate(capsys, tmp_path)
    assert code == 0, lines
    assert any("overlaps window" in line for line in lines) == warned, lines


@pytest.mark.parametrize(
    ("second_status", "second_priority"),
    [("online", 1), ("offline", 0)],
    ids=["different-priority", "same-status"],
)
def test_no_overlap_warning_when_priority_or_status_differ(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], second_status: str, second_priority: int
) -> None:
    write_schedule(
        tmp_path,
        f"""
        version: 1
        tasks:
          - name: a
        windows:
          - name: off-window
            tasks: [a]
            cron: "0 2 * * *"
            duration: 1h
          - name: other-window
            tasks: [a]
            status: {second_status}
            priority: {second_priority}
            cron: "30 2 * * *"
            duration: 1h
        """,
    )
    code, lines = validate(capsys, tmp_path)
    assert code == 0, lines
    assert len(lines) == 1, lines
