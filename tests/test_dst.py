"""DST-exact window semantics, checked through ``esa-scheduler plan --json`` on real YAML files.

Every expected instant below was worked out by hand from the IANA rules (and is cross-checked
with ``zoneinfo`` in ``test_transition_instants_used_here``):

* Europe/Berlin 2027: spring forward 2027-03-28 01:00Z (02:00 CET -> 03:00 CEST),
  fall back 2027-10-31 01:00Z (03:00 CEST -> 02:00 CET).
* Australia/Sydney 2027: DST ends 2027-04-03 16:00Z (03:00 AEDT -> 02:00 AEST),
  DST starts 2027-10-02 16:00Z (02:00 AEST -> 03:00 AEDT).
* America/Santiago 2027: DST ends 2027-04-04 03:00Z (00:00 -03 -> 23:00 -04 the day before),
  DST starts 2027-09-05 04:00Z (00:00 -04 -> 01:00 -03).
* Australia/Lord_Howe 2027 (30-minute shift): DST ends 2027-04-03 15:00Z (02:00 +11 -> 01:30
  +10:30), DST starts 2027-10-02 15:30Z (02:00 +10:30 -> 02:30 +11).
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from helpers import iso, parse_instant, run_cli, utc, write_schedule

# --------------------------------------------------------------------------- helpers


class Planner:
    def __init__(self, capsys: pytest.CaptureFixture[str], schedule: Path) -> None:
        self.capsys = capsys
        self.schedule = schedule

    @classmethod
    def writing(cls, capsys: pytest.CaptureFixture[str], tmp_path: Path, text: str) -> Planner:
        """Write ``text`` as the only file of ``tmp_path/schedule`` and plan against that folder."""
        write_schedule(tmp_path / "schedule", text)
        return cls(capsys, tmp_path / "schedule")

    def raw(self, at: str, *extra: str) -> dict[str, Any]:
        code, out, err = run_cli(self.capsys, "plan", "--schedule", str(self.schedule), "--at", at, "--json", *extra)
        assert code == 0, f"plan exited {code}: {err}{out}"
        assert "Traceback" not in out + err
        result = json.loads(out)
        assert isinstance(result, dict)
        return result

    def task(self, name: str, at: datetime | str) -> dict[str, Any]:
        text = at if isinstance(at, str) else iso(at)
        result = self.raw(text)
        found: list[dict[str, Any]] = [t for t in result["tasks"] if t["name"] == name]
        assert len(found) == 1, result
        return found[0]

    def state(self, name: str, at: datetime) -> tuple[str, datetime | None]:
        entry = self.task(name, at)
        change = entry["next_change"]
        return entry["desired"], (parse_instant(change) if change is not None else None)


# --------------------------------------------------------------------------- sanity of the oracle


@pytest.mark.parametrize(
    ("zone", "instant", "before", "after"),
    [
        ("Europe/Berlin", "2027-03-28T01:00", timedelta(hours=1), timedelta(hours=2)),
        ("Europe/Berlin", "2027-10-31T01:00", timedelta(hours=2), timedelta(hours=1)),
        ("Australia/Sydney", "2027-04-03T16:00", timedelta(hours=11), timedelta(hours=10)),
        ("Australia/Sydney", "2027-10-02T16:00", timedelta(hours=10), timedelta(hours=11)),
        ("America/Santiago", "2027-04-04T03:00", timedelta(hours=-3), timedelta(hours=-4)),
        ("America/Santiago", "2027-09-05T04:00", timedelta(hours=-4), timedelta(hours=-3)),
        ("Australia/Lord_Howe", "2027-04-03T15:00", timedelta(hours=11), timedelta(hours=10, minutes=30)),
        ("Australia/Lord_Howe", "2027-10-02T15:30", timedelta(hours=10, minutes=30), timedelta(hours=11)),
    ],
)
def test_transition_instants_used_here(zone: str, instant: str, before: timedelta, after: timedelta) -> None:
    at = utc(instant)
    tz = ZoneInfo(zone)
    assert (at - timedelta(seconds=1)).astimezone(tz).utcoffset() == before
    assert at.astimezone(tz).utcoffset() == after


# --------------------------------------------------------------------------- Europe/Berlin

BERLIN = """
    version: 1
    timezone: Europe/Berlin
    default_status: online
    tasks:
      - name: daily
      - name: hourly
      - name: early
      - name: weekend
    windows:
      - name: nightly
        tasks: [daily]
        cron: "30 2 * * *"
        duration: 1h
      - name: every-hour
        tasks: [hourly]
        cron: "30 * * * *"
        duration: 10m
      - name: early-3h
        tasks: [early]
        cron: "0 1 * * *"
        duration: 3h
      - name: weekend-freeze
        tasks: [weekend]
        cron: "0 22 * * fri"
        end_cron: "0 6 * * mon"
