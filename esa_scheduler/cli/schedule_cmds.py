"""``esa-scheduler validate``, ``plan`` and ``schema``: what the schedule decides, without ESA.

The engine, the hold store and the views are imported inside each command, so that the parser
(and the other commands) do not pay for them.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from esa_scheduler.errors import UserError, close_hint, close_matches
from esa_scheduler.timeutil import now_to_the_second, parse_duration, parse_instant, utc_iso

if TYPE_CHECKING:
    from esa_scheduler.engine.holds import Hold
    from esa_scheduler.engine.planner import TaskRef
    from esa_scheduler.engine.schedule.model import Schedule

MAX_VIEW_DAYS = 366


def parse_instant_flag(value: str, flag: str) -> datetime:
    """An instant given on the command line, or the one-line error that names its flag."""
    try:
        return parse_instant(value)
    except ValueError as exc:
        raise UserError(f"{flag}: {exc}") from exc


def _instant_arg(value: str | None, flag: str) -> datetime:
    return now_to_the_second() if value is None else parse_instant_flag(value, flag)


def _duration_arg(value: str, flag: str) -> timedelta:
    try:
        return parse_duration(value)
    except ValueError as exc:
        raise UserError(f"{flag}: {exc}") from exc


def validate(args: argparse.Namespace) -> int:
    """Every problem at once, and the expectations checked, before a schedule goes live."""
    from esa_scheduler.engine.diagnostics import schedule_warnings
    from esa_scheduler.engine.expectations import failed_expectations
    from esa_scheduler.engine.schedule.load import default_schedule_path, load_schedule

    at = _instant_arg(args.at, "--at")
    path = args.schedule or default_schedule_path()
    schedule = load_schedule(path, expectations=True)
    for line in schedule_warnings(schedule, at):
        print(line, file=sys.stderr)
    failures = failed_expectations(schedule)
    if failures:
        summary = f"{path}: {len(failures)} expectation(s) failed, {len(schedule.expectations) - len(failures)} hold"
        raise UserError(summary, [*failures, summary])
    patterns = sum(1 for t in schedule.tasks if t.pattern)
    print(
        f"{path}: valid: {len(schedule.files)} file(s), {len(schedule.tasks)} task entries "
        f"({patterns} pattern(s)), {len(schedule.windows)} window(s), {len(schedule.incidents)} incident rule(s), "
        f"{len(schedule.expectations)} expectation(s) hold"
    )
    return 0


def plan(args: argparse.Namespace) -> int:
    """What the schedule (and the holds) would decide at ``--at``, without asking ESA."""
    from esa_scheduler.engine.diagnostics import calendar_warnings
    from esa_scheduler.engine.planner import SEARCH_HORIZON, Planner, TaskRef, managed_tasks
    from esa_scheduler.engine.schedule.load import load_schedule
    from esa_scheduler.invocation.holds import HoldStore, state_dir
    from esa_scheduler.views.tables import plan_text

    at = _instant_arg(args.at, "--at")
    horizon = _duration_arg(args.horizon, "--horizon")
    schedule = load_schedule(args.schedule)
    _check_task_names(schedule, args.task)
    for line in calendar_warnings(schedule, at, at + SEARCH_HORIZON):
        print(line, file=sys.stderr)
    holds = HoldStore(state_dir(args.state_dir)).active(at, prune=False)
    targets = _chosen_targets(schedule, args.target, views=bool(args.html or args.ics))
    if args.target is not None:
        from esa_scheduler.engine.targets import holds_for, project

        schedule, holds = project(schedule, args.target), list(holds_for(holds, args.target))
    if args.html or args.ics:
        return _write_views(args, schedule, at, holds)
    inventory = [TaskRef(name) for name in args.task]
    if targets:
        return _plan_fleet(args, schedule, targets, at, holds, inventory, horizon)
    planner = Planner(schedule, at, holds)
    plan = planner.decide(managed_tasks(schedule, inventory))
    if args.json:
        print(json.dumps(plan.to_json()))
    else:
        print(plan_text(plan, planner, horizon))
    return 0


def _check_task_names(schedule: Schedule, names: Sequence[str]) -> None:
    """A ``--task`` the schedule would not manage would silently drop out of the plan: name it instead."""
    for name in names:
        if not schedule.is_managed_name(name):
            hint = close_hint(close_matches(name, schedule.task_entries))
            raise UserError(f"--task: {name!r} is neither a managed task nor matched by a task pattern{hint}")


def _chosen_targets(schedule: Schedule, name: str | None, *, views: bool) -> tuple[str, ...]:
    """The fleet targets ``plan`` shows: ``--target`` or all; a view (HTML, ICS) shows one target."""
    from esa_scheduler.engine.targets import unknown_target

    names = tuple(t.name for t in schedule.targets)
    problem = unknown_target(name, schedule.targets)
    if problem is not None:
        raise UserError(f"--target: {problem}")
    if views and names and name is None:
        raise UserError(f"--html/--ics: the schedule has targets; choose one with --target ({', '.join(names)})")
    return (name,) if name is not None else names


def _plan_fleet(
    args: argparse.Namespace,
    schedule: Schedule,
    targets: Sequence[str],
    at: datetime,
    holds: Sequence[Hold],
    inventory: Sequence[TaskRef],
    horizon: timedelta,
) -> int:
    """One plan per target (what that target's invocation would decide); rows carry the target."""
    from esa_scheduler.engine.planner import Planner, managed_tasks
    from esa_scheduler.engine.targets import holds_for, project
    from esa_scheduler.views.tables import plan_text

    rows: list[dict[str, object]] = []
    texts: list[str] = []
    for name in targets:
        scoped = project(schedule, name)
        planner = Planner(scoped, at, holds_for(holds, name))
        plan = planner.decide(managed_tasks(scoped, inventory))
        rows.extend({"target": name, **d.to_json()} for d in plan.decisions)
        texts.append(plan_text(plan, planner, horizon, target=name))
    print(json.dumps({"at": utc_iso(at), "tasks": rows}) if args.json else "\n\n".join(texts))
    return 0


def _write_views(args: argparse.Namespace, schedule: Schedule, at: datetime, holds: Sequence[Hold]) -> int:
    """``plan --html`` / ``--ics``: write the files (the CLI only: these modules never load on the timer path)."""
    if not 1 <= args.days <= MAX_VIEW_DAYS:
        raise UserError(f"--days: {args.days} must be a whole number of days from 1 to {MAX_VIEW_DAYS}")
    from esa_scheduler.engine.schedule.load import default_schedule_path

    path = args.schedule or default_schedule_path()
    views: list[tuple[str, str]] = []
    if args.html:
        from esa_scheduler.views.html import render_html

        views.append((args.html, render_html(path, schedule, at, args.days, args.task, holds)))
    if args.ics:
        from esa_scheduler.views.ics import render_ics

        views.append((args.ics, render_ics(path, schedule, at, args.days, args.task, holds, args.target)))
    for file, text in views:
        try:
            Path(file).write_bytes(text.encode("utf-8"))
        except OSError as exc:
            raise UserError(f"{file}: cannot write: {exc.strerror}") from exc
        print(f"wrote {file} ({args.days} day(s) from {utc_iso(at)})")
    return 0


def schema(args: argparse.Namespace) -> int:
    """The JSON Schema for an editor's YAML language server."""
    from esa_scheduler.engine.schema import schedule_json_schema

    print(json.dumps(schedule_json_schema(), indent=2))
    return 0
