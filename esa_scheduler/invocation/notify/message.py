"""What one run tells one target: a title, short sections, and the same facts as data for webhooks.

A run produces at most one message per target, never one per task, and chat messages stay short:
every list is cut after ``limit`` lines with "and N more", and each chat service's byte limit is
enforced on the final text (a message over it is refused, again on every retry). Times are shown
in the zone of the file that declares the target, with UTC beside them, because the people reading
live in that zone and the logs they will compare with are in UTC.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from esa_scheduler.engine.holds import Hold, holds_touching
from esa_scheduler.engine.schedule.model import NotifyTarget
from esa_scheduler.engine.selectors import selector_matches
from esa_scheduler.invocation.notify.markdown import escaper, shorten
from esa_scheduler.timeutil import UTC, utc_iso

if TYPE_CHECKING:  # annotations only: the chat's replies use this module without the reconciler
    from esa_scheduler.invocation.reconciler import RunSummary, TaskResult

SAFETY_PREFIX = "safety: "
NAMES_PER_LINE = 5
"""Task names one line lists (a hold's, a reminder's) before "and N more"."""
_REQUEST_ID = re.compile(r" \[RequestId [^\]]*\]")
"""How ESA's errors name their request (``EsaApiError.__str__``): different on every attempt."""


@dataclass(frozen=True)
class Reminder:
    """Tasks (of fleet target ``target``, in a fleet) that change to ``status`` at one instant, for
    one reason (``window:nightly``, ``default``)."""

    at: datetime
    status: str
    source: str
    tasks: tuple[str, ...]
    target: str | None = None

    def key(self, notify: str) -> str:
        """Identity of the announcement: notify entry, fleet target, instant and task set (the set
        hashed to stay small). Without a fleet target it is the key schedules without targets always had."""
        digest = hashlib.sha256("\n".join(sorted(self.tasks)).encode()).hexdigest()[:24]
        return "|".join([notify, *([self.target] if self.target else []), utc_iso(self.at), self.status, digest])

    def to_json(self) -> dict[str, Any]:
        """The reminder as webhook data."""
        fields = {"at": utc_iso(self.at), "status": self.status, "source": self.source, "tasks": list(self.tasks)}
        return {**({"target": self.target} if self.target else {}), **fields}


@dataclass(frozen=True)
class Scope:
    """One reconcile a message reports on: a fleet target's (``name``), or the run's own."""

    name: str | None
    summary: RunSummary


@dataclass(frozen=True)
class RunFacts:
    """What one run did, before any notify entry's filter: the run's summary (a fleet's combined
    one), each reconcile in it, and the holds it made, ended or saw expire. ``serves`` is the one
    fleet target an invocation of an ``async`` fan-out reconciles: its title names it."""

    summary: RunSummary
    scopes: tuple[Scope, ...]
    serves: str | None = None
    created: tuple[Hold, ...] = ()
    released: tuple[Hold, ...] = ()
    expired: tuple[Hold, ...] = ()

    def label(self, scope: str | None) -> str:
        """``prod-cn/`` before a task of a fleet message that covers several targets, else nothing."""
        return f"{scope}/" if scope and not self.serves else ""


@dataclass(frozen=True)
class Line:
    """One rendered line, and the reminder it announces (only those shown are recorded as sent)."""

    text: str
    reminder: Reminder | None = None


@dataclass(frozen=True)
class Section:
    """A heading and its lines, in the order they are shown; ``reminders`` are what the lines of the
    reminders section announce, one per line."""

    heading: str
    lines: tuple[str, ...]
    reminders: tuple[Reminder, ...] = ()

    def items(self, limit: int) -> list[Line]:
        """The first ``limit`` lines, and "and N more" for the rest."""
        announced: Sequence[Reminder | None] = self.reminders or [None] * len(self.lines)
        lines = [Line(text, reminder) for text, reminder in zip(self.lines, announced, strict=True)]
        if len(lines) <= limit:
            return lines
        return [*lines[:limit], Line(f"and {len(lines) - limit} more")]


