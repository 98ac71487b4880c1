"""``esa-scheduler plan`` contract: precedence, inventory, windows across midnight, skip and active
dates, one-off windows, ``next_change``, file merging and the schedule location rules."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from helpers import UTC, iso, parse_instant, run_cli, utc, write_schedule

# --------------------------------------------------------------------------- helpers


def plan_json(
    capsys: pytest.CaptureFixture[str], schedule: Path, at: str | datetime | None, *extra: str
) -> dict[str, Any]:
    args = ["plan", "--schedule", str(schedule), "--json"]
    if at is not None:
        args += ["--at", at if isinstance(at, str) else iso(at)]
    code, out, err = run_cli(capsys, *args, *extra)
    assert code == 0, f"plan exited {code}: {err}{out}"
    assert "Traceback" not in out + err
    result = json.loads(out)  # exactly one JSON object on stdout
    assert isinstance(result, dict)
    assert set(result) >= {"at", "tasks"}
    for entry in result["tasks"]:
        assert set(entry) >= {"name", "site_id", "desired", "source", "matches", "next_change"}
        assert entry["desired"] in ("online", "offline")
        assert entry["next_change"] is None or entry["next_change"].endswith("Z")
    return result


def task_flags(*names: str) -> list[str]:
    """``--task a --task b``: one name per flag, which every reading of ``[--task NAME ...]`` accepts."""
    flags: list[str] = []
    for name in names:
        flags += ["--task", name]
    return flags


def by_name(result: dict[str, Any]) -> dict[str, dict[str, Any]]:
    names = [t["name"] for t in result["tasks"]]
    assert len(names) == len(set(names)), f"duplicate tasks reported: {names}"
    return {t["name"]: t for t in result["tasks"]}


def state(capsys: pytest.CaptureFixture[str], schedule: Path, name: str, at: datetime) -> tuple[str, datetime | None]:
    entry = by_name(plan_json(capsys, schedule, at))[name]
    change = entry["next_change"]
    return entry["desired"], (parse_instant(change) if change is not None else None)


# --------------------------------------------------------------------------- output contract


def test_at_with_offset_is_reported_in_utc_with_z(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_schedule(tmp_path, "version: 1\ntasks:\n  - name: a\n")
    result = plan_json(capsys, tmp_path, "2027-06-01T14:30:00+02:00")
    assert result["at"] == "2027-06-01T12:30:00Z"
    assert result["tasks"] == [
        {
            "name": "a",
            "site_id": None,
            "desired": "online",
            "source": "default",
            "matches": [],
            "next_change": None,
        }
    ]


def test_at_defaults_to_now(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_schedule(tmp_path, "version: 1\ntasks:\n  - name: a\n")
    result = plan_json(capsys, tmp_path, None)
    assert abs(parse_instant(result["at"]) - datetime.now(UTC)) < timedelta(hours=1)


@pytest.mark.parametrize("at", ["2027-06-01T12:00:00", "2027-06-01 12:00", "not-a-date"])
def test_at_naive_or_invalid_is_an_error(tmp_path: Path, capsys: pytest.CaptureFixture[str], at: str) -> None:
    write_schedule(tmp_path, "version: 1\ntasks:\n  - name: a\n")
    code, out, err = run_cli(capsys, "plan", "--schedule", str(tmp_path), "--at", at, "--json")
    assert code == 2
    assert "Traceback" not in out + err
    assert err.strip()


def test_plan_on_invalid_schedule_exits_2_without_traceback(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_schedule(
        tmp_path,
        """
        version: 1
        tasks:
          - name: a
        windows:
          - name: w
            tasks: [a]
            cron: "61 * * * *"
            duration: 1h
        """,
    )
    code, out, err = run_cli(capsys, "plan", "--schedule", str(tmp_path), "--at", "2027-01-01T00:00:00Z")
    assert code == 2
    assert "Traceback" not in out + err
    assert "61 * * * *" in out + err


def test_text_output_has_table_and_timeline(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_schedule(
        tmp_path,
        """
        version: 1
        timezone: Europe/Berlin
        tasks:
          - name: access-logs-prod
        windows:
          - name: nightly
            tasks: [access-logs-prod]
            cron: "30 2 * * *"
            duration: 1h
        """,
    )
    code, out, err = run_cli(
        capsys,
        "plan",
        "--schedule",
        str(tmp_path),
        "--at",
        "2027-03-27T12:00:00Z",
        "--horizon",
        "24h",
    )
    assert code == 0, err
    assert "Traceback" not in out + err
    assert "access-logs-prod" in out
    # transitions on the spring-forward day: 03:00 CEST = 01:00Z and 04:00 CEST = 02:00Z,
    # listed with local and UTC times
    assert "01:00" in out
    assert "03:00" in out
    assert "02:00" in out
    assert "04:00" in out


# --------------------------------------------------------------------------- windows across midnight

MIDNIGHT = """
    version: 1
    timezone: Europe/Berlin
    tasks:
      - name: nightly
      - name: friday
    windows:
      - name: late
        tasks: [nightly]
        cron: "0 22 * * *"
        duration: 4h
      - name: friday-late
        tasks: [friday]
        cron: "0 22 * * fri"
        duration: 4h