"""


@pytest.fixture
def berlin(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Planner:
    return Planner.writing(capsys, tmp_path, BERLIN)


def test_berlin_daily_before_spring_forward_is_ordinary(berlin: Planner) -> None:
    # 2027-03-27 02:30 CET = 01:30Z
    assert berlin.state("daily", utc("2027-03-27T01:29")) == ("online", utc("2027-03-27T01:30"))
    assert berlin.state("daily", utc("2027-03-27T01:30")) == ("offline", utc("2027-03-27T02:30"))


def test_berlin_daily_in_spring_forward_gap_starts_after_the_gap(berlin: Planner) -> None:
    # 02:30 does not exist on 2027-03-28: the start happens at 03:00 CEST = 01:00Z, and the 1h
    # duration is elapsed time, so it ends at 02:00Z (04:00 CEST).
    assert berlin.state("daily", utc("2027-03-28T00:59:59")) == ("online", utc("2027-03-28T01:00"))
    entry = berlin.task("daily", utc("2027-03-28T01:00"))
    assert entry["desired"] == "offline"
    assert entry["source"] == "window:nightly"
    assert entry["matches"] == ["window:nightly"]
    assert entry["next_change"] == "2027-03-28T02:00:00Z"
    assert berlin.state("daily", utc("2027-03-28T01:59:59")) == ("offline", utc("2027-03-28T02:00"))
    # 2027-03-29 02:30 CEST = 00:30Z
    assert berlin.state("daily", utc("2027-03-28T02:00")) == ("online", utc("2027-03-29T00:30"))


def test_berlin_daily_on_fall_back_day_starts_only_on_first_pass(berlin: Planner) -> None:
    # 02:30 happens twice on 2027-10-31 (00:30Z CEST and 01:30Z CET): only the first pass.
    assert berlin.state("daily", utc("2027-10-30T23:00")) == ("online", utc("2027-10-31T00:30"))
    assert berlin.state("daily", utc("2027-10-31T00:30")) == ("offline", utc("2027-10-31T01:30"))
    assert berlin.state("daily", utc("2027-10-31T01:00")) == ("offline", utc("2027-10-31T01:30"))
    # 2027-11-01 02:30 CET = 01:30Z
    assert berlin.state("daily", utc("2027-10-31T01:30")) == ("online", utc("2027-11-01T01:30"))
    assert berlin.state("daily", utc("2027-10-31T01:45")) == ("online", utc("2027-11-01T01:30"))
    assert berlin.state("daily", utc("2027-10-31T02:29")) == ("online", utc("2027-11-01T01:30"))


def test_berlin_hourly_fires_on_both_passes_of_repeated_hour(berlin: Planner) -> None:
    # Local 01:30 CEST = 23:30Z, 02:30 CEST = 00:30Z, 02:30 CET = 01:30Z, 03:30 CET = 02:30Z.
    assert berlin.state("hourly", utc("2027-10-30T23:35")) == ("offline", utc("2027-10-30T23:40"))
    assert berlin.state("hourly", utc("2027-10-30T23:45")) == ("online", utc("2027-10-31T00:30"))
    assert berlin.state("hourly", utc("2027-10-31T00:35")) == ("offline", utc("2027-10-31T00:40"))
    assert berlin.state("hourly", utc("2027-10-31T00:45")) == ("online", utc("2027-10-31T01:30"))
    entry = berlin.task("hourly", utc("2027-10-31T01:35"))
    assert entry["desired"] == "offline"
    assert entry["source"] == "window:every-hour"
    assert entry["next_change"] == "2027-10-31T01:40:00Z"
    assert berlin.state("hourly", utc("2027-10-31T01:45")) == ("online", utc("2027-10-31T02:30"))


def test_berlin_duration_is_elapsed_on_spring_forward_day(berlin: Planner) -> None:
    # 01:00 CET = 00:00Z; 3 elapsed hours later is 03:00Z (05:00 CEST), not 04:00 CEST = 02:00Z.
    assert berlin.state("early", utc("2027-03-27T23:59")) == ("online", utc("2027-03-28T00:00"))
    assert berlin.state("early", utc("2027-03-28T00:00")) == ("offline", utc("2027-03-28T03:00"))
    assert berlin.state("early", utc("2027-03-28T02:30")) == ("offline", utc("2027-03-28T03:00"))
    # next start: 2027-03-29 01:00 CEST = 2027-03-28T23:00Z
    assert berlin.state("early", utc("2027-03-28T03:00")) == ("online", utc("2027-03-28T23:00"))


def test_berlin_duration_is_elapsed_on_fall_back_day(berlin: Planner) -> None:
    # 2027-10-31 01:00 CEST = 2027-10-30T23:00Z; +3h = 02:00Z (03:00 CET, not 04:00 CET).
    assert berlin.state("early", utc("2027-10-30T23:00")) == ("offline", utc("2027-10-31T02:00"))
    assert berlin.state("early", utc("2027-10-31T01:59:59")) == ("offline", utc("2027-10-31T02:00"))
    # next start: 2027-11-01 01:00 CET = 00:00Z
    assert berlin.state("early", utc("2027-10-31T02:00")) == ("online", utc("2027-11-01T00:00"))


def test_berlin_end_cron_is_wall_clock_across_fall_back(berlin: Planner) -> None:
    # Fri 2027-10-29 22:00 CEST = 20:00Z until Mon 2027-11-01 06:00 CET = 05:00Z: 57 elapsed hours.
    assert berlin.state("weekend", utc("2027-10-29T19:59:59")) == ("online", utc("2027-10-29T20:00"))
    desired, end = berlin.state("weekend", utc("2027-10-29T20:00"))
    assert desired == "offline"
    assert end == utc("2027-11-01T05:00")
    assert end - utc("2027-10-29T20:00") == timedelta(hours=57)
    assert berlin.state("weekend", utc("2027-10-31T01:30")) == ("offline", utc("2027-11-01T05:00"))
    assert berlin.state("weekend", utc("2027-11-01T04:59:59")) == ("offline", utc("2027-11-01T05:00"))
    # next Friday 2027-11-05 22:00 CET = 21:00Z
    assert berlin.state("weekend", utc("2027-11-01T05:00")) == ("online", utc("2027-11-05T21:00"))


def test_berlin_end_cron_is_wall_clock_across_spring_forward(berlin: Planner) -> None:
    # Fri 2027-03-26 22:00 CET = 21:00Z until Mon 2027-03-29 06:00 CEST = 04:00Z: 55 elapsed hours.
    desired, end = berlin.state("weekend", utc("2027-03-26T21:00"))
    assert desired == "offline"
    assert end == utc("2027-03-29T04:00")
    assert end - utc("2027-03-26T21:00") == timedelta(hours=55)


def test_issue_plan_json_example_exactly(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # At 01:45Z on the fall-back day the nightly 02:30 window ran only once (00:30Z-01:30Z),
    # so the task is online by default, and the next start is 2027-11-01 02:30 CET = 01:30Z.
    planner = Planner.writing(
        capsys,
        tmp_path,
        """
        version: 1
        timezone: Europe/Berlin
        default_status: online
        tasks:
          - name: access-logs-prod
        windows:
          - name: nightly
            tasks: [access-logs-prod]
            status: offline
            priority: 0
            cron: "30 2 * * *"
            duration: 1h
        """,
    )
    assert planner.raw("2027-10-31T01:45:00Z") == {
        "at": "2027-10-31T01:45:00Z",
        "tasks": [
            {
                "name": "access-logs-prod",
                "site_id": None,
                "desired": "online",
                "source": "default",
                "matches": [],
                "next_change": "2027-11-01T01:30:00Z",
            }
        ],
    }
    # the same instant written with an offset is reported in UTC
    assert planner.raw("2027-10-31T02:45:00+01:00")["at"] == "2027-10-31T01:45:00Z"


# --------------------------------------------------------------------------- southern hemisphere

SYDNEY = """
    version: 1
    timezone: Australia/Sydney
    tasks:
      - name: daily
      - name: hourly
    windows:
      - name: nightly
        tasks: [daily]
        cron: "30 2 * * *"
        duration: 1h
      - name: every-hour
        tasks: [hourly]
        cron: "30 * * * *"
        duration: 10m
