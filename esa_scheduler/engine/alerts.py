"""Normalized alerts and the ``alert:`` incident rules that hold tasks for them: pure decisions.

Every source (CloudMonitor, SLS, Alertmanager), whichever door it came through (the intake's HTTP
routes or EventBridge CloudEvents at the handler), becomes one ``Alert``. The first ``alert:`` rule
that matches it owns it; the hold of that (rule, alert key) is created, refreshed, cooled down or
released by ``hold_change``, a function of the rule, the alert, the hold as stored and the instant,
so the same alert always leads to the same hold. The parsers are in ``invocation/intake/sources/``
and the writes in ``invocation/intake/apply.py``.

A resolve does not delete the hold: it shortens its ``expires_at`` (to now, or to now + cooldown).
The ended hold stays readable, so the next scheduler run still sees its end as a transition and a
reconcile naming it in ``touched`` still finds its tasks; the store prunes it a day later.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from esa_scheduler.engine.holds import Hold, hold_id_part
from esa_scheduler.engine.schedule.model import IncidentRule
from esa_scheduler.engine.schedule.spec import AlertSource, AlertSpec, Severity
from esa_scheduler.engine.selectors import selector_matches

AlertState = Literal["firing", "resolved"]
ChangeKind = Literal["created", "refreshed", "cooling", "released"]

MAX_NAME = 256
MAX_KEY = 256
MAX_LABELS = 64
MAX_LABEL_NAME = 128
MAX_LABEL_VALUE = 1024
MAX_SUMMARY = 512
_RULE_IN_ID = 110
"""``inc-`` + rule + ``-`` + 8 hex stays within the 128 characters of a hold id."""

LabelName = Annotated[str, Field(min_length=1, max_length=MAX_LABEL_NAME)]
LabelValue = Annotated[str, Field(max_length=MAX_LABEL_VALUE)]
Labels = Annotated[dict[LabelName, LabelValue], Field(max_length=MAX_LABELS)]
"""Bounded, so that a hostile body cannot blow up a log line or a hold file."""


class Alert(BaseModel):
    """One alert as every source is normalized: what rules match and what pairs a firing with its resolve.

    ``key`` pairs them (CloudMonitor ``transId``, SLS and Alertmanager ``fingerprint``, else the
    alert's rule or name with its labels); ``labels`` are strings; ``at`` is when the source says
    the alert fired or resolved, for the log (a cooldown counts from the resolve's arrival)."""

    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)

    source: AlertSource
    name: str = Field(min_length=1, max_length=MAX_NAME)
    state: AlertState
    key: str = Field(min_length=1, max_length=MAX_KEY)
    severity: Severity = "unknown"
    labels: Labels = Field(default={})
    summary: str = Field(default="", max_length=MAX_SUMMARY)
    at: datetime | None = None


@dataclass(frozen=True)
class HoldChange:
    """What one alert does to its hold: ``hold`` is the hold as it is to be written, ``previous`` as
    it was (``None`` for a new one). ``cooling``: a resolve shortened it to the end of the cooldown."""

    kind: ChangeKind
    hold: Hold
    previous: Hold | None


def alert_matches(spec: AlertSpec, alert: Alert) -> bool:
    """Every field the rule gives must match; ``severity`` only for a firing (a resolve pairs by key)."""
    if spec.source is not None and spec.source != alert.source:
        return False
    if spec.name is not None and not selector_matches(spec.name, alert.name):
        return False
    if spec.severity is not None and alert.state == "firing" and alert.severity not in spec.severity:
        return False
    return all(
        name in alert.labels and selector_matches(glob, alert.labels[name]) for name, glob in spec.labels.items()
    )


def matching_rule(rules: Iterable[IncidentRule], alert: Alert) -> IncidentRule | None:
    """The first ``alert:`` rule, in file order, that matches: one alert makes at most one hold."""
    return next((rule for rule in rules if rule.alert is not None and alert_matches(rule.alert, alert)), None)


def alert_hold_id(rule: str, alert: Alert) -> str:
    """``inc-<rule>-<8 hex>``: one hold per (rule, alert key), the same whichever door the alert came in by."""
    digest = hashlib.sha256(f"{alert.source}\n{alert.key}".encode()).hexdigest()[:8]
    return f"inc-{hold_id_part(rule, _RULE_IN_ID)}-{digest}"


def composed_key(head: str, labels: Mapping[str, str]) -> str:
    """A key for an alert without an id of its own: ``head{k=v,...}`` with the labels sorted, or their
    digest when that would be longer than a key may be (keys are logged, so they stay short)."""
    pairs = ",".join(f"{name}={labels[name]}" for name in sorted(labels))
    key = f"{head}{{{pairs}}}"
    if len(key) <= MAX_KEY:
        return key
    digested = f"{{sha256:{hashlib.sha256(pairs.encode()).hexdigest()[:16]}}}"
    return head[: MAX_KEY - len(digested)] + digested


def hold_reason(alert: Alert) -> str:
    """What ``hold list`` and notifications show: the source, the alert and its severity."""
    return f"{alert.source} alert {alert.name} ({alert.severity})"


def hold_change(rule: IncidentRule, alert: Alert, stored: Hold | None, now: datetime) -> HoldChange | None:
    """What ``alert`` does to the rule's hold for it, given the hold as stored (``None``: none) at ``now``.

    A firing creates the hold, or refreshes one still in force (its end moves to now + ttl, also
    during a cooldown); a resolve ends it now, or with ``cooldown`` at now + cooldown, never later
    than it would have ended anyway. A resolve with no hold in force changes nothing (``None``).
    """
    current = stored if stored is not None and stored.expires_at > now else None
    if alert.state == "firing":
        created = current.created_at if current is not None else now
        hold = Hold(
            id=alert_hold_id(rule.name, alert),
            tasks=rule.selectors,
            status=rule.status,
            reason=hold_reason(alert),
            by=f"intake:{alert.source}",
            created_at=created,
            expires_at=now + rule.ttl,
            targets=rule.targets,
        )
        return HoldChange("created" if current is None else "refreshed", hold, current)
    if current is None:
        return None
    if rule.cooldown is None:
        return HoldChange("released", current.model_copy(update={"expires_at": now}), current)
    until = min(current.expires_at, now + rule.cooldown)
    if until == current.expires_at:
        return None
    return HoldChange("cooling", current.model_copy(update={"expires_at": until}), current)
