"""``expect:`` entries: ``validate`` checks each against the schedule alone, exits 2 with one exact line
per failed expectation, counts the ones that hold, and ``plan``/``run`` ignore them."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from helpers import add_hold, run_cli, utc, write_schedule

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "schedule" / "sample.yaml"

SCHEDULE = """
version: 1
timezone: Europe/Berlin
tasks:
  - name: access-logs-prod
  - pattern: "waf-*"
windows:
  - name: nightly
    tasks: [access-logs-prod, "waf-*"]
    cron: "30 2 * * *"
    duration: 1h
  - name: freeze
    tasks: ["waf-*"]
    status: online
    priority: 5
    cron: "0 3 * * *"
    duration: 15m
expect:
"""


def _with_expectations(tmp_path: Path, *entries: str) -> Path:
    return write_schedule(tmp_path, SCHEDULE + "".join(f"  - {entry}\n" for entry in entries))


def _validate(capsys: pytest.CaptureFixture[str], path: Path) -> tuple[int, list[str], list[str]]:
    code, out, err = run_cli(capsys, "validate", "--schedule", str(path), "--at", "2027-01-10T12:00:00Z")
    assert "Traceback" not in out + err
    return code, out.splitlines(), err.splitlines()


def _rejected(capsys: pytest.CaptureFixture[str], tmp_path: Path, *entries: str) -> tuple[Path, list[str]]:
    """Validate a schedule with ``entries`` that must fail: exit 2, nothing on stdout; the stderr lines."""
    path = _with_expectations(tmp_path, *entries)
    code, out, err = _validate(capsys, path)
    assert (code, out) == (2, [])
    return path, err


def _failures(capsys: pytest.CaptureFixture[str], tmp_path: Path, *entries: str) -> tuple[Path, list[str]]:
    """Like ``_rejected``, for expectations that are well formed: one line per failure, then the count
    of failed and holding ones; returns the failure lines."""
    path, err = _rejected(capsys, tmp_path, *entries)
    failed = len(err) - 1
    assert err[-1] == f"{path}: {failed} expectation(s) failed, {len(entries) - failed} hold"
    return path, err[:-1]


def test_expectations_that_hold_are_counted(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _with_expectations(
        tmp_path,
        '{at: "2027-01-10T02:45:00+01:00", task: access-logs-prod, desired: offline, source: "window:nightly"}',
        '{at: "2027-01-10T03:30:00+01:00", task: access-logs-prod, desired: online}',
        '{at: "2027-01-10T01:00:00Z", task: access-logs-prod, desired: online, source: default}',
    )
    code, out, err = _validate(capsys, path)
    assert (code, err) == (0, [])
    assert len(out) == 1
    assert out[0].startswith(f"{path}: valid: ")
    assert out[0].endswith(", 3 expectation(s) hold")


def test_a_failed_expectation_is_one_exact_line_and_the_count_follows(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _with_expectations(
        tmp_path,
        '{at: "2027-01-10T02:45:00+01:00", task: access-logs-prod, desired: offline}',
        '{at: "2027-01-10T03:45:00+01:00", task: access-logs-prod, desired: offline, source: "window:nightly"}',
        '{at: "2027-01-10T03:45:00+01:00", task: waf-edge, desired: online}',
        '{at: "2027-01-10T12:00:00+01:00", task: waf-edge, desired: offline}',
    )
    code, out, err = _validate(capsys, path)
    assert (code, out) == (2, [])
    assert err == [
        f"{path}: expect[1]: at 2027-01-10T02:45:00Z: expected access-logs-prod offline (window:nightly), "
        "the plan says online (default)",
        f"{path}: expect[3]: at 2027-01-10T11:00:00Z: expected waf-edge offline, the plan says online (default)",
        f"{path}: 2 expectation(s) failed, 2 hold",
    ]


def test_source_is_optional_but_checked_when_given(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # waf-edge at 03:05 is online because the higher-priority freeze wins over nightly
    path, err = _failures(
        capsys,
        tmp_path,
        '{at: "2027-01-10T03:05:00+01:00", task: waf-edge, desired: online}',
        '{at: "2027-01-10T03:05:00+01:00", task: waf-edge, desired: online, source: "window:freeze"}',
        '{at: "2027-01-10T03:05:00+01:00", task: waf-edge, desired: online, source: "window:nightly"}',
    )
    assert err == [
        f"{path}: expect[2]: at 2027-01-10T02:05:00Z: expected waf-edge online (window:nightly), "
        "the plan says online (window:freeze)"
    ]


def test_a_source_that_cannot_occur_says_so(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path, err = _failures(
        capsys, tmp_path, '{at: "2027-01-10T02:45:00+01:00", task: access-logs-prod, desired: offline, source: nightly}'
    )
    assert err == [
        f"{path}: expect[0]: at 2027-01-10T01:45:00Z: expected access-logs-prod offline (nightly), "
        "but 'nightly' can never be a source here (use 'default' or 'window:<name>' of a window)"
    ]


def test_every_failure_gets_its_line_and_unmanaged_tasks_are_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path, err = _failures(
        capsys,
        tmp_path,
        '{at: "2027-01-10T02:45:00+01:00", task: access-logs-prd, desired: offline}',
        '{at: "2027-01-10T02:45:00+01:00", task: access-logs-prod, desired: offline}',
        '{at: "2027-01-10T02:40:00+01:00", task: waf-x, desired: online}',
    )
    assert err == [
        f"{path}: expect[0]: at 2027-01-10T01:45:00Z: expected access-logs-prd offline, "
        "but the plan does not manage 'access-logs-prd' (no task entry names it or matches it)",
        f"{path}: expect[2]: at 2027-01-10T01:40:00Z: expected waf-x online, the plan says offline (window:nightly)",
    ]


@pytest.mark.parametrize(
    ("at", "desired", "source"),
    [
        # spring forward: 02:30 does not exist, nightly runs 03:00-04:00 CEST (01:00Z-02:00Z)
        ("2027-03-28T00:59:59Z", "online", "default"),
        ("2027-03-28T03:00:00+02:00", "offline", "window:nightly"),
        ("2027-03-28T01:59:59Z", "offline", "window:nightly"),
        ("2027-03-28T04:00:00+02:00", "online", "default"),
        # fall back: 02:30 happens twice; the fixed-hour start matches its first pass only
        ("2027-10-31T02:30:00+02:00", "offline", "window:nightly"),
        ("2027-10-31T02:29:59+01:00", "offline", "window:nightly"),
        ("2027-10-31T02:30:00+01:00", "online", "default"),
        ("2027-10-31T03:00:00+01:00", "online", "default"),
    ],
)
def test_dst_instants(tmp_path: Path, capsys: pytest.CaptureFixture[str], at: str, desired: str, source: str) -> None:
    path = _with_expectations(
        tmp_path, f'{{at: "{at}", task: access-logs-prod, desired: {desired}, source: "{source}"}}'
    )
    code, out, err = _validate(capsys, path)
    assert (code, err) == (0, []), err
    assert out[0].endswith(", 1 expectation(s) hold")
    other = "online" if desired == "offline" else "offline"
    _, err = _failures(capsys, tmp_path, f'{{at: "{at}", task: access-logs-prod, desired: {other}}}')
    assert err[0].endswith(f"expected access-logs-prod {other}, the plan says {desired} ({source})")


def test_expectations_ignore_holds(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _with_expectations(tmp_path, '{at: "2027-01-10T12:00:00Z", task: access-logs-prod, desired: online}')
    monkeypatch.setenv("ESA_STATE_DIR", str(tmp_path / "state"))  # where validate would find holds, if it looked
    add_hold(path, tmp_path / "state", "access-logs-prod", utc("2027-01-01T00:00"), utc("2027-02-01T00:00"), "inc-1")
    code, lines, problems = _validate(capsys, path)
    assert (code, problems) == (0, [])
    assert lines[0].endswith(", 1 expectation(s) hold")


def test_expectations_are_numbered_per_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_schedule(tmp_path, SCHEDULE + '  - {at: "2027-01-10T12:00:00Z", task: access-logs-prod, desired: online}\n')
    other = write_schedule(
        tmp_path,
        """
        version: 1
        expect:
          - {at: "2027-01-10T12:00:00Z", task: waf-a, desired: online}
          - {at: "2027-01-10T01:40:00Z", task: waf-a, desired: online}
        """,
        name="zz-expect.yaml",
    )
    code, _, err = _validate(capsys, tmp_path)
    assert code == 2
    assert err == [
        f"{other}: expect[1]: at 2027-01-10T01:40:00Z: expected waf-a online, the plan says offline (window:nightly)",
        f"{tmp_path}: 1 expectation(s) failed, 2 hold",
    ]


@pytest.mark.parametrize(
    ("entry", "problem"),
    [
        (
            '{at: "2027-01-10T02:45:00", task: access-logs-prod, desired: offline}',
            "expect[0].at: date-time '2027-01-10T02:45:00' needs an offset or Z",
        ),
        (  # unquoted, YAML reads a datetime: named as written, not as a Python object
            "{at: 2027-03-28T03:15:00, task: access-logs-prod, desired: offline}",
            "expect[0].at: date-time '2027-03-28T03:15:00' needs an offset or Z",
        ),
        (
            "{at: 2027-03-28, task: access-logs-prod, desired: offline}",
            "expect[0].at: '2027-03-28' is a date; an instant needs a time and an offset or Z",
        ),
        ("null", "expect[0]: must be a mapping with at, task, desired (got null)"),
        ("access-logs-prod", "expect[0]: must be a mapping with at, task, desired (got 'access-logs-prod')"),
        (
            '{at: "2027-01-10T02:45:00Z", task: access-logs-prod, desired: down}',
            "expect[0].desired: Input should be 'online' or 'offline' (got 'down')",
        ),
        ('{at: "2027-01-10T02:45:00Z", desired: offline}', "expect[0].task: required field is missing"),
        (
            '{at: "2027-01-10T02:45:00Z", task: access-logs-prod, desired: offline, sorce: x}',
            "expect[0].sorce: unknown key 'sorce' (did you mean 'source'?)",
        ),
    ],
)
def test_malformed_expectations_are_schedule_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], entry: str, problem: str
) -> None:
    path, err = _rejected(capsys, tmp_path, entry)
    assert err == [f"{path}: {problem}"]


def _plan_and_dry_run(capsys: pytest.CaptureFixture[str], path: Path, tmp_path: Path) -> None:
    """``plan`` and a dry ``run`` against the embedded emulator both succeed on ``path``."""
    code, out, err = run_cli(capsys, "plan", "--schedule", str(path), "--at", "2027-01-10T12:00:00Z", "--json")
    assert code == 0, err
    assert '"desired": "online"' in out
    state = tmp_path / "state"
    args = ["--schedule", str(path), "--at", "2027-01-10T12:00:00Z", "--state-dir", str(state)]
    code, out, err = run_cli(capsys, "run", "--emulator", "--dry-run", *args)
    assert code == 0, err


def test_plan_and_run_ignore_expectations(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _with_expectations(tmp_path, '{at: "2027-01-10T12:00:00Z", task: access-logs-prod, desired: offline}')
    code, _, _ = _validate(capsys, path)
    assert code == 2
    _plan_and_dry_run(capsys, path, tmp_path)


def test_a_malformed_expectation_stops_only_validate(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``expect:`` is read by ``validate`` alone: a broken entry fails review, never a run."""
    path = _with_expectations(tmp_path, "{at: 2027-01-10T12:00:00, task: access-logs-prod, desired: offline}")
    _, err = _rejected(capsys, tmp_path, "{at: 2027-01-10T12:00:00, task: access-logs-prod, desired: offline}")
    assert err == [f"{path}: expect[0].at: date-time '2027-01-10T12:00:00' needs an offset or Z"]
    _plan_and_dry_run(capsys, path, tmp_path)