"""


@pytest.fixture
def sydney(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Planner:
    return Planner.writing(capsys, tmp_path, SYDNEY)


def test_sydney_gap_daily_starts_after_the_gap(sydney: Planner) -> None:
    # 2027-10-02 02:30 AEST = 2027-10-01T16:30Z (ordinary day)
    assert sydney.state("daily", utc("2027-10-01T16:30")) == ("offline", utc("2027-10-01T17:30"))
    # 2027-10-03 02:30 does not exist: start at 03:00 AEDT = 2027-10-02T16:00Z, 1 elapsed hour.
    assert sydney.state("daily", utc("2027-10-01T17:30")) == ("online", utc("2027-10-02T16:00"))
    assert sydney.state("daily", utc("2027-10-02T16:00")) == ("offline", utc("2027-10-02T17:00"))
    # 2027-10-04 02:30 AEDT = 2027-10-03T15:30Z
    assert sydney.state("daily", utc("2027-10-02T17:00")) == ("online", utc("2027-10-03T15:30"))


def test_sydney_fold_daily_starts_only_on_first_pass(sydney: Planner) -> None:
    # 2027-04-04 02:30 happens at 15:30Z (AEDT) and 16:30Z (AEST): only the first pass.
    assert sydney.state("daily", utc("2027-04-03T15:00")) == ("online", utc("2027-04-03T15:30"))
    assert sydney.state("daily", utc("2027-04-03T15:30")) == ("offline", utc("2027-04-03T16:30"))
    # next: 2027-04-05 02:30 AEST = 2027-04-04T16:30Z
    assert sydney.state("daily", utc("2027-04-03T16:30")) == ("online", utc("2027-04-04T16:30"))
    assert sydney.state("daily", utc("2027-04-03T16:45")) == ("online", utc("2027-04-04T16:30"))


def test_sydney_fold_hourly_fires_on_both_passes(sydney: Planner) -> None:
    assert sydney.state("hourly", utc("2027-04-03T15:35")) == ("offline", utc("2027-04-03T15:40"))
    assert sydney.state("hourly", utc("2027-04-03T15:45")) == ("online", utc("2027-04-03T16:30"))
    assert sydney.state("hourly", utc("2027-04-03T16:35")) == ("offline", utc("2027-04-03T16:40"))
    assert sydney.state("hourly", utc("2027-04-03T16:45")) == ("online", utc("2027-04-03T17:30"))


SANTIAGO = """
    version: 1
    timezone: America/Santiago
    tasks:
      - name: midnight
      - name: late
    windows:
      - name: just-after-midnight
        tasks: [midnight]
        cron: "30 0 * * *"
        duration: 1h
      - name: late-evening
        tasks: [late]
        cron: "30 23 * * *"
        duration: 20m