"""


def test_window_across_midnight(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_schedule(tmp_path, MIDNIGHT)
    # 2027-01-15 22:00 CET = 21:00Z until 2027-01-16 02:00 CET = 01:00Z
    assert state(capsys, tmp_path, "nightly", utc("2027-01-15T20:59:59")) == (
        "online",
        utc("2027-01-15T21:00"),
    )
    assert state(capsys, tmp_path, "nightly", utc("2027-01-15T21:00")) == ("offline", utc("2027-01-16T01:00"))
    # after local midnight, still inside the window started the day before
    entry = by_name(plan_json(capsys, tmp_path, utc("2027-01-16T00:30")))["nightly"]
    assert entry["desired"] == "offline"
    assert entry["source"] == "window:late"
    assert entry["matches"] == ["window:late"]
    assert entry["next_change"] == "2027-01-16T01:00:00Z"
    assert state(capsys, tmp_path, "nightly", utc("2027-01-16T01:00")) == ("online", utc("2027-01-16T21:00"))


def test_weekly_window_across_midnight_on_saturday(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_schedule(tmp_path, MIDNIGHT)
    # Friday 2027-01-15 22:00 CET = 21:00Z; Saturday 00:30 local = 2027-01-15T23:30Z
    assert state(capsys, tmp_path, "friday", utc("2027-01-15T23:30")) == ("offline", utc("2027-01-16T01:00"))
    # next Friday 2027-01-22 22:00 CET = 21:00Z
    assert state(capsys, tmp_path, "friday", utc("2027-01-16T01:00")) == ("online", utc("2027-01-22T21:00"))


@pytest.mark.parametrize("duration", ["1h30m", "90m", "5400s", "PT1H30M", "PT90M"])
def test_duration_formats(tmp_path: Path, capsys: pytest.CaptureFixture[str], duration: str) -> None:
    write_schedule(
        tmp_path,
        f"""
        version: 1
        tasks:
          - name: a
        windows:
          - name: w
            tasks: [a]
            cron: "0 10 * * *"
            duration: {duration}
        """,
    )
    assert state(capsys, tmp_path, "a", utc("2027-06-01T10:00")) == ("offline", utc("2027-06-01T11:30"))


@pytest.mark.parametrize(("duration", "hours"), [("1d", 24), ("P1D", 24), ("2d", 48), ("1d12h", 36)])
def test_day_durations_are_elapsed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], duration: str, hours: int
) -> None:
    write_schedule(
        tmp_path,
        f"""
        version: 1
        timezone: Europe/Berlin
        tasks:
          - name: a
        windows:
          - name: w
            tasks: [a]
            cron: "0 12 27 3 *"
            duration: {duration}
        """,
    )
    # 2027-03-27 12:00 CET = 11:00Z, across the spring-forward night: elapsed hours
    desired, end = state(capsys, tmp_path, "a", utc("2027-03-27T11:00"))
    assert desired == "offline"
    assert end == utc("2027-03-27T11:00") + timedelta(hours=hours)


# --------------------------------------------------------------------------- precedence

PRECEDENCE = """
    version: 1
    timezone: UTC
    default_status: online
    tasks:
      - name: prio
      - name: tie
      - name: implicit
    windows:
      - name: low-off
        tasks: [prio]
        status: offline
        priority: 0
        cron: "0 10 * * *"
        duration: 2h
      - name: high-on
        tasks: [prio]
        status: online
        priority: 5
        cron: "0 11 * * *"
        duration: 2h
      - name: tie-on
        tasks: [tie]
        status: online
        priority: 1
        cron: "0 10 * * *"
        duration: 2h
      - name: tie-off
        tasks: [tie]
        status: offline
        priority: 1
        cron: "0 10 * * *"
        duration: 2h
      - name: implicit-off
        tasks: [implicit]
        cron: "0 10 * * *"
        duration: 2h
      - name: implicit-on
        tasks: [implicit]
        status: online
        priority: 0
        cron: "0 10 * * *"
        duration: 2h
