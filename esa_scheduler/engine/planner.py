"""Pure decisions: schedule + instant + inventory + holds -> the desired state of every managed task.

Tasks selected by the same windows, holds and default share one evaluation (a "group"), and all
groups share one lazily computed ``Timeline`` per window; that is what keeps planning thousands
of tasks against hundreds of windows well under a second.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import pairwise
from typing import Any

from esa_scheduler.engine.holds import Hold
from esa_scheduler.engine.schedule.model import Schedule, Window
from esa_scheduler.engine.schedule.spec import Mode, Status
from esa_scheduler.engine.selectors import SelectorIndex
from esa_scheduler.engine.windows import Timeline
from esa_scheduler.timeutil import utc_iso

SEARCH_HORIZON = timedelta(days=400)


@dataclass(frozen=True, order=True)
class TaskRef:
    """A delivery task as ESA knows it: user-level (``site_id`` None) or site-level."""

    name: str
    site_id: int | None = None

    def sort_key(self) -> tuple[bool, int, str]:
        """Sorted by (site_id, name), user-level tasks (no site) first."""
        return (self.site_id is not None, self.site_id or 0, self.name)


@dataclass(frozen=True)
class ManagedTask:
    """A task the schedule manages, with the defaults its task entry gives it."""

    ref: TaskRef
    default_status: Status
    mode: Mode


@dataclass(frozen=True)
class State:
    """What one task should be at one instant, and why."""

    desired: Status
    source: str
    matches: tuple[str, ...]


@dataclass(frozen=True)
class Segment:
    """One task's state over [start, end): ``end`` is ``None`` when it does not change within the search horizon."""

    start: datetime
    end: datetime | None
    state: State


@dataclass(frozen=True)
class Decision:
    """The plan for one task at the plan's instant."""

    task: ManagedTask
    desired: Status
    source: str
    matches: tuple[str, ...]
    next_change: datetime | None

    def to_json(self) -> dict[str, Any]:
        """The ``plan --json`` shape of one task."""
        return {
            "name": self.task.ref.name,
            "site_id": self.task.ref.site_id,
            "desired": self.desired,
            "source": self.source,
            "matches": list(self.matches),
            "next_change": utc_iso(self.next_change) if self.next_change else None,
        }


@dataclass(frozen=True)
class Plan:
    """Every managed task's decision at one instant, sorted by (site_id, name)."""

    at: datetime
    decisions: tuple[Decision, ...]

    def to_json(self) -> dict[str, Any]:
        """The ``plan --json`` document."""
        return {"at": utc_iso(self.at), "tasks": [d.to_json() for d in self.decisions]}

    @property
    def next_change(self) -> datetime | None:
        """The earliest next transition over all tasks."""
        return min((d.next_change for d in self.decisions if d.next_change), default=None)


def managed_tasks(schedule: Schedule, inventory: Iterable[TaskRef]) -> list[ManagedTask]:
    """Explicit names, plus inventory tasks a pattern matches; the first matching entry wins."""
    found: dict[TaskRef, ManagedTask] = {}
    for rule in schedule.explicit_tasks:
        assert rule.name is not None
        ref = TaskRef(rule.name, rule.site_id)
        found.setdefault(ref, ManagedTask(ref, rule.default_status, rule.mode))
    patterns = SelectorIndex((rule.pattern, rule) for rule in schedule.tasks if rule.pattern is not None)
    for ref in inventory:
        if ref in found:
            continue
        match = next((rule for rule in patterns.lookup(ref.name) if rule.site_id == ref.site_id), None)
        if match is not None:
            found[ref] = ManagedTask(ref, match.default_status, match.mode)
    return sorted(found.values(), key=lambda t: t.ref.sort_key())


@dataclass(frozen=True)
class _Group:
    windows: tuple[int, ...]
    holds: tuple[int, ...]
    default: Status