@dataclass(frozen=True)
class Message:
    """One target's message for one run; ``event_type`` is the CloudEvents type for webhooks."""

    event_type: str
    at: datetime
    title: str
    sections: tuple[Section, ...]
    data: dict[str, Any]

    @property
    def reminders(self) -> tuple[Reminder, ...]:
        """Every reminder the message carries (a chat service may show fewer)."""
        return tuple(r for section in self.sections for r in section.reminders)

    def markdown_lines(self, limit: int) -> list[Line]:
        """Markdown for DingTalk and WeCom: a bold title, then each section as a short list."""
        lines = [Line(f"**{self.title}**")]
        for section in self.sections:
            lines += [Line(""), Line(f"**{section.heading}**"), Line("")]
            lines += [Line(f"- {item.text}", item.reminder) for item in section.items(limit)]
        return lines

    def plain_lines(self, limit: int) -> list[Line]:
        """Plain text lines (Feishu posts): headings, then indented items."""
        lines: list[Line] = []
        for section in self.sections:
            lines.append(Line(section.heading))
            lines += [Line(f"  • {item.text}", item.reminder) for item in section.items(limit)]
        return lines


def cut(names: Sequence[str], limit: int) -> list[str]:
    """The first ``limit`` names, and "and N more" for the rest."""
    if len(names) <= limit:
        return list(names)
    return [*names[:limit], f"and {len(names) - limit} more"]


@dataclass(frozen=True)
class Fitted:
    """The lines a chat service gets, and the reminders among them."""

    lines: tuple[str, ...]
    reminders: tuple[Reminder, ...]


def cut_note(kind: str) -> str:
    """The last line of a message cut to the service's size limit."""
    return f"… (cut to fit {kind}'s limit)"


def fit(
    render: Callable[[int], list[Line]],
    size: Callable[[Sequence[str]], int],
    max_bytes: int,
    limit: int,
    note: Sequence[str],
) -> Fitted:
    """The lines whose ``size`` (bytes, as the service counts them) is at most ``max_bytes``.

    First fewer lines per section (``limit`` halved down to one: every section stays visible, each
    ending in "and N more"); if one line per section is still too much, the last lines go and
    ``note`` says so. Lines are dropped whole, so multi-byte text is never split."""
    while limit > 1 and size([line.text for line in render(limit)]) > max_bytes:
        limit //= 2
    lines = render(limit)
    texts = [line.text for line in lines]
    if size(texts) > max_bytes:
        kept, over = 0, len(lines)  # the longest prefix that fits with the note (binary search)
        while over - kept > 1:
            middle = (kept + over) // 2
            kept, over = (middle, over) if size([*texts[:middle], *note]) <= max_bytes else (kept, middle)
        lines, texts = lines[:kept], [*texts[:kept], *note]
    return Fitted(tuple(texts), tuple(line.reminder for line in lines if line.reminder is not None))


def when(instant: datetime, tz: ZoneInfo, reference: datetime) -> str:
    """``02:30 CET (01:30Z)``; the date is added when it is not the reference instant's local date."""
    local = instant.astimezone(tz)
    shown = "%H:%M" if local.date() == reference.astimezone(tz).date() else "%Y-%m-%d %H:%M"
    if tz.key in ("UTC", "Etc/UTC"):
        return local.strftime(shown) + "Z"
    return f"{local.strftime(shown)} {local.tzname()} ({instant.astimezone(UTC):%H:%M}Z)"


Escape = Callable[[str], str]
"""How a target writes a value from outside into its lines (``markdown.escaper``): every name, reason,
error text and status that did not come from this module goes through it."""


def _names(names: Sequence[str], esc: Escape) -> str:
    return ", ".join(cut([esc(name) for name in names], NAMES_PER_LINE))


def _move(label: str, result: TaskResult, esc: Escape) -> str:
    """``prod-cn/access-a (site 1001): online -> offline``."""
    ref = result.decision.task.ref
    task = esc(ref.name) if ref.site_id is None else f"{esc(ref.name)} (site {ref.site_id})"
    return f"{esc(label)}{task}: {esc(str(result.previous))} -> {result.decision.desired}"