"""


def test_higher_priority_wins(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_schedule(tmp_path, PRECEDENCE)
    entry = by_name(plan_json(capsys, tmp_path, "2027-06-01T10:30:00Z"))["prio"]
    assert (entry["desired"], entry["source"], entry["matches"]) == ("offline", "window:low-off", ["window:low-off"])
    # high-on starts at 11:00 and wins over low-off
    assert entry["next_change"] == "2027-06-01T11:00:00Z"
    entry = by_name(plan_json(capsys, tmp_path, "2027-06-01T11:30:00Z"))["prio"]
    assert entry["desired"] == "online"
    assert entry["source"] == "window:high-on"
    assert sorted(entry["matches"]) == ["window:high-on", "window:low-off"]
    # online under high-on, then online by default after 13:00: the next change is the next
    # low-off start, not the moment the source changes
    assert entry["next_change"] == "2027-06-02T10:00:00Z"
    entry = by_name(plan_json(capsys, tmp_path, "2027-06-01T12:30:00Z"))["prio"]
    assert (entry["desired"], entry["source"], entry["matches"]) == ("online", "window:high-on", ["window:high-on"])
    entry = by_name(plan_json(capsys, tmp_path, "2027-06-01T13:30:00Z"))["prio"]
    assert (entry["desired"], entry["source"], entry["matches"]) == ("online", "default", [])


def test_tie_goes_to_offline(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_schedule(tmp_path, PRECEDENCE)
    entry = by_name(plan_json(capsys, tmp_path, "2027-06-01T10:30:00Z"))["tie"]
    assert entry["desired"] == "offline"
    assert entry["source"] == "window:tie-off"
    assert sorted(entry["matches"]) == ["window:tie-off", "window:tie-on"]
    assert entry["next_change"] == "2027-06-01T12:00:00Z"


def test_status_defaults_to_offline_and_priority_to_zero(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_schedule(tmp_path, PRECEDENCE)
    entry = by_name(plan_json(capsys, tmp_path, "2027-06-01T10:30:00Z"))["implicit"]
    # implicit-off has no status (offline) and no priority (0): tie with implicit-on -> offline
    assert entry["desired"] == "offline"
    assert entry["source"] == "window:implicit-off"


def test_task_default_status_overrides_file_default(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_schedule(
        tmp_path,
        """
        version: 1
        default_status: offline
        tasks:
          - name: override
            default_status: online
          - name: inherit
        windows:
          - name: on-window
            tasks: [override, inherit]
            status: online
            cron: "0 10 * * *"
            duration: 1h
        """,
    )
    tasks = by_name(plan_json(capsys, tmp_path, "2027-06-01T09:00:00Z"))
    assert (tasks["override"]["desired"], tasks["override"]["source"]) == ("online", "default")
    assert (tasks["inherit"]["desired"], tasks["inherit"]["source"]) == ("offline", "default")
    # the online window never changes the override task's state: no change in 400 days
    assert tasks["override"]["next_change"] is None
    assert tasks["inherit"]["next_change"] == "2027-06-01T10:00:00Z"
    tasks = by_name(plan_json(capsys, tmp_path, "2027-06-01T10:15:00Z"))
    assert (tasks["inherit"]["desired"], tasks["inherit"]["source"]) == ("online", "window:on-window")
    assert tasks["inherit"]["next_change"] == "2027-06-01T11:00:00Z"


def test_default_status_defaults_to_online(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_schedule(tmp_path, "version: 1\ntasks:\n  - name: a\n")
    entry = by_name(plan_json(capsys, tmp_path, "2027-06-01T09:00:00Z"))["a"]
    assert (entry["desired"], entry["source"], entry["matches"]) == ("online", "default", [])


# --------------------------------------------------------------------------- inventory and patterns

INVENTORY = """
    version: 1
    tasks:
      - name: access-logs-prod
      - pattern: "waf-*"
      - name: site-logs
        site_id: 1234567890
        default_status: offline
    windows:
      - name: freeze
        tasks: ["waf-*"]
        cron: "0 10 * * *"
        duration: 1h
      - name: everything
        tasks: ["*"]
        cron: "0 12 * * *"
        duration: 1h
