"""``plan --ics``: an RFC 5545 feed parsed back with ``icalendar``; every event agrees with ``plan --json``
at its edges, UIDs survive re-exports, and the text follows the format's line rules."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import icalendar
import pytest
from helpers import add_hold, iso, run_cli, utc, write_schedule

from esa_scheduler.engine.planner import Planner, TaskRef, managed_tasks, plan
from esa_scheduler.engine.schedule.load import load_schedule

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "schedule" / "sample.yaml"
SPRING_WEEK = "2027-03-26T10:00:00Z"


def _export(capsys: pytest.CaptureFixture[str], tmp_path: Path, at: str, *extra: str, schedule: Path = SAMPLE) -> Path:
    feed = tmp_path / f"feed-{at.replace(':', '')}-{len(extra)}.ics"
    state = ["--state-dir", str(tmp_path / "state")]
    code, out, err = run_cli(
        capsys, "plan", "--schedule", str(schedule), "--at", at, "--ics", str(feed), *state, *extra
    )
    assert code == 0, err
    assert out.strip() == f"wrote {feed} (7 day(s) from {at})" or "--days" in extra
    return feed


def _events(feed: Path) -> list[Any]:
    calendar = icalendar.Calendar.from_ical(feed.read_bytes())
    assert str(calendar["VERSION"]) == "2.0"
    assert "esa-scheduler" in str(calendar["PRODID"])
    return list(calendar.walk("VEVENT"))


def _times(event: Any) -> tuple[datetime, datetime]:
    start, end = event["DTSTART"].dt, event["DTEND"].dt
    assert start.utcoffset() == timedelta(0) and end.utcoffset() == timedelta(0), "DTSTART/DTEND must be UTC"
    return start, end


def _plan(capsys: pytest.CaptureFixture[str], schedule: Path, at: datetime, *tasks: str) -> dict[str, tuple[str, str]]:
    args = ["plan", "--schedule", str(schedule), "--at", iso(at), "--json", "--state-dir", "/nonexistent-state"]
    code, out, err = run_cli(capsys, *args, *(["--task", *tasks] if tasks else []))
    assert code == 0, err
    return {t["name"]: (t["desired"], t["source"]) for t in json.loads(out)["tasks"]}


def test_every_event_agrees_with_the_plan_at_its_edges(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    feed = _export(capsys, tmp_path, SPRING_WEEK, "--task", "waf-edge", "waf-origin")
    events = _events(feed)
    # site-logs online on 6 weekdays; the waf tasks' weekend; 7 nights for access-logs-prod (waf with it from Monday)
    assert len(events) == 14
    horizon = utc("2027-04-02T10:00:00")
    for event in events:
        start, end = _times(event)
        summary = str(event["SUMMARY"])
        desired, rest = summary.split(": ", 1)
        names = [n.removesuffix(" (site 1234567890)") for n in rest.rsplit(" (", 1)[0].split(", ")]
        for name in names:
            assert _plan(capsys, SAMPLE, start, "waf-edge", "waf-origin")[name][0] == desired, summary
            assert _plan(capsys, SAMPLE, end - timedelta(seconds=1), "waf-edge", "waf-origin")[name][0] == desired
            if end < horizon:
                assert _plan(capsys, SAMPLE, end, "waf-edge", "waf-origin")[name][0] != desired, summary


def test_every_away_half_hour_is_in_some_event(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Completeness: sampled every 30 minutes, each task away from its default is inside an event naming it."""
    events = _events(_export(capsys, tmp_path, SPRING_WEEK, "--task", "waf-edge"))
    covered = [(_times(e), str(e["DESCRIPTION"]).splitlines()[2]) for e in events]
    schedule = load_schedule(SAMPLE)
    defaults = {t.name: t.default_status for t in schedule.tasks if t.name} | {"waf-edge": "online"}
    instant = utc("2027-03-26T10:00:00")
    while instant < utc("2027-04-02T10:00:00"):
        for decision in plan(schedule, instant, [TaskRef("waf-edge")]).decisions:
            name = decision.task.ref.name
            if decision.desired != defaults[name]:
                assert any(a <= instant < b and name in tasks for (a, b), tasks in covered), (name, instant)
        instant += timedelta(minutes=30)


