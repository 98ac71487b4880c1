"""The holds of alerts, written: what the intake (HTTP routes) and the handler (EventBridge CloudEvents)
both call, so that an alert leads to the same hold whichever door it came in by.

Each alert is logged (``intake.alert``: source, name, state, key, severity, and the rule that took
it or null), matched against the schedule's ``alert:`` rules (the first that matches) and turned
into a hold change by ``engine.alerts.hold_change``; then every changed hold is written once
through ``HoldStore`` and logged (``hold.created``, ``hold.refreshed``, ``hold.cooling``,
``hold.released``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from esa_scheduler.engine.alerts import Alert, HoldChange, alert_hold_id, hold_change, matching_rule
from esa_scheduler.engine.holds import Hold
from esa_scheduler.engine.schedule.model import Schedule
from esa_scheduler.invocation.holds import HoldStore
from esa_scheduler.logs import RunLog


@dataclass(frozen=True)
class AlertOutcome:
    """What a batch of alerts did, as the intake answers it.

    ``alerts`` counts every alert received, ``matched`` those a rule took, ``ignored`` the others
    (no rule, or no state: CloudMonitor's ``INSUFFICIENT_DATA``). The lists hold hold ids:
    ``refreshed`` are holds still in force with a new end (a firing's refresh, or a resolve that
    started the cooldown); ``released`` are holds that no longer hold. ``changes`` are the hold
    changes themselves, in order, for the handler to reconcile with.
    """

    alerts: int
    matched: int
    ignored: int
    created: tuple[str, ...] = ()
    refreshed: tuple[str, ...] = ()
    released: tuple[str, ...] = ()
    changes: tuple[HoldChange, ...] = ()


_LISTED = {"created": "created", "refreshed": "refreshed", "cooling": "refreshed", "released": "released"}


def apply_alerts(
    schedule: Schedule,
    alerts: Sequence[Alert | None],
    store: HoldStore,
    now: datetime,
    log: RunLog,
    *,
    dry_run: bool = False,
) -> AlertOutcome:
    """Decide every alert against the holds in force at ``now``, then write the changed holds (not on a
    dry run). ``None`` stands for an alert without a state, which the caller has logged. The deciding
    and the writing are one step under the store's writers' lock: an alert and its resolve arriving
    together must not both start from the same holds. Without a state folder there is nothing to
    read, and nothing is made until a hold is saved (which takes the lock itself)."""
    if dry_run or not alerts or not store.root.is_dir():
        return _apply(schedule, alerts, store, now, log, dry_run)
    with store.writing():
        return _apply(schedule, alerts, store, now, log, dry_run)


def _apply(
    schedule: Schedule, alerts: Sequence[Alert | None], store: HoldStore, now: datetime, log: RunLog, dry_run: bool
) -> AlertOutcome:
    in_force: dict[str, Hold] = {hold.id: hold for hold in store.active(now, prune=not dry_run)}
    changes: list[HoldChange] = []
    matched = 0
    for alert in alerts:
        if alert is None:
            continue
        rule = matching_rule(schedule.incidents, alert)
        log.info(
            "intake.alert",
            source=alert.source,
            name=alert.name,
            state=alert.state,
            key=alert.key,
            severity=alert.severity,
            rule=rule.name if rule is not None else None,
        )
        if rule is None:
            continue
        matched += 1
        change = hold_change(rule, alert, in_force.get(alert_hold_id(rule.name, alert)), now)
        if change is not None:
            in_force[change.hold.id] = change.hold
            changes.append(change)
    _write(changes, store, log, dry_run)
    listed: dict[str, list[str]] = {"created": [], "refreshed": [], "released": []}
    for change in changes:
        ids = listed[_LISTED[change.kind]]
        if change.hold.id not in ids:
            ids.append(change.hold.id)
    return AlertOutcome(
        len(alerts),
        matched,
        len(alerts) - matched,
        tuple(listed["created"]),
        tuple(listed["refreshed"]),
        tuple(listed["released"]),
        tuple(changes),
    )


def _write(changes: Sequence[HoldChange], store: HoldStore, log: RunLog, dry_run: bool) -> None:
    """Each changed hold is written once, as it ends up; each change is logged as it happened."""
    if not dry_run:
        for hold in {change.hold.id: change.hold for change in changes}.values():
            store.save(hold)
    for change in changes:
        hold = change.hold
        if change.kind == "created":
            log.info("hold.created", **hold.model_dump(mode="json"), dry_run=dry_run)
        elif change.kind == "released":
            log.info("hold.released", hold_id=hold.id, tasks=list(hold.tasks), dry_run=dry_run)
        else:
            event = "hold.refreshed" if change.kind == "refreshed" else "hold.cooling"
            log.info(event, hold_id=hold.id, tasks=list(hold.tasks), expires_at=hold.expires_at, dry_run=dry_run)