def _hold_line(verb: str, hold: Hold, tz: ZoneInfo, reference: datetime, esc: Escape) -> str:
    who = f", by {esc(hold.by)}" if hold.by else ""
    reason = f", reason: {esc(hold.reason)}" if hold.reason else ""
    where = f" on {_names(hold.targets, esc)}" if hold.targets else ""
    return (
        f"{verb} {esc(hold.id)}: {_names(hold.tasks, esc)} {hold.status}{where}{reason}{who}, "
        f"expires {when(hold.expires_at, tz, reference)}"
    )


def task_filter(target: NotifyTarget) -> Callable[[str], bool]:
    """Whether a task name is one the target cares about (all tasks when it lists none)."""
    selectors = target.spec.tasks
    return lambda name: not selectors or any(selector_matches(s, name) for s in selectors)


@dataclass(frozen=True)
class Alerts:
    """What a notify entry is alerted about in a run: runs a safety limit blocked (with the changes
    held back), runs that failed, tasks that failed. The same alert run after run is repeated at
    most hourly, so these are kept apart from the rest of a message."""

    facts: RunFacts
    blocked: tuple[tuple[str | None, str], ...] = ()
    errors: tuple[tuple[str | None, str], ...] = ()
    failed: tuple[tuple[str | None, TaskResult], ...] = ()
    held_back: tuple[tuple[str | None, TaskResult], ...] = ()

    def sections(self, esc: Escape = shorten) -> list[Section]:
        """The message's first sections: blocked, run failed, tasks failed."""
        facts, sections = self.facts, []

        def scoped(name: str | None) -> str:
            return f"{esc(name or '')}: " if facts.label(name) else ""

        if self.blocked:
            lines = tuple(
                f"{scoped(name)}{esc(why)}; {sum(1 for n, _ in self.held_back if n == name)} change(s) held back"
                for name, why in self.blocked
            )
            sections.append(Section("Blocked by safety", lines))
        if self.errors:
            sections.append(Section("Run failed", tuple(f"{scoped(name)}{esc(why)}" for name, why in self.errors)))
        if self.failed:
            lines = tuple(f"{_move(facts.label(n), r, esc)} failed: {esc(str(r.error_code))}" for n, r in self.failed)
            sections.append(Section(f"Failed ({len(self.failed)})", lines))
        return sections

    def fingerprint(self) -> str | None:
        """Identity of the alert (``None`` without one): its text, without what differs on every
        attempt of the same failure (ESA's request ids)."""
        text = "\n".join(line for s in self.sections() for line in (s.heading, *s.lines))
        return hashlib.sha256(_REQUEST_ID.sub("", text).encode()).hexdigest()[:24] if text else None


def alerts_for(target: NotifyTarget, facts: RunFacts) -> Alerts:
    """The alerts of ``facts`` that ``target`` listens for (its triggers, its tasks)."""
    send_on = set(target.spec.send_on)
    chosen = _chosen(target, facts)
    return Alerts(
        facts,
        tuple((s.name, s.summary.blocked) for s in facts.scopes if s.summary.blocked) if "blocked" in send_on else (),
        tuple((s.name, s.summary.error) for s in facts.scopes if s.summary.error) if "failures" in send_on else (),
        tuple((n, r) for n, r in chosen if r.action == "failed") if "failures" in send_on else (),
        tuple((n, r) for n, r in chosen if r.action == "skipped" and (r.error or "").startswith(SAFETY_PREFIX)),
    )


def _chosen(target: NotifyTarget, facts: RunFacts) -> list[tuple[str | None, TaskResult]]:
    """Every task result of the run that ``target`` cares about, with its fleet target."""
    wanted = task_filter(target)
    return [(s.name, r) for s in facts.scopes for r in s.summary.results if wanted(r.decision.task.ref.name)]