class Planner:
    """Evaluates groups of tasks at and after one instant, caching one timeline per window."""

    def __init__(
        self,
        schedule: Schedule,
        at: datetime,
        holds: Sequence[Hold] = (),
        horizon: timedelta = SEARCH_HORIZON,
    ) -> None:
        self.schedule = schedule
        self.at = at
        self.holds = tuple(holds)
        self.limit = at + horizon
        self._timelines: dict[int, Timeline] = {}
        self._groups: dict[_Group, tuple[State, datetime | None]] = {}
        self._window_index = SelectorIndex(
            (selector, i) for i, w in enumerate(schedule.windows) for selector in w.selectors
        )
        self._hold_index = SelectorIndex((selector, i) for i, h in enumerate(self.holds) for selector in h.tasks)
        self._groups_by_name: dict[tuple[str, Status], _Group] = {}
        self._segments: dict[tuple[_Group, datetime], list[Segment]] = {}

    def _timeline(self, index: int) -> Timeline:
        timeline = self._timelines.get(index)
        if timeline is None:
            timeline = Timeline(self.schedule.windows[index], self.at, self.limit)
            self._timelines[index] = timeline
        return timeline

    def _group(self, task: ManagedTask) -> _Group:
        key = (task.ref.name, task.default_status)
        group = self._groups_by_name.get(key)
        if group is None:
            windows = tuple(sorted(self._window_index.lookup(task.ref.name)))
            holds = tuple(sorted(self._hold_index.lookup(task.ref.name)))
            group = _Group(windows, holds, task.default_status)
            self._groups_by_name[key] = group
        return group

    def _state(self, group: _Group, instant: datetime) -> State:
        indexes = [i for i in group.windows if self._timeline(i).active_at(instant)]
        active: list[Window] = [self.schedule.windows[i] for i in indexes]
        matches = tuple(self._timeline(i).label(instant) for i in indexes)
        holds = [self.holds[i] for i in group.holds if self.holds[i].active_at(instant)]
        if holds:
            newest = max(holds, key=lambda h: (h.created_at, h.id))
            return State(newest.status, f"hold:{newest.id}", matches)
        if active:
            top = max(w.priority for w in active)
            tied = [w for w in active if w.priority == top]
            winner = next((w for w in tied if w.status == "offline"), tied[0])
            return State(winner.status, f"window:{winner.name}", matches)
        return State(group.default, "default", matches)

    def _next_edge(self, group: _Group, instant: datetime) -> datetime | None:
        edges = [self._timeline(i).next_edge(instant) for i in group.windows]
        for i in group.holds:
            hold = self.holds[i]
            edges.extend(e for e in (hold.created_at, hold.expires_at) if e > instant)
        upcoming = [e for e in edges if e is not None]
        return min(upcoming) if upcoming else None

    def _change_after(self, group: _Group, instant: datetime, desired: Status) -> datetime | None:
        cursor = instant
        while True:
            edge = self._next_edge(group, cursor)
            if edge is None or edge > self.limit:
                return None
            if self._state(group, edge).desired != desired:
                return edge
            cursor = edge

    def _evaluate(self, group: _Group) -> tuple[State, datetime | None]:
        cached = self._groups.get(group)
        if cached is None:
            state = self._state(group, self.at)
            cached = (state, self._change_after(group, self.at, state.desired))
            self._groups[group] = cached
        return cached

    def decide(self, tasks: Iterable[ManagedTask]) -> Plan:
        """Decisions for ``tasks`` at the planner's instant."""
        decisions = []
        for task in tasks:
            state, change = self._evaluate(self._group(task))
            decisions.append(Decision(task, state.desired, state.source, state.matches, change))
        return Plan(self.at, tuple(decisions))

    def segments(self, task: ManagedTask, until: datetime) -> list[Segment]:
        """The task's states from the plan instant up to ``until``, one per change of desired state
        or of its source, for views that draw or export intervals. The last segment runs to its real
        end (past ``until``, ``None`` past the search horizon) so that an exported event keeps its end.
        Tasks of one group share one computation."""
        group = self._group(task)
        key = (group, until)
        cached = self._segments.get(key)
        if cached is not None:
            return cached
        state = self._state(group, self.at)
        start = cursor = self.at
        found: list[Segment] = []
        while True:
            edge = self._next_edge(group, cursor)
            if edge is None or edge > self.limit:
                found.append(Segment(start, None, state))
                break
            new = self._state(group, edge)
            if (new.desired, new.source) != (state.desired, state.source):
                found.append(Segment(start, edge, state))
                if edge > until:
                    break
                start, state = edge, new
            cursor = edge
        self._segments[key] = found
        return found

    def transitions(self, task: ManagedTask, until: datetime) -> list[tuple[datetime, State]]:
        """Every change of desired state after the plan instant up to ``until`` (for timelines)."""
        pieces = self.segments(task, until)
        return [
            (piece.start, piece.state)
            for before, piece in pairwise(pieces)
            if piece.state.desired != before.state.desired
        ]


def plan(
    schedule: Schedule,
    at: datetime,
    inventory: Iterable[TaskRef] = (),
    holds: Sequence[Hold] = (),
) -> Plan:
    """The desired state of every managed task at ``at`` (pure: no I/O)."""
    return Planner(schedule, at, holds).decide(managed_tasks(schedule, inventory))
