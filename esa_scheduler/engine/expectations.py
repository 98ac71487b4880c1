"""Expectations: the ``expect:`` entries of a schedule, checked by ``validate``.

An expectation pins what the schedule alone decides ("access-logs-prod is offline at 03:15 on the
spring-forward night"), so a schedule change that breaks it fails review rather than production.
Holds are left out on purpose: they are operational state, not part of the schedule under test.
"""

from __future__ import annotations

from esa_scheduler.engine.planner import Decision, Planner, TaskRef, managed_tasks
from esa_scheduler.engine.schedule import Expectation, Schedule
from esa_scheduler.timeutil import utc_iso


def _failure(expectation: Expectation, decisions: list[Decision], sources: set[str]) -> str | None:
    spec = expectation.spec
    wanted = f"{spec.desired} ({spec.source})" if spec.source else spec.desired
    head = f"{expectation.file}: expect[{expectation.index}]: at {utc_iso(spec.at)}: expected {spec.task} {wanted}"
    if spec.source and spec.source not in sources:
        return f"{head}, but {spec.source!r} can never be a source here (use 'default' or 'window:<name>' of a window)"
    if not decisions:
        return f"{head}, but the plan does not manage {spec.task!r} (no task entry names it or matches it)"
    for decision in decisions:
        if decision.desired != spec.desired or (spec.source and decision.source != spec.source):
            return f"{head}, the plan says {decision.desired} ({decision.source})"
    return None


def failed_expectations(schedule: Schedule) -> list[str]:
    """One line per expectation the plan contradicts, naming its file, ``expect[i]`` and instant.

    Each one is planned on its own: the inventory is the schedule's named tasks plus the task the
    expectation names (so a task that only a pattern covers can be pinned too), with no holds.
    """
    failures = []
    sources = {"default"} | {f"window:{w.name}" for w in schedule.windows}
    for expectation in schedule.expectations:
        spec = expectation.spec
        planner = Planner(schedule, spec.at)
        plan = planner.decide(managed_tasks(schedule, [TaskRef(spec.task)]))
        failure = _failure(expectation, [d for d in plan.decisions if d.task.ref.name == spec.task], sources)
        if failure is not None:
            failures.append(failure)
    return failures
