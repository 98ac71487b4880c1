"""``esa-scheduler hold add|list|release``: the same hold path as events, from a terminal.

Holds made here go through the event reader (same validation as a hold event) and take effect at
the next run or timer tick; ``esa-scheduler run`` applies them at once.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from esa_scheduler.engine.schedule import load_schedule
from esa_scheduler.errors import UserError
from esa_scheduler.invocation.events import EventReader
from esa_scheduler.invocation.function import HoldChanges, apply_hold_changes
from esa_scheduler.invocation.holds import HoldStore, state_dir
from esa_scheduler.logs import RunLog
from esa_scheduler.timeutil import now_utc, utc_iso
from esa_scheduler.views.tables import table


def _store(args: argparse.Namespace) -> HoldStore:
    return HoldStore(state_dir(args.state_dir))


def _apply(args: argparse.Namespace, command: dict[str, Any]) -> HoldChanges:
    schedule = load_schedule(args.schedule)
    intent = EventReader(schedule, now_utc()).read(command)
    return apply_hold_changes(intent, _store(args), RunLog(stream=sys.stderr))


def add(args: argparse.Namespace) -> int:
    """Create (or replace, same id) a hold."""
    command: dict[str, Any] = {
        "action": "hold",
        "tasks": args.tasks,
        "status": args.status,
        "reason": args.reason,
        "by": args.by,
    }
    for key in ("ttl", "until", "id"):
        if getattr(args, key):
            command[key] = getattr(args, key)
    hold = _apply(args, command).current[-1]
    print(
        f"hold {hold.id}: {', '.join(hold.tasks)} {hold.status} until {utc_iso(hold.expires_at)} "
        "(applies at the next run; `esa-scheduler run` applies it now)"
    )
    return 0


def list_holds(args: argparse.Namespace) -> int:
    """Show the holds in force (expired ones are not shown)."""
    holds = _store(args).active(now_utc(), prune=False)
    if args.json:
        print(json.dumps([h.model_dump(mode="json") for h in holds]))
        return 0
    if not holds:
        print("no holds in force")
        return 0
    rows = [
        [h.id, ",".join(h.tasks), h.status, utc_iso(h.created_at), utc_iso(h.expires_at), h.by, h.reason] for h in holds
    ]
    print(table(["id", "tasks", "status", "created", "expires", "by", "reason"], rows))
    return 0


def release(args: argparse.Namespace) -> int:
    """End holds by id, or every hold that applies to the given tasks."""
    store = _store(args)
    before = {h.id for h in store.active(now_utc(), prune=False)}
    if args.id and args.id not in before:
        raise UserError(f"hold {args.id!r} not found (see `esa-scheduler hold list`)")
    command: dict[str, Any] = {"action": "release"}
    if args.id:
        command["id"] = args.id
    else:
        command["tasks"] = args.tasks
    _apply(args, command)
    ended = sorted(before - {h.id for h in store.active(now_utc(), prune=False)})
    print(f"released {len(ended)} hold(s): {', '.join(ended)}" if ended else "no hold applied to those tasks")
    return 0
