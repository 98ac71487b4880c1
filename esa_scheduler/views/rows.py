"""What both views show: one row per managed task (or per pattern nobody listed) and its segments.

The rows come straight from the planner (``Planner.segments``), so a view can never disagree with
``plan`` or ``run`` about when a task is online or offline.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from esa_scheduler.engine.planner import ManagedTask, Planner, Segment, TaskRef, managed_tasks
from esa_scheduler.engine.schedule.model import Schedule
from esa_scheduler.engine.selectors import selector_matches


@dataclass(frozen=True)
class Row:
    """One line of a view: a task, or a pattern standing for the tasks ESA will list under it."""

    task: ManagedTask
    pattern: bool
    segments: tuple[Segment, ...]

    @property
    def label(self) -> str:
        """How the views name the row (``row_label``)."""
        return row_label(self.task, self.pattern)


def row_label(task: ManagedTask, pattern: bool) -> str:
    """The task name, with its site for site-level tasks and a marker for pattern rows."""
    ref = task.ref
    site = f" (site {ref.site_id})" if ref.site_id is not None else ""
    return f"{ref.name}{site}" + (" (pattern)" if pattern else "")


def view_tasks(schedule: Schedule, names: Sequence[str]) -> list[tuple[ManagedTask, bool]]:
    """Managed tasks for ``names`` (the inventory), plus one stand-in per pattern that none of them matched.

    A pattern's stand-in is planned under the pattern text itself, so it shows the windows whose
    selectors cover the whole pattern (``waf-*`` or ``*``), which is what every task under it gets.
    """
    tasks = managed_tasks(schedule, [TaskRef(name) for name in names])
    found = [(task, False) for task in tasks]
    for rule in schedule.tasks:
        if rule.pattern is None:
            continue
        covered = any(t.ref.site_id == rule.site_id and selector_matches(rule.pattern, t.ref.name) for t in tasks)
        if not covered:
            found.append((ManagedTask(TaskRef(rule.pattern, rule.site_id), rule.default_status, rule.mode), True))
    return found


def build_rows(planner: Planner, tasks: Sequence[tuple[ManagedTask, bool]], until: datetime, limit: int) -> list[Row]:
    """Rows for the first ``limit`` tasks, each with its segments up to ``until``."""
    return [Row(task, pattern, tuple(planner.segments(task, until))) for task, pattern in tasks[:limit]]


def source_words(source: str) -> str:
    """``window:nightly`` -> ``window nightly``, ``hold:INC-1`` -> ``hold INC-1``: how people say it."""
    kind, _, name = source.partition(":")
    return f"{kind} {name}" if name else kind
