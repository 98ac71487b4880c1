"""Human-readable renderings for the terminal (the JSON forms live next to their models)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from esa_scheduler.engine.planner import Decision, Plan, Planner, State
from esa_scheduler.invocation.reconciler import RunSummary
from esa_scheduler.logs import terminal_safe
from esa_scheduler.timeutil import local_text, utc_iso

BAR_WIDTH = 48


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A plain left-aligned text table; cells are made terminal-safe (they may hold server text)."""
    rows = [[terminal_safe(str(c)) for c in row] for row in rows]
    widths = [max(len(str(c)) for c in column) for column in zip(headers, *rows, strict=True)]
    lines = ["  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in [headers, *rows]]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _display_zone(planner: Planner, decision: Decision) -> ZoneInfo:
    name = decision.task.ref.name
    zones = [w.tz for w in planner.schedule.windows if w.selects(name)]
    return zones[0] if zones else ZoneInfo("UTC")


def plan_text(plan: Plan, planner: Planner, horizon: timedelta, target: str | None = None) -> str:
    """The plan as a table, then one timeline per task: '#' offline, '.' online over the horizon.

    With a fleet ``target``, the heading names it and every row carries it."""
    scope = f" for target {target}" if target else ""
    if not plan.decisions:
        return f"plan at {utc_iso(plan.at)}{scope}: no managed tasks (patterns match nothing; try --task NAME)"
    rows = [
        [
            *([target] if target else []),
            d.task.ref.name,
            "-" if d.task.ref.site_id is None else str(d.task.ref.site_id),
            d.desired,
            d.source,
            utc_iso(d.next_change) if d.next_change else "none in 400 days",
        ]
        for d in plan.decisions
    ]
    headers = [*(["target"] if target else []), "task", "site", "desired", "source", "next change"]
    out = [f"plan at {utc_iso(plan.at)}{scope}", "", table(headers, rows)]
    until = plan.at + horizon
    out += ["", f"timeline {utc_iso(plan.at)} .. {utc_iso(until)} ('#' offline, '.' online)"]
    for decision in plan.decisions:
        changes = planner.transitions(decision.task, until)
        out.append(f"{terminal_safe(decision.task.ref.name):<24} |{_bar(plan.at, until, decision.desired, changes)}|")
        tz = _display_zone(planner, decision)
        for instant, state in changes:
            out.append(f"    {utc_iso(instant)}  ({local_text(instant, tz)})  -> {state.desired} ({state.source})")
    return "\n".join(out)


def _bar(start: datetime, until: datetime, desired: str, changes: Sequence[tuple[datetime, State]]) -> str:
    step = (until - start) / BAR_WIDTH
    cells = []
    states = [(start, desired)] + [(t, s.desired) for t, s in changes]
    for i in range(BAR_WIDTH):
        middle = start + step * i + step / 2
        current = desired
        for instant, value in states:
            if instant <= middle:
                current = value
        cells.append("#" if current == "offline" else ".")
    return "".join(cells)


def run_text(summary: RunSummary) -> str:
    """One row per managed task, then the summary line."""
    fleet = summary.targets is not None
    rows = [
        [
            *([r.target or "-"] if fleet else []),
            r.decision.task.ref.name,
            "-" if r.decision.task.ref.site_id is None else str(r.decision.task.ref.site_id),
            r.previous or "-",
            r.decision.desired,
            r.action,
            r.decision.source,
            r.error or "",
        ]
        for r in sorted(summary.results, key=lambda r: (r.target or "", r.decision.task.ref.sort_key()))
    ]
    counts = ", ".join(f"{k} {v}" for k, v in summary.counts.items() if v)
    head = f"run at {utc_iso(summary.at)}" + (" (dry run)" if summary.dry_run else "")
    headers = [*(["target"] if fleet else []), "task", "site", "previous", "desired", "action", "source", "note"]
    lines = [head, "", table(headers, rows), ""]
    for name, outcome in (summary.targets or {}).items():
        state = (
            "ok"
            if outcome.get("ok")
            else f"FAILED: {terminal_safe(str(outcome.get('error') or outcome.get('blocked')))}"
        )
        lines.append(f"target {name}: {state}")
    if summary.blocked:
        lines.append(f"BLOCKED by safety limits: {summary.blocked} (use --force to override)")
    if summary.error:
        lines.append(f"FAILED: {terminal_safe(summary.error)}")
    next_change = utc_iso(summary.next_change) if summary.next_change else "none in 400 days"
    ending = counts or ("nothing changed" if summary.error else "no managed tasks")
    lines.append(f"{ending}; {summary.api_calls} API call(s); next change {next_change}")
    return "\n".join(lines)