def test_spring_forward_night_in_summary_times_and_description(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    events = _events(_export(capsys, tmp_path, SPRING_WEEK))
    nightly = [e for e in events if str(e["SUMMARY"]) == "offline: access-logs-prod (window nightly)"]
    assert [_times(e) for e in nightly][:3] == [
        (utc("2027-03-27T01:30:00"), utc("2027-03-27T02:30:00")),
        (utc("2027-03-28T01:00:00"), utc("2027-03-28T02:00:00")),
        (utc("2027-03-29T00:30:00"), utc("2027-03-29T01:30:00")),
    ]
    description = str(nightly[1]["DESCRIPTION"])
    assert description.splitlines()[0] == "2027-03-28 03:00 CEST - 2027-03-28 04:00 CEST (Europe/Berlin)"
    assert "window:nightly" in description
    # the pattern row stands for every waf-* task: the weekend freeze and the nightly window in between merge
    freeze = [e for e in events if str(e["SUMMARY"]).startswith("offline: waf-* (pattern)")]
    assert str(freeze[0]["SUMMARY"]) == "offline: waf-* (pattern) (window weekend-freeze, window nightly)"
    assert _times(freeze[0]) == (utc("2027-03-26T21:00:00"), utc("2027-03-29T04:00:00"))
    # a task whose default is offline shows its online windows
    online = [e for e in events if str(e["SUMMARY"]).startswith("online: site-logs (site 1234567890)")]
    assert len(online) == 6
    assert all(str(e["CATEGORIES"].to_ical(), "ascii") == "ONLINE" for e in online)


def _occurrences(feed: Path) -> dict[tuple[str, datetime, str], tuple[str, datetime, datetime]]:
    """Events by what makes them an occurrence (desired state, start, sources: not the tasks, which
    --task changes) -> UID, DTSTART, DTEND."""
    found = {}
    for event in _events(feed):
        desired, rest = str(event["SUMMARY"]).split(": ", 1)
        why = rest.rsplit(" (", 1)[1]
        start, end = _times(event)
        key = (desired, start, why)
        assert key not in found, key
        found[key] = (str(event["UID"]), start, end)
    return found


def test_uids_and_starts_are_stable_across_exports(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    first = _occurrences(_export(capsys, tmp_path, SPRING_WEEK))
    assert len(first) >= 10
    later = [
        # during the spring-forward occurrence of nightly, with the inventory of the README example
        _occurrences(_export(capsys, tmp_path, "2027-03-28T01:30:00Z", "--task", "waf-edge")),
        # Saturday noon and Sunday noon, inside the weekend freeze that began on Friday 22:00 local
        _occurrences(_export(capsys, tmp_path, "2027-03-27T12:00:00Z", "--task", "waf-edge", "waf-origin")),
        _occurrences(_export(capsys, tmp_path, "2027-03-28T12:00:00Z")),
    ]
    nightly = ("offline", utc("2027-03-28T01:00:00"), "window nightly)")
    freeze = ("offline", utc("2027-03-26T21:00:00"), "window weekend-freeze, window nightly)")
    assert nightly in later[0], "an interval under way at --at keeps its real start"
    for occurrences in later:
        assert freeze in occurrences, "the freeze is under way at each --at, from Friday 21:00Z"
        shared = set(first) & set(occurrences)
        assert len(shared) >= 4
        for key in shared:
            assert occurrences[key] == first[key], key
        assert len({uid for uid, _, _ in occurrences.values()}) == len(occurrences), "UIDs are unique in a feed"


def test_an_interval_past_the_search_horizon_ends_at_the_export_horizon(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A migration freeze from 2027-01-01 to 2029-01-01: under way since 59 days at --at, and ending
    beyond the planner's 400-day search, so its DTEND is the export's horizon, its start the real one."""
    path = write_schedule(
        tmp_path,
        """
        version: 1
        tasks: [{name: legacy-logs}]
        windows: [{name: sunset, tasks: [legacy-logs], start: "2027-01-01T00:00:00Z", end: "2029-01-01T00:00:00Z"}]
        """,
    )
    exports = [
        _occurrences(_export(capsys, tmp_path, at, schedule=path))
        for at in ("2027-03-01T00:00:00Z", "2027-03-02T06:00:00Z")
    ]
    for (uid, start, end), at in zip(
        [next(iter(e.values())) for e in exports], (utc("2027-03-01T00:00"), utc("2027-03-02T06:00")), strict=True
    ):
        assert (start, end) == (utc("2027-01-01T00:00"), at + timedelta(days=7))
        assert uid == next(iter(exports[0].values()))[0]


def test_same_export_is_byte_for_byte_identical(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    one = _export(capsys, tmp_path, SPRING_WEEK).read_bytes()
    two = _export(capsys, tmp_path, SPRING_WEEK, "--days", "7").read_bytes()
    assert one == two


def test_line_rules_escaping_and_long_groups(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_schedule(
        tmp_path,
        """
        version: 1
        timezone: Asia/Kolkata
        tasks:
          - pattern: "logs-*"
        windows:
          - name: "patch; reboot, then check"
            tasks: ["logs-*"]
            cron: "0 1 * * sun"
            duration: 2h
        """,
    )
    names = [f"logs-{'x' * 40}-{i}" for i in range(6)]
    feed = _export(capsys, tmp_path, "2027-01-04T00:00:00Z", "--task", *names, schedule=path)
    raw = feed.read_bytes()
    assert raw.endswith(b"\r\n")
    lines = raw.split(b"\r\n")[:-1]
    assert all(len(line) <= 75 for line in lines)
    assert any(line.startswith(b" ") for line in lines), "long lines are folded"
    assert b"\n" not in raw.replace(b"\r\n", b"")
    (event,) = _events(feed)
    assert (
        str(event["SUMMARY"])
        == f"offline: {names[0]}, {names[1]}, {names[2]} and 3 more (window patch; reboot, then check)"
    )
    assert _times(event) == (utc("2027-01-09T19:30:00"), utc("2027-01-09T21:30:00"))
    description = str(event["DESCRIPTION"]).splitlines()
    assert description[0] == "2027-01-10 01:00 IST - 2027-01-10 03:00 IST (Asia/Kolkata)"
    assert description[2] == f"tasks (6): {', '.join(names)}"


def test_holds_appear_as_their_own_events(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    state = tmp_path / "state"
    now = utc("2027-01-08T09:15:00")
    until = now + timedelta(days=10)
    add_hold(SAMPLE, state, "access-logs-prod", now, until, "inc-7")
    feed = tmp_path / "holds.ics"
    args = ["plan", "--schedule", str(SAMPLE), "--at", iso(now), "--ics", str(feed), "--state-dir", str(state)]
    code, _, err = run_cli(capsys, *args, "--days", "2")
    assert code == 0, err
    held = [e for e in _events(feed) if "access-logs-prod" in str(e["SUMMARY"])]
    assert [str(e["SUMMARY"]) for e in held] == ["offline: access-logs-prod (hold inc-7)"]
    assert _times(held[0]) == (now, until)


@pytest.mark.parametrize("days", ["0", "367", "-1"])
def test_days_out_of_range_is_a_one_line_error(tmp_path: Path, capsys: pytest.CaptureFixture[str], days: str) -> None:
    feed = tmp_path / "x.ics"
    code, _, err = run_cli(capsys, "plan", "--schedule", str(SAMPLE), "--ics", str(feed), "--days", days)
    assert code == 2
    assert err.strip() == f"--days: {days} must be a whole number of days from 1 to 366"
    assert not feed.exists()


def test_unwritable_file_is_a_one_line_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "missing-dir" / "x.ics"
    code, _, err = run_cli(capsys, "plan", "--schedule", str(SAMPLE), "--ics", str(target))
    assert code == 2
    assert err.strip() == f"{target}: cannot write: No such file or directory"


def test_the_feed_imported_as_an_ics_calendar_gives_the_same_intervals(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Round trip: export the week, read it back as a calendar window, and plan the same week."""
    feed = _export(capsys, tmp_path, SPRING_WEEK, "--task", "waf-edge")
    mirror = write_schedule(
        tmp_path / "mirror",
        f"""\
        version: 1
        timezone: Europe/Berlin
        calendars:
          feed: {{ics: {feed}}}
        tasks:
          - name: access-logs-prod
          - name: waf-edge
        windows:
          - name: from-feed-access
            tasks: [access-logs-prod]
            calendar: feed
            summary: "offline: *access-logs-prod*"
          - name: from-feed-waf
            tasks: [waf-edge]
            calendar: feed
            summary: "offline: *waf-edge*"
        """,
    )
    start, end = utc("2027-03-26T10:00:00"), utc("2027-04-02T10:00:00")

    def intervals(schedule_path: Path, name: str) -> list[tuple[datetime, str]]:
        """The desired state at the start, then every change of it, within the week."""
        planner = Planner(load_schedule(schedule_path), start, [])
        (decision,) = [
            d
            for d in planner.decide(managed_tasks(planner.schedule, [TaskRef(name)])).decisions
            if d.task.ref.name == name
        ]
        changes = [(at, state.desired) for at, state in planner.transitions(decision.task, end)]
        merged: list[tuple[datetime, str]] = [(start, decision.desired)]
        for at, desired in changes:
            if desired != merged[-1][1]:
                merged.append((at, desired))
        return merged

    for name in ("access-logs-prod", "waf-edge"):
        expected = intervals(SAMPLE, name)
        assert len(expected) > 10, "the week must hold offline intervals for the round trip to mean something"
        assert intervals(mirror, name) == expected, name


def test_an_interval_under_way_for_longer_than_the_search_keeps_its_uid(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Under way since before the 400-day look back: its start is unknown, DTSTART is the look back's
    origin (it moves with --at), and the UID, which cannot hash the start, stays the same."""
    path = write_schedule(
        tmp_path,
        """
        version: 1
        tasks: [{name: legacy-logs}]
        windows: [{name: sunset, tasks: [legacy-logs], start: "2025-01-01T00:00:00Z", end: "2027-06-01T00:00:00Z"}]
        """,
    )
    events = []
    for at in (utc("2027-03-01T00:00"), utc("2027-03-02T06:00")):
        (event,) = _events(_export(capsys, tmp_path, iso(at), schedule=path))
        assert _times(event) == (at - timedelta(days=400), utc("2027-06-01T00:00"))
        events.append(event)
    assert str(events[0]["UID"]) == str(events[1]["UID"])


def test_a_fleet_targets_feed_has_its_own_uids(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The same window occurrence seen from two targets is two events, should both feeds land in one calendar."""
    path = write_schedule(
        tmp_path,
        """
        version: 1
        targets: [{name: prod-cn, region: cn-hangzhou}, {name: prod-intl, region: ap-southeast-1}]
        tasks: [{name: logs}]
        windows: [{name: nightly, tasks: [logs], cron: "0 2 * * *", duration: 1h}]
        """,
    )
    feeds = [
        _occurrences(_export(capsys, tmp_path, SPRING_WEEK, "--target", target, schedule=path))
        for target in ("prod-cn", "prod-intl")
    ]
    assert feeds[0].keys() == feeds[1].keys() and len(feeds[0]) == 7
    for key, (uid, start, end) in feeds[0].items():
        assert feeds[1][key][1:] == (start, end)
        assert feeds[1][key][0] != uid


def test_stretches_alike_but_for_their_end_get_distinct_uids(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Both tasks go offline with 'patch' at 02:00; an online window cuts b short at 03:00."""
    path = write_schedule(
        tmp_path,
        """
        version: 1
        tasks: [{name: a}, {name: b}]
        windows:
          - {name: patch, tasks: [a, b], cron: "0 2 * * *", duration: 2h}
          - {name: report, tasks: [b], status: online, priority: 9, cron: "0 3 * * *", duration: 2h}
        """,
    )
    events = _events(_export(capsys, tmp_path, "2027-05-10T00:00:00Z", "--days", "1", schedule=path))
    assert sorted((str(e["SUMMARY"]), _times(e)[1]) for e in events) == [
        ("offline: a (window patch)", utc("2027-05-10T04:00")),
        ("offline: b (window patch)", utc("2027-05-10T03:00")),
    ]
    assert len({str(e["UID"]) for e in events}) == 2


@pytest.mark.parametrize(
    ("timezone", "at", "periods"),
    [
        (  # the spring-forward week: CET from the first day, CEST from 03:00 local on the 28th
            "Europe/Berlin",
            "2027-03-26T10:00:00Z",
            [("STANDARD", datetime(2027, 3, 26), 1), ("DAYLIGHT", datetime(2027, 3, 28, 3), 2)],
        ),
        ("Europe/Berlin", "2027-07-01T10:00:00Z", [("DAYLIGHT", datetime(2027, 7, 1), 2)]),
        ("UTC", "2027-07-01T10:00:00Z", [("STANDARD", datetime(2027, 7, 1), 0)]),
    ],
)
def test_a_period_without_events_is_still_a_valid_calendar(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], timezone: str, at: str, periods: list[tuple[str, datetime, int]]
) -> None:
    """RFC 5545 wants at least one component: the feed carries the schedule's zone as a VTIMEZONE."""
    path = write_schedule(
        tmp_path,
        f"""
        version: 1
        timezone: {timezone}
        tasks: [{{name: logs}}]
        windows: [{{name: year-end, tasks: [logs], start: "2027-12-31T00:00:00", end: "2028-01-01T00:00:00"}}]
        """,
    )
    feed = _export(capsys, tmp_path, at, schedule=path)
    calendar = icalendar.Calendar.from_ical(feed.read_bytes())
    assert [c.name for c in calendar.subcomponents] == ["VTIMEZONE"]
    (zone,) = calendar.timezones
    assert str(zone["TZID"]) == timezone
    found = [(c.name, c.DTSTART, c.TZOFFSETTO) for c in zone.subcomponents]
    assert found == [(name, start, timedelta(hours=hours)) for name, start, hours in periods]
    assert zone.to_tz() is not None  # icalendar turns it back into a usable zone


def test_the_feeds_zone_is_the_schedules(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    calendar = icalendar.Calendar.from_ical(_export(capsys, tmp_path, SPRING_WEEK).read_bytes())
    (zone,) = calendar.timezones
    assert str(zone["TZID"]) == "Europe/Berlin"
    assert len(calendar.walk("VEVENT")) > 10