def compose(
    target: NotifyTarget,
    facts: RunFacts,
    reminders: Sequence[Reminder],
    *,
    alerting: bool = True,
    recovered: datetime | None = None,
) -> Message | None:
    """The message for ``target``, or ``None`` when nothing it listens for happened.

    A fleet run is one message covering every fleet target, its task lines naming the target
    (``prod-cn/access-a: online -> offline``): the chat services throttle at about 20 messages a
    minute, so one per target and run would not scale. ``alerting=False`` leaves the alerts out (the
    same alert went out within the hour); ``recovered`` is when the alert this run ends was sent."""
    send_on = set(target.spec.send_on)
    tz, at, esc = target.tz, facts.summary.at, escaper(target.spec.kind)
    alerts = alerts_for(target, facts) if alerting else Alerts(facts)
    changed = [(n, r) for n, r in _chosen(target, facts) if r.action == "updated"] if "changes" in send_on else []
    holds = {"created": facts.created, "released": facts.released, "expired": facts.expired}
    if "holds" not in send_on:
        holds = dict.fromkeys(holds, ())
    elif target.spec.tasks:
        holds = {verb: tuple(holds_touching(found, target.spec.tasks)) for verb, found in holds.items()}
    upcoming = [r for r in reminders if "reminders" in send_on]
    sections = alerts.sections(esc)
    if recovered is not None:
        sections.append(
            Section("Recovered", (f"no failure and no block since the alert of {when(recovered, tz, at)}",))
        )
    if changed:
        lines = tuple(f"{_move(facts.label(n), r, esc)} ({esc(r.decision.source)})" for n, r in changed)
        sections.append(Section(f"Changed ({len(changed)})", lines))
    hold_lines = tuple(_hold_line(verb, h, tz, at, esc) for verb, found in holds.items() for h in found)
    if hold_lines:
        sections.append(Section(f"Holds ({len(hold_lines)})", hold_lines))
    if upcoming:
        lines = tuple(_reminder_line(r, tz, at, facts.label(r.target), esc) for r in upcoming)
        sections.append(Section(f"Coming up ({len(upcoming)})", lines, tuple(upcoming)))
    if not sections:
        return None
    kinds = (
        ("run.blocked", alerts.blocked),
        ("run.failed", alerts.failed or alerts.errors),
        ("run.changed", changed),
        ("run.recovered", recovered),
        ("holds.changed", hold_lines),
    )
    event = next((name for name, present in kinds if present), "reminder")
    counts = [
        f"{len(changed)} changed" if changed else "",
        f"{len(alerts.failed)} failed" if alerts.failed else "",
        "run failed" if alerts.errors else "",
        "run blocked" if alerts.blocked else "",
        "recovered" if recovered else "",
        f"{len(hold_lines)} hold change(s)" if hold_lines else "",
        f"{len(upcoming)} reminder(s)" if upcoming else "",
    ]
    scope = f" [{esc(facts.serves)}]" if facts.serves else ""
    title = f"esa-scheduler{scope} at {when(at, tz, at)}: {', '.join(c for c in counts if c)}"
    reported = [*alerts.failed, *changed, *(alerts.held_back if alerts.blocked else [])]
    data = {
        **({"target": facts.serves} if facts.serves else {}),
        "summary": {k: v for k, v in facts.summary.to_json().items() if k not in ("notified", "notify_failed")},
        "results": [{**r.to_log(), **({"target": n} if n else {})} for n, r in reported],
        "holds": {verb: [h.model_dump(mode="json") for h in found] for verb, found in holds.items()},
        "reminders": [r.to_json() for r in upcoming],
    }
    return Message(f"esa-scheduler.{event}", at, title, tuple(sections), data)


def _reminder_line(reminder: Reminder, tz: ZoneInfo, reference: datetime, label: str, esc: Escape) -> str:
    names = _names([label + name for name in reminder.tasks], esc)
    verb = "goes" if len(reminder.tasks) == 1 else "go"
    kind, _, name = reminder.source.partition(":")
    why = f" for {esc(kind)} {esc(name)}" if name else " (schedule default)"
    return f"{names} {verb} {reminder.status} at {when(reminder.at, tz, reference)}{why}"


def probe_message(target: NotifyTarget, at: datetime) -> Message:
    """What ``esa-scheduler notify test`` sends: proof that the URL, secret and keywords work."""
    esc = escaper(target.spec.kind)
    line = f"Test message for target {esc(target.spec.name)} ({target.spec.kind}) from {esc(str(target.origin))}."
    title = f"esa-scheduler test at {when(at, target.tz, at)}"
    data = {"test": True, "target": target.spec.name, "at": utc_iso(at)}
    return Message("esa-scheduler.test", at, title, (Section("Test", (line,)),), data)