"""


def test_patterns_need_inventory(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_schedule(tmp_path, INVENTORY)
    result = plan_json(capsys, tmp_path, "2027-06-01T10:30:00Z")
    assert set(by_name(result)) == {"access-logs-prod", "site-logs"}


def test_task_flag_adds_inventory_that_patterns_match(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_schedule(tmp_path, INVENTORY)
    result = plan_json(
        capsys,
        tmp_path,
        "2027-06-01T10:30:00Z",
        *task_flags("waf-eu", "waf-us", "access-logs-prod"),
    )
    tasks = by_name(result)
    # explicit names are reported once, whether --task names them or not
    assert set(tasks) == {"access-logs-prod", "site-logs", "waf-eu", "waf-us"}
    for name in ("waf-eu", "waf-us"):
        assert tasks[name]["desired"] == "offline"
        assert tasks[name]["source"] == "window:freeze"
        assert tasks[name]["matches"] == ["window:freeze"]
        assert tasks[name]["next_change"] == "2027-06-01T11:00:00Z"
    assert (tasks["access-logs-prod"]["desired"], tasks["access-logs-prod"]["matches"]) == ("online", [])
    assert str(tasks["site-logs"]["site_id"]) == "1234567890"
    assert tasks["site-logs"]["desired"] == "offline"


def test_star_glob_selects_every_managed_task(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_schedule(tmp_path, INVENTORY)
    result = plan_json(capsys, tmp_path, "2027-06-01T12:30:00Z", *task_flags("waf-eu"))
    tasks = by_name(result)
    assert set(tasks) == {"access-logs-prod", "site-logs", "waf-eu"}
    for entry in tasks.values():
        assert entry["desired"] == "offline"
        assert entry["source"] == "window:everything"
        assert entry["matches"] == ["window:everything"]


@pytest.mark.parametrize(
    ("name", "hint"),
    [
        ("acess-logs-prod", " (close matches: access-logs-prod"),
        ("wafeu", " (close matches: waf-*)"),
        ("billing", ""),
    ],
    ids=["typo-of-a-name", "typo-of-a-pattern", "nothing-close"],
)
def test_task_flag_refuses_a_name_the_schedule_does_not_manage(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str, hint: str
) -> None:
    """It would drop out of the plan without a word: the operator would think it was planned."""
    write_schedule(tmp_path, INVENTORY)
    args = ["plan", "--schedule", str(tmp_path), "--at", "2027-06-01T10:30:00Z", "--json"]
    code, out, err = run_cli(capsys, *args, *task_flags("waf-eu", name))
    assert (code, out) == (2, "")
    expected = f"--task: {name!r} is neither a managed task nor matched by a task pattern{hint}"
    assert err.startswith(expected) and err.count("\n") == 1, err
    if not hint:
        assert "close matches" not in err


def test_tasks_sorted_by_site_id_then_name(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_schedule(
        tmp_path,
        """
        version: 1
        tasks:
          - name: zeta
          - name: m1
            site_id: 200
          - name: alpha
          - name: m2
            site_id: 100
          - name: b
            site_id: 100
          - pattern: "p-*"
        """,
    )
    result = plan_json(capsys, tmp_path, "2027-06-01T12:30:00Z", *task_flags("p-b", "p-a"))
    entries = result["tasks"]
    with_site = [(str(t["site_id"]), t["name"]) for t in entries if t["site_id"] is not None]
    without_site = [t["name"] for t in entries if t["site_id"] is None]
    assert with_site == [("100", "b"), ("100", "m2"), ("200", "m1")]
    assert without_site == ["alpha", "p-a", "p-b", "zeta"]
    # the tasks without a site form one block (before or after the others: the spec leaves
    # the position of a null site_id open)
    flags = [t["site_id"] is None for t in entries]
    assert flags in ([True] * 4 + [False] * 3, [False] * 3 + [True] * 4)


# --------------------------------------------------------------------------- skip_dates and active bounds


def test_skip_dates_skip_occurrences_starting_that_local_date(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_schedule(
        tmp_path,
        """
        version: 1
        timezone: Europe/Berlin
        tasks:
          - name: a
        windows:
          - name: late
            tasks: [a]
            cron: "0 22 * * *"
            duration: 4h
            skip_dates: [2027-01-15, 2027-01-20]
        """,
    )
    # the occurrence started on the 14th still runs into the 15th
    assert state(capsys, tmp_path, "a", utc("2027-01-15T00:30")) == ("offline", utc("2027-01-15T01:00"))
    # the one starting on the 15th (21:00Z) does not happen
    assert state(capsys, tmp_path, "a", utc("2027-01-15T01:00")) == ("online", utc("2027-01-16T21:00"))
    assert state(capsys, tmp_path, "a", utc("2027-01-15T22:00")) == ("online", utc("2027-01-16T21:00"))
    assert state(capsys, tmp_path, "a", utc("2027-01-19T21:00")) == ("offline", utc("2027-01-20T01:00"))
    assert state(capsys, tmp_path, "a", utc("2027-01-20T01:00")) == ("online", utc("2027-01-21T21:00"))


def test_skip_dates_are_local_dates(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_schedule(
        tmp_path,
        """
        version: 1
        timezone: Australia/Sydney
        tasks:
          - name: a
        windows:
          - name: morning
            tasks: [a]
            cron: "0 8 * * *"
            duration: 1h
            skip_dates: [2027-01-15]
        """,
    )
    # 2027-01-15 08:00 AEDT = 2027-01-14T21:00Z is skipped; 2027-01-16 08:00 = 2027-01-15T21:00Z runs
    assert state(capsys, tmp_path, "a", utc("2027-01-14T21:30")) == ("online", utc("2027-01-15T21:00"))
    assert state(capsys, tmp_path, "a", utc("2027-01-13T21:30")) == ("offline", utc("2027-01-13T22:00"))


def test_active_from_and_until_are_inclusive_local_dates(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_schedule(
        tmp_path,
        """
        version: 1
        timezone: Europe/Berlin
        tasks:
          - name: a
        windows:
          - name: late
            tasks: [a]
            cron: "0 22 * * *"
            duration: 4h
            active_from: 2027-01-10
            active_until: 2027-01-12
        """,
    )
    # nothing before 2027-01-10 22:00 CET = 21:00Z
    assert state(capsys, tmp_path, "a", utc("2027-01-01T00:00")) == ("online", utc("2027-01-10T21:00"))
    assert state(capsys, tmp_path, "a", utc("2027-01-10T21:00")) == ("offline", utc("2027-01-11T01:00"))
    # the occurrence starting on active_until runs to its end, past the bound
    assert state(capsys, tmp_path, "a", utc("2027-01-12T21:00")) == ("offline", utc("2027-01-13T01:00"))
    assert state(capsys, tmp_path, "a", utc("2027-01-13T00:59")) == ("offline", utc("2027-01-13T01:00"))
    # then never again
    assert state(capsys, tmp_path, "a", utc("2027-01-13T01:00")) == ("online", None)


def test_active_bounds_are_local_dates(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_schedule(
        tmp_path,
        """
        version: 1
        timezone: Australia/Sydney
        tasks:
          - name: a
        windows:
          - name: morning
            tasks: [a]
            cron: "0 8 * * *"
            duration: 1h
            active_from: 2027-01-10
            active_until: 2027-01-10
        """,
    )
    # 2027-01-10 08:00 AEDT = 2027-01-09T21:00Z is the only occurrence
    assert state(capsys, tmp_path, "a", utc("2027-01-09T12:00")) == ("online", utc("2027-01-09T21:00"))
    assert state(capsys, tmp_path, "a", utc("2027-01-09T21:00")) == ("offline", utc("2027-01-09T22:00"))
    assert state(capsys, tmp_path, "a", utc("2027-01-09T22:00")) == ("online", None)


# --------------------------------------------------------------------------- one-off windows

ONE_OFF = """
    version: 1
    timezone: Europe/Berlin
    tasks:
      - name: mixed
      - name: naive
      - name: zulu
      - name: ny
      - name: dst
    windows:
      - name: migration
        tasks: [mixed]
        start: "2026-12-05T01:00:00"
        end: "2026-12-05T05:00:00+00:00"
      - name: summer
        tasks: [naive]
        start: "2027-07-01T10:00:00"
        end: "2027-07-01T12:00:00"
      - name: zulu-end
        tasks: [zulu]
        start: "2027-07-01T10:00:00"
        end: "2027-07-01T12:00:00Z"
      - name: new-york
        tasks: [ny]
        timezone: America/New_York
        start: "2027-07-01T10:00:00"
        end: "2027-07-01T12:00:00"
      - name: over-fall-back
        tasks: [dst]
        start: "2027-10-31T01:00:00"
        end: "2027-10-31T04:00:00"
