"""Expectations: the ``expect:`` entries of a schedule, checked by ``validate``.

An expectation pins what the schedule alone decides ("access-logs-prod is offline at 03:15 on the
spring-forward night"), so a schedule change that breaks it fails review rather than production.
Holds are left out on purpose: they are operational state, not part of the schedule under test.
With fleet ``targets:``, each target's plan is its own (``project``), so an expectation is checked
against what the targets' invocations would decide, not against the schedule as a whole.
"""

from __future__ import annotations

from esa_scheduler.engine.planner import Decision, Planner, TaskRef, managed_tasks
from esa_scheduler.engine.schedule.model import Expectation, Schedule
from esa_scheduler.engine.selectors import selector_matches
from esa_scheduler.engine.targets import project
from esa_scheduler.timeutil import utc_iso

Found = tuple[str | None, Decision]
"""A decision about the expected task's name, and the target whose plan made it (``None``: no targets)."""


def _label(name: str, site_id: int | None, target: str | None, *, user_level: bool = False) -> str:
    """``edge-eu``, or ``edge-eu (site 1234567890, target prod-cn)`` when a site or target tells it
    apart (``user-level`` too, where a task of the same name also exists on a site)."""
    site = [f"site {site_id}"] if site_id is not None else ["user-level"] if user_level else []
    parts = site + ([f"target {target}"] if target else [])
    return f"{name} ({', '.join(parts)})" if parts else name


def _on_sites(found: list[Found]) -> bool:
    """Whether tasks of the same name live on more than one site (or on a site and at user level)."""
    return len({d.task.ref.site_id for _, d in found}) > 1


def _decisions(schedule: Schedule, expectation: Expectation) -> list[Found]:
    """Every managed task of the expected name, on every site and target, as the plans at ``at`` decide.

    The inventory is the named tasks plus the name itself, at user level and on each site of a
    pattern matching it, so a task that only a (site) pattern covers can be pinned too.
    """
    spec = expectation.spec
    scopes: list[tuple[str | None, Schedule]] = [(t.name, project(schedule, t.name)) for t in schedule.targets]
    found: list[Found] = []
    for target, scoped in scopes or [(None, schedule)]:
        sites = {None} | {r.site_id for r in scoped.tasks if r.pattern and selector_matches(r.pattern, spec.task)}
        inventory = [TaskRef(spec.task, site) for site in sites]
        plan = Planner(scoped, spec.at).decide(managed_tasks(scoped, inventory))
        found.extend((target, d) for d in plan.decisions if d.task.ref.name == spec.task)
    return found


def _failure(expectation: Expectation, found: list[Found], sources: set[str]) -> str | None:
    spec = expectation.spec
    wanted = f"{spec.desired} ({spec.source})" if spec.source else spec.desired
    expected = _label(spec.task, spec.site_id, spec.target)
    head = f"{expectation.file}: expect[{expectation.index}]: at {utc_iso(spec.at)}: expected {expected} {wanted}"
    if spec.source and spec.source not in sources:
        return f"{head}, but {spec.source!r} can never be a source here (use 'default' or 'window:<name>' of a window)"
    if not found:
        return f"{head}, but the plan does not manage {spec.task!r} (no task entry names it or matches it)"
    chosen = [
        (target, d)
        for target, d in found
        if spec.target in (None, target) and spec.site_id in (None, d.task.ref.site_id)
    ]
    if not chosen:
        sited = _on_sites(found)
        managed = ", ".join(_label(spec.task, d.task.ref.site_id, t, user_level=sited) for t, d in found)
        return f"{head}, but the plan does not manage {expected}; it manages {managed}"
    for target, decision in chosen:
        if decision.desired != spec.desired or (spec.source and decision.source != spec.source):
            which = _label(spec.task, decision.task.ref.site_id, target, user_level=_on_sites(chosen))
            where = f" for {which}" if which != spec.task else ""
            return f"{head}, the plan says {decision.desired} ({decision.source}){where}"
    return None


def failed_expectations(schedule: Schedule) -> list[str]:
    """One line per expectation the plan contradicts, naming its file, ``expect[i]`` and instant.

    Each one is planned on its own, with no holds. Without ``site_id`` or ``target`` it must hold
    for every managed task of its name: on each site, and on each target whose plan manages it.
    """
    sources = {"default"} | {f"window:{w.name}" for w in schedule.windows}
    failures = []
    for expectation in schedule.expectations:
        failure = _failure(expectation, _decisions(schedule, expectation), sources)
        if failure is not None:
            failures.append(failure)
    return failures
