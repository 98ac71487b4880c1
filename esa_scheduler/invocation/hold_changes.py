"""An event's hold changes, written before anything else happens: its new holds, its releases and its
alerts' holds, each saved through ``HoldStore`` and logged.

The scheduler's invocation (``function.py``), the intake's chat commands and the CLI's ``hold`` and
``release`` all write holds here; it imports no reconciler and no asyncio, so the intake's DingTalk
route does not load them.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, NamedTuple

from esa_scheduler.engine.holds import Hold, holds_touching
from esa_scheduler.engine.schedule.model import Schedule
from esa_scheduler.invocation.events.models import Intent
from esa_scheduler.invocation.holds import HoldStore
from esa_scheduler.logs import RunLog
from esa_scheduler.timeutil import now_utc

if TYPE_CHECKING:
    from esa_scheduler.engine.alerts import HoldChange


class HoldChanges(NamedTuple):
    """Holds in force after this event, before it, the selectors it touched, and the holds it released."""

    current: tuple[Hold, ...]
    previous: tuple[Hold, ...]
    touched: tuple[str, ...]
    released: tuple[Hold, ...] = ()


def apply_hold_changes(
    intent: Intent,
    store: HoldStore,
    log: RunLog,
    since: datetime | None = None,
    *,
    schedule: Schedule | None = None,
    now: datetime | None = None,
    end_released: bool = False,
) -> HoldChanges:
    """Persist an intent's new holds, releases and alerts (unless it is a dry run) and log each one.

    ``previous`` holds are those in force at any time since ``since`` (the start of the last
    tick), so that a hold that ended within the tick still counts as a transition. ``touched``
    are the selectors of every hold made or ended, and the intent's own ``touched`` entries, an
    entry naming a hold (in force since ``since``) standing for that hold's selectors. With
    ``end_released`` (the intake, which reconciles later, in another invocation) a released hold is
    kept, ending at ``now``, as an alert's resolve keeps it: the scheduler's next run still sees its
    end as a transition, and a reconcile naming it in ``touched`` still finds its tasks.

    An intent that changes holds takes the store's writers' lock over its reading as well as its
    writing: a release decided on holds that a concurrent writer is changing could miss one. One
    that changes none only reads (and prunes, which locks by itself), so a timer tick leaves an
    untouched folder alone.
    """
    alerted = intent.alerts and store.root.is_dir()  # without a folder there is nothing to decide on
    if intent.dry_run or not (intent.new_holds or intent.release_ids or intent.release_tasks or alerted):
        return _hold_changes(intent, store, log, since, schedule, now or now_utc(), end_released)
    with store.writing():
        return _hold_changes(intent, store, log, since, schedule, now or now_utc(), end_released)


def _hold_changes(
    intent: Intent,
    store: HoldStore,
    log: RunLog,
    since: datetime | None,
    schedule: Schedule | None,
    now: datetime,
    end_released: bool,
) -> HoldChanges:
    recent = store.active(min(since or now, now), prune=not intent.dry_run)
    existing = [h for h in recent if h.expires_at > now]
    alerted = _apply_alerts(intent, schedule, store, log, now)
    by_id = {h.id: h for h in existing}
    released = [by_id[i] for i in intent.release_ids if i in by_id]
    released += [h for h in holds_touching(existing, intent.release_tasks) if h not in released]
    released += [c.previous for c in alerted if c.kind == "released" and c.previous is not None]
    for missing in sorted(set(intent.release_ids) - by_id.keys()):
        log.warning("hold.release_missing", hold_id=missing)
    changed = {c.hold.id: c.hold for c in alerted}
    replaced = {h.id for h in intent.new_holds} | changed.keys()
    gone = {h.id for h in released} | replaced
    still = tuple(h for h in changed.values() if h.expires_at > now)
    current = tuple(h for h in existing if h.id not in gone) + intent.new_holds + still
    if not intent.dry_run:
        for hold in intent.new_holds:
            store.save(hold)
        ended = [h for h in released if h.id not in changed]
        if end_released:
            for hold in ended:
                store.save(hold.model_copy(update={"expires_at": max(now, hold.created_at)}))
        else:
            store.remove([h.id for h in ended])
    for hold in intent.new_holds:
        log.info("hold.created", **hold.model_dump(mode="json"), dry_run=intent.dry_run)
    for hold in released:
        if hold.id not in changed:  # an alert's release was logged with its alert
            log.info("hold.released", hold_id=hold.id, tasks=list(hold.tasks), dry_run=intent.dry_run)
    holds = {h.id: h for h in recent}
    asked = [s for entry in intent.touched for s in (holds[entry].tasks if entry in holds else (entry,))]
    made = (*intent.new_holds, *released, *(c.hold for c in alerted))
    touched = tuple(dict.fromkeys([*(s for h in made for s in h.tasks), *asked]))
    return HoldChanges(current, tuple(recent), touched, tuple(released))


def _apply_alerts(
    intent: Intent, schedule: Schedule | None, store: HoldStore, log: RunLog, now: datetime
) -> tuple[HoldChange, ...]:
    """The intent's alerts through the intake's lifecycle (``apply_alerts``), which writes their holds."""
    for line in intent.unstated:
        log.info("intake.alert", **line)
    if not intent.alerts:
        return ()
    assert schedule is not None, "alerts are read from a schedule's rules"
    from esa_scheduler.invocation.intake.apply import apply_alerts

    return apply_alerts(schedule, intent.alerts, store, now, log, dry_run=intent.dry_run).changes