"""


@pytest.fixture
def santiago(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Planner:
    return Planner.writing(capsys, tmp_path, SANTIAGO)


def test_santiago_gap_at_midnight(santiago: Planner) -> None:
    # 2027-09-04 00:30 -04 = 04:30Z (ordinary); 2027-09-05 00:30 does not exist (00:00 -> 01:00):
    # the start happens at 01:00 -03 = 04:00Z and lasts one elapsed hour.
    assert santiago.state("midnight", utc("2027-09-04T04:30")) == ("offline", utc("2027-09-04T05:30"))
    assert santiago.state("midnight", utc("2027-09-04T05:30")) == ("online", utc("2027-09-05T04:00"))
    assert santiago.state("midnight", utc("2027-09-05T04:00")) == ("offline", utc("2027-09-05T05:00"))
    # 2027-09-06 00:30 -03 = 03:30Z
    assert santiago.state("midnight", utc("2027-09-05T05:00")) == ("online", utc("2027-09-06T03:30"))


def test_santiago_fold_late_evening_first_pass_only(santiago: Planner) -> None:
    # 2027-04-03 23:30 happens at 02:30Z (-03) and 03:30Z (-04) on 2027-04-04: first pass only.
    assert santiago.state("late", utc("2027-04-04T02:00")) == ("online", utc("2027-04-04T02:30"))
    assert santiago.state("late", utc("2027-04-04T02:30")) == ("offline", utc("2027-04-04T02:50"))
    # next: 2027-04-04 23:30 -04 = 2027-04-05T03:30Z
    assert santiago.state("late", utc("2027-04-04T02:50")) == ("online", utc("2027-04-05T03:30"))
    assert santiago.state("late", utc("2027-04-04T03:35")) == ("online", utc("2027-04-05T03:30"))


# --------------------------------------------------------------------------- Australia/Lord_Howe

LORD_HOWE = """
    version: 1
    timezone: Australia/Lord_Howe
    tasks:
      - name: gap
      - name: fold
      - name: hourly
    windows:
      - name: in-the-gap
        tasks: [gap]
        cron: "15 2 * * *"
        duration: 1h
      - name: repeated
        tasks: [fold]
        cron: "45 1 * * *"
        duration: 10m
      - name: every-hour
        tasks: [hourly]
        cron: "45 * * * *"
        duration: 10m
