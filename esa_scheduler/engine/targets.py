"""Targets: the ESA accounts and regions one deployment manages, declared in the schedule.

A schedule without ``targets:`` manages the function's own account in ``ESA_REGION``, exactly as
before. With targets, every task entry, window, incident rule and hold applies to the targets its
optional ``targets:`` selectors name (default: all), and each target is reconciled on its own,
against a projection of the schedule that holds only what applies to it. The window engine and
planner therefore never learn about targets: a managed task is (target, site_id, name) because
each target's plan is made separately.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import replace
from typing import Protocol

from esa_scheduler.addresses import check_endpoint
from esa_scheduler.engine.holds import Hold
from esa_scheduler.engine.schedule.model import Schedule, ScheduleTarget
from esa_scheduler.engine.schedule.spec import TargetSpec
from esa_scheduler.engine.selectors import is_glob, selector_matches
from esa_scheduler.errors import ConfigError


class _Targeted(Protocol):
    @property
    def targets(self) -> tuple[str, ...]: ...


def applies_to_target(selectors: Sequence[str], target: str) -> bool:
    """Whether ``targets:`` selectors (empty: every target) select ``target``."""
    return not selectors or any(selector_matches(s, target) for s in selectors)


def applies_to(entry: _Targeted, target: str) -> bool:
    """Whether an entry (task, window, incident rule, hold) applies to ``target``."""
    return applies_to_target(entry.targets, target)


def resolve_target(spec: TargetSpec, origin: str, where: str, problems: list[str]) -> ScheduleTarget | None:
    """Check what the model cannot (the endpoint's scheme) and resolve one entry."""
    if spec.endpoint is not None:
        try:
            check_endpoint(spec.endpoint)
        except ConfigError as exc:
            problems.append(f"{where}.endpoint: {exc}")
            return None
    return ScheduleTarget(spec.name, spec.region, spec.role_arn, spec.endpoint, origin)


def check_target_selectors(
    selectors: Sequence[str] | None, where: str, targets: Sequence[ScheduleTarget], problems: list[str]
) -> tuple[str, ...]:
    """``targets:`` on an entry: only with declared targets, each naming or matching one of them."""
    if selectors is None:
        return ()
    if not targets:
        problems.append(f"{where}.targets: no targets are declared (add a top-level 'targets:' list first)")
        return ()
    if not selectors:
        problems.append(f"{where}.targets: empty list (leave 'targets' out to mean every target)")
        return ()
    for i, selector in enumerate(selectors):
        problem = unmatched_selector(selector, targets)
        if problem is not None:
            problems.append(f"{where}.targets[{i}]: {problem}")
    return tuple(selectors)


def project(schedule: Schedule, target: str) -> Schedule:
    """The schedule as one target sees it: only the entries that apply to it, and no targets."""
    return replace(
        schedule,
        tasks=tuple(t for t in schedule.tasks if applies_to(t, target)),
        windows=tuple(w for w in schedule.windows if applies_to(w, target)),
        incidents=tuple(r for r in schedule.incidents if applies_to(r, target)),
        targets=(),
    )


def holds_for(holds: Iterable[Hold], target: str) -> tuple[Hold, ...]:
    """The holds that apply to ``target`` (a hold without ``targets`` applies to all)."""
    return tuple(h for h in holds if applies_to(h, target))


def _known(targets: Sequence[ScheduleTarget]) -> str:
    return ", ".join(t.name for t in targets) or "none are declared"


def unknown_target(name: str | None, targets: Sequence[ScheduleTarget]) -> str | None:
    """Why ``name`` (from an event or ``--target``) names no target, or ``None`` when it does (or is unset)."""
    if name is None or any(t.name == name for t in targets):
        return None
    return f"{name!r} is not a target of the schedule (targets: {_known(targets)})"


def unmatched_selector(selector: str, targets: Sequence[ScheduleTarget]) -> str | None:
    """Why a ``targets:`` selector (a name or a glob, from the schedule, an event or ``hold add
    --target``) selects no target, or ``None`` when it selects one: a name gets ``unknown_target``'s
    message wherever it was written."""
    if any(applies_to_target((selector,), t.name) for t in targets):
        return None
    if not is_glob(selector):
        return unknown_target(selector, targets)
    return f"{selector!r} matches no target (targets: {_known(targets)})"


def select_targets(targets: Sequence[ScheduleTarget], name: str | None) -> tuple[ScheduleTarget, ...]:
    """Every target, or the one named (already checked with ``unknown_target`` where it came in)."""
    return tuple(t for t in targets if name is None or t.name == name)