"""


def test_one_off_naive_start_and_offset_end(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_schedule(tmp_path, ONE_OFF)
    # naive start = 01:00 CET = 00:00Z; end given as 05:00Z
    assert state(capsys, tmp_path, "mixed", utc("2026-12-04T23:59:59")) == ("online", utc("2026-12-05T00:00"))
    entry = by_name(plan_json(capsys, tmp_path, utc("2026-12-05T00:00")))["mixed"]
    assert (entry["desired"], entry["source"], entry["matches"]) == (
        "offline",
        "window:migration",
        ["window:migration"],
    )
    assert entry["next_change"] == "2026-12-05T05:00:00Z"
    assert state(capsys, tmp_path, "mixed", utc("2026-12-05T05:00")) == ("online", None)


def test_one_off_naive_is_wall_clock_in_the_file_zone(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_schedule(tmp_path, ONE_OFF)
    # 10:00-12:00 CEST = 08:00Z-10:00Z
    assert state(capsys, tmp_path, "naive", utc("2027-07-01T07:59")) == ("online", utc("2027-07-01T08:00"))
    assert state(capsys, tmp_path, "naive", utc("2027-07-01T08:00")) == ("offline", utc("2027-07-01T10:00"))
    # naive start 08:00Z, explicit Z end 12:00Z
    assert state(capsys, tmp_path, "zulu", utc("2027-07-01T08:00")) == ("offline", utc("2027-07-01T12:00"))


def test_one_off_uses_the_window_zone(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_schedule(tmp_path, ONE_OFF)
    # 10:00-12:00 EDT = 14:00Z-16:00Z
    assert state(capsys, tmp_path, "ny", utc("2027-07-01T12:00")) == ("online", utc("2027-07-01T14:00"))
    assert state(capsys, tmp_path, "ny", utc("2027-07-01T14:00")) == ("offline", utc("2027-07-01T16:00"))


def test_one_off_naive_ends_across_fall_back(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_schedule(tmp_path, ONE_OFF)
    # 01:00 CEST = 2027-10-30T23:00Z until 04:00 CET = 03:00Z: four elapsed hours
    assert state(capsys, tmp_path, "dst", utc("2027-10-30T23:00")) == ("offline", utc("2027-10-31T03:00"))


# --------------------------------------------------------------------------- next_change


def test_next_change_null_after_last_one_off(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_schedule(tmp_path, ONE_OFF)
    tasks = by_name(plan_json(capsys, tmp_path, "2028-01-01T00:00:00Z"))
    assert all(entry["next_change"] is None for entry in tasks.values())
    assert all(entry["desired"] == "online" for entry in tasks.values())


def test_next_change_null_when_window_never_occurs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
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
        """,
    )
    assert state(capsys, tmp_path, "a", utc("2027-06-01T00:00")) == ("online", None)


