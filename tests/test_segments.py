"""``Planner.segments``, what the views draw: contiguous, one per change of state or source, each agreeing
with ``plan`` at its start and just before its end, and the last one running to its real end."""

from __future__ import annotations

from datetime import timedelta
from itertools import pairwise
from pathlib import Path

import pytest
from helpers import utc

from esa_scheduler.engine.planner import Planner, TaskRef, managed_tasks, plan
from esa_scheduler.engine.schedule.load import load_schedule

SAMPLE = Path(__file__).resolve().parent.parent / "schedule" / "sample.yaml"


@pytest.mark.parametrize("at", ["2027-03-26T10:00:00", "2027-10-29T19:59:00", "2027-03-28T01:30:00"])
def test_segments_agree_with_plan(at: str) -> None:
    schedule = load_schedule(SAMPLE)
    start, until = utc(at), utc(at) + timedelta(days=7)
    planner = Planner(schedule, start)
    inventory = [TaskRef("waf-edge")]
    for task in managed_tasks(schedule, inventory):
        pieces = planner.segments(task, until)
        assert pieces[0].start == start
        last = pieces[-1]
        assert last.end is not None and last.end > until
        for before, after in pairwise(pieces):
            assert before.end == after.start
            assert (before.state.desired, before.state.source) != (after.state.desired, after.state.source)
        for piece in pieces:
            assert piece.end is not None
            for instant in (piece.start, piece.end - timedelta(seconds=1)):
                (decision,) = [d for d in plan(schedule, instant, inventory).decisions if d.task == task]
                assert (decision.desired, decision.source) == (piece.state.desired, piece.state.source), instant
        assert planner.segments(task, until) is pieces  # one computation per group and horizon


def test_a_source_change_without_a_state_change_is_its_own_segment() -> None:
    schedule = load_schedule(SAMPLE)
    waf = next(t for t in managed_tasks(schedule, [TaskRef("waf-edge")]) if t.ref.name == "waf-edge")
    pieces = Planner(schedule, utc("2027-03-26T20:00:00")).segments(waf, utc("2027-03-29T12:00:00"))
    sources = [p.state.source for p in pieces]
    assert sources[:4] == ["default", "window:weekend-freeze", "window:nightly", "window:weekend-freeze"]
    assert [p.state.desired for p in pieces[1:4]] == ["offline"] * 3