"""


@pytest.fixture
def lord_howe(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Planner:
    return Planner.writing(capsys, tmp_path, LORD_HOWE)


def test_lord_howe_fixed_time_in_half_hour_gap(lord_howe: Planner) -> None:
    # 2027-10-02 02:15 +10:30 = 2027-10-01T15:45Z (ordinary day)
    assert lord_howe.state("gap", utc("2027-10-01T15:45")) == ("offline", utc("2027-10-01T16:45"))
    # 2027-10-03 02:15 is in the gap 02:00-02:30: start at 02:30 +11 = 2027-10-02T15:30Z.
    assert lord_howe.state("gap", utc("2027-10-01T16:45")) == ("online", utc("2027-10-02T15:30"))
    assert lord_howe.state("gap", utc("2027-10-02T15:30")) == ("offline", utc("2027-10-02T16:30"))
    # 2027-10-04 02:15 +11 = 2027-10-03T15:15Z
    assert lord_howe.state("gap", utc("2027-10-02T16:30")) == ("online", utc("2027-10-03T15:15"))


def test_lord_howe_repeated_half_hour_fixed_hour_first_pass_only(lord_howe: Planner) -> None:
    # 2027-04-04 01:45 happens at 14:45Z (+11) and 15:15Z (+10:30): first pass only.
    assert lord_howe.state("fold", utc("2027-04-03T14:00")) == ("online", utc("2027-04-03T14:45"))
    assert lord_howe.state("fold", utc("2027-04-03T14:45")) == ("offline", utc("2027-04-03T14:55"))
    # next: 2027-04-05 01:45 +10:30 = 2027-04-04T15:15Z
    assert lord_howe.state("fold", utc("2027-04-03T14:55")) == ("online", utc("2027-04-04T15:15"))
    assert lord_howe.state("fold", utc("2027-04-03T15:20")) == ("online", utc("2027-04-04T15:15"))


def test_lord_howe_repeated_half_hour_hourly_fires_on_both_passes(lord_howe: Planner) -> None:
    # 00:45 +11 = 13:45Z, 01:45 +11 = 14:45Z, 01:45 +10:30 = 15:15Z, 02:45 +10:30 = 16:15Z
    assert lord_howe.state("hourly", utc("2027-04-03T13:55")) == ("online", utc("2027-04-03T14:45"))
    assert lord_howe.state("hourly", utc("2027-04-03T14:55")) == ("online", utc("2027-04-03T15:15"))
    assert lord_howe.state("hourly", utc("2027-04-03T15:15")) == ("offline", utc("2027-04-03T15:25"))
    assert lord_howe.state("hourly", utc("2027-04-03T15:25")) == ("online", utc("2027-04-03T16:15"))


def test_berlin_wildcard_hour_start_in_gap_happens_after_the_gap(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The issue's gap rule has no exception for a ``*`` hour field (that exception is stated for
    the fall-back fold only): "A start that falls in a spring-forward gap happens at the first
    instant after the gap". ``15 * * * *`` matches 02:15, which does not exist on 2027-03-28, so
    that start happens at 03:00 CEST = 01:00Z; 03:15 CEST = 01:15Z starts as usual."""
    planner = Planner.writing(
        capsys,
        tmp_path,
        """
        version: 1
        timezone: Europe/Berlin
        tasks:
          - name: t
        windows:
          - name: quarter-past
            tasks: [t]
            cron: "15 * * * *"
            duration: 10m
        """,
    )
    # 01:15 CET = 00:15Z as usual
    assert planner.state("t", utc("2027-03-28T00:15")) == ("offline", utc("2027-03-28T00:25"))
    assert planner.state("t", utc("2027-03-28T00:30")) == ("online", utc("2027-03-28T01:00"))
    assert planner.state("t", utc("2027-03-28T01:00")) == ("offline", utc("2027-03-28T01:10"))
    assert planner.state("t", utc("2027-03-28T01:10")) == ("online", utc("2027-03-28T01:15"))


def test_berlin_end_cron_on_repeated_time_ends_at_first_pass(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    planner = Planner.writing(
        capsys,
        tmp_path,
        """
        version: 1
        timezone: Europe/Berlin
        tasks:
          - name: t
        windows:
          - name: late
            tasks: [t]
            cron: "0 22 30 10 *"
            end_cron: "30 2 * * *"
        """,
    )
    # 2027-10-30 22:00 CEST = 20:00Z until the first wall-clock 02:30 after it: 00:30Z (CEST)
    assert planner.state("t", utc("2027-10-30T20:00")) == ("offline", utc("2027-10-31T00:30"))
    assert planner.state("t", utc("2027-10-31T00:30")) == ("online", utc("2028-10-30T21:00"))