def test_sample_schedule_pins_its_dst_behaviour(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = _validate(capsys, SAMPLE)
    assert code == 0, err
    assert out[0].endswith(", 7 expectation(s) hold")
    broken = tmp_path / "sample.yaml"
    shutil.copy(SAMPLE, broken)
    text = broken.read_text(encoding="utf-8").replace('cron: "30 2 * * *"', 'cron: "30 3 * * *"')
    broken.write_text(text, encoding="utf-8")
    code, _, err = _validate(capsys, broken)
    assert code == 2
    assert err[0].endswith("expected access-logs-prod offline (window:nightly), the plan says online (default)")
    assert err[-1] == f"{broken}: 3 expectation(s) failed, 4 hold"
    # docs/schedule.md shows exactly this output
    readme = (ROOT / "docs" / "schedule.md").read_text(encoding="utf-8")
    shown = "\n".join(line.replace(str(broken), "schedule/sample.yaml") for line in err)
    assert f"```text\n{shown}\n```" in readme


@pytest.mark.parametrize("year", range(2026, 2041))
def test_the_sample_schedule_stays_warning_free_for_years(capsys: pytest.CaptureFixture[str], year: int) -> None:
    """The sample is what a newcomer validates first, whatever the year: no window of it may run out."""
    at = f"{year}-{1 + (year * 5) % 12:02d}-15T12:00:00Z"  # a different month each year
    code, out, err = run_cli(capsys, "validate", "--schedule", str(SAMPLE), "--at", at)
    assert (code, err) == (0, ""), err
    assert out.endswith(", 7 expectation(s) hold\n")


SITES = """
version: 1
timezone: Europe/Berlin
tasks:
  - pattern: "edge-*"
    site_id: 1234567890
windows:
  - name: nightly
    tasks: ["edge-*"]
    cron: "30 2 * * *"
    duration: 1h
expect:
"""


def test_a_task_that_only_a_site_pattern_matches_can_be_pinned(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_schedule(
        tmp_path,
        SITES
        + '  - {at: "2027-01-10T02:45:00+01:00", task: edge-eu, desired: offline, source: "window:nightly"}\n'
        + '  - {at: "2027-01-10T12:00:00+01:00", task: edge-eu, desired: online, site_id: 1234567890}\n',
    )
    code, out, err = _validate(capsys, path)
    assert (code, err) == (0, [])
    assert out[0].endswith(", 2 expectation(s) hold")


def test_site_id_chooses_the_task_and_a_wrong_one_is_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # a user-level task of the same name: offline by default, where the site task is online
    text = SITES.replace("tasks:\n", "tasks:\n  - {name: edge-eu, default_status: offline}\n", 1)
    entries = [
        '{at: "2027-01-10T12:00:00Z", task: edge-eu, desired: online, site_id: 1234567890}',
        '{at: "2027-01-10T12:00:00Z", task: edge-eu, desired: online, site_id: 999}',
        '{at: "2027-01-10T12:00:00Z", task: edge-eu, desired: online}',
        '{at: "2027-01-10T12:00:00Z", task: edge-us, desired: offline}',
    ]
    path = write_schedule(tmp_path, text + "".join(f"  - {e}\n" for e in entries))
    code, out, err = _validate(capsys, path)
    assert (code, out) == (2, [])
    assert err == [
        f"{path}: expect[1]: at 2027-01-10T12:00:00Z: expected edge-eu (site 999) online, "
        "but the plan does not manage edge-eu (site 999); it manages edge-eu (user-level), edge-eu (site 1234567890)",
        f"{path}: expect[2]: at 2027-01-10T12:00:00Z: expected edge-eu online, "
        "the plan says offline (default) for edge-eu (user-level)",
        f"{path}: expect[3]: at 2027-01-10T12:00:00Z: expected edge-us offline, "
        "the plan says online (default) for edge-us (site 1234567890)",
        f"{path}: 3 expectation(s) failed, 1 hold",
    ]


FLEET = """
version: 1
timezone: Europe/Berlin
targets:
  - {name: prod-cn, region: cn-hangzhou}
  - {name: prod-intl, region: ap-southeast-1}
tasks:
  - name: access-logs-prod
  - {name: cn-only, targets: [prod-cn]}
windows:
  - name: nightly
    tasks: [access-logs-prod, cn-only]
    targets: [prod-cn]
    cron: "30 2 * * *"
    duration: 1h
expect:
"""


def test_fleet_expectations_are_checked_against_each_targets_plan(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The schedule as a whole has nightly on access-logs-prod; only prod-cn's plan does."""
    entries = [
        '{at: "2027-01-10T02:45:00+01:00", task: access-logs-prod, desired: offline}',
        '{at: "2027-01-10T02:45:00+01:00", task: access-logs-prod, desired: offline, target: prod-cn}',
        '{at: "2027-01-10T02:45:00+01:00", task: access-logs-prod, desired: online, target: prod-intl}',
        '{at: "2027-01-10T02:45:00+01:00", task: cn-only, desired: offline}',
        '{at: "2027-01-10T02:45:00+01:00", task: cn-only, desired: offline, target: prod-intl}',
    ]
    path = write_schedule(tmp_path, FLEET + "".join(f"  - {e}\n" for e in entries))
    code, out, err = _validate(capsys, path)
    assert (code, out) == (2, [])
    assert err == [
        f"{path}: expect[0]: at 2027-01-10T01:45:00Z: expected access-logs-prod offline, "
        "the plan says online (default) for access-logs-prod (target prod-intl)",
        f"{path}: expect[4]: at 2027-01-10T01:45:00Z: expected cn-only (target prod-intl) offline, "
        "but the plan does not manage cn-only (target prod-intl); it manages cn-only (target prod-cn)",
        f"{path}: 2 expectation(s) failed, 3 hold",
    ]


@pytest.mark.parametrize(
    ("schedule", "problem"),
    [
        (FLEET, "expect[0].target: 'prod-eu' is not a target of the schedule (targets: prod-cn, prod-intl)"),
        (SCHEDULE, "expect[0].target: no targets are declared (add a top-level 'targets:' list first)"),
    ],
)
def test_an_unknown_expectation_target_is_a_schedule_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], schedule: str, problem: str
) -> None:
    entry = '{at: "2027-01-10T12:00:00Z", task: access-logs-prod, desired: online, target: prod-eu}'
    path = write_schedule(tmp_path, schedule + f"  - {entry}\n")
    code, out, err = _validate(capsys, path)
    assert (code, out, err) == (2, [], [f"{path}: {problem}"])