def test_back_to_back_occurrences_never_change(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_schedule(
        tmp_path,
        """
        version: 1
        timezone: Europe/Berlin
        tasks:
          - name: hourly
          - name: overlapping
        windows:
          - name: every-hour
            tasks: [hourly]
            cron: "0 * * * *"
            duration: 1h
          - name: overlapping-days
            tasks: [overlapping]
            cron: "0 0 * * *"
            duration: 36h
        """,
    )
    # occurrences combine into one stream: always offline, across both DST changes of 2027
    for at in ("2027-03-28T00:30:00Z", "2027-10-31T00:59:59Z", "2027-10-31T01:00:00Z"):
        tasks = by_name(plan_json(capsys, tmp_path, at))
        assert (tasks["hourly"]["desired"], tasks["hourly"]["next_change"]) == ("offline", None)
        assert (tasks["overlapping"]["desired"], tasks["overlapping"]["next_change"]) == ("offline", None)


def test_next_change_found_almost_a_year_ahead(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_schedule(
        tmp_path,
        """
        version: 1
        tasks:
          - name: leap
          - name: later
        windows:
          - name: leap-day
            tasks: [leap]
            cron: "0 0 29 2 *"
            duration: 1h
          - name: far
            tasks: [later]
            start: "2028-01-25T00:00:00Z"
            end: "2028-01-26T00:00:00Z"
        """,
    )
    # 365 days ahead, inside the 400-day search
    assert state(capsys, tmp_path, "leap", utc("2027-03-01T00:00")) == ("online", utc("2028-02-29T00:00"))
    # 390 days ahead
    assert state(capsys, tmp_path, "later", utc("2027-01-01T00:00")) == ("online", utc("2028-01-25T00:00"))


def test_next_change_is_strictly_after_at(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_schedule(
        tmp_path,
        """
        version: 1
        tasks:
          - name: a
        windows:
          - name: w
            tasks: [a]
            cron: "0 10 * * *"
            duration: 1h
        """,
    )
    # exactly at a start the task is already offline (half-open [start, end))
    assert state(capsys, tmp_path, "a", utc("2027-06-01T10:00")) == ("offline", utc("2027-06-01T11:00"))
    # exactly at an end it is already back online
    assert state(capsys, tmp_path, "a", utc("2027-06-01T11:00")) == ("online", utc("2027-06-02T10:00"))


# --------------------------------------------------------------------------- files and locations


def _two_files(directory: Path) -> None:
    write_schedule(
        directory,
        """
        version: 1
        timezone: Europe/Berlin
        default_status: offline
        tasks:
          - name: berlin-task
        windows:
          - name: berlin-morning
            tasks: [berlin-task]
            status: online
            cron: "0 8 * * *"
            duration: 2h
        """,
        name="berlin.yaml",
    )
    write_schedule(
        directory,
        """
        version: 1
        tasks:
          - name: utc-task
        windows:
          - name: utc-morning
            tasks: [utc-task, berlin-task]
            cron: "0 8 * * *"
            duration: 30m
            priority: 1
        """,
        name="utc.yml",
    )
    (directory / "notes.txt").write_text("this: is: not: yaml: [", encoding="utf-8")


def test_folder_files_merge_with_per_file_zone_and_default(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _two_files(tmp_path)
    tasks = by_name(plan_json(capsys, tmp_path, "2027-01-15T06:00:00Z"))
    assert set(tasks) == {"berlin-task", "utc-task"}
    # per-file default_status: berlin.yaml says offline, utc.yml leaves the default (online)
    assert (tasks["berlin-task"]["desired"], tasks["berlin-task"]["source"]) == ("offline", "default")
    assert (tasks["utc-task"]["desired"], tasks["utc-task"]["source"]) == ("online", "default")
    # berlin-morning uses Berlin time: 08:00 CET = 07:00Z
    assert tasks["berlin-task"]["next_change"] == "2027-01-15T07:00:00Z"
    # utc-morning has no zone and its file none: UTC, 08:00Z
    assert tasks["utc-task"]["next_change"] == "2027-01-15T08:00:00Z"
    tasks = by_name(plan_json(capsys, tmp_path, "2027-01-15T08:10:00Z"))
    # a window in utc.yml selects a task declared in berlin.yaml, and its priority wins
    assert tasks["berlin-task"]["desired"] == "offline"
    assert tasks["berlin-task"]["source"] == "window:utc-morning"
    assert sorted(tasks["berlin-task"]["matches"]) == ["window:berlin-morning", "window:utc-morning"]
    assert tasks["berlin-task"]["next_change"] == "2027-01-15T08:30:00Z"
    assert tasks["utc-task"]["desired"] == "offline"


def test_schedule_file_reads_only_that_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _two_files(tmp_path)
    tasks = by_name(plan_json(capsys, tmp_path / "berlin.yaml", "2027-01-15T06:00:00Z"))
    assert set(tasks) == {"berlin-task"}
    assert tasks["berlin-task"]["next_change"] == "2027-01-15T07:00:00Z"


def test_esa_schedule_env_is_the_default_location(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    _two_files(tmp_path / "elsewhere")
    monkeypatch.setenv("ESA_SCHEDULE", str(tmp_path / "elsewhere"))
    monkeypatch.chdir(tmp_path)
    code, out, err = run_cli(capsys, "plan", "--at", "2027-01-15T06:00:00Z", "--json")
    assert code == 0, err
    assert {t["name"] for t in json.loads(out)["tasks"]} == {"berlin-task", "utc-task"}
    # --schedule beats the environment
    write_schedule(tmp_path / "other", "version: 1\ntasks:\n  - name: other-task\n")
    code, out, err = run_cli(
        capsys, "plan", "--schedule", str(tmp_path / "other"), "--at", "2027-01-15T06:00:00Z", "--json"
    )
    assert code == 0, err
    assert [t["name"] for t in json.loads(out)["tasks"]] == ["other-task"]


def test_schedule_folder_is_the_default_location(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ESA_SCHEDULE", raising=False)
    write_schedule(tmp_path / "schedule", "version: 1\ntasks:\n  - name: from-default-folder\n")
    monkeypatch.chdir(tmp_path)
    code, out, err = run_cli(capsys, "plan", "--at", "2027-01-15T06:00:00Z", "--json")
    assert code == 0, err
    assert [t["name"] for t in json.loads(out)["tasks"]] == ["from-default-folder"]


def test_end_cron_occurrences_combine_into_one_stream(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_schedule(
        tmp_path,
        """
        version: 1
        tasks:
          - name: a
        windows:
          - name: nights-until-monday
            tasks: [a]
            cron: "0 22 * * *"
            end_cron: "0 6 * * mon"
        """,
    )
    # every night starts an occurrence that lasts until the next Monday 06:00: the task is
    # offline from Monday 22:00 to the following Monday 06:00, online only in between
    assert state(capsys, tmp_path, "a", utc("2027-06-02T12:00")) == ("offline", utc("2027-06-07T06:00"))
    assert state(capsys, tmp_path, "a", utc("2027-06-07T06:00")) == ("online", utc("2027-06-07T22:00"))
    assert state(capsys, tmp_path, "a", utc("2027-06-07T22:00")) == ("offline", utc("2027-06-14T06:00"))
