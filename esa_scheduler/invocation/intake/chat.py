"""Chat commands (the text after the robot's @mention): hold, release, status, plan, help.

A command obeys the same rules as the event it stands for: ``hold`` is a hold event (managed tasks
only, a TTL required), ``release`` a release event, checked by the event reader and written through
the hold store; holds made here are by ``dingtalk:<senderStaffId>``. Selectors and task names are
read through ``typed_back``, so one copied from a reply, where ``*`` is shown as its look-alike
U+2217, means what it meant. Replies are DingTalk markdown, and every string a chat message or a
stored hold supplies is escaped for it, so a reason cannot carry a link, bold text or control
characters into the group.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from esa_scheduler.engine.holds import Hold
from esa_scheduler.engine.planner import ManagedTask, Planner, TaskRef, managed_tasks
from esa_scheduler.engine.schedule.model import Schedule
from esa_scheduler.errors import UserError, close_hint, close_matches
from esa_scheduler.invocation.events.reader import EventReader
from esa_scheduler.invocation.hold_changes import apply_hold_changes
from esa_scheduler.invocation.holds import HoldStore
from esa_scheduler.invocation.notify.markdown import escape_markdown, typed_back
from esa_scheduler.invocation.notify.message import cut, when
from esa_scheduler.logs import RunLog

TITLE = "esa-scheduler"
PLAN_HORIZON = timedelta(hours=24)
MAX_LINES = 20
"""Lines per list in a reply: a chat message is read on a phone."""
HELP = (
    "**esa-scheduler** takes these commands after the @mention:",
    "- `hold SELECTOR[,SELECTOR...] TTL REASON...`: hold tasks offline until the TTL ends, "
    "e.g. `hold access-logs-* 2h INC-4211 origin 5xx`",
    "- `release HOLD_ID` or `release SELECTOR[,SELECTOR...]`: end holds now",
    "- `status`: the holds in force, and the tasks offline now",
    "- `plan [TASK]`: the changes of the next 24 hours",
    "- `help`: this text",
)


def esc(text: str) -> str:
    """Event-supplied text, safe in a DingTalk markdown message."""
    return escape_markdown(text, "dingtalk")


@dataclass
class Outcome:
    """What a command did: the reply's lines, whether it was obeyed, the holds it changed."""

    verb: str
    lines: list[str]
    ok: bool = True
    changed: list[str] = field(default_factory=list)

    def message(self) -> dict[str, Any]:
        """The DingTalk message returned in the HTTP answer (the robot replies with it)."""
        return {"msgtype": "markdown", "markdown": {"title": TITLE, "text": "\n\n".join(self.lines)}}


def command_words(content: str) -> list[str]:
    """The words of a message after the @mentions DingTalk leaves in front of it."""
    words = content.split()
    while words and words[0].startswith("@"):
        words.pop(0)
    return words


