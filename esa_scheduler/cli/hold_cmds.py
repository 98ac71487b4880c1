"""``esa-scheduler hold add|list|release``: the same hold path as events, from a terminal.

Holds made here go through the event reader (same validation as a hold event) and take effect at
the next run or timer tick; ``esa-scheduler run`` applies them at once.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from typing import Any

from esa_scheduler.engine.schedule.load import load_schedule
from esa_scheduler.engine.schedule.model import Schedule
from esa_scheduler.engine.targets import unmatched_selector
from esa_scheduler.errors import EventError, UserError
from esa_scheduler.invocation.events.reader import EventReader
from esa_scheduler.invocation.function import HoldChanges, apply_hold_changes
from esa_scheduler.invocation.holds import HoldStore, state_dir
from esa_scheduler.logs import RunLog
from esa_scheduler.timeutil import now_to_the_second, now_utc, utc_iso
from esa_scheduler.views.tables import table


def _store(args: argparse.Namespace) -> HoldStore:
    return HoldStore(state_dir(args.state_dir))


FLAGS = {
    "tasks": "--task",
    "targets": "--target",
    "status": "--status",
    "reason": "--reason",
    "ttl": "--ttl",
    "until": "--until",
    "id": "--id",
    "by": "--by",
}
"""The flag of ``hold add`` or ``release`` that fills each field of the hold or release event."""
_EVENT_FIELD = re.compile(r"event\[0\]\.(\w+)(?:\[\d+\])?")


def _as_flag(problem: str) -> str:
    """The event reader names the event's field (``event[0].tasks: ...``); the operator wrote a flag."""
    match = _EVENT_FIELD.match(problem)
    if match is None or match.group(1) not in FLAGS:
        return problem
    return FLAGS[match.group(1)] + problem[match.end() :]


def _apply(args: argparse.Namespace, command: dict[str, Any], schedule: Schedule | None = None) -> HoldChanges:
    schedule = schedule or load_schedule(args.schedule)
    try:
        intent = EventReader(schedule, now_to_the_second()).read(command)
    except EventError as exc:
        problems = [_as_flag(problem) for problem in exc.problems]
        raise EventError(problems[0], problems) from None
    return apply_hold_changes(intent, _store(args), RunLog(stream=sys.stderr))


def add(args: argparse.Namespace) -> int:
    """Create (or replace, same id) a hold."""
    schedule = load_schedule(args.schedule)
    command: dict[str, Any] = {
        "action": "hold",
        "tasks": args.tasks,
        "status": args.status,
        "reason": args.reason,
        "by": args.by,
    }
    for key in ("ttl", "until", "id", "targets"):
        if getattr(args, key):
            command[key] = getattr(args, key)
    for selector in args.targets or ():
        # the event path would refuse it too, but naming the flag tells the operator what to fix
        problem = unmatched_selector(selector, schedule.targets)
        if problem is not None:
            raise UserError(f"--target: {problem}")
    hold = _apply(args, command, schedule).current[-1]
    where = f" on {', '.join(hold.targets)}" if hold.targets else ""
    print(
        f"hold {hold.id}: {', '.join(hold.tasks)} {hold.status}{where} until {utc_iso(hold.expires_at)} "
        "(applies at the next run; `esa-scheduler run` applies it now)"
    )
    return 0


EVERY_TARGET = "*"
"""``hold list``'s targets cell for a hold without ``targets``: the selector that matches them all."""


def list_holds(args: argparse.Namespace) -> int:
    """Show the holds in force (expired ones are not shown); ``--json`` is each hold as stored."""
    holds = _store(args).active(now_utc(), prune=False)
    if args.json:
        print(json.dumps([h.model_dump(mode="json") for h in holds]))
        return 0
    if not holds:
        print("no holds in force")
        return 0
    fleet = any(h.targets for h in holds) or bool(load_schedule(args.schedule).targets)
    rows = [
        [
            h.id,
            ",".join(h.tasks),
            *([",".join(h.targets) or EVERY_TARGET] if fleet else []),
            h.status,
            utc_iso(h.created_at),
            utc_iso(h.expires_at),
            h.by,
            h.reason,
        ]
        for h in holds
    ]
    headers = ["id", "tasks", *(["targets"] if fleet else []), "status", "created", "expires", "by", "reason"]
    print(table(headers, rows))
    return 0


def release(args: argparse.Namespace) -> int:
    """End holds by id, or every hold that applies to the given tasks."""
    before = {h.id for h in _store(args).active(now_utc(), prune=False)}
    if args.id and args.id not in before:
        raise UserError(f"hold {args.id!r} not found (see `esa-scheduler hold list`)")
    command: dict[str, Any] = {"action": "release"}
    if args.id:
        command["id"] = args.id
    else:
        command["tasks"] = args.tasks
    # what this release removed, not a before-and-after of the folder that other writers change too
    ended = sorted(h.id for h in _apply(args, command).released)
    print(f"released {len(ended)} hold(s): {', '.join(ended)}" if ended else "no hold applied to those tasks")
    return 0