@dataclass(frozen=True)
class Chat:
    """One command's world: the schedule, the hold store, the instant and who asks."""

    schedule: Schedule
    store: HoldStore
    now: datetime
    sender: str
    log: RunLog

    def run(self, content: str) -> Outcome:
        """Obey one message; a refused command's reply says why, and changes nothing."""
        words = command_words(content)
        verb = words[0].lower() if words else "help"
        commands = {"hold": self._hold, "release": self._release, "status": self._status, "plan": self._plan}
        command = commands.get(verb)
        if command is None:
            outcome = Outcome("help", list(HELP), ok=verb == "help")
        else:
            try:
                outcome = command(words[1:])
            except UserError as exc:
                problem = str(exc).removeprefix("event[0].")
                outcome = Outcome(verb, [f"**{verb}** refused: {esc(problem)}", *HELP[1:]], ok=False)
        result = "ok" if outcome.ok else "refused"
        self.log.info("chat.command", sender=self.sender, verb=outcome.verb, outcome=result, holds=outcome.changed)
        return outcome

    def _changes(self, event: dict[str, Any]) -> tuple[list[Hold], list[Hold]]:
        intent = EventReader(self.schedule, self.now).read(event)
        changes = apply_hold_changes(intent, self.store, self.log, now=self.now, end_released=True)
        return list(intent.new_holds), list(changes.released)

    def _hold(self, args: Sequence[str]) -> Outcome:
        if len(args) < 3:
            raise UserError("give the tasks, a TTL and a reason: hold SELECTOR[,SELECTOR...] TTL REASON...")
        selectors = [s for s in typed_back(args[0]).split(",") if s]
        event = {"action": "hold", "tasks": selectors, "ttl": args[1], "reason": " ".join(args[2:])}
        created, _ = self._changes({**event, "by": f"dingtalk:{self.sender}"})
        hold = created[0]
        line = f"**hold {esc(hold.id)}**: {self._tasks(hold.tasks)} {hold.status} until {self._when(hold.expires_at)}"
        return Outcome(
            "hold", [line, f"reason: {esc(hold.reason)}", f"release it with `release {hold.id}`"], changed=[hold.id]
        )

    def _release(self, args: Sequence[str]) -> Outcome:
        wanted = [s for arg in args for s in typed_back(arg).split(",") if s]
        if not wanted:
            raise UserError("give one hold id, or task selectors separated by commas: release HOLD_ID")
        in_force = {h.id for h in self.store.active(self.now, prune=False) if h.active_at(self.now)}
        by_id = len(wanted) == 1 and wanted[0] in in_force
        _, released = self._changes({"action": "release", **({"id": wanted[0]} if by_id else {"tasks": wanted})})
        if not released:
            return Outcome("release", [f"no hold in force applies to {self._tasks(wanted)}"], ok=False)
        lines = [f"**released** {esc(h.id)}: {self._tasks(h.tasks)} ({esc(h.reason)})" for h in released]
        return Outcome("release", lines, changed=[h.id for h in released])

    def _status(self, args: Sequence[str]) -> Outcome:
        del args
        holds = [h for h in self.store.active(self.now, prune=False) if h.active_at(self.now)]
        lines = [f"**holds in force**: {len(holds)}"]
        items = [
            f"- {esc(h.id)}: {self._tasks(h.tasks)} {h.status} until {self._when(h.expires_at)}, "
            f"{esc(h.reason)}, by {esc(h.by or 'unknown')}"
            for h in holds
        ]
        lines.append("\n".join(cut(items, MAX_LINES)) if items else "- none")
        plan = Planner(self.schedule, self.now, holds).decide(managed_tasks(self.schedule, []))
        offline = [f"- {esc(d.task.ref.name)} ({esc(d.source)})" for d in plan.decisions if d.desired == "offline"]
        lines += ["**offline now**", "\n".join(cut(offline, MAX_LINES)) if offline else "- none"]
        return Outcome("status", lines)

    def _plan(self, args: Sequence[str]) -> Outcome:
        if len(args) > 1:
            raise UserError("give at most one task: plan [TASK]")
        tasks = self._plan_tasks(typed_back(args[0]) if args else None)
        holds = self.store.active(self.now, prune=False)
        planner = Planner(self.schedule, self.now, holds)
        changes = [
            (at, task, state.desired, state.source)
            for task in tasks
            for at, state in planner.transitions(task, self.now + PLAN_HORIZON)
            if at <= self.now + PLAN_HORIZON
        ]
        items = [
            f"- {self._when(at)}: {esc(t.ref.name)} -> {status} ({esc(source)})"
            for at, t, status, source in sorted(changes, key=lambda c: (c[0], c[1].ref.sort_key()))
        ]
        head = f"**changes in the next 24 hours** ({len(items)})"
        return Outcome("plan", [head, "\n".join(cut(items, MAX_LINES)) if items else "- none"])

    def _plan_tasks(self, name: str | None) -> list[ManagedTask]:
        if name is None:
            return managed_tasks(self.schedule, [])
        if not self.schedule.is_managed_name(name):
            hint = close_hint(close_matches(name, self.schedule.task_entries))
            raise UserError(f"{name!r} is neither a managed task nor matched by a task pattern{hint}")
        return [t for t in managed_tasks(self.schedule, [TaskRef(name)]) if t.ref.name == name]

    def _tasks(self, selectors: Sequence[str]) -> str:
        return ", ".join(esc(s) for s in cut(selectors, MAX_LINES))

    def _when(self, instant: datetime) -> str:
        return when(instant, self.schedule.timezone, self.now)
